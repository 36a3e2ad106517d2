"""The per-epoch-cost suite: pytest-benchmark times whole training runs, per epoch.

Each round trains the problem for ``epochs`` epochs from the same initial parameters
(``Session.train``); the per-epoch cost is the round time divided by ``epochs``.
Compilation and first-call work happen in ``Session.warmup``, timed apart as
``compile_s``. ``train`` returns only once the device is done and the losses are on the
host, so the timed region holds all the work. The timed run must agree with the float64
reference, so a fast wrong backend fails instead of winning.
"""

from __future__ import annotations

import math
import time

import pytest

from suites import harness
from suites.convergence import compare

pytestmark = pytest.mark.benchmark(group="epoch-cost", warmup=False)

# Time spent in timed rounds per benchmark, and the bounds on their number.
ROUND_BUDGET_S = {False: 1.0, True: 0.15}
MIN_ROUNDS = {False: 5, True: 3}
MAX_ROUNDS = 200


def rounds_for(round_s: float, quick: bool) -> int:
    """How many rounds fit the time budget (at least MIN_ROUNDS for a median and IQR)."""
    fit = math.floor(ROUND_BUDGET_S[quick] / max(round_s, 1e-9))
    return max(MIN_ROUNDS[quick], min(MAX_ROUNDS, fit))


def test_epoch_cost(case, benchmark) -> None:
    backend = case.backend()
    problem = case.problem
    ident = harness.base_record("benchmark", backend, backend.device, problem)
    benchmark.extra_info.update(ident)
    benchmark.extra_info["threads"] = case.run.threads
    try:
        session = backend.prepare(problem)
        start = time.perf_counter()
        session.warmup()
        compile_s = time.perf_counter() - start
        # One untimed round after warm-up: settles caches and sizes the number of rounds.
        start = time.perf_counter()
        session.train()
        rounds = rounds_for(time.perf_counter() - start, case.run.quick)
        result = benchmark.pedantic(session.train, rounds=rounds, iterations=1)
    except Exception as err:  # one backend failing must not hide the others' results
        benchmark.extra_info.update(status="failed", message=harness.first_line(err))
        case.record("benchmark", status="failed", message=harness.first_line(err))
        raise
    verdict = compare(problem, result)
    fields = harness.verdict_fields(problem, result, verdict)
    benchmark.extra_info.update(fields, compile_s=compile_s, rounds=rounds)
    stats = getattr(benchmark.stats, "stats", None)  # None when timing is disabled
    timing = {}
    if stats is not None and stats.rounds:
        timing = {
            k: getattr(stats, k) for k in ("median", "iqr", "min", "mean", "stddev", "rounds")
        }
    case.record("benchmark", **fields, compile_s=compile_s, timing=timing)
    if not verdict.ok:
        pytest.fail(f"{backend.variant}@{backend.device} on {problem.name}: {verdict.message}")
