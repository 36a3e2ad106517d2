"""Reports from hand-written pytest-benchmark JSON: every number checked on paper.

Fixtures (tests/fixtures): machine "alpha" times synthetic-100x16 (100 epochs) at
2 ms (numpy-manual), 4 ms (torch-nn) and 0.5 ms (jax-scan) per round, and toy-bias
(4000 epochs) at 20 ms (numpy-manual) with jax-scan diverged; machine "beta" times
synthetic-100x16 at 1 ms (numpy-manual) and 0.4 ms (jax-scan). Machine "gamma"
(machine_gpu.json) has an H100: synthetic-1000000x16 (20 epochs) on cpu and cuda, and
copy bandwidths of both devices.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from reports import frame, read, write
from tests.reports.markdown import cell

FIXTURES = Path(__file__).parents[1] / "fixtures"
A, B = FIXTURES / "machine_a.json", FIXTURES / "machine_b.json"


def row(results: pd.DataFrame, host: str, variant: str, problem: str) -> pd.Series:
    match = results[
        (results["host"] == host)
        & (results["variant"] == variant)
        & (results["problem"] == problem)
    ]
    assert len(match) == 1
    return match.iloc[0]


def test_per_epoch_statistics_are_round_statistics_divided_by_epochs() -> None:
    results = frame.load([A]).results
    numpy_row = row(results, "alpha", "numpy-manual", "synthetic-100x16")
    assert numpy_row["per_epoch_median_s"] == pytest.approx(2e-3 / 100)
    assert numpy_row["per_epoch_iqr_s"] == pytest.approx(1e-4 / 100)
    assert numpy_row["per_epoch_min_s"] == pytest.approx(1.9e-3 / 100)
    assert numpy_row["rounds"] == 50
    assert row(results, "alpha", "numpy-manual", "toy-bias")["per_epoch_median_s"] == pytest.approx(
        2e-2 / 4000
    )


def test_speedup_is_numpy_median_over_each_median_on_the_same_problem() -> None:
    results = frame.load([A]).results
    assert row(results, "alpha", "numpy-manual", "synthetic-100x16")["speedup_vs_numpy"] == 1.0
    assert row(results, "alpha", "torch-nn", "synthetic-100x16")[
        "speedup_vs_numpy"
    ] == pytest.approx(0.5)
    assert row(results, "alpha", "jax-scan", "synthetic-100x16")[
        "speedup_vs_numpy"
    ] == pytest.approx(4.0)


def test_a_diverged_run_has_no_cost_and_no_speedup() -> None:
    diverged = row(frame.load([A]).results, "alpha", "jax-scan", "toy-bias")
    assert diverged["status"] == "diverged"
    assert math.isnan(diverged["per_epoch_median_s"]) and math.isnan(diverged["speedup_vs_numpy"])


def test_two_machines_merge_without_ratios_across_machines() -> None:
    frames = frame.load([A, B])
    assert {m.host for m in frames.machines} == {"alpha", "beta"}
    # beta's jax-scan against beta's numpy: 1 ms / 0.4 ms, never alpha's 2 ms / 0.4 ms.
    assert row(frames.results, "beta", "jax-scan", "synthetic-100x16")[
        "speedup_vs_numpy"
    ] == pytest.approx(2.5)
    assert row(frames.results, "alpha", "jax-scan", "synthetic-100x16")[
        "speedup_vs_numpy"
    ] == pytest.approx(4.0)
    report = write.markdown_report(frames)
    for key in ("alpha (Intel Xeon Test)", "beta (AMD EPYC Test)"):
        assert f"## Summary: {key}" in report and f"## Details: {key}" in report
    beta = report.split("## Details: beta")[1]
    assert "4 µs ± 400 ns †" in beta and "2.50×" in beta and "40 µs" not in beta


def test_results_csv_has_the_documented_columns_and_values(tmp_path: Path) -> None:
    write.write_all(frame.load([A]), tmp_path)
    csv = pd.read_csv(tmp_path / "results.csv")
    for col in (
        "variant",
        "framework",
        "device",
        "dtype",
        "problem",
        "n_samples",
        "n_features",
        "epochs",
        "per_epoch_median_s",
        "per_epoch_iqr_s",
        "per_epoch_min_s",
        "rounds",
        "compile_s",
        "final_loss",
        "speedup_vs_numpy",
        "machine",
        "numpy_version",
        "torch_version",
        "jax_version",
    ):
        assert col in csv.columns, col
    torch_row = csv[(csv["variant"] == "torch-nn")].iloc[0]
    assert torch_row["per_epoch_median_s"] == pytest.approx(4e-5)
    assert torch_row["compile_s"] == pytest.approx(0.25)
    assert torch_row["machine"] == "alpha (Intel Xeon Test)"
    assert torch_row["torch_version"] == "2.13.0+cpu"


def test_markdown_cost_table_marks_the_fastest_agreeing_backend() -> None:
    report = write.markdown_report(frame.load([A]))

    def cost(variant: str, problem: str) -> str:
        return cell(report, "Per-epoch cost", f"{variant}@cpu", problem)

    assert cost("numpy-manual", "synthetic 100×16") == "20 µs ± 1 µs"
    assert cost("torch-nn", "synthetic 100×16") == "40 µs ± 2 µs"
    # no rounds in this JSON: the fastest median is marked untested, never bold
    assert cost("jax-scan", "synthetic 100×16") == "5 µs ± 500 ns †"
    # jax-scan diverged: its 25 ns must not win the column.
    assert cost("numpy-manual", "toy-bias (4×1)") == "5 µs ± 250 ns †"
    assert cost("jax-scan", "toy-bias (4×1)") == "diverged"


def test_markdown_has_environment_convergence_speedups_and_compile_times() -> None:
    report = write.markdown_report(frame.load([A]))
    assert "- **CPU:** Intel Xeon Test, 2 cores; **threads:** 2 per framework" in report
    assert "numpy 2.4.6" in report and "torch 2.13.0+cpu" in report
    assert "diverged at epoch 2" in report
    assert "lr = 0.2 is above the stability limit 2/λ_max = 0.1" in report
    # each row's time over the fastest of its problem: numpy-manual 4×, torch-nn 8×
    over = "Time over the fastest"
    assert cell(report, over, "numpy-manual@cpu", "synthetic 100×16") == "4.00×"
    assert cell(report, over, "torch-nn@cpu", "synthetic 100×16") == "8.00×"
    assert cell(report, "Compile", "torch-nn@cpu", "synthetic 100×16") == "250 ms"
    not_run = report.split("## Not run here")[1].split("##")[0]
    assert (
        "torch-nn" in not_run
        and "CUDA is not available: torch.cuda.is_available() is False" in not_run
    )


def test_trajectories_csv_has_one_row_per_epoch_with_parameters(tmp_path: Path) -> None:
    write.write_all(frame.load([A]), tmp_path)
    traj = pd.read_csv(tmp_path / "trajectories.csv")
    assert list(traj.columns) == [
        "problem",
        "variant",
        "device",
        "dtype",
        "epoch",
        "loss",
        "w0",
        "b",
        "machine",
    ]
    assert len(traj) == 6
    second = traj[(traj["variant"] == "jax-scan") & (traj["epoch"] == 2)].iloc[0]
    assert (second["loss"], second["w0"], second["b"]) == (45.0, 0.9, 0.4)
    assert traj["epoch"].min() == 1


def test_every_report_file_is_written(tmp_path: Path) -> None:
    written = write.write_all(frame.load([A, B]), tmp_path)
    names = {p.name for p in written}
    assert names == {
        "results.csv",
        "trajectories.csv",
        "report.md",
        "epoch_cost.png",
        "time_to_accuracy.png",
        "convergence.png",
    }
    report = (tmp_path / "report.md").read_text()
    for name in ("epoch_cost.png", "time_to_accuracy.png", "convergence.png"):
        assert f"]({name})" in report  # linked from the report
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_human_time_picks_the_unit() -> None:
    assert write.human_time(2.5e-8) == "25 ns"
    assert write.human_time(1.234e-5) == "12.3 µs"
    assert write.human_time(0.25) == "250 ms"
    assert write.human_time(3.0) == "3 s"
    assert write.human_time(float("nan")) == "–"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ('{"hello": 1}', "not pytest-benchmark output"),
        ('{"benchmarks": []}', "without gdbench's fields"),
    ],
)
def test_unusable_input_is_refused_with_its_path(
    tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "in.json"
    path.write_text(content)
    with pytest.raises(frame.ReportInputError, match=message) as err:
        frame.load([path])
    assert str(path) in str(err.value)


def test_a_benchmark_without_gdbench_extra_info_is_refused(tmp_path: Path) -> None:
    doc = json.loads(A.read_text())
    first_case = next(b for b in doc["benchmarks"] if b["extra_info"].get("kind") == "benchmark")
    del first_case["extra_info"]["variant"]
    path = tmp_path / "in.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(frame.ReportInputError, match="lacks gdbench's fields"):
        frame.load([path])


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(frame.ReportInputError, match="no such file"):
        frame.load([tmp_path / "absent.json"])


def test_bandwidth_fraction_uses_the_best_copy_of_the_same_machine() -> None:
    frames = frame.load([A])
    bw = frames.bandwidth.set_index("method")["gbps"]
    assert bw["numpy-copy"] == pytest.approx(536870912 / 0.05 / 1e9)
    assert bw["torch-copy"] == pytest.approx(536870912 / 0.04 / 1e9)
    numpy_row = row(frames.results, "alpha", "numpy-manual", "synthetic-100x16")
    # X is 100 x 16 float32, read twice: 12,800 bytes per epoch in 20 µs = 0.64 GB/s.
    assert numpy_row["bytes_per_epoch"] == 2 * 100 * 16 * 4
    assert numpy_row["achieved_gbps"] == pytest.approx(0.64)
    assert numpy_row["bandwidth_fraction"] == pytest.approx(0.64 / (536870912 / 0.04 / 1e9))


def test_a_machine_without_a_bandwidth_run_has_no_fraction() -> None:
    beta = row(frame.load([B]).results, "beta", "numpy-manual", "synthetic-100x16")
    assert math.isnan(beta["bandwidth_fraction"]) and beta["achieved_gbps"] == pytest.approx(1.28)


def test_gap_to_fastest_is_each_median_over_the_rows_best() -> None:
    results = frame.load([A]).results
    assert row(results, "alpha", "numpy-manual", "synthetic-100x16")[
        "gap_to_fastest"
    ] == pytest.approx(4.0)
    assert row(results, "alpha", "torch-nn", "synthetic-100x16")["gap_to_fastest"] == pytest.approx(
        8.0
    )
    assert row(results, "alpha", "jax-scan", "synthetic-100x16")["gap_to_fastest"] == pytest.approx(
        1.0
    )


def test_harness_overhead_is_a_share_of_one_iteration_of_the_round() -> None:
    jax_row = row(frame.load([A]).results, "alpha", "jax-scan", "synthetic-100x16")
    # 2 µs of overhead per round of 2 iterations of 0.5 ms: 0.2%.
    assert jax_row["harness_overhead_pct"] == pytest.approx(0.2)
    assert jax_row["epochs_per_round"] == 200
    report = write.markdown_report(frame.load([A]))
    assert "numpy-copy: 10.7 GB/s, torch-copy: 13.4 GB/s" in report
    limits = "Machine limits"
    assert cell(report, limits, "numpy-manual@cpu", "synthetic 100×16") == "5% (0.64 GB/s)"
    # jax-scan: 200 rounds of 2 iterations × 100 epochs
    assert cell(report, "Timed rounds", "jax-scan@cpu", "synthetic 100×16") == "200 × 200"


# --- a GPU machine: its own copy bandwidth, its GPU in the key ---------------------------

GPU = FIXTURES / "machine_gpu.json"
GPU_NAME = "NVIDIA H100 80GB HBM3"


def best_copy_gbps(doc: dict, device: str) -> float:
    """The fastest copy of ``device`` in a fixture, from its bytes and median."""
    return max(
        b["extra_info"]["bytes"] / b["stats"]["median"] / 1e9
        for b in doc["benchmarks"]
        if b["extra_info"]["kind"] == "bandwidth" and b["extra_info"]["device"] == device
    )


def without_cuda_copies(tmp_path: Path) -> Path:
    doc = json.loads(GPU.read_text())
    doc["benchmarks"] = [
        b for b in doc["benchmarks"] if b["extra_info"].get("device") != "cuda"
        or b["extra_info"]["kind"] != "bandwidth"
    ]  # fmt: skip
    path = tmp_path / "no_cuda_copy.json"
    path.write_text(json.dumps(doc))
    return path


def test_each_row_is_divided_by_the_best_copy_bandwidth_of_its_own_device() -> None:
    doc = json.loads(GPU.read_text())
    best = {device: best_copy_gbps(doc, device) for device in ("cpu", "cuda")}
    results = frame.load([GPU]).results
    cases = [b["extra_info"] | {"median": b["stats"]["median"]} for b in doc["benchmarks"]
             if b["extra_info"]["kind"] == "benchmark"]  # fmt: skip
    assert {c["device"] for c in cases} == {"cpu", "cuda"}
    for case in cases:
        achieved = 2 * case["n_samples"] * case["n_features"] * 4 / (case["median"] / 20) / 1e9
        match = results[(results["variant"] == case["variant"])
                        & (results["device"] == case["device"])]  # fmt: skip
        assert len(match) == 1
        assert match.iloc[0]["achieved_gbps"] == pytest.approx(achieved)
        assert match.iloc[0]["bandwidth_fraction"] == pytest.approx(
            achieved / best[case["device"]]
        ), case["variant"] + "@" + case["device"]


def test_a_cuda_row_without_a_cuda_copy_has_no_fraction_never_the_hosts(tmp_path: Path) -> None:
    frames = frame.load([without_cuda_copies(tmp_path)])
    cuda = frames.results[frames.results["device"] == "cuda"]
    cpu = frames.results[frames.results["device"] == "cpu"]
    assert len(cuda) == 2 and cuda["bandwidth_fraction"].isna().all()
    assert cpu["bandwidth_fraction"].notna().all()
    report = write.markdown_report(frames)
    assert "- cuda: not measured; its rows have no bandwidth fraction" in report
    fractions = [cell(report, "Machine limits", variant, "synthetic 1,000,000×16")
                 for variant in ("numpy-manual@cpu", "torch-autograd@cpu", "torch-autograd@cuda",
                                 "jax-scan@cuda")]  # fmt: skip
    assert fractions == ["38% (13 GB/s)", "48% (16 GB/s)", "–", "–"]


def test_copy_records_without_a_device_are_host_copies() -> None:
    bandwidth = frame.load([A]).bandwidth
    assert list(bandwidth["device"]) == ["cpu", "cpu"]


def test_the_report_gives_each_devices_copy_bandwidth_and_what_its_rows_are_divided_by() -> None:
    report = write.markdown_report(frame.load([GPU]))
    assert (
        "- cpu (256 MiB arrays): numpy-copy: 26.8 GB/s, torch-copy: 33.6 GB/s; cpu rows are "
        "divided by 33.6 GB/s (torch-copy)" in report
    )
    assert (
        "- cuda (1024 MiB arrays): torch-cuda-copy: 2147 GB/s, jax-cuda-copy: 2684 GB/s; cuda "
        "rows are divided by 2684 GB/s (jax-cuda-copy)" in report
    )
    # jax-scan on cuda: 128 MB per epoch in 100 µs = 1280 GB/s, 48% of 2684 GB/s
    assert "| 48% (1280 GB/s) " in report


def test_a_gpu_machine_is_keyed_by_its_gpu_and_every_row_names_it(tmp_path: Path) -> None:
    frames = frame.load([GPU, A])
    key = f"gamma (AMD EPYC Test, {GPU_NAME})"
    assert [m.key for m in frames.machines] == [key, "alpha (Intel Xeon Test)"]
    write.write_all(frames, tmp_path)
    csv = pd.read_csv(tmp_path / "results.csv", keep_default_na=False)
    assert "gpu" in csv.columns
    gamma, alpha = csv[csv["host"] == "gamma"], csv[csv["host"] == "alpha"]
    assert (gamma["gpu"] == GPU_NAME).all() and (gamma["machine"] == key).all()
    assert (alpha["gpu"] == "").all()  # a machine without a GPU: empty on every row
    report = (tmp_path / "report.md").read_text()
    assert f"## Details: {key}" in report
    assert (
        f"- **GPU:** {GPU_NAME} (compute capability 9.0, 79.6 GiB; driver 550.54.15, "
        "CUDA 12.8, cuDNN 91002, jax-cuda12-plugin 0.10.2)" in report
    )
    assert "- **GPU:** none" in report.split("## Details: alpha")[1]


def test_two_runs_on_one_host_with_different_gpus_are_never_ratioed_together(
    tmp_path: Path,
) -> None:
    doc = json.loads(GPU.read_text())
    for part in (doc["machine_info"]["gdbench"], doc["gdbench"]["machine"]):
        part["gpu"] = {"name": "NVIDIA A100-SXM4-80GB", "driver": "550.54.15"}
    for bench in doc["benchmarks"]:
        if bench["extra_info"].get("variant") == "numpy-manual":
            bench["stats"]["median"] = 0.4  # the host is slower in this run
    other = tmp_path / "a100.json"
    other.write_text(json.dumps(doc))
    frames = frame.load([GPU, other])
    assert len(frames.machines) == 2
    jax_rows = frames.results[frames.results["variant"] == "jax-scan"].set_index("gpu")
    # numpy-manual over jax-scan within each run: 0.2 s / 2 ms and 0.4 s / 2 ms
    assert jax_rows.loc[GPU_NAME, "speedup_vs_numpy"] == pytest.approx(100)
    assert jax_rows.loc["NVIDIA A100-SXM4-80GB", "speedup_vs_numpy"] == pytest.approx(200)


def test_the_run_keeps_the_headers_gpu_and_adds_what_a_worker_knew() -> None:
    smi = {"name": GPU_NAME, "compute_capability": "9.0", "memory_gib": 79.6,
           "driver": "550.54.15", "cuda": None, "cudnn": None,
           "jax_cuda_plugin": "jax-cuda12-plugin 0.10.2"}  # fmt: skip
    torch_worker = dict(smi, name="H100 as torch names it", cuda="12.8", cudnn=91002)
    records = [
        {"kind": "run", "machine": {"node": "gamma", "gpu": smi}},
        {"kind": "worker", "worker": "numpy-manual@cpu", "machine": {"gpu": smi}},
        {"kind": "worker", "worker": "torch-nn@cuda", "machine": {"gpu": torch_worker}},
        {"kind": "worker", "worker": "bandwidth", "machine": {"gpu": None}},
    ]
    gpu = read.merged_machine(records)["gpu"]
    assert gpu == dict(smi, cuda="12.8", cudnn=91002)  # the header's name, torch's versions
    # no GPU in the header (no nvidia-smi): a worker's is taken whole
    alone = read.merged_machine([records[0] | {"machine": {}}, records[2]])
    assert alone["gpu"] == torch_worker


def test_a_later_file_from_the_same_machine_replaces_the_earlier_rows(tmp_path: Path) -> None:
    # A re-run on machine alpha where numpy-manual got twice as slow on one problem.
    doc = json.loads(A.read_text())
    for bench in doc["benchmarks"]:
        info = bench["extra_info"]
        if (info.get("variant"), info.get("problem")) == ("numpy-manual", "synthetic-100x16"):
            bench["stats"] = {k: 2 * v if k not in ("rounds", "iterations") else v
                              for k, v in bench["stats"].items()}  # fmt: skip
    rerun = tmp_path / "rerun.json"
    rerun.write_text(json.dumps(doc))
    before = frame.load([A]).results
    after = frame.load([rerun]).results
    key = ("alpha", "numpy-manual", "synthetic-100x16")
    assert row(after, *key)["per_epoch_median_s"] == pytest.approx(
        2 * row(before, *key)["per_epoch_median_s"]
    )
    for files, expected in (([A, rerun], after), ([rerun, A], before), ([A, rerun, B], after)):
        merged = frame.load(files).results
        alpha = merged[merged["host"] == "alpha"]
        assert len(alpha) == len(before)  # one row per case, never two
        assert row(merged, *key)["per_epoch_median_s"] == pytest.approx(
            row(expected, *key)["per_epoch_median_s"]
        )
    # the other machine's rows are untouched by alpha's re-run
    assert len(frame.load([A, rerun, B]).results) == len(before) + len(frame.load([B]).results)


@pytest.mark.parametrize(("option", "said"), [(None, False), (7, True)])
def test_the_block_sizes_are_the_recorded_ones_and_an_option_is_named(option, said) -> None:
    info = {"l2_cache": {"l2_bytes": 2 * 2**20, "source": "sysfs"}}
    if option is not None:
        info["block_rows_option"] = option
    machine = read.Machine("m (cpu)", "m", "cpu", info)
    rows = pd.DataFrame({"machine": ["m (cpu)"] * 2, "n_features": [16, 1],
                         "dtype": ["float32", "float64"], "block_rows": [7, 32768]})  # fmt: skip
    frames = SimpleNamespace(results=rows, convergence=rows.iloc[:0])
    (line,) = write._block_rows(frames, machine)
    # the recorded sizes, whatever the L2 rule would choose now
    assert "7 rows at 16 float32 features (448 B of X)" in line
    assert "32,768 rows at 1 float64 feature (256 KiB of X)" in line
    assert line.count("(set by --block-rows)") == (2 if said else 0)
    assert "half the 2 MiB L2 cache of a core (sysfs)" in line


def test_the_terminal_summary_names_the_fastest_and_its_runner_up_in_100_columns() -> None:
    # alpha, synthetic-100x16: jax-scan 0.5 ms / 100 epochs = 5 µs, numpy-manual 20 µs
    # (4×), torch-nn 40 µs; toy-bias: numpy-manual 20 ms / 4000 = 5 µs, jax-scan diverged.
    # No rounds in these files: the fastest medians are untested (†), gaps have no interval.
    text = write.cost_table_text(frame.load([A, B]))
    alpha, beta = text.split("\n\n")
    assert alpha.splitlines() == [
        "fastest per problem, alpha (Intel Xeon Test)",
        "problem         fastest         per epoch  runner-up     its time [95%]",
        "toy-bias (4×1)  numpy-manual †  5 µs",
        "100×16          jax-scan †      5 µs       numpy-manual  4.00×",
    ]
    assert beta.splitlines()[2] == "100×16   jax-scan †  4 µs       numpy-manual  2.50×"


def summary_rows(*rows: dict) -> SimpleNamespace:
    base = {"machine": "m", "dtype": "float32", "problem": "synthetic-10000x16",
            "n_samples": 10_000, "n_features": 16, "device": "cpu", "fastest": "",
            "parallel_variant": None, "ranks": None, "gap_ci_low": np.nan,
            "gap_ci_high": np.nan}  # fmt: skip
    return SimpleNamespace(results=pd.DataFrame([base | r for r in rows]))


def test_the_terminal_summary_stays_within_100_columns_with_long_names() -> None:
    long = {"dtype": "float64", "problem": "synthetic-10000000x16", "n_samples": 10_000_000,
            "parallel_variant": "jax-shardmap-procs", "ranks": 16}  # fmt: skip
    frames = summary_rows(
        long | {"variant": "jax-shardmap-procs-x16", "per_epoch_median_s": 1.234e-3,
                "fastest": "tie", "gap_to_fastest": 1.0},
        long | {"variant": "jax-sharded-procs-x16", "per_epoch_median_s": 1.9,
                "gap_to_fastest": 1539.7, "gap_ci_low": 1234.5, "gap_ci_high": 1789.1},
    )  # fmt: skip
    table = write.summary_table(frames, "m")
    assert list(table.loc[0]) == ["10,000,000×16 float64", "jax-shardmap-procs-x16 ≈",
                                  "1.23 ms", "jax-sharded-procs-x16",
                                  "1540× [1234, 1789]"]  # fmt: skip
    text = write.cost_table_text(frames)
    assert max(map(len, text.splitlines())) <= write.TERMINAL_WIDTH
    # too wide with its intervals: the ratios alone, and where the intervals are
    assert "1540×" in text and "[1234" not in text and text.endswith("(intervals: report.md)")


def test_the_terminal_summary_names_devices_and_leaves_out_k_1_baselines() -> None:
    frames = summary_rows(
        {"variant": "torch-manual", "per_epoch_median_s": 2e-6, "gap_to_fastest": 2.0},
        {"variant": "torch-manual", "device": "cuda", "per_epoch_median_s": 1e-6,
         "fastest": "yes", "gap_to_fastest": 1.0},
        {"variant": "torch-ddp-x1", "device": "cuda", "per_epoch_median_s": 0.5e-6,
         "parallel_variant": "torch-ddp", "ranks": 1, "gap_to_fastest": 0.5},
    )  # fmt: skip
    table = write.summary_table(frames, "m")
    assert list(table.loc[0]) == ["10,000×16", "torch-manual@cuda", "1 µs", "torch-manual@cpu",
                                  "2.00×"]  # fmt: skip
    only = summary_rows({"variant": "torch-ddp-x1", "per_epoch_median_s": 1e-6,
                         "parallel_variant": "torch-ddp", "ranks": 1})  # fmt: skip
    assert write.summary_table(only, "m").loc[0, "fastest"] == "only K = 1 scaling baselines"
    none = summary_rows({"variant": "torch-nn", "per_epoch_median_s": np.nan})
    assert write.summary_table(none, "m").loc[0, "fastest"] == "no valid timing"


def test_the_summary_leads_with_the_row_every_gap_is_measured_against() -> None:
    # alternating rounds left torch-compile's median ratio to torch-manual, the leader,
    # just below 1 but undecided: torch-manual stays first, torch-compile its runner-up
    frames = summary_rows(
        {"variant": "torch-compile", "per_epoch_median_s": 3.1e-3, "fastest": "tie",
         "gap_to_fastest": 0.98, "gap_ci_low": 0.923, "gap_ci_high": 1.19},
        {"variant": "torch-manual", "per_epoch_median_s": 3.0e-3, "fastest": "tie",
         "gap_to_fastest": 1.0, "gap_ci_low": 1.0, "gap_ci_high": 1.0},
    )  # fmt: skip
    table = write.summary_table(frames, "m")
    assert list(table.loc[0]) == ["10,000×16", "torch-manual ≈", "3 ms", "torch-compile",
                                  "0.98× [0.923, 1.19]"]  # fmt: skip
