"""The `eval` recipe stage: per benchmark pass@k by execution and canonical-solution NLL, plus the
library probes and the graded understanding score when asked."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from syllabus.config import StageContext
from syllabus.errors import BadInput
from syllabus.eval.grade import grade_file
from syllabus.eval.models import open_model
from syllabus.eval.probes import run_probes
from syllabus.eval.run import DEFAULT_TIMEOUT, Sampling, generate_file, nll_file, run_file
from syllabus.llm.spend import SpendParams
from syllabus.summaries import BenchmarkScores, EvalSummary, GradeSummary, ProbesSummary


class EvalParams(SpendParams):  # budget_usd, prices, mode: what the grade judge may spend, and how
    """Recipe params of the `eval` stage: input `model` (a model dir), or `model` here (a dir or URL)."""

    benchmarks: list[str] = ["humaneval", "mbpp"]
    model: str | None = None
    n: int = Field(1, ge=1)
    temperature: float = Field(0.0, ge=0)
    top_p: float = Field(0.95, gt=0, le=1)
    max_new_tokens: int = Field(256, ge=1)
    k: list[int] = [1]
    timeout: float = Field(DEFAULT_TIMEOUT, gt=0)
    limit: int | None = Field(None, ge=1, description="only the first N problems of each benchmark")
    nll: bool = Field(True, description="also the NLL of canonical solutions (local models)")
    batch_size: int = Field(8, ge=1)
    probes: bool = Field(False, description="also the library probes, per library (emergent library use)")
    grade: str | None = Field(None, description="judge for the unconventional benchmark: URL or 'offline'")
    grade_model: str | None = Field(None, description="the judge's model name at that URL")


def eval_stage(params: EvalParams, inputs: dict, out: Path, ctx: StageContext) -> EvalSummary:
    """Recipe stage `eval`: per benchmark, OUT/<benchmark>/{samples,results}.jsonl, pass@k and NLL."""
    spec = params.model or inputs.get("model")
    if spec is None:
        raise BadInput(f"{ctx.stage}: eval needs input 'model' (a model dir) or params.model")
    model = open_model(str(spec), cache_dir=out / ".llm-cache", batch_size=params.batch_size)
    sampling = Sampling(n=params.n, temperature=params.temperature, top_p=params.top_p,
                        max_new_tokens=params.max_new_tokens, seed=ctx.seed)
    summary = EvalSummary(benchmarks={})
    for benchmark in params.benchmarks:
        scores = run_file(benchmark, model, out / benchmark, sampling, limit=params.limit, ks=params.k,
                          workers=ctx.workers, timeout=params.timeout)
        nll = None
        if params.nll and hasattr(model, "nll"):
            nll = nll_file(benchmark, model, limit=params.limit, out=out / benchmark / "nll.jsonl")["nll"]
        summary.benchmarks[benchmark] = BenchmarkScores(
            pass_at_k={int(key.removeprefix("pass@")): value for key, value in scores.pass_at_k.items()}, nll=nll,
            tasks=scores.tasks, samples=scores.samples)
    if params.probes:
        samples = generate_file("library_probes", model, out / "probes" / "samples.jsonl", sampling)
        summary.probes = ProbesSummary.model_validate(run_probes(
            samples, out=out / "probes" / "results.jsonl", workers=ctx.workers, timeout=params.timeout))
    if params.grade and "unconventional" in params.benchmarks:
        summary.grade = GradeSummary.model_validate(grade_file(
            out / "unconventional" / "results.jsonl", judge=params.grade, model=params.grade_model,
            out=out / "unconventional" / "grades.jsonl", cache_dir=out / ".llm-cache", workers=ctx.workers,
            timeout=params.timeout, spend=params))
    return summary
