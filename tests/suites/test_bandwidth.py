"""The copy-bandwidth benchmarks of the per-epoch-cost suite: the host's always, the
GPU's only in a run on cuda, skipped with the reason where the GPU cannot be used.
Run as a worker runs them: the suite's pytest session in a subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from suites import machine
from suites.run import workers

ROOT = Path(__file__).parents[2]
BANDWIDTH = str(ROOT / "suites" / "bench" / "test_epoch_cost.py") + "::test_memory_bandwidth"


def suite(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", BANDWIDTH, "-p", "no:cacheprovider", "-rs", *args],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip


def collected(devices: str) -> list[str]:
    proc = suite("--gdb-devices", devices, "--collect-only", "-q")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return re.findall(r"test_memory_bandwidth\[([\w-]+)\]", proc.stdout)


def test_the_gpu_copies_are_collected_only_in_a_run_on_cuda() -> None:
    host = ["numpy-copy", "torch-copy", "numpy-read", "torch-read"]
    assert collected("cpu") == host
    assert collected("cpu,cuda") == [*host, "torch-cuda-copy", "jax-cuda-copy",
                                     "torch-cuda-read", "jax-cuda-read"]  # fmt: skip


@pytest.mark.skipif(machine.gpu_info() is not None, reason="a GPU is here: the copies run")
def test_the_gpu_copies_skip_with_their_reason_where_there_is_no_gpu() -> None:
    proc = suite("--gdb-devices", "cpu,cuda", "-v")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    outcomes = dict(re.findall(r"test_memory_bandwidth\[([\w-]+)\] (PASSED|SKIPPED)", proc.stdout))
    assert outcomes["numpy-copy"] == outcomes["numpy-read"] == "PASSED"
    gpu = ("torch-cuda-copy", "jax-cuda-copy", "torch-cuda-read", "jax-cuda-read")
    assert {outcomes[m] for m in gpu} == {"SKIPPED"}
    reasons = re.findall(r"^SKIPPED \[\d+\] [^:]+:\d+: (.*)$", proc.stdout, re.MULTILINE)
    for method in gpu:
        framework = method.split("-")[0]
        (reason,) = [r for r in reasons if r.endswith(f"no {method}")]
        if not workers.installed(framework):
            assert reason == f"{framework} is not installed: no {method}"
        else:
            assert "CUDA is not available" in reason, reason
