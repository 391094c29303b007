"""The data-quality ablation's analysis: pre-registered contrasts, scaling curves and the
data-efficiency multiplier, with hierarchical-bootstrap confidence intervals.

Recipe use: `uses: ablation`, one input per arm listing its `eval.scaling` stages (one per seed),
and optionally `similarity` (a decontam report of the training data, for the similar / non-similar
split):

    inputs: {a: [scale_a_s0, scale_a_s1, scale_a_s2], b: [...], ..., similarity: similarity}

The rules below were fixed before the run (docs/evidence.md quotes them); the verdict sentences are
written from them by `verdicts`, never by hand:

1. Primary metric: the mean over HumanEval's 164 and MBPP's 500 test problems of the canonical
   solution's nats per byte given its prompt (each problem weighs the same), averaged over seeds.
2. Contrasts at the largest budget, each "arm beats baseline": b vs a, c vs b, d vs CP; the
   difference is baseline minus arm (positive: the arm's loss is lower). Two-sided p-values from
   the hierarchical bootstrap (seeds, then problems), Holm-corrected over the three at alpha 0.05.
3. A contrast reads "yes" when Holm rejects and the difference is positive, "no: worse" when
   Holm rejects and it is negative, "not shown" otherwise, with the minimum detectable effect
   (two-sided alpha/3, power 0.8, from the spread between seeds) beside it.
4. Shape: m(D) = tokens arm a needs to reach the arm's loss at D, over D, interpolated log-log
   between a's budgets (a lower bound past a's last budget). The slope of log m on log D with its
   bootstrap 95% CI: CI above 0 reads "the curves change shape (the advantage grows with data)",
   below 0 "the advantage shrinks with data", containing 0 "consistent with a constant multiplier".
5. Secondary, descriptive (outside the Holm family): the neutral held-out set, mutant preference
   against chance (50%), pass@1 / pass@10 on short problems (rule-of-three bound when none pass),
   and the per-problem differences split similar / non-similar to the training data.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from syllabus import stats
from syllabus.config import Params, StageContext
from syllabus.console import console
from syllabus.data.files import atomic_write_json, read_json, read_jsonl
from syllabus.errors import BadInput
from syllabus.summaries import AblationSummary

NEUTRAL = "neutral"
SIMILARITY_INPUT = "similarity"


class AblationParams(Params):
    reference: str = "a"  # the arm m(D) measures against
    contrasts: list[tuple[str, str]] = [("b", "a"), ("c", "b"), ("d", "CP")]  # (arm, baseline)
    curves: list[str] = ["b", "c", "c_tmpl"]  # arms whose m(D) against the reference is reported
    primary: list[str] = ["humaneval", "mbpp"]
    alpha: float = Field(0.05, gt=0, lt=1)
    power: float = Field(0.8, gt=0, lt=1)
    draws: int = Field(2000, ge=100)
    seed: int = 0


class ArmRuns:
    """One arm's per-problem scores: rows of scores.jsonl of every finished seed."""

    def __init__(self, name: str, eval_dirs: list[Path]):
        self.name = name
        self.runs = [read_jsonl(d / "scores.jsonl") for d in eval_dirs if (d / "scores.jsonl").exists()]
        self.missing = [str(d) for d in eval_dirs if not (d / "scores.jsonl").exists()]

    def budgets(self) -> list[int]:
        found = sorted({r["tokens"] for r in self.runs[0]}) if self.runs else []
        return [t for t in found if all(any(r["tokens"] == t for r in run) for run in self.runs)]

    def matrix(self, tokens: int, sets: list[str], key: str = "nats_per_byte") -> tuple[list[str], np.ndarray]:
        """(problem ids, [seeds, problems]) at one budget."""
        per_run = []
        for run in self.runs:
            rows = {(r["set"], r["task_id"]): r for r in run if r["tokens"] == tokens and r["set"] in sets}
            per_run.append(rows)
        ids = sorted(set.intersection(*(set(rows) for rows in per_run)))
        values = np.array([[_value(rows[i], key) for i in ids] for rows in per_run], dtype=float)
        return [f"{s}:{t}" for s, t in ids], values

    def final_rows(self) -> list[list[dict]]:
        last = self.budgets()[-1]
        return [[r for r in run if r["tokens"] == last] for run in self.runs]


