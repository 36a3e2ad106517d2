"""Confidence intervals for timings: of a median, of the ratio of two medians, and of
the ratio of two variants timed in alternating rounds; and the rule that decides when
such alternating rounds have said enough.

**One process's rounds: a distribution-free interval.** The median's interval runs
between two order statistics of the rounds, chosen from the binomial distribution
(the number of rounds below the true median is Binomial(n, 1/2) whatever the rounds'
distribution). Its coverage is exact, it needs no resampling, and one disturbed round
moves each end by at most one rank: a round 20× too slow cannot stretch it, as it
stretched a percentile bootstrap of five rounds. Below 6 rounds no pair of order
statistics reaches 95%: the interval is then the rounds' range, and says so by its
width. The ratio of two medians measured apart (independent) takes each median's
interval at √level, so that both hold together at ``level``, and divides their ends:
conservative, and as robust as its parts.

**Rounds from several processes** (``gdbench run --processes K``): a two-level
percentile bootstrap, as the rounds of one process are not independent of each other:
resample the processes, then the rounds within each. The spread between processes
(memory layout, allocator state, which core) is then part of the interval, which more
rounds in one process could never shrink.

**Paired rounds.** Contenders timed in alternation (:class:`SequentialComparison`)
give one ratio per pair of neighbouring rounds, so a drift of the machine hits both
alike; the ratio's interval is the distribution-free interval of the median of those
ratios. The rule looks at the pairs only at fixed counts (:data:`LOOKS`), each look at
level 1 − α/(looks + 1) (Bonferroni: the final look at an exhausted budget is one
more), so that looking again never lets two equal variants be called different more
often than α = 1 − :data:`LEVEL` in all.

Inputs are *groups*: one list of round times per process (a single group without
``--processes``). Times may be per iteration or per epoch: intervals scale with them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

LEVEL = 0.95
RESAMPLES = 2000
SEED = 20261122  # fixed: a report is reproducible from its JSON

Groups = Sequence[Sequence[float]]


def _clean(groups: Groups) -> list[Any]:
    out = [np.asarray(g, dtype=float) for g in groups]
    out = [g[np.isfinite(g)] for g in out]
    return [g for g in out if g.size]


def resampled_medians(groups: Groups, rng: np.random.Generator, n: int = RESAMPLES) -> np.ndarray:
    """``n`` bootstrap replicates of the median of the pooled rounds of ``groups``."""
    data = _clean(groups)
    if not data:
        return np.full(n, np.nan)
    if len(data) == 1:
        rounds = data[0]
        return np.median(rounds[rng.integers(0, rounds.size, (n, rounds.size))], axis=1)
    out = np.empty(n)
    picks = rng.integers(0, len(data), (n, len(data)))
    for i, chosen in enumerate(picks):
        sample = [data[j][rng.integers(0, data[j].size, data[j].size)] for j in chosen]
        out[i] = np.median(np.concatenate(sample))
    return out


def _percentiles(values: np.ndarray, level: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if not values.size:
        return (np.nan, np.nan)
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def order_interval(n: int, level: float = LEVEL) -> tuple[int, int]:
    """0-based ranks (low, high) of the sorted rounds that bound the median with
    probability ≥ ``level`` (the binomial, or sign-test, interval); (0, n − 1), the
    range, when ``n`` is too small for ``level``."""
    tail = (1 - level) / 2
    below = 0.0  # P(Binomial(n, 1/2) <= k - 1), k the 1-based rank of the low end
    k = 0
    while k < n // 2:
        below += math.comb(n, k) / 2**n  # exact integers: no overflow at any n
        if below > tail:
            break
        k += 1
    k = max(k, 1)
    return k - 1, n - k


def covers(n: int, level: float = LEVEL) -> bool:
    """Whether ``n`` rounds are enough for an order-statistic interval at ``level``:
    the range's coverage, 1 − 2 / 2ⁿ, reaches it (6 rounds for 95%)."""
    return n > 0 and 1 - 2 / 2**n >= level


def _order_stat_interval(rounds: np.ndarray, level: float) -> tuple[float, float]:
    ranked = np.sort(rounds)
    low, high = order_interval(ranked.size, level)
    return float(ranked[low]), float(ranked[high])


def median_interval(groups: Groups, level: float = LEVEL) -> tuple[float, float]:
    """The ``level`` interval of the median of the pooled rounds; (nan, nan) without
    data. A single round gives a zero-width interval: nothing says how it varies."""
    data = _clean(groups)
    if not data:
        return (np.nan, np.nan)
    if len(data) == 1:
        return _order_stat_interval(data[0], level)
    rng = np.random.default_rng(SEED)
    return _percentiles(resampled_medians(data, rng), level)


