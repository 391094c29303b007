"""Per-problem scores of a training run at each of its token budgets: the raw material of a scaling study.

Recipe stage `eval.scaling`, input `model` (a train stage's output: every budget it exported, see
`schedule: wsd` in `syllabus.train.config`, or just its final model), `mutants` (an `eval.mutants`
output) and `neutral` (a dataset dir of held-out code). It writes OUT/scores.jsonl, one line per
(budget, set, problem):

- `nats`, `bytes`: the summed negative log-likelihood of the canonical solution given its prompt,
  and the solution's UTF-8 bytes. Nats per byte does not depend on the tokenizer, so arms (and
  other people's models) compare; per problem, so that statistics can resample problems.
- on the neutral set (held-out code that no arm trains on): the same for each record's text.
- at the largest budget only: `mutant_nats` (the same for the problem's failing mutant), and on
  the problems whose canonical solution has at most `max_solution_lines` lines, `greedy_passed`
  (pass@1, greedy) and `sample_passes` of `samples` (pass@k, sampled) by execution in the sandbox.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from syllabus.benchmarks import Problem, load_benchmark
from syllabus.config import Params, StageContext
from syllabus.console import console
from syllabus.data.dataset import Dataset
from syllabus.data.files import atomic_write_json, read_json, read_jsonl, write_jsonl
from syllabus.errors import BadInput
from syllabus.summaries import ScalingEvalSummary
from syllabus.eval.models import scoring_model
from syllabus.eval.mutants import read_mutants
from syllabus.eval.run import DEFAULT_TIMEOUT, Sampling, run_file

NEUTRAL = "neutral"


class ScalingEvalParams(Params):
    benchmarks: list[str] = ["humaneval", "mbpp"]
    limit: int | None = Field(None, ge=1, description="only the first N problems of each benchmark")
    neutral_records: int = Field(200, ge=1, description="records of the neutral set scored")
    neutral_chars: int = Field(1500, ge=1, description="each neutral record's first characters")
    max_solution_lines: int = Field(3, ge=1, description="pass@k only on problems this short")
    samples: int = Field(10, ge=1, description="sampled completions per problem for pass@k")
    temperature: float = Field(0.8, gt=0)
    top_p: float = Field(0.95, gt=0, le=1)
    max_new_tokens: int = Field(64, ge=1)
    passk: bool = True
    timeout: float = Field(DEFAULT_TIMEOUT, gt=0)


def solution_lines(problem: Problem) -> int:
    return sum(1 for line in problem.canonical_solution.splitlines()
               if line.strip() and not line.strip().startswith("#"))


def run_budgets(model_dir: Path) -> list[dict]:
    """The budgets a train stage exported (`budgets.json`), or its one final model."""
    listing = model_dir / "budgets.json"
    if listing.exists():
        return read_json(listing)
    if not (model_dir / "config.json").exists():
        raise BadInput("expected a train stage's output (budgets.json) or a model dir", file=model_dir)
    return [{"tokens": None, "model": str(model_dir)}]


def _neutral_texts(path: Path, records: int, chars: int) -> list[tuple[str, str]]:
    out = []
    for record in Dataset(path).records():
        text = record.get("text", "")[:chars]
        if text.strip():
            out.append((str(record.get("id") or len(out)), text))
        if len(out) == records:
            break
    return out


def _short_problem_file(problems: list[Problem], path: Path) -> Path:
    write_jsonl(path, ({"task_id": p.task_id, "prompt": p.prompt, "entry_point": p.entry_point, "test": p.test,
                        "canonical_solution": p.canonical_solution} for p in problems))
    return path


def _passk(benchmark: str, problems: list[Problem], model_path: str, out: Path, params: ScalingEvalParams,
           seed: int, workers: int) -> dict[str, dict]:
    """task_id -> {greedy_passed, samples, sample_passes} on the short problems."""
    short = [p for p in problems if solution_lines(p) <= params.max_solution_lines]
    if not short:
        return {}
    problem_file = _short_problem_file(short, out / "short_problems.jsonl")
    per_task: dict[str, dict] = {p.task_id: {"samples": params.samples, "sample_passes": 0} for p in short}
    runs = {"greedy": Sampling(n=1, temperature=0.0, max_new_tokens=params.max_new_tokens, seed=seed),
            "sampled": Sampling(n=params.samples, temperature=params.temperature, top_p=params.top_p,
                                max_new_tokens=params.max_new_tokens, seed=seed)}
    for name, sampling in runs.items():
        run_file(benchmark, model_path, out / name, sampling, problems_path=problem_file, ks=[1],
                 workers=workers, timeout=params.timeout)
        for result in read_jsonl(out / name / "results.jsonl"):
            row = per_task[str(result["task_id"])]
            if name == "greedy":
                row["greedy_passed"] = bool(result["passed"])
            else:
                row["sample_passes"] += bool(result["passed"])
    return per_task


def score_pairs(model, pairs: list[tuple[str, str]]) -> list[tuple[float, int]]:
    """(summed nats, tokens) of each continuation given its context. (Batching the pairs by length
    was measured no faster for the CPU ablation's model: its forward passes are compute-bound.)"""
    return [model.nll(context, continuation) for context, continuation in pairs]


def scaling_eval(params: ScalingEvalParams, model_dir: Path, mutants: Path | None, neutral: Path | None,
                 out: Path, *, seed: int = 0, workers: int = 2) -> ScalingEvalSummary:
    budgets = run_budgets(model_dir)
    problems = {b: [p for p in load_benchmark(b)[:params.limit] if p.canonical_solution] for b in params.benchmarks}
    mutant_of = read_mutants(mutants / "mutants.jsonl") if mutants else {}
    neutral_texts = _neutral_texts(neutral, params.neutral_records, params.neutral_chars) if neutral else []
    rows: list[dict] = []
    for i, budget in enumerate(budgets):
        last = i == len(budgets) - 1
        console.print(f"scoring {budget['model']} ({budget['tokens']} tokens)")
        model = scoring_model(budget["model"])
        for benchmark, items in problems.items():
            extra = _passk(benchmark, items, budget["model"], out / benchmark, params, seed, workers) \
                if last and params.passk else {}
            mutants = [mutant_of.get((benchmark, p.task_id)) if last else None for p in items]
            scored = score_pairs(model, [(p.prompt, p.canonical_solution) for p in items]
                                 + [(p.prompt, m) for p, m in zip(items, mutants) if m is not None])
            mutant_scores = iter(scored[len(items):])
            for problem, (nats, _), mutant in zip(items, scored, mutants):
                row = {"tokens": budget["tokens"], "set": benchmark, "task_id": problem.task_id, "nats": nats,
                       "bytes": len(problem.canonical_solution.encode())}
                if mutant is not None:
                    row["mutant_nats"] = next(mutant_scores)[0]
                rows.append(row | extra.get(problem.task_id, {}))
        for (record_id, text), (nats, _) in zip(neutral_texts, score_pairs(model, [("", t) for _, t in neutral_texts])):
            rows.append({"tokens": budget["tokens"], "set": NEUTRAL, "task_id": record_id, "nats": nats,
                         "bytes": len(text.encode())})
    write_jsonl(out / "scores.jsonl", rows)
    summary = summarize_scores(rows)
    atomic_write_json(out / "summary.json", summary.dump())
    return summary


def summarize_scores(rows: list[dict]) -> ScalingEvalSummary:
    """Mean nats/byte per budget and set; mutant preference and pass@k at the largest budget."""
    cells: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        cells.setdefault(row["set"], {}).setdefault(str(row["tokens"]), []).append(row["nats"] / row["bytes"])
    finals = [r for r in rows if "mutant_nats" in r]
    short = [r for r in rows if "greedy_passed" in r]
    return ScalingEvalSummary(
        nats_per_byte={name: {tokens: round(sum(v) / len(v), 5) for tokens, v in by_tokens.items()}
                       for name, by_tokens in cells.items()},
        mutant_preference=round(sum(r["nats"] < r["mutant_nats"] for r in finals) / len(finals), 4) if finals else None,
        pass_at_1=sum(r["greedy_passed"] for r in short) / len(short) if short else None,
        pass_at_samples=sum(r["sample_passes"] > 0 for r in short) / len(short) if short else None,
        short_problems=len(short) if short else None)


def scaling_eval_stage(params: ScalingEvalParams, inputs: dict, out: Path, ctx: StageContext) -> ScalingEvalSummary:
    """Recipe stage `eval.scaling`: inputs `model` (a train stage), optional `mutants` and `neutral`."""
    if "model" not in inputs:
        raise BadInput(f"{ctx.stage}: eval.scaling needs input 'model' (a train stage's output)")
    return scaling_eval(params, Path(inputs["model"]), inputs.get("mutants") and Path(inputs["mutants"]),
                        inputs.get("neutral") and Path(inputs["neutral"]), Path(out), seed=ctx.seed,
                        workers=ctx.workers)
