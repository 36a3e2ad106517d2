"""Failures and interruptions: clear answers, nothing measured is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from backends import list_backends
from tests.conftest import free_memory_nvidia_smi

ROOT = Path(__file__).parents[2]


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
        "--out", str(out), PYTEST_ADDOPTS="-p tests.end_to_end.fault_plugin",
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


def test_gdbench_refuses_a_run_the_gpu_cannot_hold_before_starting(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="torch is not installed: no torch variant on cuda")
    env = free_memory_nvidia_smi(tmp_path / "bin", {"0": 1024})
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
