"""The per-epoch-cost suite: pytest-benchmark times whole training runs, per epoch.

Each round trains the problem for ``epochs`` epochs from the same initial parameters
(``Session.train``), ``iterations`` times back to back; pytest-benchmark divides by the
iterations, and the per-epoch cost is that time divided by ``epochs``. Compilation and
first-call work happen in ``Session.warmup``, timed apart as ``compile_s``. ``train``
returns only once the device is done and the losses are on the host, so the timed region
holds all the work. The timed run must agree with the float64 reference, so a fast
wrong backend fails instead of winning.

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

import functools
import gc
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from functools import cache

import numpy as np
import pytest

from suites import harness
from suites.config import SMOKE_DEVICES, parse
from suites.convergence import compare

pytestmark = pytest.mark.benchmark(group="epoch-cost", warmup=False)

# Time spent in timed rounds per benchmark, and the bounds on their number.
ROUND_BUDGET_S = {False: 1.0, True: 0.15}
MIN_ROUNDS = {False: 5, True: 3}
# Untimed rounds that size the timed ones (after warm-up): at least one, then more while
# within this budget.
CALIBRATION_BUDGET_S = {False: 0.2, True: 0.1}
MAX_ROUNDS = 200
OVERHEAD_SHARE = 0.01  # the harness may add at most 1% to any reported cost
# Rounds are sized for half that: the calibration rounds are only an estimate.
SIZING_SHARE = OVERHEAD_SHARE / 2
MAX_ITERATIONS = 100_000
# Bytes per array of the bandwidth copy: far beyond any cache (two arrays are live).
COPY_BYTES = {"timed": 256 * 2**20, "quick": 64 * 2**20, "smoke": 8 * 2**20}
# The same on a GPU: far beyond its L2 cache (50 MiB on an H100, 126 MiB on a B200).
DEVICE_COPY_BYTES = {"timed": 2**30, "quick": 256 * 2**20, "smoke": 8 * 2**20}


def rounds_for(round_s: float, quick: bool) -> int:
    """How many rounds fit the time budget (at least MIN_ROUNDS for a median and IQR)."""
    fit = math.floor(ROUND_BUDGET_S[quick] / max(round_s, 1e-9))
    return max(MIN_ROUNDS[quick], min(MAX_ROUNDS, fit))


Timer = Callable[[], float]


def _median_call_s(fn: Callable[[], object], reps: int, timer: Timer = time.perf_counter) -> float:
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
    return _median_call_s(lambda: None, 5000)


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


# Time spent timing the cost model's two epoch counts, per case (a full run only:
# --quick leaves the model out, to stay within its minute).
COST_BUDGET_S = 0.5


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
) -> dict[str, object]:
    """Time ``train`` at a quarter of ``epochs`` and at all of them, in alternating
    rounds (a drift of the machine then hits both alike; measured apart, the two
    points differed by 30% on this VM for a loop with no fixed cost), and fit the
    per-run fixed cost and the marginal cost per epoch. {} for runs too short to split."""
    short = short_epochs(epochs)
    if short is None:
        return {}
    counts = (short, epochs)
    plans = []
    for count in counts:
        train(count)  # untimed: a program compiled per epoch count (jax-scan) compiles here
        round_s = calibrate(functools.partial(train, count), COST_BUDGET_S / 8, timer=timer)
        plans.append((count, iterations_for(round_s, overhead_s), round_s))
    round_pair = sum(iterations * round_s for _, iterations, round_s in plans)
    rounds = max(MIN_ROUNDS[False], min(MAX_ROUNDS, math.floor(COST_BUDGET_S / round_pair)))
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


def _timing(benchmark) -> dict[str, float]:  # noqa: ANN001
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


def test_epoch_cost(case, benchmark) -> None:
    backend = case.backend()
    problem = case.problem
    benchmark.extra_info.update(case.identity("benchmark"))
    try:
        # Peak memory covers the case's copy of the data, prepare, warm-up and the rounds.
        with case.measured() as own:
            session = backend.prepare(own)
            start = time.perf_counter()
            session.warmup()
            compile_s = time.perf_counter() - start
            round_s = calibrate(session.train, CALIBRATION_BUDGET_S[case.run.quick])
            overhead_s = timer_overhead_s() + _median_call_s(session.sync, 200)
            iterations = iterations_for(round_s, overhead_s)
            rounds = rounds_for(round_s * iterations, case.run.quick)
            if sizing := case.first_sizing():  # a later process of --processes K
                rounds, iterations = sizing
            result = benchmark.pedantic(session.train, rounds=rounds, iterations=iterations)
            # data-parallel: the last round's slowest and fastest rank, the collective
            ranks = session.rank_stats() if hasattr(session, "rank_stats") else {}
            cost = {}
            if not benchmark.disabled and not case.run.quick:
                cost = cost_model(session.train, problem.epochs, overhead_s)
            harness.close_session(session)
            del session, own
    except Exception as err:  # one backend failing must not hide the others' results
        benchmark.extra_info.update(status="failed", message=harness.first_line(err))
        case.record("benchmark", status="failed", message=harness.first_line(err))
        raise
    verdict = compare(problem, result, case.matmul_precision)
    fields = harness.verdict_fields(problem, result, verdict)
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
    case.record("benchmark", **fields, **extra, timing=_timing(benchmark))
    if not verdict.ok:
        pytest.fail(f"{backend.variant}@{backend.device} on {problem.name}: {verdict.message}")


def _copy_function(method: str, n_bytes: int, threads: int) -> Callable[[], object]:
    """A copy of ``n_bytes`` between two float32 arrays (``*-copy``), or a sum of one
    array of ``n_bytes`` (``*-read``: a streaming read, the floor of an epoch that reads
    X once), done when it returns.

    ``numpy-*`` and ``torch-*`` work in host memory; ``torch-cuda-*`` on CUDA device 0
    and ``jax-cuda-*`` on jax's first GPU, each synchronised within the call. The CUDA
    ones skip, with the reason, where the framework or the GPU is missing.
    """
    count = n_bytes // 4
    read = method.endswith("-read")
    if method.startswith("numpy-"):
        src = np.random.default_rng(0).standard_normal(count, dtype=np.float32)
        if read:
            return lambda: src.sum()
        dst = np.empty_like(src)
        return lambda: np.copyto(dst, src)
    if method.startswith("jax-cuda-"):
        return _jax_cuda(count, method)
    torch = pytest.importorskip("torch", reason=f"torch is not installed: no {method}")
    if not method.startswith("torch-cuda-"):
        harness.apply_threads("torch", threads)
        src_t = torch.randn(count, dtype=torch.float32)
        if read:
            return lambda: src_t.sum()
        dst_t = torch.empty_like(src_t)
        return lambda: dst_t.copy_(src_t)
    if not torch.cuda.is_available():
        pytest.skip(f"CUDA is not available: torch.cuda.is_available() is False: no {method}")
    src_c = torch.randn(count, dtype=torch.float32, device="cuda")
    dst_c = None if read else torch.empty_like(src_c)

    def cuda_op() -> None:
        if dst_c is None:
            src_c.sum()
        else:
            dst_c.copy_(src_c)
        torch.cuda.synchronize()  # the kernel is asynchronous: time it to its end

    return cuda_op


def _jax_cuda(count: int, method: str) -> Callable[[], object]:
    """On jax's first GPU: ``jax-cuda-copy`` copies ``count`` float32 values by a jitted
    ``x * s`` with ``s`` a traced 1.0 (it reads and writes every byte as a copy does,
    and XLA cannot fold it away: ``x * 1`` simplifies to ``x``, which jax may hand back
    without copying); ``jax-cuda-read`` sums them."""
    jax = pytest.importorskip("jax", reason=f"jax is not installed: no {method}")
    import jax.numpy as jnp

    try:
        gpu = jax.devices("gpu")[0]
    except RuntimeError as err:
        pytest.skip(f"CUDA is not available to jax ({harness.first_line(err)}): no {method}")
    # made on the GPU (no host copy of the data, and no random-number temporaries)
    src = jnp.ones((count,), jnp.float32, device=gpu)
    if method.endswith("-read"):
        total = jax.jit(jnp.sum)
        return lambda: total(src).block_until_ready()
    one = jax.device_put(np.float32(1), gpu)
    scale = jax.jit(lambda x, s: x * s)
    return lambda: scale(src, one).block_until_ready()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """The copy benchmarks of the run's devices (``--gdb-devices``, as the conftest
    parses it): the CUDA ones only in a run that uses ``cuda``."""
    if "method" not in metafunc.fixturenames:
        return
    devices = parse(
        devices=metafunc.config.getoption("--gdb-devices"), default_devices=SMOKE_DEVICES
    ).devices
    methods = [m for m, _ in harness.copy_methods(devices)]
    metafunc.parametrize("method", methods)


@pytest.mark.benchmark(group="memory-bandwidth", warmup=False)
def test_memory_bandwidth(method, benchmark, run_config, record_log) -> None:
    """The copy bandwidth (bytes read + written per second) and the read bandwidth
    (bytes read per second) of the host's memory, and of the GPU's in a run on
    ``cuda``, for the report."""
    run = run_config
    size = "smoke" if benchmark.disabled else ("quick" if run.quick else "timed")
    device = "cuda" if method in harness.COPY_METHODS["cuda"] else "cpu"
    n_bytes = (DEVICE_COPY_BYTES if device == "cuda" else COPY_BYTES)[size]
    copy = _copy_function(method, n_bytes, run.threads)
    copy()  # first touch of the destination pages; jax compiles its copy
    access = "read" if method.endswith("-read") else "copy"
    benchmark.extra_info.update(kind="bandwidth", method=method, device=device, access=access,
                                bytes=(n_bytes if access == "read" else 2 * n_bytes),
                                threads=run.threads, pid=os.getpid())  # fmt: skip
    benchmark.pedantic(copy, rounds=MIN_ROUNDS[run.quick] * 2, iterations=1)
    del copy  # the arrays: torch's allocator would keep them beside jax's copy
    if device == "cuda" and "torch" in sys.modules:
        gc.collect()
        sys.modules["torch"].cuda.empty_cache()
    if timing := _timing(benchmark):
        record_log.append({"schema": harness.SCHEMA, **benchmark.extra_info, "timing": timing})
