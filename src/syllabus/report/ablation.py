"""The paper's ablation as a table: one row per arm (an eval stage), pass@k and canonical-solution NLL.

Recipe use: `uses: ablation`, `inputs: {"unfiltered": eval_a, "filtered": eval_b, ...}`; the input
names label the arms, in order.
"""

from __future__ import annotations

from pathlib import Path

from syllabus.config import Params, StageContext
from syllabus.data.files import atomic_write_json, read_json
from syllabus.errors import BadInput


class AblationParams(Params):
    metric: str = "nll"  # what the conclusion compares (lower is better for nll)
    benchmark: str = "humaneval"


def ablation_rows(run_dir: Path, arms: dict[str, Path]) -> list[dict]:
    rows = []
    for arm, eval_dir in arms.items():
        state = Path(run_dir) / ".state" / f"{Path(eval_dir).name}.json"
        if not state.exists():
            raise BadInput(f"ablation arm {arm!r}: eval stage {Path(eval_dir).name!r} has not run", file=state)
        row: dict = {"arm": arm}
        for benchmark, scores in read_json(state).get("summary", {}).items():
            for metric, value in scores.items():
                row[f"{benchmark} {metric}"] = round(value, 4) if isinstance(value, float) else value
        rows.append(row)
    return rows


def conclusion(rows: list[dict], benchmark: str, metric: str) -> str:
    key = f"{benchmark} {metric}"
    scored = [(row[key], row["arm"]) for row in rows if isinstance(row.get(key), (int, float))]
    if not scored:
        return f"no arm reports {key}"
    best_value, best_arm = min(scored) if metric == "nll" else max(scored)
    listing = ", ".join(f"{arm} {value:.4g}" for value, arm in scored)
    return f"best {key}: {best_arm} ({listing})"


def ablation_stage(params: AblationParams, inputs: dict, out: Path, ctx: StageContext) -> dict:
    rows = ablation_rows(ctx.run_dir, {arm: Path(p) for arm, p in inputs.items()})
    result = {"table": rows, "conclusion": conclusion(rows, params.benchmark, params.metric)}
    atomic_write_json(Path(out) / "ablation.json", result)
    return result
