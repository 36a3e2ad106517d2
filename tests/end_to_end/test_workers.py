"""Worker processes: each variant in its own process, crashes and hangs contained, rounds
of several processes pooled, peak memory per case. Run as a user would: the gdbench
command in a subprocess, reading its exit status and the files it wrote."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backends import case_label, is_parallel, list_backends, plugin_variants
from suites import records as suite_records
from suites.bench import bandwidth
from suites.config import RunConfig
from suites.run import workers
from tests.conftest import gdbench, records
from tests.reports.markdown import section

ROOT = Path(__file__).parents[2]


FAULTS = "-p tests.end_to_end.worker_faults"


# Cheap variants of each framework, as far as they are installed here.
AVAILABLE = [r.variant for r in list_backends(("cpu",)) if r.available]


CHEAP = [v for v in ("numpy-manual", "torch-manual", "jax-manual") if v in AVAILABLE]


def pids_by_variant(recs: list[dict]) -> dict[str, set[int]]:
    out: dict[str, set[int]] = {}
    for r in recs:
        if r["kind"] in ("convergence", "benchmark"):
            out.setdefault(r["variant"], set()).add(r["pid"])
    return out


def process_gone(pid: int, wait_s: float = 5.0) -> bool:
    """Whether ``pid`` has ended (a zombie waiting for a parent to reap it has ended)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def test_a_fast_wrong_backend_fails_instead_of_winning(tmp_path: Path) -> None:
    # numpy-manual trains one epoch and claims twenty: by far the fastest, and wrong.
    out = tmp_path / "run"
    others = [v for v in CHEAP if v != "numpy-manual"][:1]
    proc = gdbench(
        "run", "--quick", "--problems", "toy-20", "--backends", ",".join(["numpy-manual", *others]),
        "--out", str(out), PYTEST_ADDOPTS=FAULTS, GDBENCH_TEST_FAULT="wrong:toy-20",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "numpy-manual@cpu on toy-20: disagree at epoch 2" in proc.stdout
    timed = {r["variant"]: r for r in records(out) if r["kind"] == "benchmark"}
    assert timed["numpy-manual"]["status"] == "disagree" and timed["numpy-manual"]["timing"]
    results = pd.read_csv(out / "results.csv").set_index("variant")
    wrong = results.loc["numpy-manual"]
    assert wrong["status"] == "disagree" and pd.isna(wrong["per_epoch_median_s"])
    assert wrong["fastest"] != "yes"
    report = (out / "report.md").read_text()
    summary = section(report, "Summary")
    assert "1 of 2 runs agree" in summary and "1 do not (see Convergence)" in summary
    disagreeing = section(report, "Convergence")
    assert "| toy-20 (20×1) | numpy-manual@cpu | float32 | disagree at epoch 2 |" in disagreeing
    row = next(x for x in summary.splitlines() if x.startswith("| toy-20"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    for other in others:  # the right one wins, and the wrong one is no runner-up
        assert results.loc[other, "status"] == "agree" and results.loc[other, "fastest"] == "yes"
        assert cells[1] == other and cells[3] == ""


def test_a_worker_that_aborts_fails_its_cases_with_the_signal_and_the_run_goes_on(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    variants = ",".join(CHEAP[:2])
    proc = gdbench(
        "run", "--quick", "--problems", "toy,toy-20", "--backends", variants, "--out", str(out),
        PYTEST_ADDOPTS=FAULTS, GDBENCH_TEST_FAULT="abort:toy-20",
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "worker numpy-manual@cpu" in proc.stdout and "killed by SIGABRT" in proc.stdout
    recs = records(out)
    numpy_cases = {(r["kind"], r["problem"]): r for r in recs
                   if r.get("variant") == "numpy-manual" and "status" in r}  # fmt: skip
    # the convergence suite runs first: toy finished before toy-20 aborted
    assert numpy_cases[("convergence", "toy")]["status"] == "agree"
    for key in (("convergence", "toy-20"), ("benchmark", "toy"), ("benchmark", "toy-20")):
        assert numpy_cases[key]["status"] == "failed"
        assert numpy_cases[key]["message"] == "worker killed by SIGABRT"
    report = (out / "report.md").read_text()
    assert "worker killed by SIGABRT" in report
    # the workers after it ran: the copy bandwidth, and the other variant if installed
    copies = [r for r in recs if r["kind"] == "bandwidth"]
    assert copies and copies[0]["pid"] != numpy_cases[("convergence", "toy")]["pid"]
    torch_ran = workers.installed("torch")
    expected = [m for m in bandwidth.COPY_METHODS["cpu"] if torch_ran or m.startswith("numpy")]
    assert [(r["method"], r["device"]) for r in copies] == [(m, "cpu") for m in expected]
    results = pd.read_csv(out / "results.csv")
    for other in CHEAP[1:2]:
        mine = results[results["variant"] == other]
        assert len(mine) == 2 and (mine["status"] == "agree").all()
    # the crashed cases are rows of results.csv too: failed, with the signal, no timing
    crashed = results[results["variant"] == "numpy-manual"].set_index("problem")
    assert sorted(crashed.index) == ["toy", "toy-20"]
    assert (crashed["status"] == "failed").all()
    assert (crashed["message"] == "worker killed by SIGABRT").all()
    assert crashed["per_epoch_median_s"].isna().all()
    end = recs[-1]
    assert end["kind"] == "end" and end["workers"][0]["reason"] == "worker killed by SIGABRT"


def test_a_hanging_worker_is_stopped_at_the_timeout_with_everything_it_started(
    tmp_path: Path,
) -> None:
    out, pidfile = tmp_path / "run", tmp_path / "pids"
    proc = gdbench(
        "check", "--problems", "toy,toy-20", "--backends", "numpy-manual", "--timeout", "10",
        "--out", str(out), PYTEST_ADDOPTS=FAULTS, GDBENCH_TEST_FAULT="hang:toy-20",
        GDBENCH_TEST_FAULT_PIDFILE=str(pidfile),
    )  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    recs = records(out)
    conv = {r["problem"]: r for r in recs if r["kind"] == "convergence"}
    assert conv["toy"]["status"] == "agree"
    assert conv["toy-20"]["status"] == "failed"
    assert conv["toy-20"]["message"] == "timed out after 10 s"
    worker, child = map(int, pidfile.read_text().split())
    assert worker == recs[-1]["workers"][0]["pid"]
    assert process_gone(child)  # the worker's own child went with it


def test_sigterm_then_sigint_stops_a_hanging_run_at_once_with_a_partial_report(
    tmp_path: Path,
) -> None:
    out, pidfile = tmp_path / "run", tmp_path / "pids"
    proc = subprocess.Popen(
        [sys.executable, "-m", "suites.run.cli", "check", "--problems", "toy,toy-20",
         "--backends", "numpy-manual", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTEST_ADDOPTS": FAULTS,
             "GDBENCH_TEST_FAULT": "hang:toy-20", "GDBENCH_TEST_FAULT_PIDFILE": str(pidfile)},
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while not pidfile.exists():  # the worker is now stuck in toy-20
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # asks the worker to stop after its case: it never ends
    time.sleep(1)
    assert proc.poll() is None
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)  # the second signal: no more waiting
    stdout, stderr = proc.communicate(timeout=60)
    assert time.monotonic() - started < 10
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr
    assert process_gone(int(pidfile.read_text().split()[1]))
    conv = [r for r in records(out) if r["kind"] == "convergence"]
    assert [r["problem"] for r in conv] == ["toy"]  # the unfinished case is not a failure
    assert "Partial report" in (out / "report.md").read_text()


def test_every_variant_runs_in_its_own_process_and_isolate_none_in_one(tmp_path: Path) -> None:
    # two variants of one framework where there is one, so that a worker per framework
    # would show
    variants = CHEAP + [v for v in ("torch-autograd", "jax-grad") if v in AVAILABLE][:1]
    args = ("run", "--quick", "--problems", "toy", "--backends", ",".join(variants))
    isolated = gdbench(*args, "--out", str(tmp_path / "variant"))
    together = gdbench(*args, "--isolate", "none", "--out", str(tmp_path / "none"))
    assert isolated.returncode == together.returncode == 0, isolated.stderr + together.stderr

    recs = records(tmp_path / "variant")
    pids = pids_by_variant(recs)
    assert set(pids) == set(variants)
    assert all(len(p) == 1 for p in pids.values())  # one process per variant...
    assert len(set.union(*pids.values())) == len(variants)  # ...each its own
    bandwidth_pids = {r["pid"] for r in recs if r["kind"] == "bandwidth"}
    assert len(bandwidth_pids) == 1 and bandwidth_pids.isdisjoint(set.union(*pids.values()))
    results = pd.read_csv(tmp_path / "variant" / "results.csv")
    assert results["pid"].nunique() == len(variants)  # results.csv says which worker measured
    assert "`--isolate variant`" in (tmp_path / "variant" / "report.md").read_text()

    recs = records(tmp_path / "none")
    assert len(set.union(*pids_by_variant(recs).values())) == 1
    assert {r["pid"] for r in recs if r["kind"] == "bandwidth"} <= set.union(
        *pids_by_variant(recs).values()
    )
    assert "`--isolate none`" in (tmp_path / "none" / "report.md").read_text()


@pytest.mark.skipif(
    not {"torch-manual", "torch-autograd"} <= set(AVAILABLE), reason="needs torch installed"
)
def test_framework_isolation_shares_a_process_within_a_framework_only(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = gdbench("check", "--problems", "toy", "--isolate", "framework", "--out", str(out),
                   "--backends", "numpy-manual,torch-manual,torch-autograd")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pids = pids_by_variant(records(out))
    assert pids["torch-manual"] == pids["torch-autograd"]
    assert pids["numpy-manual"].isdisjoint(pids["torch-manual"])


def test_several_processes_pool_their_rounds_into_one_benchmark(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = gdbench("run", "--quick", "--problems", "toy", "--backends", "numpy-manual",
                   "--processes", "3", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    timed = [r for r in records(out) if r["kind"] == "benchmark"]
    assert len(timed) == 3 and len({r["pid"] for r in timed}) == 3
    # each process times as many rounds of as many trainings as the first: equal weights
    assert len({(r["timing"]["rounds"], r["iterations"]) for r in timed}) == 1
    doc = json.loads((out / "benchmark.json").read_text())
    (bench,) = [b for b in doc["benchmarks"] if b["group"] == "epoch-cost"]
    data = [v for r in timed for v in r["timing"]["data"]]
    assert bench["stats"]["rounds"] == len(data) == sum(r["timing"]["rounds"] for r in timed)
    assert bench["stats"]["median"] == pytest.approx(float(np.median(data)))
    medians = [r["timing"]["median"] for r in timed]
    results = pd.read_csv(out / "results.csv")
    row = results.iloc[0]
    assert row["processes"] == 3
    spread = (max(medians) - min(medians)) / np.median(medians)
    assert row["process_spread"] == pytest.approx(spread)
    assert "between rounds / between processes" in (out / "report.md").read_text()


@pytest.fixture(scope="module")
def million(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every installed variant once at 1 000 000 x 16 float32 (X alone: 64 MB)."""
    out = tmp_path_factory.mktemp("million") / "run"
    proc = gdbench("run", "--quick", "--backends", "all", "--problems", "sweep",
                   "--sizes", "1000000", "--epochs", "2", "--out", str(out),
                   timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.mark.slow
def test_every_variant_needs_at_least_its_data_and_a_copy_of_x_shows(million: Path) -> None:
    results = pd.read_csv(million / "results.csv")
    x_bytes = 1_000_000 * 16 * 4
    labels = {case_label(v, k) for v in AVAILABLE for k in ((1, 2) if is_parallel(v) else (1,))}
    labels |= set(plugin_variants())  # a plugin installed here is part of all too
    assert set(results["variant"]) == labels
    assert (results["data_bytes"] == x_bytes + 1_000_000 * 4).all()
    assert (results["peak_host_bytes"] >= x_bytes).all(), results[["variant", "peak_host_bytes"]]
    by_variant = results.set_index("variant")["peak_host_bytes"]
    # numpy-manual trains on the case's arrays as they are; every single-device torch
    # variant on the CPU copies X into a tensor of its own (torch_backend.py: _copy). A
    # data-parallel rank 0 copies only its shard (half of X at K = 2).
    assert by_variant["numpy-manual"] < 1.5 * x_bytes
    for variant in (v for v in AVAILABLE if v.startswith("torch-") and not is_parallel(v)):
        assert by_variant[variant] >= 2 * x_bytes, variant
    for variant in (v for v in AVAILABLE if v.startswith("torch-") and is_parallel(v)):
        assert by_variant[f"{variant}-x2"] >= 1.5 * x_bytes, variant


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores to pin to fewer")
def test_threads_pin_each_worker_to_that_many_cores_for_every_framework(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = gdbench("check", "--problems", "toy", "--backends", ",".join(CHEAP),
                   "--threads", "1", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    first_core = sorted(os.sched_getaffinity(0))[:1]
    headers = [r for r in records(out) if r["kind"] == "worker"]
    assert len(headers) == len(CHEAP)
    for header in headers:
        assert header["machine"]["affinity"] == first_core, header["worker"]
        # a worker with no CUDA case was started unable to see a GPU
        assert header["machine"]["allocator_env"]["JAX_PLATFORMS"] == "cpu"
        assert header["machine"]["allocator_env"]["CUDA_VISIBLE_DEVICES"] == ""
    # the setting reached every framework, read back from each framework itself
    cases = [r for r in records(out) if r["kind"] == "convergence"]
    assert sorted(r["variant"] for r in cases) == sorted(CHEAP)
    assert all(r["threads"] == 1 and r["framework_threads"] == 1 for r in cases), cases
    for header in headers:  # and is recorded with the machine
        assert header["machine"]["threads"] == 1 and header["machine"]["jax_threads"] == "1"
        assert set(header["machine"]["thread_env"].values()) >= {"1"}
        assert header["machine"]["thread_env"]["OMP_NUM_THREADS"] == "1"
    report = (out / "report.md").read_text()
    assert f"cores {first_core[0]}\n" in report and "(jax:" not in report


def test_cases_a_worker_did_not_record_fail_unless_their_variant_cannot_run_here(
    tmp_path: Path,
) -> None:
    cfg = RunConfig(problems=("toy",), backends=("numpy-manual", "torch-nn"), devices=("cpu",))
    (job,) = workers.plan(cfg, "none", 1, timing=False)
    log = tmp_path / "records.jsonl"
    lines = [
        {"kind": "worker", "worker": job.label, "unavailable": [
            {"variant": "torch-nn", "framework": "torch", "device": "cpu", "reason": "no"}]},
        {"kind": "convergence", "worker": "another", "variant": "numpy-manual",
         "device": "cpu", "problem": "toy", "status": "agree"},
    ]  # fmt: skip
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    manager = workers.Manager(cfg, tmp_path, timing=False, timeout=60, isolate="none",
                              processes=1)  # fmt: skip
    outcome = workers.Outcome(job, 4242, 2, None, 1.0, tmp_path / "workers" / "01-all.log")
    assert manager._fail_unfinished(outcome) == 1  # torch-nn cannot run here: not failed
    (failed,) = [r for r in suite_records.read_records(log) if r.get("status") == "failed"]
    assert (failed["variant"], failed["problem"], failed["pid"]) == ("numpy-manual", "toy", 4242)
    assert failed["message"] == (
        "not recorded: the worker exited with status 2 (log: workers/01-all.log)"
    )