def _value(row: dict, key: str) -> float:
    if key == "nats_per_byte":
        return row["nats"] / row["bytes"]
    if key == "prefers_correct":
        return float(row["nats"] < row["mutant_nats"]) if "mutant_nats" in row else math.nan
    raise KeyError(key)


def _ci(draws: np.ndarray) -> list[float]:
    return [round(v, 5) for v in stats.interval(draws)]


def analyse(arms: dict[str, ArmRuns], params: AblationParams, similar: set[str] | None = None) -> dict[str, Any]:
    ready = {name: arm for name, arm in arms.items() if arm.runs}
    if params.reference not in ready:
        raise BadInput(f"ablation: the reference arm {params.reference!r} has no finished run")
    result: dict[str, Any] = {"rules": "syllabus.report.ablation (module docstring)", "params": params.model_dump(),
                              "seeds": {n: len(a.runs) for n, a in arms.items()},
                              "missing": {n: a.missing for n, a in arms.items() if a.missing}}

    cells, neutral_cells, ids = {}, {}, None
    for name, arm in ready.items():
        for tokens in arm.budgets():
            problem_ids, values = arm.matrix(tokens, params.primary)
            ids = ids or problem_ids
            if problem_ids != ids:
                raise BadInput(f"ablation: arm {name!r} scored other problems than the others")
            cells[(name, tokens)] = stats.Cell(name, values)
            neutral_ids, neutral = arm.matrix(tokens, [NEUTRAL])
            if neutral.size:
                neutral_cells[(name, tokens)] = (neutral_ids, stats.Cell(name, neutral))
    common_neutral = set.intersection(*(set(i) for i, _ in neutral_cells.values())) if neutral_cells else set()
    neutral_cells = {k: stats.Cell(c.group, c.scores[:, [i in common_neutral for i in ids_]])
                     for k, (ids_, c) in neutral_cells.items()}
    draws = stats.bootstrap_means(cells, params.draws, params.seed)
    neutral_draws = stats.bootstrap_means(neutral_cells, params.draws, params.seed) if common_neutral else {}
    result["problems"] = len(ids)
    result["neutral_records"] = len(common_neutral)

    curves = {}
    for name, arm in ready.items():
        curve = {"tokens": arm.budgets(), "loss": [], "ci": [], "neutral": [], "neutral_ci": []}
        for tokens in arm.budgets():
            curve["loss"].append(round(float(cells[(name, tokens)].scores.mean()), 5))
            curve["ci"].append(_ci(draws[(name, tokens)]))
            if (name, tokens) in neutral_draws:
                curve["neutral"].append(round(float(neutral_cells[(name, tokens)].scores.mean()), 5))
                curve["neutral_ci"].append(_ci(neutral_draws[(name, tokens)]))
        curves[name] = curve
    result["curves"] = curves

    # pre-registered contrasts at each arm's largest budget
    contrasts = []
    for arm, baseline in params.contrasts:
        if arm not in ready or baseline not in ready:
            contrasts.append({"arm": arm, "baseline": baseline, "missing": True})
            continue
        a_key, b_key = (arm, ready[arm].budgets()[-1]), (baseline, ready[baseline].budgets()[-1])
        delta = draws[b_key] - draws[a_key]
        point = float(cells[b_key].scores.mean() - cells[a_key].scores.mean())
        per_problem = cells[b_key].scores.mean(axis=0) - cells[a_key].scores.mean(axis=0)
        contrasts.append({"arm": arm, "baseline": baseline, "tokens": a_key[1], "baseline_tokens": b_key[1],
                          "delta": round(point, 5), "ci": _ci(delta), "p": stats.two_sided_p(delta),
                          "split": _split(per_problem, ids, similar)})
    tested = [c for c in contrasts if not c.get("missing")]
    for c, (adjusted, rejected) in zip(tested, stats.holm([c["p"] for c in tested], params.alpha)):
        c["p_holm"], c["rejected"] = adjusted, rejected
    seed_means = [cells[(n, a.budgets()[-1])].scores.mean(axis=1) for n, a in ready.items()]
    result["mde"] = round(stats.minimum_detectable_effect(seed_means, alpha=params.alpha / max(len(tested), 1),
                                                          power=params.power), 5)
    result["contrasts"] = contrasts

    result["multiplier"] = {name: _multiplier(ready, cells, draws, params.reference, name)
                            for name in params.curves if name in ready and name != params.reference}
    result["final"] = {name: _final_table(arm, params) for name, arm in ready.items()}
    result["verdicts"] = verdicts(result, params)
    return result


