"""Summary statistics: the Student-t interval used by the issue-22 tables."""

import numpy as np

from swarmgames.core.stats import mean_ci, mean_t_ci


def test_student_t_interval_by_hand():
    m, h = mean_t_ci([1.0, 2.0, 3.0])
    assert m == 2.0
    assert abs(h - 4.302652729911275 / np.sqrt(3)) < 1e-9     # t_{0.975,2}·s/√n, s = 1
    assert h > mean_ci([1.0, 2.0, 3.0])[1]                    # wider than the normal 1.96


def test_t_interval_ignores_non_finite_and_handles_one_value():
    assert mean_t_ci([5.0, float("nan")]) == (5.0, 0.0)
    m, h = mean_t_ci([])
    assert np.isnan(m) and np.isnan(h)
