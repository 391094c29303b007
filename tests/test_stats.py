import math

import numpy as np
import pytest

from syllabus import stats


def test_hierarchical_bootstrap_resamples_seeds_then_problems_with_shared_problem_draws():
    rng = np.random.default_rng(0)
    base = rng.normal(1.0, 0.2, size=(1, 300))
    cells = {"a": stats.Cell("a", base + np.array([[0.0], [0.02], [-0.02]])),
             "b": stats.Cell("b", base - 0.1 + np.array([[0.0], [0.01], [-0.01]]))}
    draws = stats.bootstrap_means(cells, draws=1000, seed=1)
    delta = draws["a"] - draws["b"]
    low, high = stats.interval(delta)
    # problems are paired: the 0.1 shift is measured to within the seed spread, not the problem spread
    assert low < 0.1 < high and high - low < 0.06
    low_a, high_a = stats.interval(draws["a"])
    assert high_a - low_a > high - low  # one arm alone carries the problem noise too
    assert stats.two_sided_p(delta) == pytest.approx(1 / 1000)
    with pytest.raises(ValueError, match="same problems"):
        stats.bootstrap_means({"a": cells["a"], "c": stats.Cell("c", base[:, :10])})


def test_holm_adjusts_in_order_and_keeps_monotone():
    assert stats.holm([0.01, 0.04, 0.03]) == [(0.03, True), (0.06, False), (0.06, False)]
    assert stats.holm([0.001, 0.2]) == [(0.002, True), (0.2, False)]


def test_minimum_detectable_effect_scales_with_seed_spread():
    tight = stats.minimum_detectable_effect([[1.0, 1.01, 0.99], [2.0, 2.01, 1.99]], alpha=0.05)
    loose = stats.minimum_detectable_effect([[1.0, 1.1, 0.9], [2.0, 2.1, 1.9]], alpha=0.05)
    assert loose == pytest.approx(10 * tight)
    assert tight == pytest.approx((1.959964 + 0.841621) * math.sqrt(2 * 0.0001 / 3), rel=1e-4)


def test_multiplier_inverts_a_power_law_and_marks_bounds():
    budgets = [1e5, 2e5, 4e5, 8e5]
    reference = [d ** -0.1 for d in budgets]
    # an arm whose loss at D equals the reference's at 2D: m = 2 wherever the reference reaches it
    arm = [(2 * d) ** -0.1 for d in budgets]
    m = stats.efficiency_multiplier(budgets, reference, budgets, arm)
    assert [round(v, 6) for v, _ in m[:3]] == [2.0, 2.0, 2.0] and [mark for _, mark in m[:3]] == ["", "", ""]
    assert m[3] == (1.0, ">=")  # past the reference's last budget: only a lower bound
    assert stats.tokens_to_reach(budgets, reference, 10.0) == (1e5, "<=")
    assert stats.log_slope(budgets[:3], [2.0, 4.0, 8.0]) == pytest.approx(1.0)


def test_rule_of_three():
    assert stats.rule_of_three(300) == 0.01
