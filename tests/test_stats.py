"""The intervals of reports/stats.py cover what they claim, checked by simulation
against distributions whose median is known."""

from __future__ import annotations

import numpy as np
import pytest

from reports import stats

pytestmark = pytest.mark.harness


def test_the_median_interval_covers_the_true_median_about_95_percent_of_the_time() -> None:
    # Log-normal rounds (timings are skewed): true median exp(0) = 1.
    rng = np.random.default_rng(7)
    trials = 300
    hits = sum(
        low <= 1.0 <= high
        for low, high in (
            stats.median_interval([rng.lognormal(0.0, 0.1, 30)]) for _ in range(trials)
        )
    )
    assert 0.90 <= hits / trials <= 0.99, hits / trials


def test_the_ratio_interval_covers_the_true_ratio_and_excludes_one_when_it_should() -> None:
    rng = np.random.default_rng(8)
    trials, hits, excludes = 200, 0, 0
    for _ in range(trials):
        slow = rng.lognormal(np.log(1.5), 0.05, 20)
        fast = rng.lognormal(0.0, 0.05, 20)
        low, high = stats.ratio_interval([slow], [fast])
        hits += low <= 1.5 <= high
        excludes += low > 1.0
    assert 0.90 <= hits / trials <= 0.995, hits / trials
    assert excludes == trials  # 50% slower with 5% noise: always told apart


def test_a_tiny_difference_in_wide_noise_is_not_significant() -> None:
    rng = np.random.default_rng(9)
    base = rng.lognormal(0.0, 0.3, 15)
    new = base * 1.02
    low, high = stats.ratio_interval([new], [rng.permutation(base)])
    assert low < 1.0 < high


def test_spread_between_processes_widens_the_interval() -> None:
    # Three processes whose medians differ by ±10%, tight rounds within each: pooling
    # them as one process would claim a precision the machine does not have.
    rng = np.random.default_rng(10)
    groups = [m * (1 + 0.005 * rng.standard_normal(40)) for m in (0.9, 1.0, 1.1)]
    as_one = stats.median_interval([np.concatenate(groups)])
    by_process = stats.median_interval(groups)
    assert (by_process[1] - by_process[0]) > 5 * (as_one[1] - as_one[0])
    assert by_process[0] <= stats.pooled_median(groups) <= by_process[1]


def test_no_data_gives_no_interval_and_is_reproducible() -> None:
    assert np.isnan(stats.median_interval([])).all()
    assert np.isnan(stats.median_interval([[np.nan]])).all()
    rounds = [[3.0, 1.0, 2.0, 5.0, 4.0]]
    assert stats.median_interval(rounds) == stats.median_interval(rounds)
