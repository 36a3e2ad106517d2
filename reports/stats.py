"""Confidence intervals for timings: of a median, and of the ratio of two medians.

One method for both, a seeded percentile bootstrap over the timed rounds, so the same
input always gives the same interval and a ratio's interval is consistent with its two
medians'. With rounds from several processes (``gdbench run --processes K``) the
bootstrap is two-level, as the rounds of one process are not independent of each
other: resample the processes, then the rounds within each. The spread between
processes (memory layout, allocator state, which core) is then part of the interval,
which more rounds in one process could never shrink.

Inputs are *groups*: one list of round times per process (a single group without
``--processes``). Times may be per iteration or per epoch: intervals scale with them.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LEVEL = 0.95
RESAMPLES = 2000
SEED = 20261122  # fixed: a report is reproducible from its JSON

Groups = Sequence[Sequence[float]]


def _clean(groups: Groups) -> list[np.ndarray]:
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


def median_interval(groups: Groups, level: float = LEVEL) -> tuple[float, float]:
    """The ``level`` interval of the median of the pooled rounds; (nan, nan) without
    data. A single round gives a zero-width interval: nothing says how it varies."""
    rng = np.random.default_rng(SEED)
    return _percentiles(resampled_medians(groups, rng), level)


def ratio_interval(
    numerator: Groups, denominator: Groups, level: float = LEVEL
) -> tuple[float, float]:
    """The ``level`` interval of median(numerator) / median(denominator), the two
    resampled independently (they were measured independently)."""
    rng = np.random.default_rng(SEED)
    top = resampled_medians(numerator, rng)
    bottom = resampled_medians(denominator, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _percentiles(top / bottom, level)


def pooled_median(groups: Groups) -> float:
    """The median of every round of every group (what the report calls the median)."""
    data = _clean(groups)
    return float(np.median(np.concatenate(data))) if data else np.nan