def ratio_interval(
    numerator: Groups, denominator: Groups, level: float = LEVEL
) -> tuple[float, float]:
    """The ``level`` interval of median(numerator) / median(denominator), the two
    measured independently: each median's interval at √level, ends divided (one
    process each), or both resampled independently (several processes)."""
    top, bottom = _clean(numerator), _clean(denominator)
    if not top or not bottom:
        return (np.nan, np.nan)
    if len(top) == 1 and len(bottom) == 1:
        each = math.sqrt(level)
        top_low, top_high = _order_stat_interval(top[0], each)
        bottom_low, bottom_high = _order_stat_interval(bottom[0], each)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (
                float(np.divide(top_low, bottom_high)),
                float(np.divide(top_high, bottom_low)),
            )
    rng = np.random.default_rng(SEED)
    top_medians = resampled_medians(top, rng)
    bottom_medians = resampled_medians(bottom, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _percentiles(top_medians / bottom_medians, level)


# The sequential rule of paired rounds.
# Pairs at which the rule looks: the first, 10, is the fewest whose interval can reach
# LOOK_LEVEL (1 − 2/2¹⁰ ≥ 1 − 5%/7; 8 pairs cannot).
LOOKS = (10, 16, 32, 64, 128, 256)
MAX_PAIRS = LOOKS[-1]
EQUIVALENT = 0.01  # an interval within ±1% of equal: equal for any practical purpose
LOOK_LEVEL = 1 - (1 - LEVEL) / (len(LOOKS) + 1)

# What alternating rounds concluded: the first is faster, slower, equal within
# EQUIVALENT, or nothing within the budget.
FASTER, SLOWER, EQUIVALENT_OUTCOME, UNDECIDED = "faster", "slower", "equivalent", "undecided"


@dataclass
class Paired:
    """The ratio first/second of two variants from their paired rounds."""

    ratio: float  # median of the per-pair ratios
    low: float
    high: float
    pairs: int
    outcome: str  # FASTER, SLOWER, EQUIVALENT_OUTCOME or UNDECIDED


def paired_ratio(first: Sequence[float], second: Sequence[float],
                 level: float = LOOK_LEVEL) -> Paired:  # fmt: skip
    """Paired rounds (round i of ``first`` next to round i of ``second`` in time) ->
    the median ratio, its distribution-free ``level`` interval, and what it says."""
    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    n = min(a.size, b.size)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = a[:n] / b[:n]
    ratios = ratios[np.isfinite(ratios)]
    if not ratios.size:
        return Paired(np.nan, np.nan, np.nan, 0, UNDECIDED)
    low, high = _order_stat_interval(ratios, level)
    if not covers(ratios.size, level):  # too few pairs to say anything at this level
        outcome = UNDECIDED
    elif high < 1:
        outcome = FASTER
    elif low > 1:
        outcome = SLOWER
    elif 1 / (1 + EQUIVALENT) <= low and high <= 1 + EQUIVALENT:
        outcome = EQUIVALENT_OUTCOME
    else:
        outcome = UNDECIDED
    return Paired(float(np.median(ratios)), low, high, int(ratios.size), outcome)


@dataclass
class SequentialComparison:
    """Alternating rounds of a contender and the leader, added a pair at a time, until
    their ratio is decided (at one of :data:`LOOKS`) or the caller's budget ends."""

    looks: tuple[int, ...] = LOOKS
    level: float = LOOK_LEVEL
    first: list[float] = field(default_factory=list)
    second: list[float] = field(default_factory=list)
    result: Paired | None = None  # set once decided

    def add(self, first: float, second: float) -> Paired | None:
        """One more pair; the decision when this pair settles it, else None."""
        self.first.append(first)
        self.second.append(second)
        if self.result is None and len(self.first) in self.looks:
            verdict = paired_ratio(self.first, self.second, self.level)
            if verdict.outcome != UNDECIDED:
                self.result = verdict
        return self.result

    @property
    def done(self) -> bool:
        return self.result is not None or len(self.first) >= max(self.looks)

    def final(self) -> Paired:
        """The decision, or the last look's interval when the budget ended first."""
        return self.result or paired_ratio(self.first, self.second, self.level)


def pooled_median(groups: Groups) -> float:
    """The median of every round of every group (what the report calls the median)."""
    data = _clean(groups)
    return float(np.median(np.concatenate(data))) if data else np.nan
