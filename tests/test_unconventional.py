"""The shipped unconventional problems and library probes: every canonical solution passes, every
docstring example holds and trivially wrong completions fail, all run in the sandbox; then
`eval execute --benchmark unconventional`, `eval probes` and `decontam --benchmark unconventional`
as a user runs them."""

from __future__ import annotations

import ast
import doctest
import json

import pytest

from syllabus.benchmarks import Problem, load_benchmark
from syllabus.data import write_dataset
from syllabus.eval.probes import importable, load_probes
from syllabus.eval.run import Sample, execute
from syllabus.sandbox import run_programs

TRIVIAL = ["    pass\n", "    return None\n", "    return 0\n", "    return []\n", "    return ''\n", "    return {}\n"]


@pytest.fixture(scope="module")
def unconventional() -> list[Problem]:
    return load_benchmark("unconventional")


@pytest.fixture(scope="module")
def runnable_probes() -> list[Problem]:
    probes = load_probes()
    available = importable({p.module for p in probes if p.module})
    return [p.problem for p in probes if p.module is None or available[p.module]]


def function_node(problem: Problem) -> ast.FunctionDef:
    return next(node for node in ast.parse(problem.prompt).body
                if isinstance(node, ast.FunctionDef) and node.name == problem.entry_point)


def trivial_completions(problem: Problem) -> list[str]:
    return TRIVIAL + [f"    return {function_node(problem).args.args[0].arg}\n"]  # the input handed back


def examples_program(problem: Problem) -> str:
    """The canonical solution followed by its docstring's examples as asserts (doctest's rule:
    the expected text is the repr of the value, nothing for None). `import doctest` in every
    program would cost more than the checks themselves."""
    examples = doctest.DocTestParser().get_examples(ast.get_docstring(function_node(problem)))
    assert examples, f"{problem.task_id} has no example"
    checks = "".join(f"got = eval({e.source.strip()!r})\n"
                     f"assert ('' if got is None else repr(got)) == {e.want.strip()!r}, {e.source.strip()!r}\n"
                     for e in examples)
    return problem.prompt + problem.canonical_solution + "\n" + checks


def assert_canonical_pass_and_trivial_fail(problems: list[Problem], with_examples: bool) -> set[str]:
    """Checked as `eval execute` checks them; returns the tasks whose verdicts are self-reported."""
    right = [Sample({"task_id": p.task_id, "completion": p.canonical_solution}, p) for p in problems]
    wrong = [Sample({"task_id": p.task_id, "completion": c}, p) for p in problems for c in trivial_completions(p)]
    results = execute(right + wrong, workers=2, timeout=10)
    assert [(r["task_id"], r["result"]) for r in results[:len(right)] if not r["passed"]] == []
    assert [(r["task_id"], r["completion"]) for r in results[len(right):] if r["passed"]] == []
    if with_examples:  # the canonical solutions are trusted: one program each
        verdicts = run_programs([examples_program(p) for p in problems], workers=2, timeout=10)
        assert [(p.task_id, v.result) for p, v in zip(problems, verdicts) if not v.passed] == []
    return {r["task_id"] for r in results if "self_reported" in r}


def test_unconventional_problems_are_in_humaneval_format(unconventional):
    assert len(unconventional) >= 55
    assert [p.task_id for p in unconventional] == [f"Unconventional/{i}" for i in range(len(unconventional))]
    for p in unconventional:
        assert f"def {p.entry_point}(" in p.prompt and ">>> " in p.prompt
        assert "def check(candidate):" in p.test and p.test.count("assert ") >= 4
        assert p.canonical_solution.startswith("    ")
    others = {p.entry_point for name in ("humaneval", "mbpp") for p in load_benchmark(name)}
    assert others.isdisjoint(p.entry_point for p in unconventional)


def test_unconventional_solutions_and_examples_pass_and_trivial_completions_fail(unconventional):
    assert assert_canonical_pass_and_trivial_fail(unconventional, with_examples=True) == set()


def test_library_probes_pass_where_importable_and_trivial_completions_fail(runnable_probes):
    probes = load_probes()
    assert 12 <= len(probes) <= 20
    assert {"tkinter", "pygame-style", "itertools", "collections", "datetime", "json", "re"} <= {p.library for p in probes}
    # the standard-library probes run everywhere; tkinter and pygame ones where they import
    stdlib_only = {p.problem.task_id for p in probes if p.module in (None, "itertools", "collections", "datetime", "json", "re")}
    assert stdlib_only <= {p.task_id for p in runnable_probes}
    self_reported = assert_canonical_pass_and_trivial_fail(runnable_probes, with_examples=False)
    # their tests hand the program callbacks or rewrite its globals: not checkable across processes
    interactive = {p.problem.task_id for p in probes if p.library in ("tkinter", "pygame-style")}
    assert self_reported == interactive & {p.task_id for p in runnable_probes}


def test_eval_execute_scores_the_unconventional_benchmark(tmp_path, cli, unconventional):
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": p.task_id, "completion": c}) + "\n"
                               for p in unconventional[:10] for c in (p.canonical_solution, "    pass\n")))
    result = cli("eval", "execute", "--benchmark", "unconventional", "--samples", str(samples), "--k", "1,2",
                 "--workers", "2")
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout.splitlines()[-1])
    assert (printed["pass@1"], printed["pass@2"], printed["tasks"], printed["n"]) == (0.5, 1.0, 10, 2)


def test_eval_probes_reports_each_library_and_skips_what_does_not_import(tmp_path, cli):
    probes = load_probes()
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": p.problem.task_id, "completion": c}) + "\n"
                               for p in probes for c in (p.problem.canonical_solution, "    return None\n")))
    result = cli("eval", "probes", "--samples", str(samples), "--workers", "2")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    available = importable({p.module for p in probes if p.module})
    libraries = report["libraries"]
    assert set(libraries) == {p.library for p in probes}
    for library, row in libraries.items():
        members = [p for p in probes if p.library == library]
        assert row["tasks"] == len(members) and row["samples"] == 2 * len(members)
        assert row["importable"] == (members[0].module is None or available[members[0].module])
        assert row["pass@1"] == (0.5 if row["importable"] else None)
    executed = [json.loads(line) for line in (tmp_path / "samples.jsonl_results.jsonl").read_text().splitlines()]
    assert len(executed) == 2 * sum(row["tasks"] for row in libraries.values() if row["importable"])
    assert report["pass@1"] == 0.5

    unknown = tmp_path / "unknown.jsonl"
    unknown.write_text(json.dumps({"task_id": "Unconventional/0", "completion": ""}) + "\n")
    result = cli("eval", "probes", "--samples", str(unknown))
    assert result.returncode == 2 and "unknown task_id" in result.stderr and "Traceback" not in result.stderr


def test_decontam_checks_training_data_against_the_unconventional_problems(tmp_path, cli, unconventional):
    leaked = unconventional[7]
    records = [{"id": "leak", "path": "leak.py", "text": "import sys\n\n" + leaked.prompt + leaked.canonical_solution},
               {"id": "clean", "path": "clean.py", "text": "def add(a, b):\n    return a + b\n"}]
    write_dataset(tmp_path / "data", records, stage="test")
    result = cli("decontam", "--data", str(tmp_path / "data"), "--benchmark", "unconventional", "--out", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr
    tasks = json.loads((tmp_path / "r" / "report.json").read_text())["tasks"]
    assert len(tasks) == len(unconventional)
    flagged = {task: [m["id"] for m in entry["matches"]] for task, entry in tasks.items() if entry["matches"]}
    assert flagged == {f"unconventional:{leaked.task_id}": ["leak"]}
