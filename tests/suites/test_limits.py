"""The checks before a run (suites/run/limits.py): the memory estimates against what a
case allocates, the 90% rule, GPU memory, and K against cores and rows."""

from __future__ import annotations

import math
import tracemalloc

import pytest

from backends import (
    get_backend,
)
from suites.config import ConfigError, RunConfig
from suites.run import limits
from suites.run.limits import check_memory, check_ranks, free_gpu_memory
from tests.conftest import free_memory_nvidia_smi


def test_the_memory_estimate_bounds_what_a_case_really_allocates() -> None:
    cfg = RunConfig(problems=("sweep",), sizes=(200_000,), features=16, backends=("numpy-manual",))
    tracemalloc.start()
    try:
        problem = cfg.build_problems()[0]
        problem.reference  # noqa: B018 (computes and caches the float64 reference)
        backend = get_backend("numpy-manual")
        backend.prepare(problem).train()
        backend.prepare(problem, record_params=True).train()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    estimate = limits.case_bytes(cfg)
    assert peak <= estimate <= 4 * peak, (peak, estimate)
    assert limits.estimate_bytes(cfg) >= estimate


def test_check_memory_refuses_exactly_above_ninety_percent_of_what_is_free() -> None:
    run = RunConfig(problems=("sweep",), sizes=(2_000_000,))
    need = limits.estimate_bytes(run)
    check_memory(run, available=math.ceil(need / 0.9))  # just enough
    with pytest.raises(ConfigError) as info:
        check_memory(run, available=math.floor(need / 0.9) - 1)
    assert f"needs about {need / 1e9:.1f} GB of memory" in str(info.value)
    assert f"has {(math.floor(need / 0.9) - 1) / 1e9:.1f} GB available" in str(info.value)


GPU_RUN = RunConfig(problems=("sweep",), sizes=(50_000_000,), devices=("cpu", "cuda"))


GIB = 2**30


@pytest.fixture
def frameworks_installed(monkeypatch):
    """torch and jax count as installed for the GPU estimate, in every tox environment."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: object() if n in ("torch", "jax") else real(n)
    )


def test_a_run_too_large_for_the_gpu_is_refused_with_the_estimate(frameworks_installed) -> None:
    # Each of torch and jax: 1 GiB fixed, X and y (5·10⁷ × 17 float32 = 3.4 GB), six
    # epoch temporaries of 5·10⁷ floats (1.2 GB), 20 epochs of losses and parameters.
    per_framework = GIB + 50_000_000 * 17 * 4 + 6 * 50_000_000 * 4 + 20 * 19 * 4
    # Workers run one at a time: the peak is one framework's (above the copy worker's
    # 2 GiB fixed and 2 GiB arrays).
    with pytest.raises(ConfigError) as info:
        check_memory(GPU_RUN, available=10**12, gpu_free=6 * 10**9)
    message = str(info.value)
    assert f"needs about {per_framework / 1e9:.1f} GB of GPU memory (jax and torch" in message
    assert "the GPU has 6.0 GB free" in message
    check_memory(GPU_RUN, available=10**12, gpu_free=7 * 10**9)  # 5.7 GB fit in 90% of 7
    # --isolate none: one process holds both frameworks and the copy arrays
    together = 2 * per_framework + 2 * GIB + 2 * GIB
    with pytest.raises(ConfigError, match=f"needs about {together / 1e9:.1f} GB of GPU"):
        check_memory(GPU_RUN, available=10**12, gpu_free=7 * 10**9, isolate="none")


@pytest.mark.parametrize(
    "run",
    [
        RunConfig(problems=("sweep",), sizes=(10_000_000,), devices=("cpu",)),
        RunConfig(problems=("sweep",), sizes=(10_000_000,), devices=("cuda",),
                  backends=("numpy-manual",)),
    ],
    ids=["cpu-only", "no-cuda-variant"],
)  # fmt: skip
def test_gpu_memory_is_not_asked_of_a_run_that_does_not_use_the_gpu(run) -> None:
    check_memory(run, available=10**12, gpu_free=1)


def test_free_gpu_memory_is_read_for_the_first_visible_gpu(tmp_path, monkeypatch) -> None:
    env = free_memory_nvidia_smi(tmp_path / "bin", {"0": 1024, "3": 2048})
    monkeypatch.setenv("PATH", env["PATH"])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert free_gpu_memory() == 1024 * 2**20
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    assert free_gpu_memory() == 2048 * 2**20


def test_the_memory_estimates_cover_the_copy_bandwidth_arrays(frameworks_installed) -> None:
    from suites.bench.bandwidth import COPY_BYTES, DEVICE_COPY_BYTES

    for quick, size in ((False, "timed"), (True, "quick")):
        run = RunConfig(quick=quick, devices=("cuda",))
        assert limits.bandwidth_bytes(run) == 2 * COPY_BYTES[size]
        assert limits.device_bandwidth_bytes(run) == 2 * DEVICE_COPY_BYTES[size]
        # tiny problems: a timed run needs room for the copy worker (two frameworks'
        # fixed cost and one copy's arrays), a check only for one framework's worker
        tiny = RunConfig(problems=("toy",), quick=quick, devices=("cuda",))
        assert limits.device_bytes(tiny) == 2 * GIB + 2 * DEVICE_COPY_BYTES[size]
        assert GIB < limits.device_bytes(tiny, timing=False) < 1.01 * GIB


def test_uninstalled_frameworks_need_no_gpu_memory(monkeypatch) -> None:
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    assert limits.cuda_frameworks(GPU_RUN) == []
    check_memory(GPU_RUN, available=10**12, gpu_free=1)


def test_k_above_the_cores_or_the_gpus_is_refused_with_the_numbers() -> None:
    run = RunConfig(backends=("torch-ddp",), problems=("toy",), ranks=(1, 3))
    with pytest.raises(ConfigError, match=r"--ranks 3 needs 3 cores .* may use 2"):
        check_ranks(run, cores=2)
    with pytest.raises(ConfigError, match=r"--ranks 3 on cuda needs 3 GPUs; 1 visible"):
        check_ranks(RunConfig(backends=("jax-sharded",), devices=("cuda",), problems=("toy",),
                                ranks=(3,)), cores=8, gpus=1)  # fmt: skip
    # K above a problem's rows is no error: that case is not run (RunConfig.ks)
    check_ranks(RunConfig(backends=("torch-ddp",), problems=("toy",), ranks=(5,)), cores=8)
    # not a data-parallel run: K is not checked at all
    check_ranks(RunConfig(backends=("numpy-manual",), ranks=(64,)), cores=2)
