"""The measurements of ``make perf`` beyond a ``gdbench run``: each variant against its
tutorial loop, side by side; the isolation runs; the single-pass comparison against the
two-pass variants and the floors, in alternating rounds in this process."""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from backends import BackendUnavailable, block_rows_of, get_backend
from reports import stats, write
from suites.convergence import compare
from suites.perf.idiomatic import IDIOMATIC
from suites.problems import Problem, preset, synthetic

SWEEP = "100,1000,10000,100000,1000000"


SIDE_BY_SIDE = ("toy", "toy-bias", 10_000, 1_000_000)


ISOLATION_PROCESSES = 3  # processes per variant in each run of the isolation comparison


def problem_of(spec: str | int) -> Problem:
    if isinstance(spec, int):
        return synthetic(spec, 16, 0, epochs=100 if spec < 100_000 else 20)
    return preset(spec)


def side_by_side(problem: Problem, variant: str, rounds: int = 21) -> dict | None:
    """Per-epoch medians of the backend's session and of the tutorial loop, interleaved."""
    if variant == "torch-compile":
        import torch

        # A script compiles one problem per process. The tutorial's step shares one code
        # object across problems here, and dynamo would recompile it dynamic-shaped.
        torch._dynamo.reset()
    try:
        session = get_backend(variant).prepare(problem)
    except BackendUnavailable:
        return None
    run = IDIOMATIC[variant](problem)
    session.warmup()
    for fn in (session.train, run, session.train, run):  # compile, then settle
        result = fn()
    if not compare(problem, result).ok or not compare(problem, session.train()).ok:
        raise RuntimeError(f"{variant} on {problem.name} does not agree with the reference")
    start = time.perf_counter()
    session.train()
    # Whole trainings per sample, enough for ≥ 5 ms, so the timer is negligible.
    repeat = max(1, math.ceil(0.005 / max(time.perf_counter() - start, 1e-9)))
    samples: dict[str, list[float]] = {"harness": [], "tutorial": []}
    for _ in range(rounds):
        for name, fn in (("harness", session.train), ("tutorial", run)):
            start = time.perf_counter()
            for _ in range(repeat):
                fn()
            samples[name].append((time.perf_counter() - start) / repeat / problem.epochs)
    harness_s = statistics.median(samples["harness"])
    tutorial_s = statistics.median(samples["tutorial"])
    # each round of one next to the same round of the other: the ratio of each pair,
    # its median and its distribution-free 95% interval (reports/stats.py)
    paired = stats.paired_ratio(samples["harness"], samples["tutorial"], stats.LEVEL)
    return {
        "problem": write.problem_label(problem.name, problem.n_samples, problem.n_features),
        "variant": variant,
        "gdbench": harness_s,
        "tutorial loop": tutorial_s,
        "ratio": paired.ratio,
        "ratio_ci_low": paired.low,
        "ratio_ci_high": paired.high,
    }


def run_benchmark(out: Path, quick: bool, *extra: str) -> Path:
    args = [sys.executable, "-m", "suites.run.cli", "run", "--backends", "all", "--out", str(out),
            *extra]  # fmt: skip
    args += ["--quick"] if quick else ["--sizes", SWEEP]
    subprocess.run(args, check=True)
    return out / "benchmark.json"


BLOCKED_N = 1_000_000


BLOCKED_EPOCHS = 20


BLOCKED_ROUNDS = 15


# The two-pass CPU variants of each framework, against which its blocked one is judged.
TWO_PASS = {
    "numpy": ("numpy-manual",),
    "torch": ("torch-autograd", "torch-nn", "torch-manual", "torch-compile"),
    "jax": ("jax-grad", "jax-manual", "jax-scan"),
}


# Other block sizes timed beside the chosen one (the rule's evidence), rows at 16 float32.
BLOCK_SWEEP = (8192, 16384, 32768, 65536)


# Untimed pause before each timed call of the comparison: a framework's worker threads
# spin after its call before they sleep (OpenBLAS's, OpenMP's and XLA's pools) and would
# take a core from the next call in the rounds (docs/single-pass.md). In a gdbench run
# each variant has a process of its own.
SETTLE_S = 0.2


