"""Data-parallel variants: the rows split exactly, the global mean kept on uneven shards,
a planted averaging bug caught, faults contained, two hosts simulated on 127.0.0.1, and
the scaling report."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from backends import (
    VARIANTS,
    framework_of,
    is_parallel,
)
from suites import records as suite_records
from suites.config import RunConfig
from suites.run import workers
from suites.run.workers import installed
from tests import conftest
from tests.conftest import records

ROOT = Path(__file__).parents[2]


PARALLEL = [v for v in VARIANTS if is_parallel(v)]


HERE = [v for v in PARALLEL if installed(framework_of(v))]


FAULTS = "-p tests.end_to_end.worker_faults"


TWO_CORES = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 cores")


# Every process these tests start carries this tag in its environment (peers inherit
# it), so that the process-table checks see this session's leftovers only, not those of
# another test stream running beside it (make test runs two).
TAG = {"GDBENCH_TEST_TAG": f"test-parallel-{os.getpid()}"}


def gdbench(*args: str, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """gdbench with this module's tag; run and check split even the 4-row toy problems
    (--shard-rows 1), which is what these tests of the machinery train on."""
    if args and args[0] in ("run", "check") and "--shard-rows" not in args:
        args = (*args, "--shard-rows", "1")
    return conftest.gdbench(*args, timeout=timeout, **TAG, **env)


def cases(out: Path, kind: str = "convergence") -> dict[str, dict]:
    return {r["variant"]: r for r in records(out) if r["kind"] == kind and "status" in r}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text()


def rank_processes() -> list[str]:
    """Command lines of the peer ranks these tests started that are still running."""
    out = []
    tag = "=".join(next(iter(TAG.items()))).encode()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if "backends.parallel.peer" not in cmd and "tests.end_to_end.rank_faults" not in cmd:
                continue
            if tag in (proc / "environ").read_bytes().split(b"\0"):
                out.append(cmd)
        except OSError:  # gone meanwhile
            continue
    return out


def test_cases_of_a_data_parallel_variant_that_cannot_run_here_are_not_failures(
    tmp_path: Path,
) -> None:
    # a worker for torch-ddp that recorded only why it cannot run (torch not installed)
    cfg = RunConfig(problems=("toy",), backends=("torch-ddp",), devices=("cpu",), ranks=(1, 2),
                    shard_rows=1)  # fmt: skip
    (job,) = workers.plan(cfg, "variant", 1, timing=False)
    assert [c[1] for c in job.cases] == ["torch-ddp-x1", "torch-ddp-x2"]
    (tmp_path / "records.jsonl").write_text(json.dumps({"kind": "worker", "worker": job.label,
        "unavailable": [{"variant": "torch-ddp", "framework": "torch", "device": "cpu",
                         "reason": "torch is not installed"}]}) + "\n")  # fmt: skip
    manager = workers.Manager(cfg, tmp_path, timing=False, timeout=60, isolate="variant",
                              processes=1)  # fmt: skip
    outcome = workers.Outcome(job, 4242, 0, None, 1.0, tmp_path / "w.log")
    assert manager._fail_unfinished(outcome) == 0
    # where it could run and did not record, both cases fail, named by their labels
    (tmp_path / "records.jsonl").write_text("")
    assert manager._fail_unfinished(outcome) == 2
    failed = [r for r in suite_records.read_records(tmp_path / "records.jsonl") if r.get("status")]
    assert [(r["variant"], r["framework"]) for r in failed] == [
        ("torch-ddp-x1", "torch"), ("torch-ddp-x2", "torch")]  # fmt: skip


def test_a_k_process_variant_after_jax_ran_is_unavailable_with_the_reason() -> None:
    pytest.importorskip("jax", reason="jax is not installed")
    code = (
        "import jax; jax.devices()\n"
        "from backends import BackendUnavailable, get_backend\n"
        "try:\n    get_backend('jax-sharded-procs', ranks=2)\n"
        "except BackendUnavailable as err:\n    print(err)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), **TAG}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env)  # fmt: skip
    assert proc.stdout.strip() == (
        "2 jax processes need jax.distributed.initialize before jax's first computation, and "
        "jax already ran in this process: run it in a worker of its own (gdbench run does, "
        "except with --isolate none)"
    ), proc.stderr


def test_the_process_table_check_sees_a_peer_these_tests_started() -> None:
    # the leftover checks below are not vacuous: a tagged peer is found until it is gone
    from backends.parallel.ranks import free_port

    launch = {"JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{free_port()}", "JAX_NUM_PROCESSES": "2",
              "JAX_PROCESS_ID": "1", "GDBENCH_RANK_TIMEOUT": "60"}  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), **TAG, **launch}
    peer = subprocess.Popen([sys.executable, "-m", "backends.parallel.peer", "jax"], env=env)
    try:
        deadline = time.monotonic() + 30
        while not rank_processes() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert rank_processes() == [f"{sys.executable} -m backends.parallel.peer jax "]
    finally:
        peer.kill()
        peer.wait()
    assert rank_processes() == []


def test_the_cli_refuses_more_ranks_than_cores_in_one_line(tmp_path: Path) -> None:
    cores = len(os.sched_getaffinity(0))
    proc = gdbench("check", "--backends", "torch-ddp", "--problems", "toy-20",
                   "--ranks", str(cores + 1), "--out", str(tmp_path / "run"))  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert f"--ranks {cores + 1} needs {cores + 1} cores" in proc.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif("torch-ddp" not in HERE, reason="torch is not installed")
def test_problems_too_small_to_split_are_listed_as_not_run(tmp_path: Path) -> None:
    # the default: a data-parallel case needs 1,000 rows per rank; 2,400 rows split at
    # K = 2 (1,200 each), toy's 4 rows do not, and then not even its K = 1 baseline runs
    out = tmp_path / "run"
    proc = gdbench("check", "--backends", "torch-ddp,numpy-manual", "--problems", "toy,sweep",
                   "--sizes", "2400", "--ranks", "1,2", "--shard-rows", "1000",
                   "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran = {(r["variant"], r["problem"]) for r in records(out) if r["kind"] == "convergence"}
    assert ran == {
        ("numpy-manual", "toy"),
        ("numpy-manual", "synthetic-2400x16"),
        ("torch-ddp-x1", "synthetic-2400x16"),
        ("torch-ddp-x2", "synthetic-2400x16"),
    }
    (header,) = [r for r in records(out) if r["kind"] == "run"]
    assert [(e["variant"], e["problem"], e["ranks"]) for e in header["not_split"]] == [
        ("torch-ddp", "toy", [1, 2])
    ]
    left_out = (out / "report.md").read_text().split("## Not run here")[1]
    row = next(line for line in left_out.splitlines() if line.startswith("| toy "))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells == ["toy", "torch-ddp", "4 rows give fewer than 1,000 per rank at K = 2 "
                     "(--shard-rows); K = 1, its baseline, left out too"]  # fmt: skip


@pytest.fixture(scope="module")
def uneven(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The issue's command: 1001 rows over 2 ranks (shards of 501 and 500)."""
    if not HERE:
        pytest.skip("neither torch nor jax is installed")
    out = tmp_path_factory.mktemp("uneven") / "run"
    proc = gdbench("check", "--backends", ",".join(PARALLEL), "--ranks", "2",
                   "--problems", "sweep", "--sizes", "1001", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out


@TWO_CORES
@pytest.mark.parametrize("variant", PARALLEL)
def test_uneven_shards_follow_the_float64_reference(uneven: Path, variant: str) -> None:
    if variant not in HERE:
        pytest.skip(f"{framework_of(variant)} is not installed")
    case = cases(uneven)[f"{variant}-x2"]
    assert case["status"] == "agree", case["message"]
    assert case["ranks"] == 2 and case["parallel_variant"] == variant
    assert case["n_samples"] == 1001


@TWO_CORES
@pytest.mark.parametrize(
    ("dtype", "size", "features"),
    [("float64", "1001", "16"), ("float32", "11", "2")],
    ids=["float64-501-500", "float32-6-5"],
)
def test_averaging_the_ranks_local_means_is_caught(tmp_path: Path, dtype, size, features) -> None:
    # On 1001 rows the bias is 1/1001 of a row's weight: beyond float64's tolerance,
    # within float32's (2.6e-4 < 1e-3, measured); 6 + 5 rows make it 2% in float32.
    if not HERE:
        pytest.skip("neither torch nor jax is installed")
    proc = gdbench("check", "--backends", ",".join(HERE), "--ranks", "2", "--problems",
                   "sweep", "--sizes", size, "--features", features, "--dtype", dtype,
                   "--out", str(tmp_path), PYTEST_ADDOPTS=FAULTS,
                   GDBENCH_TEST_FAULT="local-mean:")  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    found = cases(tmp_path)
    for variant in HERE:
        case = found[f"{variant}-x2"]
        assert case["status"] == "disagree", (variant, case["message"])
        assert case["epoch"] == 1  # the first loss is already the wrong mean


@TWO_CORES
@pytest.mark.parametrize("how", ["die", "hang"])
@pytest.mark.parametrize("variant", ["torch-allreduce", "jax-sharded-procs"])
def test_a_rank_that_dies_or_hangs_fails_its_case_and_leaves_no_process(
    tmp_path: Path, how: str, variant: str
) -> None:
    framework = framework_of(variant)
    pytest.importorskip(framework, reason=f"{framework} is not installed")
    pidfile = tmp_path / "rank.pid"
    out = tmp_path / "run"
    started = time.monotonic()
    proc = gdbench("check", "--backends", f"{variant},numpy-manual", "--ranks", "2",
                   "--problems", "toy-20,toy", "--out", str(out), timeout=300,
                   GDBENCH_RANK_MODULE="tests.end_to_end.rank_faults", GDBENCH_TEST_RANK_FAULT=how,
                   GDBENCH_TEST_RANK_PIDFILE=str(pidfile), GDBENCH_RANK_TIMEOUT="5")  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    found = {(r["variant"], r["problem"]): r for r in records(out)
             if r["kind"] == "convergence" and "status" in r}  # fmt: skip
    failed = found[(f"{variant}-x2", "toy-20")]
    assert failed["status"] == "failed"
    assert failed["message"] and "\n" not in failed["message"]  # the reason, in one line
    if how == "hang" and framework == "jax":  # jax's collectives wait without end
        assert (
            "took over 5 s (GDBENCH_RANK_TIMEOUT plus its work): a process hangs"
            in failed["message"]
        )
    if framework == "jax":  # one world per process: the worker's next case says why
        later = found[(f"{variant}-x2", "toy")]
        assert later["status"] == "failed"
        assert later["message"].startswith("RuntimeError: the jax world of this worker broke")
    assert found[("numpy-manual", "toy-20")]["status"] == "agree"  # the others' are kept
    assert time.monotonic() - started < 240  # bounded by the rank timeout, not the worker's
    assert not pid_alive(int(pidfile.read_text()))
    assert rank_processes() == []


@TWO_CORES
def test_two_process_groups_on_localhost_run_as_two_hosts(tmp_path: Path) -> None:
    # "host B" serves rank 1 with torchrun's variables; "host A" runs gdbench as rank 0.
    pytest.importorskip("torch", reason="torch is not installed")
    from backends.parallel.ranks import free_port

    launch = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": "2"}
    host_b = subprocess.Popen(
        [sys.executable, "-m", "suites.run.cli", "rank"],
        env={**os.environ, "PYTHONPATH": str(ROOT), **TAG, **launch, "RANK": "1",
             "GDBENCH_RANK_TIMEOUT": "10", "GDBENCH_RANK_IDLE": "10"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        out = tmp_path / "run"
        proc = gdbench("check", "--backends", "torch-ddp", "--ranks", "2", "--problems",
                       "sweep", "--sizes", "1001", "--out", str(out), **launch,
                       RANK="0")  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert cases(out)["torch-ddp-x2"]["status"] == "agree"
        # host B served the sessions and leaves once no rank 0 comes back
        assert host_b.wait(timeout=120) == 0
    finally:
        if host_b.poll() is None:
            host_b.send_signal(signal.SIGKILL)
            host_b.wait()


@TWO_CORES
def test_two_jax_processes_on_localhost_run_as_two_hosts(tmp_path: Path) -> None:
    # "host B" serves process 1 with jax's coordinator variables, a world per rank-0
    # process (two variants: two worlds); "host A" runs gdbench as process 0.
    pytest.importorskip("jax", reason="jax is not installed")
    from backends.parallel.ranks import free_port

    address = f"127.0.0.1:{free_port()}"
    launch = {"JAX_COORDINATOR_ADDRESS": address, "JAX_NUM_PROCESSES": "2",
              "JAX_COORDINATOR_BIND_ADDRESS": address, "GDBENCH_RANK_TIMEOUT": "10",
              "GDBENCH_RANK_IDLE": "10"}  # fmt: skip
    host_b = subprocess.Popen(
        [sys.executable, "-m", "suites.run.cli", "rank", "--framework", "jax"],
        env={**os.environ, "PYTHONPATH": str(ROOT), **TAG, **launch, "JAX_PROCESS_ID": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        out = tmp_path / "run"
        proc = gdbench("check", "--backends", "jax-sharded-procs,jax-shardmap-procs",
                       "--ranks", "2", "--problems", "sweep", "--sizes", "1001",
                       "--out", str(out), **launch, JAX_PROCESS_ID="0")  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr
        found = cases(out)
        assert found["jax-sharded-procs-x2"]["status"] == "agree"
        assert found["jax-shardmap-procs-x2"]["status"] == "agree"
        # host B served both worlds and leaves once no rank 0 comes back
        stdout, stderr = host_b.communicate(timeout=120)
        assert host_b.returncode == 0, stdout + stderr
        assert (stdout + stderr).count("Rank 1 is connected") == 2  # gloo: one per world
        # each world ended by rank 0's exit step and a clean shutdown, not by jax's abort
        assert stdout.count("a jax world ended, status 0") == 2, stdout + stderr
        assert "Terminating process" not in stderr
        assert "no jax rank 0 at" in stdout
    finally:
        if host_b.poll() is None:
            os.killpg(host_b.pid, signal.SIGKILL)
            host_b.wait()
    assert rank_processes() == []


def test_gdbench_rank_for_jax_without_the_coordinator_variables_is_a_one_line_error() -> None:
    env = {k: "" for k in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID")}
    proc = gdbench("rank", "--framework", "jax", timeout=60, **env)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "gdbench rank: set JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID "
        "(jax's coordinator)"
    )
    proc = gdbench("rank", "--framework", "mxnet", timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "gdbench: error: --framework: unknown value 'mxnet'; choose from: torch, jax"
    )


def test_gdbench_rank_without_the_launch_variables_is_a_one_line_error() -> None:
    env = {k: "" for k in ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE")}
    proc = gdbench("rank", timeout=60, **env)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "gdbench rank: set MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE (torchrun's variables)"
    )


@TWO_CORES
def test_a_timed_run_reports_scaling_for_k_1_and_2(tmp_path: Path) -> None:
    if not HERE:
        pytest.skip("neither torch nor jax is installed")
    out = tmp_path / "run"
    proc = gdbench("run", "--quick", "--backends", ",".join(HERE), "--problems", "sweep",
                   "--sizes", "2000", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = pd.read_csv(out / "results.csv").set_index("variant")
    table = pd.read_csv(out / "scaling.csv")
    assert sorted(table["variant"].unique()) == sorted(HERE)
    for variant in HERE:
        t1 = results.loc[f"{variant}-x1", "per_epoch_median_s"]
        t2 = results.loc[f"{variant}-x2", "per_epoch_median_s"]
        rows = table[table["variant"] == variant].set_index("ranks")
        # independent arithmetic from results.csv: T(1)/T(K) and T(1)/(K·T(K))
        assert rows.loc[2, "speedup"] == pytest.approx(t1 / t2)
        assert rows.loc[2, "efficiency"] == pytest.approx(t1 / (2 * t2))
        assert rows.loc[1, "speedup"] == pytest.approx(1.0)
        low, high = rows.loc[2, ["speedup_ci_low", "speedup_ci_high"]]
        assert low <= t1 / t2 <= high
    if "torch-allreduce" in HERE:
        rows = table[table["variant"] == "torch-allreduce"].set_index("ranks")
        # each rank's own loop, its all-reduce calls a part of it
        assert 0 < rows.loc[2, "collective_epoch_s"] <= rows.loc[2, "rank_max_epoch_s"]
        assert rows.loc[2, "rank_min_epoch_s"] <= rows.loc[2, "rank_max_epoch_s"]
    report = (out / "report.md").read_text()
    assert "Scaling of the data-parallel variants (float32)" in report
    assert re.search(r"\| synthetic 2,000×16 \| \S+@cpu\s+\|\s+2 \|", report)
    assert (out / "scaling.png").stat().st_size > 0
