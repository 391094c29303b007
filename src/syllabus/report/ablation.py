"""The paper's ablation as a table: one row per arm (an eval stage), pass@k and canonical-solution NLL.

Recipe use: `uses: ablation`, `inputs: {"unfiltered": eval_a, "filtered": eval_b, ...}`; the input
names label the arms, in order.
"""

from __future__ import annotations

from pathlib import Path

from syllabus.config import Params, StageContext
from syllabus.data.files import atomic_write_json, read_json
from syllabus.errors import BadInput
from syllabus.summaries import AblationArm, AblationSummary, EvalSummary, read_summary


class AblationParams(Params):
    metric: str = "nll"  # what the conclusion compares (lower is better for nll), or pass@K
    benchmark: str = "humaneval"


def ablation_arms(run_dir: Path, arms: dict[str, Path]) -> list[AblationArm]:
    rows = []
    for arm, eval_dir in arms.items():
        stage = Path(eval_dir).name
        state = Path(run_dir) / ".state" / f"{stage}.json"
        if not state.exists():
            raise BadInput(f"ablation arm {arm!r}: eval stage {stage!r} has not run", file=state)
        summary = read_summary(EvalSummary.kind, read_json(state).get("summary"), file=state)
        rows.append(AblationArm(arm=arm, stage=stage, benchmarks=summary.benchmarks))
    return rows


def metric_value(arm: AblationArm, benchmark: str, metric: str) -> float | None:
    scores = arm.benchmarks.get(benchmark)
    if scores is None:
        return None
    if metric == "nll":
        return scores.nll
    return scores.pass_at_k.get(int(metric.removeprefix("pass@"))) if metric.startswith("pass@") else None


def conclusion(arms: list[AblationArm], benchmark: str, metric: str) -> str:
    scored = [(value, arm.arm) for arm in arms if (value := metric_value(arm, benchmark, metric)) is not None]
    if not scored:
        return f"no arm reports {benchmark} {metric}"
    best_value, best_arm = min(scored) if metric == "nll" else max(scored)
    listing = ", ".join(f"{arm} {value:.4g}" for value, arm in scored)
    return f"best {benchmark} {metric}: {best_arm} ({listing})"


def ablation_stage(params: AblationParams, inputs: dict, out: Path, ctx: StageContext) -> AblationSummary:
    arms = ablation_arms(ctx.run_dir, {arm: Path(p) for arm, p in inputs.items()})
    summary = AblationSummary(benchmark=params.benchmark, metric=params.metric, arms=arms,
                              conclusion=conclusion(arms, params.benchmark, params.metric))
    atomic_write_json(Path(out) / "ablation.json", summary.dump())
    return summary
