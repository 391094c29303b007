import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """Run `python -m syllabus ARGS` in a subprocess, as a user would."""
    return subprocess.run(
        [sys.executable, "-m", "syllabus", *args],
        capture_output=True, text=True, cwd=cwd, timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(REPO / "src"), **env},
    )


@pytest.fixture
def cli():
    return run_cli
