"""The worker manager's decisions without starting a worker: the plan, each worker's
environment, why a dead worker failed, pooled rounds, broken lines, progress."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest

from backends import (
    world_per_process,
)
from reports.read import pooled_stats
from suites import records as suite_records
from suites.config import RunConfig
from suites.run import workers
from tests.conftest import records


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


def cases(out: Path, kind: str = "convergence") -> dict[str, dict]:
    return {r["variant"]: r for r in records(out) if r["kind"] == kind and "status" in r}


def test_every_k_of_a_k_process_variant_gets_a_worker_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # jax.distributed.initialize runs once per process: K = 1 and K = 2 cannot share one
    assert world_per_process("jax-sharded-procs") and not world_per_process("jax-sharded")
    # the plan for a machine with jax (without it, one worker per framework says why)
    monkeypatch.setattr(workers, "installed", lambda framework: True)
    cfg = RunConfig(problems=("toy",), backends=("jax-sharded", "jax-sharded-procs"),
                    devices=("cpu",), ranks=(1, 2), shard_rows=1)  # fmt: skip
    jobs = {job.label: job for job in workers.plan(cfg, "variant", 1, timing=False)}
    assert sorted(jobs) == ["jax-sharded-procs@cpu-x1", "jax-sharded-procs@cpu-x2",
                            "jax-sharded@cpu"]  # fmt: skip
    two = jobs["jax-sharded-procs@cpu-x2"]
    assert [c[1] for c in two.cases] == ["jax-sharded-procs-x2"]
    command = workers.worker_command(two, cfg, tmp_path, False, 1, 4)
    assert command[command.index("--gdb-ranks") + 1] == "2"
    # one device per process there; K host devices in the one-process variant's worker
    assert "device_count" not in workers.worker_env(two, 2, 2).get("XLA_FLAGS", "")
    one_process = workers.worker_env(jobs["jax-sharded@cpu"], 2, 2)
    assert "--xla_force_host_platform_device_count=2" in one_process["XLA_FLAGS"]
    # with everything in one worker (--isolate none), still a worker per K for them
    shared = {job.label: job for job in workers.plan(cfg, "none", 1, timing=False)}
    assert sorted(shared) == ["all", "jax-sharded-procs@cpu-x1", "jax-sharded-procs@cpu-x2"]
    assert {c[1] for c in shared["all"].cases} == {"jax-sharded-x1", "jax-sharded-x2"}


def test_a_worker_inherits_no_pytest_xdist_variables(monkeypatch) -> None:
    # pytest-benchmark disables timing in a process that has them: a run started from a
    # test under pytest-xdist would otherwise finish without a single timing
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    monkeypatch.setenv("GDBENCH_KEPT", "1")
    env = workers.inherited_env()
    assert not [k for k in env if k.startswith("PYTEST_XDIST_")]
    assert env["GDBENCH_KEPT"] == "1" and env["PATH"] == os.environ["PATH"]


def test_a_progress_line_gets_the_elapsed_time_and_an_estimate_of_what_is_left() -> None:
    # 3 of 12 cases in 65 s: 21.7 s a case, 9 left: about 3:15
    line = "[  3/12] passed  test_epoch_cost    jax-scan@cpu-toy\n"
    assert workers.progress_suffix(line, 65.0) == "  (1:05 elapsed, about 3:15 left)"
    assert workers.progress_suffix("[ 12/12] passed  x\n", 600.0) == "  (10:00 elapsed)"
    assert workers.progress_suffix("[Gloo] Rank 0 is connected\n", 5.0) == ""


def test_without_a_terminal_each_case_is_a_plain_line_with_the_times(monkeypatch) -> None:
    import io

    stream = io.StringIO()
    display = workers.Display(12, stream)  # a StringIO is not a terminal: no bar
    assert display.bar is None
    display.started -= 65.0
    display.case("[  3/12] passed  test_epoch_cost    jax-scan@cpu-toy\n")
    display.note("[paired] toy: jax-scan torch-manual in alternating rounds")
    display.close()
    first, second = stream.getvalue().splitlines()
    assert first.startswith("[  3/12] passed") and "(1:05 elapsed, about 3:15 left)" in first
    assert second == "[paired] toy: jax-scan torch-manual in alternating rounds"


def test_on_a_terminal_a_bar_counts_the_cases_below_their_lines() -> None:
    import io

    stream = io.StringIO()
    display = workers.Display(12, stream, bar=True)
    workers._forward(io.StringIO("[  3/12] passed  x\n[Gloo] noise\n[  4/12] failed  y\n"),
                     io.StringIO(), display)  # fmt: skip
    assert display.bar.n == 4
    display.close()
    shown = stream.getvalue()
    assert "[  3/12] passed  x\n" in shown and "[  4/12] failed  y\n" in shown
    assert "Gloo" not in shown  # the case lines carry no times: the bar has them
    assert "4/12 cases |" in shown and "left" in shown.rsplit("\r", 1)[-1]


@pytest.mark.parametrize(
    ("env", "tty", "bar"),
    [({}, True, True), ({}, False, False), ({"CI": "true"}, True, False),
     ({"TERM": "dumb"}, True, False), ({"GDBENCH_PROGRESS": "lines"}, True, False)],
)  # fmt: skip
def test_a_bar_only_on_a_terminal_outside_ci(monkeypatch, env, tty, bar) -> None:
    for name in ("CI", "TERM", "GDBENCH_PROGRESS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    class Stream:
        def isatty(self) -> bool:
            return tty

    assert workers.wants_bar(Stream()) is bar


def test_the_bars_clock_goes_on_during_a_long_case() -> None:
    import io

    stream = io.StringIO()
    display = workers.Display(3, stream, bar=True)
    display.tick()  # within the second: nothing new
    drawn = stream.getvalue().count("cases |")
    display.shown -= 1.5
    display.tick()
    assert stream.getvalue().count("cases |") == drawn + 1
