"""reports/frame.py column by column: each results.csv, convergence and trajectory field
from hand-written inputs, against values worked out on paper."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from reports import frame, read

MACHINE = frame.Machine(
    "h (C)", "h", "C", {"versions": {"numpy": "1.0", "torch": "2.0", "jax": "3.0"}, "threads": 8}
)


INFO = {
    "variant": "torch-nn", "framework": "torch", "device": "cpu", "dtype": "float64",
    "problem": "p", "n_samples": 10, "n_features": 3, "epochs": 4, "status": "agree",
    "iterations": 2, "harness_overhead_s": 0.001, "fixed_s": 0.5, "marginal_epoch_s": 0.004,
    "compile_s": 1.5, "final_loss": 0.25, "ref_final_loss": 0.2, "threads": 3,
    "matmul_precision": "float32", "message": "m", "data_bytes": 320,
    "peak_host_bytes": 1000, "peak_device_bytes": 2000, "pid": 7,
}  # fmt: skip


STATS = {"median": 0.02, "iqr": 0.004, "min": 0.01, "mean": 0.03, "rounds": 5,
         "data": [0.02] * 5}  # fmt: skip


def test_a_timed_row_has_every_documented_value() -> None:
    row = frame._row(INFO, STATS, MACHINE)
    assert {k: row[k] for k in ("variant", "framework", "device", "dtype", "problem")} == {
        "variant": "torch-nn", "framework": "torch", "device": "cpu", "dtype": "float64",
        "problem": "p",
    }  # fmt: skip
    assert (row["n_samples"], row["n_features"], row["epochs"]) == (10, 3, 4)
    assert row["status"] == "agree"
    assert row["per_epoch_median_s"] == pytest.approx(0.005)
    assert row["per_epoch_iqr_s"] == pytest.approx(0.001)
    assert row["per_epoch_min_s"] == pytest.approx(0.0025)
    assert row["per_epoch_mean_s"] == pytest.approx(0.0075)
    # five equal rounds: the interval is the point itself
    assert row["per_epoch_ci_low_s"] == pytest.approx(0.005)
    assert row["per_epoch_ci_high_s"] == pytest.approx(0.005)
    assert row[frame.ROUNDS] == [[pytest.approx(0.005)] * 5]
    assert (row["fixed_s"], row["marginal_epoch_s"]) == (0.5, 0.004)
    assert (row["rounds"], row["iterations"], row["epochs_per_round"]) == (5, 2, 8)
    # 1 ms of overhead against 2 iterations of 20 ms
    assert row["harness_overhead_pct"] == pytest.approx(2.5)
    assert (row["compile_s"], row["final_loss"], row["ref_final_loss"]) == (1.5, 0.25, 0.2)
    assert (row["machine"], row["host"], row["cpu"], row["gpu"]) == ("h (C)", "h", "C", "")
    assert (row["threads"], row["matmul_precision"], row["message"]) == (3, "float32", "m")
    assert (row["numpy_version"], row["torch_version"], row["jax_version"]) == ("1.0", "2.0", "3.0")
    # X read twice per epoch: 2 · 10 · 3 · 8 bytes (float64); the floor reads it once
    assert row["bytes_per_epoch"] == 480 and row["one_pass_bytes"] == 240
    assert (row["data_bytes"], row["peak_host_bytes"], row["peak_device_bytes"]) == (
        320,
        1000,
        2000,
    )
    assert row["pid"] == "7" and row["processes"] == 1


def test_float32_reads_four_bytes_per_value() -> None:
    row = frame._row(INFO | {"dtype": "float32"}, STATS, MACHINE)
    assert row["bytes_per_epoch"] == 240 and row["one_pass_bytes"] == 120


def test_a_row_without_sizes_reads_nothing() -> None:
    info = {k: v for k, v in INFO.items() if k not in ("n_samples", "n_features")}
    assert frame._row(info, STATS, MACHINE)["bytes_per_epoch"] == 0


@pytest.mark.parametrize("status", ["disagree", "diverged", "failed"])
def test_a_row_that_did_not_agree_has_no_cost(status) -> None:
    row = frame._row(INFO | {"status": status}, STATS, MACHINE)
    assert row["status"] == status
    for key in ("per_epoch_median_s", "per_epoch_iqr_s", "per_epoch_min_s", "per_epoch_mean_s",
                "per_epoch_ci_low_s", "per_epoch_ci_high_s", "fixed_s", "marginal_epoch_s",
                "harness_overhead_pct"):  # fmt: skip
        assert math.isnan(row[key]), key
    assert row[frame.ROUNDS] == []
    assert row["rounds"] == 5 and row["compile_s"] == 1.5  # what was measured is kept


def test_a_row_without_statistics_has_no_cost() -> None:
    row = frame._row(INFO, {}, MACHINE)
    assert math.isnan(row["per_epoch_median_s"]) and math.isnan(row["harness_overhead_pct"])
    assert math.isnan(row["fixed_s"]) and row["rounds"] is None


def test_defaults_of_a_sparse_row() -> None:
    info = {"variant": "v", "device": "cpu", "problem": "p", "epochs": 2}
    row = frame._row(info, {"median": 0.5, "iqr": None}, MACHINE)
    assert row["status"] == "agree" and row["message"] == ""
    assert row["per_epoch_median_s"] == 0.25
    assert math.isnan(row["per_epoch_iqr_s"]) and math.isnan(row["per_epoch_min_s"])
    assert row["iterations"] == 1 and row["epochs_per_round"] == 2
    assert math.isnan(row["harness_overhead_pct"])
    assert row["threads"] == 8  # the machine's, when the case has none
    assert row["pid"] is None and math.isnan(row["processes"])


def test_zero_iterations_count_as_one() -> None:
    row = frame._row(INFO | {"iterations": 0}, STATS, MACHINE)
    assert row["iterations"] == 1 and row["harness_overhead_pct"] == pytest.approx(5.0)


def test_process_fields_of_several_processes() -> None:
    info = {"process_medians": [0.1, 0.3, None, 0.2], "pids": [5, 6, 7]}
    out = frame._process_fields(info, epochs=10, valid=True)
    assert out["processes"] == 3
    assert out["process_spread"] == pytest.approx((0.3 - 0.1) / 0.2)
    assert out["per_epoch_process_min_s"] == pytest.approx(0.01)
    assert out["per_epoch_process_max_s"] == pytest.approx(0.03)
    assert out["pid"] == "5 6 7"
    invalid = frame._process_fields(info, epochs=10, valid=False)
    assert math.isnan(invalid["process_spread"]) and math.isnan(invalid["per_epoch_process_min_s"])
    assert invalid["processes"] == 3
    one = frame._process_fields({"process_medians": [0.2], "pid": 0}, epochs=10, valid=True)
    assert one["processes"] == 1 and math.isnan(one["process_spread"]) and one["pid"] == "0"


def test_interval_over_processes_uses_each_processes_rounds() -> None:
    info = {"process_rounds": [[0.4, 0.4], [0.4], []]}
    out = frame._interval_fields(info, {"data": [8.0, 8.0]}, epochs=4, valid=True)
    assert out["per_epoch_ci_low_s"] == pytest.approx(0.1)
    assert out["per_epoch_ci_high_s"] == pytest.approx(0.1)
    assert out[frame.ROUNDS] == [[0.1, 0.1], [0.1]]
    spread = frame._interval_fields({}, {"data": [1.0, 2.0, 3.0, 4.0, 5.0]}, epochs=1, valid=True)
    assert 1.0 <= spread["per_epoch_ci_low_s"] < 3.0 < spread["per_epoch_ci_high_s"] <= 5.0
    empty = frame._interval_fields({}, {}, epochs=1, valid=True)
    assert math.isnan(empty["per_epoch_ci_low_s"]) and empty[frame.ROUNDS] == []


def test_a_machine_from_pytest_benchmarks_machine_info() -> None:
    gdb_info = {"cpu_model": "EPYC", "gpu": {"name": "H100"}, "threads": 4}
    m = read.machine_of({"node": "n1", "gdbench": gdb_info, "cpu": {"brand_raw": "raw"}},
                       {"machine": {"node": "n2", "cpu_model": "other"}},
                       {"commit_info": {"id": "abc"}, "datetime": "2026-11-22"})  # fmt: skip
    assert (m.key, m.host, m.cpu, m.gpu) == ("n1 (EPYC, H100)", "n1", "EPYC", "H100")
    assert (m.commit, m.datetime) == ("abc", "2026-11-22")
    assert m.info == gdb_info


def test_a_machine_from_the_gdbench_section_and_its_fallbacks() -> None:
    m = read.machine_of({}, {"machine": {"node": "n2", "cpu_model": "C2"}}, {})
    assert (m.key, m.host, m.cpu, m.gpu, m.commit, m.datetime) == ("n2 (C2)", "n2", "C2", "",
                                                                   None, None)  # fmt: skip
    raw = read.machine_of({"cpu": {"brand_raw": "Raw CPU"}}, {}, {})
    assert (raw.key, raw.cpu, raw.info) == ("unknown-host (Raw CPU)", "Raw CPU", {})
    bare = read.machine_of({}, {}, {"commit_info": None})
    assert (bare.key, bare.host, bare.cpu) == ("unknown-host (unknown CPU)", "unknown-host",
                                               "unknown CPU")  # fmt: skip
    no_gpu_name = read.machine_of({}, {"machine": {"gpu": {"memory": 1}}}, {})
    assert no_gpu_name.gpu == "" and no_gpu_name.key == "unknown-host (unknown CPU)"


def test_a_bandwidth_row_is_bytes_over_its_median() -> None:
    info = {"bytes": 3e9, "device": "cuda", "method": "torch-cuda-read", "access": "read",
            "threads": 2}  # fmt: skip
    row = frame._bandwidth_row(info, {"median": 0.5}, MACHINE)
    assert row == {"machine": "h (C)", "device": "cuda", "method": "torch-cuda-read",
                   "access": "read", "bytes": 3e9, "median_s": 0.5,
                   "gbps": pytest.approx(6.0), "threads": 2}  # fmt: skip
    old = frame._bandwidth_row({"bytes": 8, "method": "numpy-copy"}, {}, MACHINE)
    assert (old["device"], old["access"], old["median_s"]) == ("cpu", "copy", None)
    assert math.isnan(old["gbps"]) and old["threads"] is None
    assert math.isnan(frame._bandwidth_row({"bytes": 8}, {"median": 0}, MACHINE)["gbps"])


def test_copy_bandwidth_is_the_best_of_the_rows_own_machine_and_device() -> None:
    rows = pd.DataFrame({"machine": ["a", "a", "b"], "device": ["cpu", "cuda", "cpu"]})
    bw = pd.DataFrame({
        "machine": ["a", "a", "a", "a", "b"], "device": ["cpu", "cpu", "cpu", "cuda", "cuda"],
        "access": ["copy", "copy", "read", "read", "copy"], "gbps": [2.0, 5.0, 9.0, 700.0, 1.0],
    })  # fmt: skip
    copy = frame.copy_bandwidth(rows, bw)
    assert copy.iloc[0] == 5.0 and math.isnan(copy.iloc[1]) and math.isnan(copy.iloc[2])
    read = frame.copy_bandwidth(rows, bw, access="read")
    assert list(read.iloc[:2]) == [9.0, 700.0] and math.isnan(read.iloc[2])
    assert list(copy.index) == list(rows.index)


def test_each_unreadable_json_input_is_refused_with_its_reason(tmp_path) -> None:
    def refused(path, pattern):
        with pytest.raises(frame.ReportInputError, match=pattern):
            frame.load([path])

    refused(tmp_path / "none.json", r"none.json: no such file$")
    bad = tmp_path / "bad.json"
    bad.write_text("{nope", encoding="utf-8")
    refused(bad, r"bad.json: not JSON \(JSONDecodeError: ")
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"a": "\xff"}')
    refused(latin, r"latin.json: not JSON \(UnicodeDecodeError: ")
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]", encoding="utf-8")
    refused(listed, r"list.json: not pytest-benchmark output \(no 'benchmarks' list\); give the")
    plain = tmp_path / "plain.json"
    plain.write_text('{"benchmarks": []}', encoding="utf-8")
    refused(plain, r"plain.json: pytest-benchmark output without gdbench's fields \(no 'gdbench'")


def test_a_benchmark_without_gdbenchs_fields_is_named(tmp_path) -> None:
    path = tmp_path / "b.json"
    doc = {"benchmarks": [{"name": "test_x", "extra_info": {"variant": "v", "problem": "p"}}],
           "gdbench": {}}  # fmt: skip
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(
        frame.ReportInputError,
        match=r"b.json: benchmark 'test_x' lacks gdbench's fields \['device', 'epochs'\] in extra",
    ):
        frame.load([path])


def json_doc(tmp_path, name, benchmarks, **gdb) -> object:
    path = tmp_path / name
    doc = {"machine_info": {"node": name, "gdbench": {"cpu_model": "C"}}, "benchmarks": benchmarks,
           "gdbench": gdb}  # fmt: skip
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def case(variant, median, problem="p", **info) -> dict:
    return {"name": variant, "stats": {"median": median, "rounds": 1, "data": [median]},
            "extra_info": {"variant": variant, "device": "cpu", "problem": problem, "epochs": 1,
                           "dtype": "float32", "n_samples": 2, "n_features": 1} | info}  # fmt: skip


def test_an_interrupted_json_run_is_partial_and_copies_are_bandwidth(tmp_path) -> None:
    copy = {"name": "c", "stats": {"median": 2.0},
            "extra_info": {"kind": "bandwidth", "bytes": 4e9, "method": "numpy-copy"}}  # fmt: skip
    path = json_doc(tmp_path, "m.json", [case("numpy-manual", 1.0), copy], interrupted=True,
                    unavailable=[{"variant": "jax-grad", "device": "cuda", "reason": "r"}],
                    failures=[{"kind": "benchmark", "variant": "torch-nn", "device": "cpu",
                               "problem": "p", "message": "boom", "extra": 1}])  # fmt: skip
    frames = frame.load([path])
    assert frames.partial is True
    assert list(frames.results["variant"]) == ["numpy-manual"]
    assert list(frames.bandwidth["gbps"]) == [pytest.approx(2.0)]
    (gone,) = frames.unavailable.to_dict("records")
    assert (gone["variant"], gone["device"], gone["reason"]) == ("jax-grad", "cuda", "r")
    assert gone["machine"] == "m.json (C)" and pd.isna(gone["framework"])
    assert frames.failures.to_dict("records") == [
        {"kind": "benchmark", "variant": "torch-nn", "device": "cpu", "problem": "p",
         "message": "boom", "machine": "m.json (C)"}
    ]  # fmt: skip
    assert frame.load([json_doc(tmp_path, "n.json", [case("numpy-manual", 1.0)])]).partial is False


def test_a_later_file_replaces_the_same_case_and_unavailable_rows_are_merged(tmp_path) -> None:
    unavailable = [{"variant": "jax-grad", "framework": "jax", "device": "cuda", "reason": "r"}]
    first = json_doc(tmp_path, "m.json", [case("numpy-manual", 1.0), case("torch-nn", 4.0)],
                     unavailable=unavailable)  # fmt: skip
    second = tmp_path / "again.json"
    doc = json.loads(first.read_text())
    doc["benchmarks"] = [case("numpy-manual", 2.0)]
    second.write_text(json.dumps(doc), encoding="utf-8")
    frames = frame.load([first, second])
    res = frames.results.set_index("variant")
    assert list(res.index) == ["torch-nn", "numpy-manual"]
    assert res.loc["numpy-manual", "per_epoch_median_s"] == 2.0
    assert res.loc["torch-nn", "speedup_vs_numpy"] == pytest.approx(0.5)
    assert list(frames.results.index) == [0, 1]
    assert len(frames.unavailable) == 1
    assert len(frames.machines) == 1


def results(rows: list[dict]) -> pd.DataFrame:
    base = {"machine": "m", "problem": "p", "dtype": "float32", "n_samples": 1,
            "n_features": 1, "epochs": 1, "device": "cpu"}  # fmt: skip
    return pd.DataFrame([base | r for r in rows])


def test_speedups_and_gaps_are_ratios_within_a_machine_and_problem() -> None:
    df = results([
        {"variant": "numpy-manual", "per_epoch_median_s": 4.0},
        {"variant": "jax-scan", "per_epoch_median_s": 1.0},
        {"variant": "torch-nn", "per_epoch_median_s": np.nan},
        {"variant": "jax-scan", "per_epoch_median_s": 3.0, "machine": "other"},
        {"variant": "numpy-manual", "per_epoch_median_s": 2.0, "problem": "q"},
        {"variant": "torch-nn", "per_epoch_median_s": 8.0, "problem": "q"},
    ])  # fmt: skip
    assert list(frame.speedups(df).fillna(-1)) == [1.0, 4.0, -1, -1, 1.0, 0.25]
    assert list(frame.gaps(df).fillna(-1)) == [4.0, 1.0, -1, 1.0, 1.0, 4.0]
    assert frame.speedups(df.iloc[:0]).empty and frame.gaps(df.iloc[:0]).empty


def test_the_last_baseline_row_of_a_case_is_the_one_used() -> None:
    df = results([
        {"variant": "numpy-manual", "per_epoch_median_s": 4.0},
        {"variant": "numpy-manual", "per_epoch_median_s": 2.0},
        {"variant": "jax-scan", "per_epoch_median_s": 1.0},
    ])  # fmt: skip
    assert list(frame.speedups(df)) == [0.5, 1.0, 2.0]


def test_dedupe_keeps_the_last_of_each_case_and_renumbers() -> None:
    df = pd.DataFrame({"k": [1, 2, 1], "v": ["a", "b", "c"]}, index=[5, 6, 7])
    out = frame._dedupe(df, ["k"])
    assert out.to_dict("list") == {"k": [2, 1], "v": ["b", "c"]}
    assert list(out.index) == [0, 1]
    empty = frame._dedupe(df.iloc[:0], ["k"])
    assert empty.empty and list(empty.columns) == ["k", "v"]


def ci(variant, median, high, gap_low, **extra) -> dict:
    """A row with its median, the high end of its own interval and the low end of its
    time over the fastest's (what decides a tie)."""
    return {"variant": variant, "per_epoch_median_s": median, "per_epoch_ci_high_s": high,
            "gap_ci_low": gap_low} | extra  # fmt: skip


