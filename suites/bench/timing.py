"""How the per-epoch-cost suite times a case: calibration, rounds and iterations, the
harness's own overhead, and the cost model (a fixed cost per run plus a marginal cost
per epoch)."""

from __future__ import annotations

import functools
import math
import statistics
import time
from collections.abc import Callable
from functools import cache

import numpy as np

# Time spent in timed rounds per benchmark, and the bounds on their number.
ROUND_BUDGET_S = {False: 1.0, True: 0.15}


# 11 rounds: the report's 95% interval of a ratio leaves out the slowest round from 10
# (reports/stats.py), so that one disturbed round cannot stretch it; 11 for an odd
# count, whose median is one round.
MIN_ROUNDS = {False: 11, True: 11}


# Untimed rounds that size the timed ones (after warm-up): at least one, then more while
# within this budget.
CALIBRATION_BUDGET_S = {False: 0.2, True: 0.1}


MAX_ROUNDS = 200


OVERHEAD_SHARE = 0.01  # the harness may add at most 1% to any reported cost


# Rounds are sized for half that: the calibration rounds are only an estimate.
SIZING_SHARE = OVERHEAD_SHARE / 2


MAX_ITERATIONS = 100_000


# --quick: a case whose MIN_ROUNDS would take longer than this gets fewer rounds (at
# least QUICK_FEWEST): a slow variant on a long problem (torch-nn on toy-bias's 4,000
# epochs, 0.4 s a round) is far from the fastest, and its wider interval says so.
QUICK_CASE_S = 1.0
QUICK_FEWEST = 5


def rounds_for(round_s: float, quick: bool) -> int:
    """How many rounds fit the time budget: at least MIN_ROUNDS, so that one disturbed
    round cannot stretch an interval; with ``quick``, fewer where they would take more
    than QUICK_CASE_S (down to QUICK_FEWEST)."""
    round_s = max(round_s, 1e-9)
    fit = math.floor(ROUND_BUDGET_S[quick] / round_s)
    least = MIN_ROUNDS[quick]
    if quick and least * round_s > QUICK_CASE_S:
        least = max(QUICK_FEWEST, math.floor(QUICK_CASE_S / round_s))
    return max(least, min(MAX_ROUNDS, fit))


Timer = Callable[[], float]


def median_call_s(fn: Callable[[], object], reps: int, timer: Timer = time.perf_counter) -> float:
    """Median wall time of ``fn()`` between two timer reads (a calibration, not a result)."""
    samples = []
    for _ in range(reps):
        start = timer()
        fn()
        samples.append(timer() - start)
    return statistics.median(samples)


@cache
def timer_overhead_s() -> float:
    """What two perf_counter reads around a call cost: the harness's part of a round."""
    return median_call_s(lambda: None, 5000)


def calibrate(
    train: Callable[[], object],
    budget_s: float = 0.2,
    most: int = 7,
    timer: Timer = time.perf_counter,
) -> float:
    """Median time of a few untimed rounds after warm-up: the first ones are often slow
    (caches, allocator), and one sample would size the timed rounds wrongly. A training
    that alone fills the budget needs no second sample: it gets one iteration per round
    and the fewest rounds, whatever its exact time."""
    samples: list[float] = []
    spent = 0.0
    while len(samples) < most and spent < budget_s:
        start = timer()
        train()
        samples.append(timer() - start)
        spent += samples[-1]
    return statistics.median(samples)


# Time spent timing the cost model's two epoch counts, per case, by --quick.
COST_BUDGET_S = {False: 0.5, True: 0.05}
COST_MIN_ROUNDS = {False: 5, True: 3}  # pairs of rounds: a median of each epoch count


def short_epochs(epochs: int) -> int | None:
    """The cost model's second epoch count: a quarter of the run's (a ratio of 4 keeps
    the fit well-conditioned and the extra timing cheap); None below 4 epochs."""
    return epochs // 4 if epochs >= 4 else None


def fit_cost(points: list[tuple[int, float]]) -> tuple[float, float]:
    """(fixed, marginal): the least-squares line time = fixed + epochs × marginal through
    (epochs, seconds per run) points. A fixed cost below zero is noise around zero."""
    epochs = np.array([e for e, _ in points], dtype=float)
    seconds = np.array([s for _, s in points], dtype=float)
    marginal, fixed = np.polyfit(epochs, seconds, 1)
    return float(fixed), float(marginal)


def cost_model(
    train: Callable[[int | None], object],
    epochs: int,
    overhead_s: float,
    timer: Timer = time.perf_counter,
    quick: bool = False,
) -> dict[str, object]:
    """Time ``train`` at a quarter of ``epochs`` and at all of them, in alternating
    rounds (a drift of the machine then hits both alike; measured apart, a drift
    between the two can exceed the fixed cost being fitted), and fit the
    per-run fixed cost and the marginal cost per epoch. {} for runs too short to split."""
    short = short_epochs(epochs)
    if short is None:
        return {}
    counts = (short, epochs)
    plans = []
    for count in counts:
        train(count)  # untimed: a program compiled per epoch count (jax-scan) compiles here
        round_s = calibrate(functools.partial(train, count), COST_BUDGET_S[quick] / 8, timer=timer)
        plans.append((count, iterations_for(round_s, overhead_s), round_s))
    round_pair = sum(iterations * round_s for _, iterations, round_s in plans)
    budget_s = COST_BUDGET_S[quick]
    rounds = max(COST_MIN_ROUNDS[quick], min(MAX_ROUNDS, math.floor(budget_s / round_pair)))
    per_call: dict[int, list[float]] = {count: [] for count in counts}
    for _ in range(rounds):
        for count, iterations, _ in plans:
            start = timer()
            for _ in range(iterations):
                train(count)
            per_call[count].append((timer() - start) / iterations)
    times = [statistics.median(per_call[count]) for count in counts]
    fixed, marginal = fit_cost(list(zip(counts, times, strict=True)))
    return {"cost_epochs": list(counts), "cost_run_s": times,
            "fixed_s": fixed, "marginal_epoch_s": marginal}  # fmt: skip


def timing_of(benchmark) -> dict[str, float]:  # noqa: ANN001
    """pytest-benchmark's statistics of one benchmark, per iteration ({} when disabled)."""
    stats = getattr(benchmark.stats, "stats", None)
    if stats is None or not stats.rounds:
        return {}
    timing = {k: getattr(stats, k) for k in ("median", "iqr", "min", "mean", "stddev", "rounds")}
    # The rounds themselves (per iteration), so that several processes can be pooled.
    return timing | {"data": list(stats.data), "iterations": benchmark.stats.iterations}


def iterations_for(round_s: float, overhead_s: float) -> int:
    """Trainings per timed round so that the harness overhead is ≤ 1% of the result."""
    needed = math.ceil(overhead_s / (SIZING_SHARE * max(round_s, 1e-12)))
    return max(1, min(MAX_ITERATIONS, needed))