def _block_cost(variant: str, threads: int, n: int = 2048, epochs: int = 5) -> float:
    """Seconds one block costs ``variant`` beyond its arithmetic: the per-epoch time of
    blocks of a single row (the arithmetic of a row is nanoseconds), per block. What a
    block of any size pays for its calls (numpy, torch) or loop iteration (jax)."""
    from suites import machine

    backend = get_backend(variant, block_rows=1)
    machine.apply_threads(backend.framework, threads)
    session = backend.prepare(synthetic(n, 16, 0, epochs=epochs))
    session.warmup()
    times = []
    for _ in range(5):
        start = time.perf_counter()
        session.train()
        times.append(time.perf_counter() - start)
    return statistics.median(times) / epochs / n


def _x_reads(problem: Problem, threads: int) -> dict[str, object]:
    """Reads of the problem's own X (a sum over the same N × D float32 array the
    variants train on), one per epoch of a training, in every framework installed here
    that sums in parallel: the floor of this problem as the issue defines it, "reading
    X once (X.sum())", per epoch. As in a training, the first read of a round finds X
    wherever the other variants' rounds left it and the others find it in whatever
    cache holds it. NumPy is left out: its sum runs on one core (pairwise, in one
    thread), a floor of its own implementation, not of the machine."""
    import numpy as np

    from suites import machine

    X = np.ascontiguousarray(problem.X, dtype=np.float32)
    reads: dict[str, object] = {}
    try:
        import torch
    except ImportError:
        pass
    else:
        machine.apply_threads("torch", threads)
        X_t = torch.from_numpy(X.copy())  # a copy of its own, as a torch session holds
        reads["torch-read-X"] = lambda: [X_t.sum() for _ in range(problem.epochs)]
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        pass
    else:
        X_j = jax.device_put(X)
        total = jax.jit(jnp.sum)
        total(X_j).block_until_ready()  # compiled outside the rounds
        reads["jax-read-X"] = lambda: [
            total(X_j).block_until_ready() for _ in range(problem.epochs)
        ]
    return reads


def beyond_cache_n(llc_bytes: int) -> int:
    """Rows of 16 float32 features whose X is at least twice the last-level cache
    (whole millions): the size where an epoch must stream X from memory."""
    return math.ceil(2 * llc_bytes / 64 / 1_000_000) * 1_000_000