def _split(per_problem: np.ndarray, ids: list[str], similar: set[str] | None) -> dict[str, Any]:
    if similar is None:
        return {}
    out = {}
    for part, keep in (("similar", [i in similar for i in ids]), ("non_similar", [i not in similar for i in ids])):
        values = per_problem[np.array(keep, dtype=bool)]
        out[part] = {"problems": int(values.size), "mean_delta": round(float(values.mean()), 5) if values.size else None,
                     "arm_better": int((values > 0).sum())}
    return out


def _multiplier(arms: dict[str, ArmRuns], cells: dict, draws: dict, reference: str, name: str) -> dict[str, Any]:
    budgets = arms[name].budgets()
    ref_budgets = arms[reference].budgets()
    ref_point = [float(cells[(reference, t)].scores.mean()) for t in ref_budgets]
    arm_point = [float(cells[(name, t)].scores.mean()) for t in budgets]
    point = stats.efficiency_multiplier(ref_budgets, ref_point, budgets, arm_point)
    n_draws = len(next(iter(draws.values())))
    per_draw = [stats.efficiency_multiplier(ref_budgets, [draws[(reference, t)][k] for t in ref_budgets],
                                               budgets, [draws[(name, t)][k] for t in budgets])
                for k in range(n_draws)]
    rows = []
    for j, tokens in enumerate(budgets):
        values = np.array([d[j][0] for d in per_draw])
        censored = float(np.mean([d[j][1] != "" for d in per_draw]))
        rows.append({"tokens": tokens, "m": round(point[j][0], 4), "bound": point[j][1],
                     "ci": [round(v, 4) for v in stats.interval(values)], "censored_draws": round(censored, 3)})
    exact = [j for j, (_, mark) in enumerate(point) if mark == ""]
    slope = stats.log_slope([budgets[j] for j in exact], [point[j][0] for j in exact])
    slope_draws = np.array([stats.log_slope([budgets[j] for j in exact], [d[j][0] for j in exact]) for d in per_draw])
    return {"budgets": rows, "slope": round(slope, 4) if math.isfinite(slope) else None,
            "slope_ci": [round(v, 4) for v in stats.interval(slope_draws)], "slope_points": len(exact)}


def _final_table(arm: ArmRuns, params: AblationParams) -> dict[str, Any]:
    rows = [r for run in arm.final_rows() for r in run if r["set"] in params.primary]
    table: dict[str, Any] = {"tokens": arm.budgets()[-1]}
    mutants = [r for r in rows if "mutant_nats" in r]
    if mutants:
        _, matrix = arm.matrix(arm.budgets()[-1], params.primary, "prefers_correct")
        matrix = matrix[:, ~np.isnan(matrix).any(axis=0)]
        boot = stats.bootstrap_means({"m": stats.Cell(arm.name, matrix)}, params.draws, params.seed)["m"]
        table["mutant_preference"] = round(float(matrix.mean()), 4)
        table["mutant_ci"] = _ci(boot)
        table["mutant_problems"] = int(matrix.shape[1])
    short = [r for r in rows if "greedy_passed" in r]
    if short:
        greedy = sum(r["greedy_passed"] for r in short)
        table["short_problems"] = len({(r["set"], r["task_id"]) for r in short})
        table["passk_seeds"] = sum(any("greedy_passed" in r for r in run) for run in arm.final_rows())
        table["pass@1"] = round(greedy / len(short), 4)
        table["samples"] = short[0]["samples"]
        table[f"pass@{short[0]['samples']}"] = round(float(np.mean([r["sample_passes"] > 0 for r in short])), 4)
        if greedy == 0:
            table["pass@1_upper95"] = round(stats.rule_of_three(len(short)), 4)
        if not any(r["sample_passes"] for r in short):
            table[f"pass@{short[0]['samples']}_upper95"] = round(stats.rule_of_three(len(short)), 4)
    return table


