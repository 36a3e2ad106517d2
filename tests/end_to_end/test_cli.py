"""The gdbench command, run as a user would: in a subprocess, reading exit status and output."""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backends import VARIANTS, framework_of, list_backends
from suites.problems import synthetic
from tests.conftest import fake_nvidia_smi, gdbench

ROOT = Path(__file__).parents[2]
FIXTURES = ROOT / "tests" / "fixtures"


SIX_FILES = {
    "benchmark.json",
    "results.csv",
    "trajectories.csv",
    "report.md",
    "epoch_cost.png",
    "convergence.png",
}


def assert_usage_error(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_list_shows_every_variant_with_its_availability() -> None:
    proc = gdbench("list")
    assert proc.returncode == 0
    for variant in ("numpy-manual", "torch-autograd", "torch-nn", "jax-grad", "jax-scan"):
        assert variant in proc.stdout
    assert re.search(r"^numpy-manual\s+numpy\s+cpu\s+available$", proc.stdout, re.M)
    # every torch/jax variant has a cuda row: available, or unavailable with the reason
    assert re.search(r"^jax-scan\s+jax\s+cuda\s+(available|unavailable: \S.*)$", proc.stdout, re.M)


def test_check_writes_trajectories_and_exits_zero_when_all_agree(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = gdbench("check", "--problems", "toy", "--backends", "numpy-manual", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {"trajectories.csv", "report.md", "convergence.png"} <= {p.name for p in out.iterdir()}
    traj = pd.read_csv(out / "trajectories.csv")
    # toy: loss_e = 30 * 0.85^(2(e-1)), w_e = 2 - 2 * 0.85^e (float32 rounding allowed).
    assert traj["loss"].iloc[0] == pytest.approx(30.0)
    assert traj["w0"].iloc[1] == pytest.approx(2 - 2 * 0.85**2, rel=1e-6)
    assert len(traj) == 100
    assert "Per-epoch cost" not in (out / "report.md").read_text()


def test_seed_reaches_the_synthetic_data(tmp_path: Path) -> None:
    losses = {}
    for seed in ("0", "3"):
        out = tmp_path / seed
        proc = gdbench("check", "--problems", "sweep", "--sizes", "50", "--features", "2",
                       "--backends", "numpy-manual", "--seed", seed, "--out", str(out))  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        losses[seed] = pd.read_csv(out / "trajectories.csv")["loss"].iloc[0]
    # Epoch 1's loss is mean(y²) of that seed's data (w = b = 0 before the first update).
    for seed, loss in losses.items():
        y = synthetic(50, 2, int(seed)).y.astype(float)
        assert loss == pytest.approx(float((y**2).mean()), rel=1e-6)
    assert losses["0"] != losses["3"]


def test_check_with_a_diverging_learning_rate_exits_one_and_says_where(tmp_path: Path) -> None:
    proc = gdbench(
        "check",
        "--problems",
        "toy",
        "--backends",
        "numpy-manual",
        "--lr",
        "0.2",
        "--out",
        str(tmp_path / "run"),
    )
    assert proc.returncode == 1
    assert "numpy-manual@cpu on toy: diverged at epoch 2" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
    report = (tmp_path / "run" / "report.md").read_text()
    assert "above the stability limit 2/λ_max = 0.1333" in report


def test_quick_run_writes_six_files_readable_by_pytest_benchmark_compare(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc = gdbench(
        "run",
        "--quick",
        "--problems",
        "toy,sweep",
        "--sizes",
        "100",
        "--backends",
        "numpy-manual,jax-scan",
        "--out",
        str(out),
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert SIX_FILES <= {p.name for p in out.iterdir()}
    assert "[  1/" in proc.stdout  # progress lines, with the time so far and what is left
    assert re.search(r"\[  1/\d+\] passed .*  \(\d+:\d\d elapsed, about \d+:\d\d left\)",
                     proc.stdout)  # fmt: skip
    # the answer per problem, within 100 columns (the report has every variant)
    summary = proc.stdout.split("fastest per problem, ", 1)[1].split("\nreport: ")[0]
    assert max(map(len, summary.strip().splitlines())) <= 100
    assert "toy (4×1)" in summary and "100×16" in summary
    for line in summary.strip().splitlines()[2:]:  # each problem: a fastest and a runner-up
        assert len(re.findall(r"\b(numpy-manual|jax-scan)\b", line)) == 2, line
    results = pd.read_csv(out / "results.csv")
    assert set(results["problem"]) == {"toy", "synthetic-100x16"}
    assert (results["per_epoch_median_s"] > 0).all()
    # time to accuracy on toy, against its float64 recurrence written out here: y = 2x,
    # so the optimum is w* = 2 with loss 0, and the excess loss is the loss itself
    x, w, losses = np.array([1.0, 2.0, 3.0, 4.0]), 0.0, []
    for _ in range(100):
        residual = w * x - 2 * x
        losses.append(np.mean(residual**2))
        w -= 0.01 * 2 * np.mean(x * residual)
    first = next(e for e, loss in enumerate(losses, 1) if loss <= 1e-6 * losses[0])
    toy = results[results["problem"] == "toy"]
    assert list(toy["target_epoch"]) == [first, first]
    fixed = toy["fixed_s"].clip(lower=0)  # a fit below zero is noise around zero
    spent = toy["compile_s"] + fixed + toy["target_epoch"] * toy["marginal_epoch_s"]
    assert np.allclose(toy["time_to_target_s"], spent) and (toy["time_to_target_s"] > 0).all()
    assert (out / "time_to_accuracy.png").read_bytes()[:4] == b"\x89PNG"
    doc = json.loads((out / "benchmark.json").read_text())
    assert doc["machine_info"]["gdbench"]["versions"]["numpy"]
    console = Path(sys.executable).parent / "pytest-benchmark"
    compare = subprocess.run(
        [str(console), "compare", str(out / "benchmark.json")], capture_output=True, text=True
    )
    assert compare.returncode == 0, compare.stderr
    assert "numpy-manual@cpu-toy" in compare.stdout


def test_run_without_out_makes_a_new_timestamped_folder_and_latest_link(tmp_path: Path) -> None:
    args = ("run", "--quick", "--problems", "toy", "--backends", "numpy-manual")
    first, second = gdbench(*args, cwd=tmp_path), gdbench(*args, cwd=tmp_path)
    assert first.returncode == second.returncode == 0, first.stderr + second.stderr
    runs = sorted(p for p in (tmp_path / "results").iterdir() if not p.is_symlink())
    assert len(runs) == 2 and all((r / "benchmark.json").exists() for r in runs)
    latest = tmp_path / "results" / "latest"
    assert latest.is_symlink() and latest.resolve() == runs[-1].resolve()


def test_a_run_where_no_backend_can_run_says_so_and_fails(tmp_path: Path) -> None:
    # torch-cudagraph has no CPU form, so on the CPU there is nothing to run.
    proc = gdbench("check", "--backends", "torch-cudagraph", "--devices", "cpu",
                   "--out", str(tmp_path / "run"))  # fmt: skip
    assert proc.returncode == 1
    assert "gdbench: nothing ran" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_report_rebuilds_every_file_from_saved_json(tmp_path: Path) -> None:
    proc = gdbench(
        "report",
        str(FIXTURES / "machine_a.json"),
        str(FIXTURES / "machine_b.json"),
        "--out",
        str(tmp_path),
    )
    assert proc.returncode == 0, proc.stderr
    assert SIX_FILES - {"benchmark.json"} <= {p.name for p in tmp_path.iterdir()}
    assert "## Details: beta (AMD EPYC Test)" in (tmp_path / "report.md").read_text()


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (
            ("run", "--backends", "torch-autgrad"),
            ("--backends", "'torch-autgrad'", "did you mean 'torch-autograd'"),
        ),
        (("check", "--devices", "gpu"), ("--devices", "'gpu'", "cpu, cuda")),
        (
            ("run", "--problems", "toy-bais"),
            ("--problems", "'toy-bais'", "did you mean 'toy-bias'"),
        ),
        (("run", "--dtype", "float16"), ("--dtype", "'float16'", "float32, float64")),
        (("run", "--epochs", "0"), ("--epochs must be a positive integer, got '0'",)),
        (("run", "--epochs", "2.5"), ("--epochs must be a positive integer, got '2.5'",)),
        (("run", "--sizes", "100,-5"), ("--sizes must be a positive integer, got '-5'",)),
        (("run", "--sizes", ","), ("--sizes needs at least one",)),
        (("run", "--features", "x"), ("--features must be a positive integer, got 'x'",)),
        (("run", "--lr", "0"), ("--lr must be a positive finite number, got '0'",)),
        (("run", "--lr", "-1"), ("--lr must be a positive finite number, got '-1'",)),
        (("run", "--lr", "nan"), ("--lr must be a positive finite number, got 'nan'",)),
        (("run", "--lr", "inf"), ("--lr must be a positive finite number, got 'inf'",)),
        (("run", "--backends", ""), ("--backends needs at least one name",)),
        (("frobnicate",), ("invalid choice: 'frobnicate'",)),
        (
            ("run", "--isolate", "variants"),
            ("--isolate", "'variants'", "did you mean 'variant'", "variant, framework, none"),
        ),
        (("run", "--processes", "0"), ("--processes must be a positive integer, got '0'",)),
        (("run", "--timeout", "-5"), ("--timeout must be a positive number of seconds",)),
        (("run", "--timeout", "soon"), ("--timeout must be a positive number", "'soon'")),
        (("check", "--processes", "2"), ("unrecognized arguments: --processes 2",)),
        (("run", "--target", "1"), ("--target", "'1'", "between 0 and 1")),
        (("run", "--target", "tiny"), ("--target", "'tiny'", "between 0 and 1")),
        (("run", "--budget", "-1"), ("--budget", "'-1'", "0 or more")),
        (("check", "--target", "1e-3"), ("--target", "check does not time")),
        (("run", "--threads", "999"), ("--threads 999", "may use", "choose --threads up to")),
        (("check", "--seed", "-3"), ("--seed must be an integer of 0 or more, got '-3'",)),
        (("check", "--seed", "x"), ("--seed must be an integer of 0 or more, got 'x'",)),
        (("list", "--require", "tpu"), ("--require", "'tpu'", "cpu, cuda")),
        (
            ("check", "--matmul-precision", "tf-32"),
            ("--matmul-precision", "'tf-32'", "did you mean 'tf32'", "float32, tf32"),
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_two(args, fragments) -> None:
    assert_usage_error(gdbench(*args), *fragments)


def test_report_on_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    assert_usage_error(gdbench("report", str(tmp_path / "nope.json")), "nope.json", "no such file")


def test_report_on_non_json_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{{")
    assert_usage_error(gdbench("report", str(bad)), str(bad), "not JSON")


def test_out_folder_with_an_earlier_run_is_never_overwritten(tmp_path: Path) -> None:
    (tmp_path / "benchmark.json").write_text("{}")
    assert_usage_error(gdbench("run", "--quick", "--out", str(tmp_path)), "not empty")
    assert (tmp_path / "benchmark.json").read_text() == "{}"


def test_out_folder_that_cannot_be_created_is_a_usage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert_usage_error(
        gdbench("check", "--out", str(blocker / "sub")), "--out", "cannot create or write"
    )


def test_list_require_cuda_fails_with_a_line_per_variant_that_cannot_use_the_gpu() -> None:
    cuda_rows = list_backends(("cuda",))
    proc = gdbench("list", "--require", "cuda")
    missing = [r for r in cuda_rows if not r.available]
    assert proc.returncode == (1 if missing else 0), proc.stderr
    lines = proc.stderr.strip().splitlines() if missing else []
    assert len(lines) == len(missing)
    for row, line in zip(missing, lines, strict=True):
        assert line == f"gdbench: required cuda: {row.variant} unavailable: {row.reason}"
    # on the CPU, exactly the variants of frameworks that are not installed are missing
    cpu_missing = [r for r in list_backends(("cpu",)) if not r.available]
    assert gdbench("list", "--require", "cpu").returncode == (1 if cpu_missing else 0)


@pytest.mark.skipif(
    any(r.available for r in list_backends(("cuda",))),
    reason="this machine has a usable GPU",
)
def test_a_run_asking_for_cuda_where_nothing_can_use_it_fails_and_says_why(tmp_path: Path) -> None:
    proc = gdbench("check", "--problems", "toy", "--backends", "numpy-manual,torch-nn,jax-scan",
                   "--devices", "cpu,cuda", "--out", str(tmp_path / "run"))  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "gdbench: nothing ran on cuda: " in proc.stderr
    # the CPU part of the run is still reported
    assert "numpy-manual@cpu" in (tmp_path / "run" / "report.md").read_text()


def test_tf32_asked_leaves_the_cpu_cases_at_full_float32_and_says_so(tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="torch is not installed")
    pytest.importorskip("jax", reason="jax is not installed")
    out = tmp_path / "run"
    proc = gdbench("check", "--problems", "toy", "--backends", "torch-nn,jax-scan",
                   "--matmul-precision", "tf32", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert next(r for r in records if r["kind"] == "run")["config"]["matmul_precision"] == "tf32"
    # TF32 is for CUDA: the CPU cases computed, and were judged, in full float32
    cases = {r["variant"]: r for r in records if r["kind"] == "convergence"}
    assert {r["matmul_precision"] for r in cases.values()} == {"float32"}
    assert "rtol 0.001" in cases["torch-nn"]["message"]  # float32's tolerance, not TF32's
    assert cases["torch-nn"]["precision_settings"]["float32_matmul_precision"] == "highest"
    assert cases["jax-scan"]["precision_settings"]["session_matmul_precision"] == ["float32"]
    assert "- **Matmul precision:** float32 (full float32" in (out / "report.md").read_text()


def test_a_timed_run_is_refused_inside_parallel_tox_but_a_check_runs(tmp_path: Path) -> None:
    proc = gdbench("run", "--quick", "--out", str(tmp_path / "run"), TOX_PARALLEL_ENV="py311")
    assert_usage_error(proc, "must not run in parallel tox environments", "tox -e bench")
    assert not (tmp_path / "run").exists()  # refused before anything was written
    proc = gdbench("check", "--problems", "toy", "--backends", "numpy-manual",
                   "--out", str(tmp_path / "check"), TOX_PARALLEL_ENV="py311")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_stable_learning_rate_the_report_names_does_converge(tmp_path: Path) -> None:
    # toy: λ_max of (2/N)·Σx² = 2·30/4 = 15, so the stability limit is 2/15.
    proc = gdbench("check", "--problems", "toy", "--backends", "numpy-manual", "--lr", "0.2",
                   "--out", str(tmp_path / "high"))  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = (tmp_path / "high" / "report.md").read_text()
    found = re.search(
        r"stability limit 2/λ_max = ([0-9.]+); any lr below it \(e\.g\. ([0-9.]+)\)", report
    )
    assert found, report
    limit, suggested = map(float, found.groups())
    assert limit == pytest.approx(2 / 15, rel=1e-3) and suggested < limit
    proc = gdbench("check", "--problems", "toy", "--backends", "numpy-manual",
                   "--lr", found.group(2), "--out", str(tmp_path / "stable"))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_epochs_override_every_problem(tmp_path: Path) -> None:
    proc = gdbench("check", "--problems", "toy,toy-bias,toy-20,sweep", "--sizes", "50",
                   "--backends", "numpy-manual", "--epochs", "3",
                   "--out", str(tmp_path))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = [json.loads(line) for line in (tmp_path / "records.jsonl").read_text().splitlines()]
    cases = {r["problem"]: r for r in records if r["kind"] == "convergence"}
    assert sorted(cases) == ["synthetic-50x16", "toy", "toy-20", "toy-bias"]
    assert all(r["epochs"] == 3 and r["status"] == "agree" for r in cases.values())
    trajectories = pd.read_csv(tmp_path / "trajectories.csv")
    assert trajectories.groupby("problem")["epoch"].max().to_dict() == dict.fromkeys(cases, 3)


@pytest.mark.parametrize("value", ["0", "-8", "abc", "1.5", ""])
def test_a_bad_block_size_is_one_line_and_exit_2(value, tmp_path, capsys) -> None:
    from suites.run.cli import main

    rc = main(["check", "--backends", "numpy-blocked", "--problems", "toy",
               f"--block-rows={value}", "--out", str(tmp_path / "run")])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err == [f"gdbench: error: --block-rows must be a positive integer, got '{value}'"]
    assert not (tmp_path / "run" / "records.jsonl").exists()


def test_block_rows_reaches_the_workers_and_the_report(tmp_path) -> None:
    from suites.run.cli import main

    out = tmp_path / "run"
    rc = main(["check", "--backends", "numpy-manual,numpy-blocked", "--problems", "toy-20",
               "--block-rows", "7", "--out", str(out)])  # fmt: skip
    assert rc == 0
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    cases = {r["variant"]: r for r in records if r.get("kind") == "convergence"}
    assert cases["numpy-blocked"]["block_rows"] == 7 and cases["numpy-blocked"]["status"] == "agree"
    assert cases["numpy-manual"]["block_rows"] is None
    log = next((out / "workers").glob("*numpy-blocked*.log")).read_text()
    assert "--gdb-block-rows 7" in log.splitlines()[0] or "--gdb-block-rows 7" in log
    report = (out / "report.md").read_text()
    assert "7 rows at 1 float32 feature (28 B of X) (set by --block-rows)" in report


H100 = "NVIDIA H100 80GB HBM3, 9.0, 81559, 550.54.15"


def test_a_run_names_the_gpu_in_its_header_and_report_without_importing_a_framework(
    tmp_path: Path,
) -> None:
    folder = fake_nvidia_smi(tmp_path / "bin", f"echo '{H100}'")
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "suites.run.cli", "check", "--problems", "toy",
         "--backends", "numpy-manual", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT),
             "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    header = next(r for r in records if r["kind"] == "run")  # the manager's: no framework
    assert header["machine"]["gpu"]["name"] == "NVIDIA H100 80GB HBM3"
    report = (out / "report.md").read_text()
    assert "- **GPU:** NVIDIA H100 80GB HBM3 (compute capability 9.0, 79.6 GiB; driver " in report


@pytest.mark.skipif(
    any(importlib.util.find_spec(f) is not None for f in ("torch", "jax")),
    reason="torch or jax is installed here: the numpy-only tox environment runs this",
)
def test_where_only_numpy_is_installed_a_check_runs_numpy_and_names_what_did_not_run(
    tmp_path: Path,
) -> None:
    """tox's py3XX-numpy: the command, the workers and the report work without torch and
    jax, and every variant of theirs is named with the line that installs it."""
    out = tmp_path / "run"
    proc = gdbench("check", "--backends", "all", "--problems", "toy", "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ran = set(pd.read_csv(out / "trajectories.csv")["variant"])
    assert ran == {"numpy-manual", "numpy-blocked"}
    report = (out / "report.md").read_text()
    not_run = report.split("Not run here", 1)[1]
    for variant in VARIANTS:
        framework = framework_of(variant)
        if framework == "numpy":
            continue
        assert (
            re.search(
                rf"\| {re.escape(variant)} +\| cpu +\| {framework} is not installed: "
                rf"pip install 'gdbench\[{framework}\]'",
                not_run,
            )
            or variant == "torch-cudagraph"
        ), variant  # no CPU form: not listed on the CPU


def test_a_plain_pytest_session_of_the_suites_builds_the_runs_gdbench_section(tmp_path) -> None:
    # the section a gdbench run exports, built by the same code from the session's records
    out = tmp_path / "out"
    common = ["-p", "no:cacheprovider", "-q", "--gdb-problems", "toy", "--gdb-devices", "cpu",
              "--gdb-backends", "numpy-manual,torch-cudagraph"]  # fmt: skip
    bench = ROOT / "suites" / "bench"
    # not an xdist worker's variables: pytest-benchmark would not time under them
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}
    env["PYTHONPATH"] = str(ROOT)

    def pytest_run(*args: str) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", *args, *common], capture_output=True, text=True,
            cwd=ROOT, env=env, timeout=300,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout + proc.stderr

    pytest_run(str(bench / "test_convergence.py"), "--gdb-out", str(out))
    checked = json.loads((out / "convergence.json").read_text())["gdbench"]
    pytest_run(f"{bench / 'test_epoch_cost.py'}::test_epoch_cost", "--gdb-quick",
               "--benchmark-enable", "--benchmark-json", str(tmp_path / "b.json"))  # fmt: skip
    timed = json.loads((tmp_path / "b.json").read_text())["gdbench"]
    for section in (checked, timed):
        assert section["config"]["problems"] == ["toy"] and section["interrupted"] is False
        assert section["machine"]["node"] == platform.node()
        assert section["failures"] == []
    assert [(c["variant"], c["status"]) for c in checked["convergence"]] == [
        ("numpy-manual", "agree")
    ]
    assert checked["unavailable"] == []  # torch-cudagraph has no CPU form: not a case here


def test_version_names_the_installed_distribution() -> None:
    from importlib.metadata import version

    proc = gdbench("--version")
    assert proc.returncode == 0 and proc.stdout.strip() == f"gdbench {version('gdbench')}"


def test_report_never_writes_into_a_run_it_reads_and_show_prints_its_answer(
    tmp_path: Path,
) -> None:
    out = tmp_path / "run"
    proc = gdbench("run", "--quick", "--problems", "toy", "--backends", "numpy-manual",
                   "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # without --out: a new folder beside, every file of the run left as it was
    proc = gdbench("report", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (made,) = (tmp_path / "results").iterdir()
    assert made.name.endswith("-report") and (made / "report.md").is_file()
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    # --out naming the run's own folder is refused, with nothing written
    assert_usage_error(gdbench("report", str(out), "--out", str(out)), "holds an input")
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    # show: the run's answer again, as the run printed it
    shown = gdbench("show", str(out))
    assert shown.returncode == 0, shown.stderr
    assert "Convergence: all 1 runs agree" in shown.stdout
    assert "fastest per problem" in shown.stdout and "toy (4×1)  numpy-manual" in shown.stdout
    assert_usage_error(gdbench("show", str(tmp_path / "nothing")), "no such run folder")


def test_help_is_plain_text_and_lists_every_closed_set_of_values() -> None:
    top = gdbench("--help")
    assert top.returncode == 0 and "``" not in top.stdout
    for command in ("run", "check", "report", "show", "compare", "list", "rank"):
        assert command in top.stdout
    run = gdbench("run", "--help").stdout
    words = run.split()
    for name in VARIANTS:  # each a whole word: never broken at a hyphen
        assert any(w.strip(",;.") == name for w in words), name
    assert "{float32,float64}" in run and "{variant,framework,none}" in run
    assert "{float32,tf32}" in run and "cpu, cuda" in run
