"""Statistics for comparing training runs: hierarchical bootstrap, Holm correction, minimum
detectable effect, and the data-efficiency multiplier of one scaling curve against another.

The unit of evidence is a matrix per (arm, budget): seeds x problems of a per-problem score (lower
is better, e.g. nats per byte). Two sources of noise are resampled, in order: which seeds were run
(training noise; seeds are drawn per arm, and one seed's budgets come from one run, so an arm's
budgets share its seed draws) and which problems were asked (the benchmark is a sample too; the
problem draws are shared by every cell, so contrasts are paired over problems).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np


@dataclass(frozen=True)
class Cell:
    group: str  # cells of one group (an arm: its seeds' runs) share seed draws
    scores: np.ndarray  # [seeds, problems]


def bootstrap_means(cells: dict[Hashable, Cell], draws: int = 2000, seed: int = 0) -> dict[Hashable, np.ndarray]:
    """Each cell's mean score under `draws` hierarchical bootstrap draws (seeds, then problems): [draws]."""
    rng = np.random.default_rng(seed)
    problems = {cell.scores.shape[1] for cell in cells.values()}
    if len(problems) != 1:
        raise ValueError(f"every cell must score the same problems, got counts {sorted(problems)}")
    n_problems = problems.pop()
    picked = rng.integers(0, n_problems, size=(draws, n_problems))
    seed_draws: dict[str, np.ndarray] = {}
    for cell in cells.values():
        n_seeds = cell.scores.shape[0]
        if cell.group not in seed_draws:
            seed_draws[cell.group] = rng.integers(0, n_seeds, size=(draws, n_seeds))
        elif seed_draws[cell.group].shape[1] != n_seeds:
            raise ValueError(f"cells of group {cell.group!r} have different numbers of seeds")
    out = {}
    for key, cell in cells.items():
        # per seed, the mean over each draw's problems: [seeds, draws]
        per_seed = np.stack([row[picked].mean(axis=1) for row in cell.scores])
        chosen = seed_draws[cell.group]
        out[key] = per_seed[chosen, np.arange(draws)[:, None]].mean(axis=1)
    return out


def interval(draws: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return math.nan, math.nan
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def two_sided_p(draws: np.ndarray) -> float:
    """Bootstrap p-value of 'the difference is 0': twice the smaller tail beyond 0 (at least 1/draws)."""
    below, above = float(np.mean(draws <= 0)), float(np.mean(draws >= 0))
    return min(1.0, max(2 * min(below, above), 1 / len(draws)))


def holm(p_values: Sequence[float], alpha: float = 0.05) -> list[tuple[float, bool]]:
    """Holm-Bonferroni: (adjusted p, rejected at alpha) per hypothesis, in the input order."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return [(a, a <= alpha) for a in adjusted]


def minimum_detectable_effect(seed_means: Sequence[Sequence[float]], *, alpha: float, power: float = 0.8) -> float:
    """The smallest difference between two arms' means that `power` of experiments of this size
    would find at two-sided level alpha, from the spread between seeds (pooled over arms; each inner
    sequence is one arm's per-seed means). Problem noise is paired between arms and left out."""
    groups = [np.asarray(m, dtype=float) for m in seed_means if len(m) >= 2]
    if not groups:
        return math.nan
    dof = sum(len(g) - 1 for g in groups)
    pooled_var = sum(((g - g.mean()) ** 2).sum() for g in groups) / dof
    n = min(len(g) for g in groups)
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    return float(z * math.sqrt(2 * pooled_var / n))


def tokens_to_reach(budgets: Sequence[float], losses: Sequence[float], target: float) -> tuple[float, str]:
    """Tokens a reference curve needs to reach `target` loss, interpolated in log-log between its
    budgets, and how to read it: "" exact, ">=" past its last budget (a lower bound), "<=" reached
    by its first budget already (an upper bound). The curve is made non-increasing first (a loss
    reached at some budget counts as reached at every larger one)."""
    log_d = np.log(np.asarray(budgets, dtype=float))
    log_l = np.minimum.accumulate(np.log(np.asarray(losses, dtype=float)))
    log_t = math.log(target)
    if log_t >= log_l[0]:
        return float(budgets[0]), "<=" if log_t > log_l[0] else ""
    if log_t < log_l[-1]:
        return float(budgets[-1]), ">="
    i = int(np.argmax(log_l <= log_t))
    frac = (log_l[i - 1] - log_t) / (log_l[i - 1] - log_l[i])
    return float(math.exp(log_d[i - 1] + frac * (log_d[i] - log_d[i - 1]))), ""


def efficiency_multiplier(reference_budgets: Sequence[float], reference: Sequence[float],
                          budgets: Sequence[float], arm: Sequence[float]) -> list[tuple[float, str]]:
    """m(D) at each of the arm's budgets D: tokens the reference curve needs to reach the arm's loss
    at D, over D; with tokens_to_reach's bound marks."""
    out = []
    for d, loss in zip(budgets, arm):
        tokens, mark = tokens_to_reach(reference_budgets, reference, loss)
        out.append((tokens / d, mark))
    return out


def log_slope(budgets: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of log(values) on log(budgets) (nan with fewer than two points)."""
    if len(budgets) < 2:
        return math.nan
    x, y = np.log(np.asarray(budgets, dtype=float)), np.log(np.asarray(values, dtype=float))
    return float(np.polyfit(x, y, 1)[0])


def rule_of_three(n: int) -> float:
    """95% upper bound on a rate when 0 of n trials succeeded."""
    return 3.0 / n if n else math.nan
