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


@pytest.fixture(scope="session")
def ray_cluster():
    """One local Ray cluster (2 CPUs) shared by every test that runs a stage with executor="ray"."""
    ray = pytest.importorskip("ray")
    # Ray workers must import syllabus and the test modules that define steps
    path = [str(REPO / "src"), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(path)}})
    yield ray
    ray.shutdown()


@pytest.fixture
def tiny_model_dir(tmp_path) -> Path:
    """A random 1-layer syllabus model dir with a BPE tokenizer trained on small functions."""
    from syllabus.data.dataset import record_id, write_dataset
    from syllabus.model import Phi, PhiConfig
    from syllabus.tokenizer import train_tokenizer

    texts = [f"def f{i}(x):\n    return x + {i}\n" for i in range(50)]
    write_dataset(tmp_path / "code", [{"id": record_id(t), "text": t} for t in texts], stage="test")
    tokenizer = train_tokenizer([tmp_path / "code"], vocab_size=400, out_dir=tmp_path / "m")
    config = PhiConfig.preset("tiny", vocab_size=tokenizer.vocab_size, n_layer=1, n_embd=32, n_head=2, n_inner=64,
                              rotary_dim=8)
    Phi(config).save_pretrained(tmp_path / "m")
    return tmp_path / "m"


CODE_SNIPPETS = {
    "documented": '''def gcd(a: int, b: int) -> int:
    """Greatest common divisor by Euclid's algorithm.

    >>> gcd(12, 18)
    6
    """
    while b:
        a, b = b, a % b  # the remainder shrinks every step
    return a
''',
    "glue": "from .registry import register\nfrom .backends import Backend\nregister('x', Backend, settings.X)\n",
    "generated": "# This file is auto-generated. DO NOT EDIT.\nTABLE = [1, 2, 3, 4, 5, 6, 7, 8, 9]\n",
}


@pytest.fixture
def snippets():
    """Three kinds of code: a documented lesson, import glue, a generated table."""
    from types import SimpleNamespace

    return SimpleNamespace(**CODE_SNIPPETS)
