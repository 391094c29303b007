"""Teacher-free educational data, mined from code and documentation a user already has.

Two stages, usable on any codebase and with no model at all:

- `synth.mined_exercises`: CodeExercises mined from doctests. A function whose docstring examples
  call the function itself becomes an exercise: prompt = the module's imports + the signature +
  the docstring, completion = the body, tests = its doctest examples. It is kept only when the
  original function passes its own examples in the sandbox (trusted-looking code is still someone
  else's code). MBPP's non-test splits (task ids 1-10 prompt, 511-974 train and validation) join
  as human-written exercises in the benchmark's own prompt format, also verified in the sandbox.
- `synth.human_textbook`: human-written textbook text: the Python language reference shipped as
  `pydoc_data.topics`, the README/METADATA prose of installed packages, and docstring "lessons"
  (a function's or class's prose docstring with examples, followed by its source). Take these
  packages out of every code pool the model trains on (ingest's `exclude`), so the text is new.

Both write ordinary dataset dirs (records with `text`; exercises also `prompt`, `completion`,
`tests`), so the recipe sends them through the same dedup and decontamination as everything else.
"""

from __future__ import annotations

import ast
import doctest
import importlib.metadata
import os
import random
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from pydantic import Field

from syllabus.benchmarks import Problem, completion_check, load_packaged
from syllabus.config import Params, StageContext
from syllabus.data.dataset import Dataset, record_id, write_dataset
from syllabus.data.files import installed_package_roots
from syllabus.errors import BadInput
from syllabus.sandbox import Check, run_programs
from syllabus.summaries import HumanTextbookSummary, MinedExercisesSummary
from syllabus.synth.exercises import Exercise

# MBPP's prompt split (1-10) and its train and validation splits (511-974): everything but the test split
MBPP_EXERCISE_IDS = (*range(1, 11), *range(511, 975))
MBPP_FILE = "mbpp.jsonl"
SKIP_DIRS = {"__pycache__", "tests", "test", "testing", "_vendor", "vendor"}

# The test of a doctest exercise: the docstring's examples, run by doctest in the sandbox's checker,
# where NAME calls the program's function across the process boundary.
DOCTEST_CHECK = """import doctest


def _run_examples():
    globs = dict(globals())
    test = doctest.DocTestParser().get_doctest({docstring!r}, globs, {name!r}, None, 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test, out=lambda text: None)
    assert runner.tries > 0 and runner.failures == 0, f"{{runner.failures}} of {{runner.tries}} examples failed"


_run_examples()
"""


def package_files(name: str) -> list[Path]:
    """The .py files of an installed package or module (found without importing it), tests left out."""
    files = []
    for root in installed_package_roots(name):
        if root.is_file():
            files.append(root)
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
            files += [Path(dirpath) / f for f in sorted(filenames) if f.endswith(".py")]
    return files


def parse_source(path: Path) -> tuple[str, ast.Module] | None:
    try:
        text = path.read_text(encoding="utf-8")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return text, ast.parse(text)
    except (OSError, UnicodeDecodeError, SyntaxError, ValueError):
        return None


def _imports(text: str, module: ast.Module) -> str:
    lines = [ast.get_source_segment(text, node) for node in module.body
             if isinstance(node, (ast.Import, ast.ImportFrom)) and not (
                 isinstance(node, ast.ImportFrom) and (node.level or node.module == "__future__"))]
    return "".join(f"{line}\n" for line in lines if line)


def calls_itself(name: str, docstring: str) -> bool:
    try:
        examples = doctest.DocTestParser().get_examples(docstring)
    except ValueError:
        return False
    return any(f"{name}(" in example.source for example in examples)