def test_fastest_marks_a_clear_winner_a_tie_and_an_untested_median() -> None:
    df = results([
        ci("numpy-manual", 3.0, 3.1, 2.6),
        ci("jax-scan", 1.0, 1.1, 1.0),
        ci("torch-nn", 2.0, 2.1, 1.01),  # its ratio to the winner is above 1 throughout
        ci("torch-nn", 1.0, np.nan, 1.0, problem="q"),  # the fastest, with no interval
        ci("jax-scan", 2.0, 2.2, 1.5, problem="q"),
        ci("jax-grad", np.nan, np.nan, np.nan, problem="q"),
        ci("jax-scan", 1.0, 1.5, 1.0, problem="r"),
        ci("torch-nn", 1.2, 1.6, 1.0, problem="r"),  # its ratio's interval reaches 1: a tie
        ci("numpy-manual", 1.1, 1.7, 0.98, problem="r"),  # and below: a tie too
        ci("jax-grad", 1.3, 1.7, 1.001, problem="r"),  # just above: no tie
    ])  # fmt: skip
    assert list(frame.fastest_marks(df)) == [
        "", "yes", "", "untested", "", "", "tie", "tie", "tie", "",
    ]  # fmt: skip


def test_break_even_against_the_fastest_uncompiled_variant() -> None:
    df = results([
        {"variant": "numpy-manual", "per_epoch_median_s": 2.0, "compile_s": 0.0, "fixed_s": 0.5,
         "marginal_epoch_s": 2.0},
        {"variant": "torch-nn", "per_epoch_median_s": 1.0, "compile_s": 0.0, "fixed_s": 1.0,
         "marginal_epoch_s": 1.0},
        # 10 + 1 − 0 − 1 = 10 s more to start, 1 − 0.3 = 0.7 s less per epoch: 15 epochs
        {"variant": "jax-scan", "per_epoch_median_s": 0.3, "compile_s": 10.0, "fixed_s": 1.0,
         "marginal_epoch_s": 0.3},
        # never behind: starts faster and runs faster
        {"variant": "jax-grad", "per_epoch_median_s": 0.5, "compile_s": 0.0, "fixed_s": 0.5,
         "marginal_epoch_s": 0.5},
        # behind forever: no saving per epoch
        {"variant": "torch-compile", "per_epoch_median_s": 1.5, "compile_s": 2.0,
         "fixed_s": 1.0, "marginal_epoch_s": 1.5},
        # no saving and no extra cost: even from the start
        {"variant": "jax-manual", "per_epoch_median_s": 1.0, "compile_s": 0.0, "fixed_s": 1.0,
         "marginal_epoch_s": 1.0},
        # no cost model
        {"variant": "torch-cudagraph", "per_epoch_median_s": 1.0, "compile_s": 1.0,
         "fixed_s": np.nan, "marginal_epoch_s": np.nan},
    ])  # fmt: skip
    out = frame.break_even(df)
    assert list(out["epochs"].iloc[:2].isna()) == [True, True]
    assert list(out["epochs"].iloc[2:6]) == [15.0, 0.0, np.inf, 0.0]
    assert math.isnan(out["epochs"].iloc[6]) and out["vs"].iloc[6] is None
    assert list(out["vs"].iloc[2:6]) == ["torch-nn@cpu"] * 4
    assert out["vs"].iloc[0] is None


