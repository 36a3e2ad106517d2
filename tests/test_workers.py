"""Worker processes: each variant in its own process, crashes and hangs contained, rounds
of several processes pooled, peak memory per case. Run as a user would: the gdbench
command in a subprocess, reading its exit status and the files it wrote."""

from __future__ import annotations

import dataclasses
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

from backends import case_label, is_parallel, list_backends
from reports.read import pooled_stats
from suites import records as suite_records
from suites.bench import bandwidth
from suites.config import RunConfig
from suites.run import workers
from tests.conftest import gdbench, records

# gdbench's own machinery: runs in the numpy-only and all-frameworks environments
# (tox.ini), not again in each single-framework one.
pytestmark = pytest.mark.harness

ROOT = Path(__file__).parents[1]
FAULTS = "-p tests.worker_faults"
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


# --- the plan: pure, no process started ------------------------------------------------


def test_variant_isolation_plans_one_worker_per_variant_and_device_then_bandwidth() -> None:
    cfg = RunConfig(problems=("toy",), backends=("numpy-manual", "jax-scan"), devices=("cpu",))
    jobs = workers.plan(cfg, "variant", 1, timing=True)
    installed = {v: workers.installed(v.split("-")[0]) for v in ("numpy", "jax")}
    expected = ["numpy-manual@cpu", "jax-scan@cpu" if installed["jax"] else "jax@cpu"]
    assert [j.label for j in jobs] == [*expected, "bandwidth"]
    assert jobs[0].backends == ("numpy-manual",) and jobs[0].devices == ("cpu",)
    assert set(jobs[0].cases) == {("convergence", "numpy-manual", "cpu", "toy"),
                                  ("benchmark", "numpy-manual", "cpu", "toy")}  # fmt: skip


def test_framework_isolation_groups_variants_by_framework_and_device() -> None:
    cfg = RunConfig(
        problems=("toy",),
        backends=("numpy-manual", "torch-nn", "torch-autograd", "jax-scan"),
        devices=("cpu", "cuda"),
    )
    jobs = workers.plan(cfg, "framework", 1, timing=False)
    assert [j.label for j in jobs] == [
        "numpy@cpu",
        "torch@cpu",
        "torch@cuda",
        "jax@cpu",
        "jax@cuda",
    ]
    torch_cpu = jobs[1]
    assert torch_cpu.backends == ("torch-nn", "torch-autograd") and torch_cpu.devices == ("cpu",)
    assert torch_cpu.items == 2  # two convergence cases, no timing, no bandwidth worker


def test_no_isolation_is_one_worker_with_everything_bandwidth_included() -> None:
    cfg = RunConfig(problems=("toy", "toy-20"), backends=("numpy-manual", "jax-scan"))
    (job,) = workers.plan(cfg, "none", 1, timing=True)
    assert job.backends == ("numpy-manual", "jax-scan")
    assert workers.BANDWIDTH in job.tests
    assert job.items == 2 * 2 * 2 + 4  # (convergence + cost) x 2 problems x 2 variants + 4 host


def test_several_processes_time_each_variant_again_round_robin_without_convergence() -> None:
    cfg = RunConfig(problems=("toy",), backends=("numpy-manual", "torch-nn"))
    jobs = workers.plan(cfg, "framework", 3, timing=True)
    labels = [j.label for j in jobs]
    assert labels == ["numpy@cpu #1", "torch@cpu #1", "numpy@cpu #2", "torch@cpu #2",
                      "numpy@cpu #3", "torch@cpu #3", "bandwidth"]  # fmt: skip
    assert workers.CONVERGENCE in jobs[0].tests
    assert all(j.tests == (workers.COST,) for j in jobs[2:6])


def test_a_worker_without_cuda_cases_cannot_see_a_gpu_and_jax_on_cuda_does_not_preallocate() -> (
    None
):
    cfg = RunConfig(problems=("toy",), backends=("jax-scan",), devices=("cpu", "cuda"))
    cpu_job, cuda_job = workers.plan(cfg, "framework", 1, timing=False)
    cpu_env, cuda_env = workers.worker_env(cpu_job, 2), workers.worker_env(cuda_job, 2)
    assert cpu_env["JAX_PLATFORMS"] == "cpu" and cpu_env["CUDA_VISIBLE_DEVICES"] == ""
    assert "JAX_PLATFORMS" not in cuda_env and "CUDA_VISIBLE_DEVICES" not in cuda_env
    assert cuda_env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"
    # CUDA numbers the GPUs as nvidia-smi does, which named the GPU and checked its memory
    assert cuda_env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID" and "CUDA_DEVICE_ORDER" not in cpu_env