def blocked_comparison(
    n: int = BLOCKED_N, rounds: int = BLOCKED_ROUNDS, epochs: int = BLOCKED_EPOCHS,
    block_sweep: bool = True,
) -> tuple[pd.DataFrame, dict]:  # fmt: skip
    """Every CPU variant of each framework at n × 16 float32, the reads of X itself
    (:func:`_x_reads`) and the two streaming reads of the run's read bandwidth (256 MiB
    sums, numpy and torch), timed in this process in alternating rounds, so that a drift
    of the machine (or another user's load) hits them all alike.

    Two floors come out of the same rounds. The floor the issue defines (``floor_s``):
    one read of X itself, the fastest of the frameworks' sums; X is the problem's whole
    working set, and where the last-level cache holds it (64 MB of X at 1,000,000
    rows) that read comes from the cache. The memory floor (``memory_floor_s``): N·D·4
    bytes at the best 256 MiB read bandwidth, a buffer no cache holds, which is what
    the report's "Distance to the one-pass floor" table uses.

    Returns one row per variant (per-epoch median, fraction of each floor) and what the
    section says besides: both floors and the reads behind them, the block size, the
    cost of one block, and the load average before and after."""
    import pytest

    from backends.blocking import last_level_bytes
    from suites import machine
    from suites.bench.bandwidth import COPY_BYTES, copy_function

    threads = len(machine.usable_cores())
    problem = synthetic(n, 16, 0, epochs=epochs)
    chosen = block_rows_of("numpy-blocked", 16, "float32")
    trains: dict[str, object] = {}
    sweep: dict[str, tuple[str, int]] = {}  # name -> (variant, block rows), not the rule's
    for framework, two_pass in TWO_PASS.items():
        single = f"{framework}-blocked"
        other_sizes = [(f"{single}:{r}", r) for r in BLOCK_SWEEP if r != chosen and block_sweep]
        for name, size in [*((v, None) for v in (*two_pass, single)), *other_sizes]:
            variant = name.split(":")[0]
            try:
                backend = get_backend(variant, block_rows=size)
            except BackendUnavailable:
                continue
            machine.apply_threads(backend.framework, threads)
            session = backend.prepare(problem)
            session.warmup()
            if not compare(problem, session.train()).ok:
                raise RuntimeError(f"{name} at {n}×16 does not agree with the reference")
            trains[name] = session.train
            if size is not None:
                sweep[name] = (variant, size)
    reads: dict[str, object] = {}
    for method in ("numpy-read", "torch-read"):
        try:
            reads[method] = copy_function(method, COPY_BYTES["timed"], threads)
        except pytest.skip.Exception:
            continue
    x_reads = _x_reads(problem, threads)
    load_before = os.getloadavg()
    samples: dict[str, list[float]] = {k: [] for k in [*trains, *reads, *x_reads]}
    calls = [*trains.items(), *x_reads.items(), *reads.items()]
    for _, fn in calls:  # settle: caches, allocator
        fn()  # type: ignore[operator]
    for _ in range(rounds):
        for name, fn in calls:
            time.sleep(SETTLE_S)  # the previous call's spinning threads go to sleep
            start = time.perf_counter()
            fn()  # type: ignore[operator]
            samples[name].append(time.perf_counter() - start)
    load_after = os.getloadavg()
    read_gbps = {m: COPY_BYTES["timed"] / statistics.median(samples[m]) / 1e9 for m in reads}
    x_read_s = {m: statistics.median(samples[m]) / epochs for m in x_reads}
    memory_floor_s = n * 16 * 4 / (max(read_gbps.values()) * 1e9)
    # the floor: X itself read once; the memory floor where no framework sums X
    floor_s = min(x_read_s.values(), default=memory_floor_s)
    rows: list[dict[str, object]] = []
    for variant in [v for v in trains if v not in sweep]:
        per_epoch = statistics.median(samples[variant]) / epochs
        rows.append({
            "framework": variant.split("-")[0],
            "variant": variant,
            "form": "blocked" if variant.endswith("-blocked") else "two-pass",
            "per_epoch_s": per_epoch,
            "floor_fraction": floor_s / per_epoch,
            "memory_floor_fraction": memory_floor_s / per_epoch,
        })  # fmt: skip
    blocked = [v for v in trains if v.endswith("-blocked")]
    sizes = [
        {"variant": v, "block_rows": chosen, "per_epoch_s": statistics.median(samples[v]) / epochs}
        for v in blocked
    ]
    sizes += [{"variant": v, "block_rows": r,
               "per_epoch_s": statistics.median(samples[name]) / epochs}
              for name, (v, r) in sweep.items()]  # fmt: skip
    info = {
        "n": n, "epochs": epochs, "rounds": rounds, "threads": threads,
        "read_gbps": read_gbps, "x_read_s": x_read_s, "floor_s": floor_s,
        "llc_bytes": last_level_bytes(),
        "memory_floor_s": memory_floor_s, "load": (load_before, load_after),
        "block_rows": chosen, "block_sizes": sizes,
        "block_cost_s": {v: _block_cost(v, threads) for v in blocked} if block_sweep else {},
    }  # fmt: skip
    return pd.DataFrame(rows), info


BEYOND_ROUNDS, BEYOND_EPOCHS = 5, 5  # each epoch streams hundreds of MB: fewer suffice


def beyond_cache(quick: bool = False) -> tuple[pd.DataFrame, dict] | None:
    """The same comparison (no block-size sweep) at :func:`beyond_cache_n` rows, where
    X no longer fits in the last-level cache; None where the OS does not give its size
    (or in a quick run)."""
    from backends.blocking import last_level_bytes

    llc = last_level_bytes()
    if llc is None or quick:
        return None
    table, info = blocked_comparison(beyond_cache_n(llc), BEYOND_ROUNDS, BEYOND_EPOCHS,
                                     block_sweep=False)  # fmt: skip
    return table, info | {"llc_bytes": llc}