def test_break_even_needs_an_uncompiled_variant_in_the_same_case() -> None:
    df = results([
        {"variant": "jax-scan", "per_epoch_median_s": 0.3, "compile_s": 1.0, "fixed_s": 0.0,
         "marginal_epoch_s": 0.3},
        {"variant": "numpy-manual", "per_epoch_median_s": 2.0, "compile_s": 0.0,
         "fixed_s": 0.0, "marginal_epoch_s": 2.0, "problem": "q"},
    ])  # fmt: skip
    assert frame.break_even(df)["epochs"].isna().all()


def test_break_even_rounds_up_to_whole_epochs() -> None:
    df = results([
        {"variant": "numpy-manual", "per_epoch_median_s": 1.0, "compile_s": 0.0, "fixed_s": 0.0,
         "marginal_epoch_s": 1.0},
        {"variant": "jax-scan", "per_epoch_median_s": 0.5, "compile_s": 1.1, "fixed_s": 0.0,
         "marginal_epoch_s": 0.5},
    ])  # fmt: skip
    assert frame.break_even(df)["epochs"].iloc[1] == 3.0  # 1.1 / 0.5 = 2.2 → 3


@pytest.mark.parametrize(
    ("status", "epoch", "message", "text"),
    [
        ("agree", None, "agrees: loss within 1e-6", "agree"),
        ("diverged", 3, "m", "diverged at epoch 3"),
        ("disagree", 7.0, "m", "disagree at epoch 7"),
        ("disagree", None, "returned 2 losses", "disagree: returned 2 losses"),
        ("disagree", float("nan"), "off", "disagree: off"),
        ("failed", 2, "worker killed by SIGSEGV", "failed: worker killed by SIGSEGV"),
        ("failed", None, "", "failed"),
    ],
)
def test_verdict_text(status, epoch, message, text) -> None:
    assert frame.verdict_text(status, epoch, message) == text