def test_the_bandwidth_worker_is_cpu_only_unless_the_run_uses_cuda() -> None:
    cpu_run = RunConfig(problems=("toy",), backends=("numpy-manual",), devices=("cpu",))
    copies = workers.plan(cpu_run, "variant", 1, timing=True)[-1]
    assert copies.label == "bandwidth" and copies.devices == ("cpu",) and copies.items == 4
    env = workers.worker_env(copies, 2)
    assert env["JAX_PLATFORMS"] == "cpu" and env["CUDA_VISIBLE_DEVICES"] == ""

    gpu_run = dataclasses.replace(cpu_run, devices=("cpu", "cuda"))
    copies = workers.plan(gpu_run, "variant", 1, timing=True)[-1]
    assert copies.label == "bandwidth" and copies.devices == ("cpu", "cuda")
    assert copies.items == 8  # {numpy, torch, torch-cuda, jax-cuda} x {copy, read}
    env = workers.worker_env(copies, 2)
    assert "JAX_PLATFORMS" not in env and "CUDA_VISIBLE_DEVICES" not in env
    assert env["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false"  # jax's copy beside torch's
    command = workers.worker_command(copies, gpu_run, Path("out"), True, 0, 4)
    assert command[command.index("--gdb-devices") + 1] == "cpu,cuda"
    # one worker for everything: it sees the GPU for the copies even with no CUDA case
    (job,) = workers.plan(gpu_run, "none", 1, timing=True)
    assert "cuda" in job.devices and job.items == 2 + 8
    assert all(device == "cpu" for _, _, device, _ in job.cases)


@pytest.mark.parametrize(
    ("returncode", "timed_out", "reason"),
    [
        (-6, None, "worker killed by SIGABRT"),
        (-11, None, "worker killed by SIGSEGV"),
        (-9, None, "worker killed by SIGKILL (the kernel's out-of-memory killer sends this)"),
        (3, None, "worker exited with status 3"),
        (-9, 600.0, "timed out after 600 s"),
        (0, None, None),
        (1, None, None),  # a test failed: its case is already recorded as failed
        (2, None, None),  # interrupted, or a collection error: unrecorded cases fail
        (5, None, None),  # no tests: the same
    ],
)
def test_a_dead_worker_gets_the_reason_a_user_can_act_on(returncode, timed_out, reason) -> None:
    assert workers.death_reason(returncode, timed_out) == reason


def test_pooled_statistics_are_those_of_all_rounds_together() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.exponential(1e-3, 7).tolist(), (2e-3 + rng.exponential(1e-3, 12)).tolist()
    pooled = pooled_stats([{"data": a, "iterations": 3}, {"data": b, "iterations": 5}])
    both = np.array(a + b)
    assert pooled["rounds"] == 19
    assert pooled["median"] == pytest.approx(float(np.median(both)))
    assert pooled["min"] == min(both) and pooled["max"] == max(both)
    assert pooled["mean"] == pytest.approx(float(both.mean()))


# --- real runs --------------------------------------------------------------------------


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
    summary = report.split("## Environment")[0]
    assert "not: numpy-manual@cpu on toy-20 (disagree at epoch 2)" in summary
    assert "fastest **numpy-manual" not in summary
    for other in others:  # the right one wins
        assert results.loc[other, "status"] == "agree" and results.loc[other, "fastest"] == "yes"
        assert f"fastest **{other}@cpu**" in summary


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
    proc = gdbench("run", "--quick", "--problems", "sweep", "--sizes", "1000000",
                   "--epochs", "2", "--out", str(out), timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@pytest.mark.slow
def test_every_variant_needs_at_least_its_data_and_a_copy_of_x_shows(million: Path) -> None:
    results = pd.read_csv(million / "results.csv")
    x_bytes = 1_000_000 * 16 * 4
    labels = {case_label(v, k) for v in AVAILABLE for k in ((1, 2) if is_parallel(v) else (1,))}
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


def test_a_line_cut_short_by_a_dying_worker_costs_only_that_line(tmp_path: Path) -> None:
    log = tmp_path / "records.jsonl"
    log.write_text('{"kind": "convergence", "problem": "a"}\n{"kind": "conv')
    workers._end_with_newline(log)  # what the manager does after every worker
    with open(log, "a") as fh:
        fh.write('{"kind": "convergence", "problem": "b"}\n')
    assert [r["problem"] for r in suite_records.read_records(log)] == ["a", "b"]
    from reports.records import read_records

    assert [r["problem"] for r in read_records(log, strict=True)] == ["a", "b"]


def test_only_progress_lines_reach_the_terminal_and_every_line_the_log(capsys) -> None:
    import io

    lines = ["[  2/14] passed  test_convergence   jax-scan@cpu-toy\n",
             "[Gloo] Rank 1 is connected to 1 peer ranks.\n", "some warning\n",
             "Fatal Python error: Segmentation fault\n", "[ 10/10] failed  x\n"]  # fmt: skip
    log = io.StringIO()
    workers._forward(io.StringIO("".join(lines)), log)
    assert log.getvalue() == "".join(lines)
    assert capsys.readouterr().out == lines[0] + lines[3] + lines[4]