def _fmt_tokens(tokens: int) -> str:
    return f"{tokens / 1e6:.3g}M tokens" if tokens >= 1e5 else f"{tokens / 1e3:.3g}k tokens"


def verdicts(result: dict[str, Any], params: AblationParams) -> list[str]:
    """The conclusion sentences, from the pre-registered rules only."""
    lines = []
    mde = result["mde"]
    for c in result["contrasts"]:
        if c.get("missing"):
            lines.append(f"{c['arm']} > {c['baseline']}: not run")
            continue
        answer = ("yes" if c["delta"] > 0 else "no: worse") if c["rejected"] else "not shown"
        lines.append(f"{c['arm']} > {c['baseline']} at {_fmt_tokens(c['tokens'])}: {answer}, "
                     f"Δ = {c['delta']:+.4f} nats/byte, 95% CI [{c['ci'][0]:+.4f}, {c['ci'][1]:+.4f}], "
                     f"Holm p = {c['p_holm']:.3g} (detectable: |Δ| ≥ {mde:.4f})")
    for name, m in result["multiplier"].items():
        last = m["budgets"][-1]
        bound = {"": "", ">=": "≥ ", "<=": "≤ "}[last["bound"]]
        low, high = m["slope_ci"]
        if m["slope"] is None or math.isnan(low):
            shape = "slope not estimable (fewer than two budgets inside arm a's range)"
        elif low > 0:
            shape = "the curves change shape (the advantage grows with data)"
        elif high < 0:
            shape = "the advantage shrinks with data"
        else:
            shape = "consistent with a constant multiplier"
        slope = "n/a" if m["slope"] is None else f"{m['slope']:+.3f}"
        lines.append(f"m(D) of {name} vs {params.reference} at {_fmt_tokens(last['tokens'])}: {bound}{last['m']:.3g}x "
                     f"(95% CI {last['ci'][0]:.3g}-{last['ci'][1]:.3g}); slope in log D {slope} "
                     f"[{low:+.3f}, {high:+.3f}]: {shape}")
    return lines


def _similar_ids(path: Path | None) -> set[str] | None:
    if path is None:
        return None
    split = Path(path) / "split"
    if not split.is_dir():
        raise BadInput("no split/ dir: expected a decontam stage's output", file=path)
    return {f"{f.stem}:{task}" for f in split.glob("*.json") for task in read_json(f)["similar"]}


def ablation_stage(params: AblationParams, inputs: dict, out: Path, ctx: StageContext) -> AblationSummary:
    """Recipe stage `ablation`: OUT/ablation.json with curves, contrasts, m(D), tables and verdicts."""
    similarity = inputs.get(SIMILARITY_INPUT)
    arms = {name: ArmRuns(name, [Path(d) for d in (dirs if isinstance(dirs, list) else [dirs])])
            for name, dirs in inputs.items() if name != SIMILARITY_INPUT}
    result = analyse(arms, params, _similar_ids(similarity and Path(similarity)))
    atomic_write_json(Path(out) / "ablation.json", result)
    for line in result["verdicts"]:
        console.print(line)
    mde = result["mde"]
    return AblationSummary(verdicts=result["verdicts"], seeds=result["seeds"], mde=mde if math.isfinite(mde) else None)