def test_convergence_rows_have_every_column_and_the_machines_key() -> None:
    rec = {"kind": "convergence", "variant": "jax-scan", "status": "diverged", "epoch": 2,
           "message": "diverged at epoch 2", "machine": "stale", "lr": 0.2, "extra": 1}  # fmt: skip
    (row,) = frame._convergence_rows([rec], MACHINE)
    assert list(row) == frame.CONVERGENCE_COLUMNS
    assert row["machine"] == "h (C)" and row["variant"] == "jax-scan" and row["lr"] == 0.2
    assert row["verdict"] == "diverged at epoch 2" and row["problem"] is None
    (bare,) = frame._convergence_rows([{}], MACHINE)
    assert bare["verdict"] == "" and bare["status"] is None


def test_trajectory_rows_one_per_epoch_with_parameters() -> None:
    rec = {"problem": "toy-bias", "variant": "numpy-manual", "device": "cpu", "dtype": "float32",
           "trajectory": {"loss": [30.0, None], "w": [[0.3, 1.0], [0.5, 2.0]], "b": [0.1, 0.2],
                          "ref_loss": [30.0, 21.0], "optimum_loss": 0.5},
           "loss_rtol": 1e-3}  # fmt: skip
    first, second = frame._trajectory_rows([rec, {"problem": "x"}, {"trajectory": {}}], MACHINE)
    assert first == {"problem": "toy-bias", "variant": "numpy-manual", "device": "cpu",
                     "dtype": "float32", "epoch": 1, "loss": 30.0, "w0": 0.3, "w1": 1.0,
                     "b": 0.1, "ref_loss": 30.0, "loss_rtol": 1e-3, "optimum_loss": 0.5,
                     "machine": "h (C)"}  # fmt: skip
    assert second["epoch"] == 2 and math.isnan(second["loss"])
    assert (second["w0"], second["w1"], second["b"], second["ref_loss"]) == (0.5, 2.0, 0.2, 21.0)
    plain = {k: v for k, v in rec.items() if k != "loss_rtol"} | {"trajectory": {"loss": [1.0]}}
    (row,) = frame._trajectory_rows([plain], MACHINE)
    assert "w0" not in row and "b" not in row and math.isnan(row["ref_loss"])
    assert math.isnan(row["loss_rtol"])  # a record from before the field