def doctest_exercises(text: str, module: ast.Module) -> Iterator[tuple[str, Exercise]]:
    """(function name, exercise) for every top-level function whose doctest examples call it."""
    lines = text.splitlines(keepends=True)
    imports = _imports(text, module)
    for node in module.body:
        if not isinstance(node, ast.FunctionDef) or len(node.body) < 2:
            continue
        docstring = ast.get_docstring(node, clean=False)
        if not docstring or not calls_itself(node.name, docstring):
            continue
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
        split = node.body[0].end_lineno
        prompt = (imports + "\n\n" if imports else "") + "".join(lines[first:split])
        completion = "".join(lines[split:node.end_lineno])
        yield node.name, Exercise(prompt, completion, DOCTEST_CHECK.format(docstring=docstring, name=node.name))


def mbpp_exercises(task_ids=MBPP_EXERCISE_IDS) -> Iterator[tuple[Problem, Exercise]]:
    """MBPP's non-test problems as (problem, exercise): the benchmark's prompt, the reference code as
    the completion, its asserts as the tests."""
    wanted = set(task_ids)
    for problem in load_packaged(MBPP_FILE):
        if int(problem.task_id.removeprefix("Mbpp/")) in wanted:
            yield problem, Exercise(problem.prompt, problem.canonical_solution, problem.test)


class MinedExercisesParams(Params):
    packages: list[str] = Field(default_factory=list, description="installed packages or modules to mine doctests from")
    paths: list[str] = Field(default_factory=list, description="dirs or .py files to mine doctests from")
    mbpp: bool = Field(True, description="add MBPP's non-test splits (task ids 1-10, 511-974)")
    timeout: float = Field(5.0, gt=0, description="seconds an exercise may run against its tests")
    workers: int = Field(2, ge=1, description="sandbox processes")


def _source_files(packages: list[str], paths: list[str]) -> Iterator[tuple[str, Path]]:
    for name in packages:
        for path in package_files(name):
            yield name, path
    for entry in map(Path, paths):
        if not entry.exists():
            raise BadInput("no such file or directory", file=entry)
        for path in sorted(entry.rglob("*.py")) if entry.is_dir() else [entry]:
            yield str(entry), path


def mine_exercises(params: MinedExercisesParams, out: str | Path, *, workers: int | None = None) -> Dataset:
    """Doctest exercises (and MBPP's non-test problems) that pass their own tests, into dataset dir `out`."""
    stats: Counter = Counter()
    candidates: list[tuple[Exercise, Check, dict]] = []
    for origin, path in _source_files(params.packages, params.paths):
        parsed = parse_source(path)
        if parsed is None:
            stats["skipped_unparseable_files"] += 1
            continue
        for name, exercise in doctest_exercises(*parsed):
            candidates.append((exercise, exercise.check(name),
                               {"source": "mined.doctest", "origin": origin, "path": str(path)}))
    stats["doctest_candidates"] = len(candidates)
    if params.mbpp:
        mbpp = [(e, completion_check(p, e.completion), {"source": "mbpp.train", "task_id": p.task_id})
                for p, e in mbpp_exercises()]
        stats["mbpp_candidates"] = len(mbpp)
        candidates += mbpp
    verdicts = run_programs([check for _, check, _ in candidates], workers=workers or params.workers,
                            timeout=params.timeout)
    records = []
    for (exercise, _, meta), verdict in zip(candidates, verdicts):
        if not verdict.passed:  # an uncheckable test is never taken on the code's word
            stats["dropped_timed_out" if verdict.result == "timed out" else
                  "dropped_uncheckable" if verdict.uncheckable else "dropped_tests_failed"] += 1
            continue
        stats["kept_doctest" if meta["source"] == "mined.doctest" else "kept_mbpp"] += 1
        text = exercise.prompt + exercise.completion
        records.append({"id": record_id(text), "text": text, "prompt": exercise.prompt,
                        "completion": exercise.completion, "tests": exercise.tests, "stage": "synth.mined_exercises",
                        **meta})
    if not records:
        raise BadInput("no exercise passed its tests: nothing mined (give packages or paths with doctests)")
    summary = MinedExercisesSummary(records=len(records), **stats)
    return write_dataset(out, records, stage="synth.mined_exercises", params=params.model_dump(),
                         summary={"synth.mined_exercises": summary.dump()})


