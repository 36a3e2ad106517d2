"""The per-epoch-cost suite: pytest-benchmark times whole training runs, per epoch.

Each round trains the problem for ``epochs`` epochs from the same initial parameters
(``Session.train``), ``iterations`` times back to back; pytest-benchmark divides by the
iterations, and the per-epoch cost is that time divided by ``epochs``. Compilation and
first-call work happen in ``Session.warmup``, timed apart as ``compile_s``. ``train``
returns only once the device is done and the losses are on the host, so the timed region
holds all the work. The timed run must agree with the float64 reference, so a fast
wrong backend fails instead of winning; a result of the wrong shape or dtype is refused
before it is judged, with one line naming the variant.

The harness's own cost per round (two timer reads and a sync of an idle device) is
measured, and ``iterations`` is chosen so that it stays under 1% of the reported cost.

A round's time is not all per epoch: a fused loop pays a fixed cost per run (dispatch,
fetching losses and parameters) that its epochs share. Each case is therefore also
timed at a quarter of its epochs, and the line time(E) = fixed + E × marginal through
the two points gives ``fixed_s`` and ``marginal_epoch_s`` (:func:`cost_model`).
The machine's memory bandwidth is measured in the same run (a large array copy, timed
the same way: 256 MiB arrays in host memory, and 1 GiB arrays on the GPU in a run on
``cuda``), so the report can say how close each run comes to the bandwidth of its own
device.
"""

from __future__ import annotations

import gc
import os
import sys
import time

import pytest

from backends import BadResult, check_result
from suites.bench.bandwidth import (
    COPY_BYTES,
    COPY_METHODS,
    DEVICE_COPY_BYTES,
    copy_function,
    copy_methods,
)
from suites.bench.case import close_session
from suites.bench.timing import (
    CALIBRATION_BUDGET_S,
    calibrate,
    cost_model,
    iterations_for,
    median_call_s,
    rounds_for,
    timer_overhead_s,
    timing_of,
)
from suites.config import SMOKE_DEVICES, parse
from suites.convergence import compare
from suites.records import BANDWIDTH, BENCHMARK, SCHEMA, first_line, verdict_fields

pytestmark = pytest.mark.benchmark(group="epoch-cost", warmup=False)

COPY_ROUNDS = {False: 10, True: 6}  # the copy benchmarks' rounds, by --quick


def test_epoch_cost(case, benchmark) -> None:
    backend = case.backend()
    problem = case.problem
    benchmark.extra_info.update(case.identity(BENCHMARK))
    refused = ""
    try:
        # Peak memory covers the case's copy of the data, prepare, warm-up and the rounds.
        with case.measured() as own:
            session = backend.prepare(own)
            start = time.perf_counter()
            session.warmup()
            compile_s = time.perf_counter() - start
            round_s = calibrate(session.train, CALIBRATION_BUDGET_S[case.run.quick])
            overhead_s = timer_overhead_s() + median_call_s(session.sync, 200)
            iterations = iterations_for(round_s, overhead_s)
            rounds = rounds_for(round_s * iterations, case.run.quick)
            if sizing := case.first_sizing():  # a later process of --processes K
                rounds, iterations = sizing
            result = benchmark.pedantic(session.train, rounds=rounds, iterations=iterations)
            check_result(backend.variant, result, problem)
            # data-parallel: the last round's slowest and fastest rank, the collective
            ranks = session.rank_stats() if hasattr(session, "rank_stats") else {}
            cost = {}
            if not benchmark.disabled:
                cost = cost_model(session.train, problem.epochs, overhead_s, quick=case.run.quick)
            close_session(session)
            del session, own
    except BadResult as err:
        refused = str(err)
    except Exception as err:  # one backend failing must not hide the others' results
        benchmark.extra_info.update(status="failed", message=first_line(err))
        case.record(BENCHMARK, status="failed", message=first_line(err))
        raise
    if refused:  # its one line, outside the except: no traceback, no chained error
        benchmark.extra_info.update(status="failed", message=refused)
        case.record(BENCHMARK, status="failed", message=refused)
        pytest.fail(refused, pytrace=False)
    verdict = compare(problem, result, case.matmul_precision)
    fields = verdict_fields(problem, result, verdict)
    extra = {
        "compile_s": compile_s,
        "rounds": rounds,
        "iterations": iterations,
        "epochs_per_round": iterations * problem.epochs,
        "harness_overhead_s": overhead_s,
        **cost,
        **ranks,
    }
    benchmark.extra_info.update(fields, **extra, **case.memory)
    case.record(BENCHMARK, **fields, **extra, timing=timing_of(benchmark))
    if not verdict.ok:
        pytest.fail(f"{backend.variant}@{backend.device} on {problem.name}: {verdict.message}")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The copy benchmarks of the run's devices (``--gdb-devices``, as the conftest
    parses it): the CUDA ones only in a run that uses ``cuda``."""
    if "method" not in metafunc.fixturenames:
        return
    devices = parse(
        devices=metafunc.config.getoption("--gdb-devices"), default_devices=SMOKE_DEVICES
    ).devices
    methods = [m for m, _ in copy_methods(devices)]
    metafunc.parametrize("method", methods)


@pytest.mark.benchmark(group="memory-bandwidth", warmup=False)
def test_memory_bandwidth(method, benchmark, run_config, record_log) -> None:
    """The copy bandwidth (bytes read + written per second) and the read bandwidth
    (bytes read per second) of the host's memory, and of the GPU's in a run on
    ``cuda``, for the report."""
    run = run_config
    size = "smoke" if benchmark.disabled else ("quick" if run.quick else "timed")
    device = "cuda" if method in COPY_METHODS["cuda"] else "cpu"
    n_bytes = (DEVICE_COPY_BYTES if device == "cuda" else COPY_BYTES)[size]
    copy = copy_function(method, n_bytes, run.threads)
    copy()  # first touch of the destination pages; jax compiles its copy
    access = "read" if method.endswith("-read") else "copy"
    benchmark.extra_info.update(kind=BANDWIDTH, method=method, device=device, access=access,
                                bytes=(n_bytes if access == "read" else 2 * n_bytes),
                                threads=run.threads, pid=os.getpid())  # fmt: skip
    benchmark.pedantic(copy, rounds=COPY_ROUNDS[run.quick], iterations=1)
    del copy  # the arrays: torch's allocator would keep them beside jax's copy
    if device == "cuda" and "torch" in sys.modules:
        gc.collect()
        sys.modules["torch"].cuda.empty_cache()
    if timing := timing_of(benchmark):
        record_log.append({"schema": SCHEMA, **benchmark.extra_info, "timing": timing})