def test_a_single_pass_row_counts_one_pass_of_x() -> None:
    from reports import frame

    machine = frame.Machine("m (cpu)", "m", "cpu")
    info = {"variant": "numpy-blocked", "device": "cpu", "dtype": "float32", "problem": "p",
            "n_samples": 1000, "n_features": 16, "epochs": 10}  # fmt: skip
    stats = {"median": 0.01, "iqr": 0.0, "min": 0.01, "mean": 0.01, "rounds": 5}
    two = frame._row(info, stats, machine)
    one = frame._row(info | {"block_rows": 256}, stats, machine)
    assert two["bytes_per_epoch"] == 2 * 1000 * 16 * 4 and two["block_rows"] is None
    assert one["bytes_per_epoch"] == one["one_pass_bytes"] == 1000 * 16 * 4
    assert one["block_rows"] == 256
    assert "block_rows" in frame.RESULT_COLUMNS


def test_k_1_of_a_data_parallel_variant_is_the_scaling_baseline_never_a_winner() -> None:
    # jax-sharded-x1 runs jax-sharded's program on one device: the fastest median here,
    # but the baseline of its own scaling, not a contender
    df = results([
        ci("numpy-manual", 3.0, 2.9, 3.1, parallel_variant=None, ranks=None),
        ci("jax-scan", 1.0, 0.9, 1.1, parallel_variant=None, ranks=None),
        ci("jax-sharded-x1", 0.5, 0.45, 0.55, parallel_variant="jax-sharded", ranks=1),
        ci("jax-sharded-x2", 2.0, 1.9, 2.1, parallel_variant="jax-sharded", ranks=2),
    ])  # fmt: skip
    assert list(frame.contenders(df)) == [True, True, False, True]
    assert frame.contenders(df.drop(columns="parallel_variant")).all()  # older files
    assert list(frame.fastest_marks(df)) == ["", "yes", "", ""]
    # gaps are to the fastest contender, jax-scan; the baseline's is below 1
    assert list(frame.gaps(df)) == [3.0, 1.0, 0.5, 2.0]
    rounds = pd.Series([[[t * (1 + k / 100) for k in range(9)]] for t in (3.0, 1.0, 0.5, 2.0)],
                       index=df.index)  # fmt: skip
    gaps = frame.gap_intervals(df, rounds)
    assert tuple(gaps.loc[1]) == (1.0, 1.0)  # jax-scan is the reference row
    assert gaps.loc[2, "high"] < 1.0 < gaps.loc[3, "low"]