def mined_exercises_stage(params: MinedExercisesParams, inputs: dict, out: Path,
                          ctx: StageContext) -> MinedExercisesSummary:
    """Recipe stage `synth.mined_exercises`."""
    dataset = mine_exercises(params, out, workers=ctx.workers)
    return MinedExercisesSummary(**dataset.manifest["summary"]["synth.mined_exercises"])


# ── human-written textbook text ─────────────────────────────────────────────────────────────────


def pydoc_topics() -> Iterator[dict]:
    """The language reference's topics as pydoc shows them (`help('for')`), one section each."""
    from pydoc_data.topics import topics

    for name, text in sorted(topics.items()):
        yield {"text": f"## {name}\n\n{text.strip()}\n", "source": "pydoc.topics", "topic": name}


def metadata_prose(package: str, min_chars: int) -> Iterator[dict]:
    """The long description (README) of an installed distribution's METADATA."""
    try:
        distribution = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        return
    body = distribution.metadata.get_payload() or distribution.metadata.get("Description") or ""
    if len(body.strip()) >= min_chars:
        yield {"text": body.strip() + "\n", "source": "package.metadata", "package": package}


def docstring_lessons(text: str, module: ast.Module, min_chars: int) -> Iterator[tuple[str, str]]:
    """(qualified name, lesson) for every function or class whose docstring has prose and examples:
    the docstring as text, then the code it documents."""
    for node in ast.walk(module):
        if not isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            continue
        docstring = ast.get_docstring(node)
        if not docstring or ">>>" not in docstring or len(docstring) < min_chars:
            continue
        source = ast.get_source_segment(text, node)
        if source is None:
            continue
        yield node.name, f"## {node.name}\n\n{docstring}\n\n```python\n{source}\n```\n"


class HumanTextbookParams(Params):
    packages: list[str] = Field(default_factory=list,
                                description="installed packages held out of the code pool: README prose, docstring lessons")
    pydoc_topics: bool = Field(True, description="the language reference of pydoc_data.topics")
    min_chars: int = Field(400, ge=0, description="shorter READMEs and docstrings are not lessons")
    max_chars: int | None = Field(None, ge=1, description="keep a seeded sample of about this many characters")
    seed: int = 0


def human_textbook_records(params: HumanTextbookParams, stats: Counter) -> Iterator[dict]:
    if params.pydoc_topics:
        yield from pydoc_topics()
    for package in params.packages:
        yield from metadata_prose(package, params.min_chars)
    for package in params.packages:
        for path in package_files(package):
            parsed = parse_source(path)
            if parsed is None:
                stats["skipped_unparseable_files"] += 1
                continue
            for name, lesson in docstring_lessons(*parsed, params.min_chars):
                yield {"text": lesson, "source": "docstring.lesson", "package": package, "path": str(path),
                       "name": name}


def human_textbook(params: HumanTextbookParams, out: str | Path) -> Dataset:
    stats: Counter = Counter()
    found = list(human_textbook_records(params, stats))
    random.Random(params.seed).shuffle(found)  # a capped sample mixes every source
    records, chars, by_source = [], 0, Counter()
    for record in found:
        if params.max_chars is not None and chars >= params.max_chars:
            stats["dropped_over_max_chars"] += 1
            continue
        chars += len(record["text"])
        by_source[record["source"]] += 1
        records.append({"id": record_id(record["text"]), **record, "stage": "synth.human_textbook"})
    if not records:
        raise BadInput("no textbook text found (pydoc_topics off and no package has README prose or lessons)")
    summary = HumanTextbookSummary(records=len(records), chars=chars, by_source=dict(sorted(by_source.items())),
                                   **stats)
    return write_dataset(out, records, stage="synth.human_textbook", params=params.model_dump(),
                         summary={"synth.human_textbook": summary.dump()})


def human_textbook_stage(params: HumanTextbookParams, inputs: dict, out: Path,
                         ctx: StageContext) -> HumanTextbookSummary:
    """Recipe stage `synth.human_textbook`."""
    return HumanTextbookSummary(**human_textbook(params, out).manifest["summary"]["synth.human_textbook"])
