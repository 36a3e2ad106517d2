"""Failures, interruptions and memory limits: clear answers, nothing measured is lost."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pandas as pd
import pytest

from backends import get_backend, list_backends
from suites.config import ConfigError, RunConfig
from suites.run import limits
from suites.run.limits import check_memory, free_gpu_memory

# gdbench's own machinery: runs in the numpy-only and all-frameworks environments
# (tox.ini), not again in each single-framework one.
pytestmark = pytest.mark.harness

ROOT = Path(__file__).parents[1]


def gdbench_process(*args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "suites.run.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )


def test_one_failing_backend_is_reported_and_the_others_still_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    # numpy-manual and one cheap variant of each other installed framework
    available = {r.variant for r in list_backends(("cpu",)) if r.available}
    variants = [v for v in ("numpy-manual", "torch-manual", "jax-manual") if v in available]
    proc = gdbench_process(
        "run", "--quick", "--problems", "toy,toy-20", "--backends", ",".join(variants),
        "--out", str(out), PYTEST_ADDOPTS="-p tests.fault_plugin",
    )  # fmt: skip
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 1, stdout + stderr
    assert "Traceback" not in stdout + stderr
    assert "failed: numpy-manual@cpu on toy: RuntimeError: simulated framework error" in stdout
    assert "second line" not in stdout
    results = pd.read_csv(out / "results.csv")
    failed = (results["variant"] == "numpy-manual") & (results["problem"] == "toy")
    others = results[~failed]
    # numpy-manual on toy-20 at least (and every other installed backend on both)
    assert ((others["variant"] == "numpy-manual") & (others["problem"] == "toy-20")).any()
    assert (others["status"] == "agree").all() and (others["per_epoch_median_s"] > 0).all()
    report = (out / "report.md").read_text()
    assert "## Failures" in report and "RuntimeError: simulated framework error" in report


def test_sigint_stops_the_run_keeps_finished_cases_and_writes_a_partial_report(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    proc = gdbench_process(
        "run", "--problems", "sweep", "--sizes", "100,1000,10000,100000,200000",
        "--backends", "numpy-manual", "--out", str(out),
    )  # fmt: skip
    records = out / "records.jsonl"

    def finished() -> list[dict]:
        lines = [json.loads(line) for line in records.read_text().splitlines()]
        return [r for r in lines if r["kind"] in ("convergence", "benchmark")]

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if records.exists() and len(finished()) >= 2:
            break  # two finished cases are on disk (besides the run's and worker's headers)
        time.sleep(0.05)
    else:
        proc.kill()
        raise AssertionError("no results appeared on disk")
    finished_before = len(finished())
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert time.monotonic() - started < 30  # promptly
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr
    cases = finished()
    # nothing lost, the case in hand (and at most one more being recorded) finished,
    # and the run stopped: 5 sizes × (convergence + benchmark) would be 10 cases
    assert finished_before <= len(cases) <= finished_before + 2
    assert len(cases) < 10
    assert f"{len(cases)} finished cases are in {records}" in stderr
    assert "Partial report" in (out / "report.md").read_text()
    again = subprocess.run(
        [sys.executable, "-m", "suites.run.cli", "report", str(out), "--out", str(tmp_path / "re")],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "Partial report" in (tmp_path / "re" / "report.md").read_text()


def test_sigint_during_timing_marks_the_benchmark_json_interrupted(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = gdbench_process(
        "run", "--problems", "sweep", "--sizes", "100,1000,10000,100000,200000,400000",
        "--backends", "numpy-manual", "--out", str(out),
    )  # fmt: skip
    records = out / "records.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait for the first timed benchmark on disk
        if records.exists() and '"kind": "benchmark"' in records.read_text():
            break
        time.sleep(0.05)
    else:
        proc.kill()
        raise AssertionError("no benchmark appeared on disk")
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in stdout + stderr
    doc = json.loads((out / "benchmark.json").read_text())  # what pytest-benchmark saved
    assert doc["gdbench"]["interrupted"] is True
    # no worker starts after the stop: the copy-bandwidth worker, last in line, never ran
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    assert not [r for r in lines if r["kind"] == "bandwidth" or r.get("worker") == "bandwidth"]
    report = subprocess.run(
        [sys.executable, "-m", "suites.run.cli", "report", str(out / "benchmark.json"),
         "--out", str(tmp_path / "re")],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert report.returncode == 0, report.stderr
    assert "Partial report" in (tmp_path / "re" / "report.md").read_text()


def test_two_runs_given_the_same_folder_never_share_it(tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = ("check", "--problems", "toy", "--backends", "numpy-manual", "--out", str(out))
    first, second = gdbench_process(*args), gdbench_process(*args)
    results = [p.communicate(timeout=120) + (p.returncode,) for p in (first, second)]
    codes = sorted(r[2] for r in results)
    assert codes == [0, 2], results
    loser = next(r for r in results if r[2] == 2)
    assert "another gdbench run is using this folder" in loser[1] or "not empty" in loser[1]


def test_a_problem_too_large_for_memory_is_refused_with_the_estimate(tmp_path: Path) -> None:
    proc = gdbench_process(
        "run", "--sizes", "4000000000", "--features", "64", "--out", str(tmp_path / "x")
    )
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert len(stderr.strip().splitlines()) == 1
    assert "--sizes up to 4,000,000,000 with --features 64 needs about" in stderr
    assert "GB available" in stderr
    assert not (tmp_path / "x").exists()  # refused before anything was made


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


def _fake_nvidia_smi(folder: Path, free_mib_by_id: dict[str, int]) -> dict[str, str]:
    """An nvidia-smi on PATH that prints the free MiB of the GPU given by --id (0 else)."""
    folder.mkdir()
    cases = "".join(f"    *--id={k}*) echo {v} ;;\n" for k, v in free_mib_by_id.items())
    script = folder / "nvidia-smi"
    script.write_text(
        f'#!/bin/sh\ncase "$*" in\n{cases}    *) echo {free_mib_by_id["0"]} ;;\nesac\n'
    )
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{folder}:{os.environ['PATH']}"}


def test_free_gpu_memory_is_read_for_the_first_visible_gpu(tmp_path, monkeypatch) -> None:
    env = _fake_nvidia_smi(tmp_path / "bin", {"0": 1024, "3": 2048})
    monkeypatch.setenv("PATH", env["PATH"])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert free_gpu_memory() == 1024 * 2**20
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    assert free_gpu_memory() == 2048 * 2**20


def test_gdbench_refuses_a_run_the_gpu_cannot_hold_before_starting(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="torch is not installed: no torch variant on cuda")
    env = _fake_nvidia_smi(tmp_path / "bin", {"0": 1024})
    env.pop("CUDA_VISIBLE_DEVICES", None)
    proc = subprocess.run(
        [sys.executable, "-m", "suites.run.cli", "check", "--devices", "cuda", "--problems",
         "sweep", "--sizes", "10000000", "--backends", "torch-nn", "--out", str(tmp_path / "x")],
        capture_output=True, text=True, env={**env, "PYTHONPATH": str(ROOT)}, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "GB of GPU memory (torch:" in proc.stderr and "the GPU has 1.1 GB free" in proc.stderr
    assert not (tmp_path / "x").exists()


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
