"""reports/frame.py on a run's records (records.jsonl): pooling the rounds of several
processes, the run's machine and gdbench section, and the benchmarks rebuilt from them.

Every record is written here by hand and every expected value worked out on paper
(medians, counts, which record wins), so no test compares the code with itself.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from reports import frame, read
from reports import records as report_records


def bench(variant="numpy-manual", pid=1, data=(0.1, 0.3, 0.2), **extra) -> dict:
    rec = {"schema": 3, "kind": "benchmark", "variant": variant, "device": "cpu",
           "dtype": "float32", "problem": "toy", "epochs": 10, "pid": pid,
           "trajectory": {"loss": [1.0]}}  # fmt: skip
    if data is not None:
        rec["timing"] = {"data": list(data), "iterations": 2, "median": float(np.median(data))}
    return rec | extra


# --- pooled_stats ---------------------------------------------------------------------------


def test_pooled_stats_pool_the_rounds_of_every_process() -> None:
    stats = read.pooled_stats([{"data": [1.0, 2.0], "iterations": 3}, {"data": [4.0, 5.0, 6.0]}])
    assert stats["data"] == [1.0, 2.0, 4.0, 5.0, 6.0]
    assert stats["rounds"] == 5
    assert stats["median"] == 4.0 and stats["min"] == 1.0 and stats["max"] == 6.0
    assert stats["mean"] == pytest.approx(3.6)
    assert stats["iterations"] == 3


def test_pooled_stats_without_rounds_keep_the_last_processes_statistics() -> None:
    last = {"median": 2.0, "rounds": 7}
    out = read.pooled_stats([{"median": 1.0}, last])
    assert out == last and out is not last
    assert read.pooled_stats([{"data": []}, {"data": None, "median": 3.0}]) == {
        "data": None,
        "median": 3.0,
    }
    assert read.pooled_stats([]) == {}


# --- pooled_cases -------------------------------------------------------------------------


def test_one_case_per_variant_device_dtype_and_problem() -> None:
    records = [
        bench("numpy-manual", 1),
        bench("numpy-manual", 2, data=(0.4,)),
        bench("numpy-manual", 3, dtype="float64"),
        bench("numpy-manual", 4, device="cuda"),
        bench("numpy-manual", 5, problem="toy-20"),
        bench("torch-nn", 6),
        {"kind": "convergence", "variant": "numpy-manual", "device": "cpu"},
    ]
    cases = read.pooled_cases(records)
    assert len(cases) == 5
    info, stats = cases[0]
    assert info["pids"] == [1, 2]
    assert stats["data"] == [0.1, 0.3, 0.2, 0.4]
    assert stats["rounds"] == info["rounds"] == 4
    assert stats["iterations"] == 2
    assert [c[0]["pids"] for c in cases[1:]] == [[3], [4], [5], [6]]


def test_a_pooled_case_keeps_each_processes_rounds_and_medians() -> None:
    records = [
        bench(pid=11, data=(1.0, 3.0), compile_s=0.5, fixed_s=1.0, marginal_epoch_s=0.1,
              peak_host_bytes=100, peak_device_bytes=None),
        bench(pid=12, data=(5.0,), compile_s=0.7, fixed_s=2.0, marginal_epoch_s=0.3,
              peak_host_bytes=300, peak_device_bytes=None),
        bench(pid=13, data=(7.0, 9.0), compile_s=None, fixed_s=None, marginal_epoch_s=0.2,
              peak_host_bytes=200, peak_device_bytes=None),
    ]  # fmt: skip
    ((info, stats),) = read.pooled_cases(records)
    assert info["pids"] == [11, 12, 13]
    assert info["process_medians"] == [2.0, 5.0, 8.0]
    assert info["process_rounds"] == [[1.0, 3.0], [5.0], [7.0, 9.0]]
    assert info["compile_s"] == pytest.approx(0.6)  # median of 0.5 and 0.7
    assert info["fixed_s"] == pytest.approx(1.5)  # median of those given
    assert info["marginal_epoch_s"] == pytest.approx(0.2)
    assert info["peak_host_bytes"] == 300  # the largest
    assert info["peak_device_bytes"] is None
    assert stats["median"] == 5.0 and info["rounds"] == 5
    # the record-only fields stay out of the case
    assert not {"schema", "kind", "timing", "trajectory"} & set(info)
    assert info["variant"] == "numpy-manual" and info["epochs"] == 10


def test_a_case_with_no_compile_time_or_cost_model_has_none() -> None:
    ((info, _),) = read.pooled_cases([bench(pid=1), bench(pid=2)])
    assert info["compile_s"] is None and info["fixed_s"] is None
    assert info["marginal_epoch_s"] is None and info["peak_host_bytes"] is None


def test_a_disagreeing_process_gives_the_case_its_status() -> None:
    records = [
        bench(pid=1, status="agree", message="fine"),
        bench(pid=2, status="disagree", message="loss left the reference at epoch 2"),
        bench(pid=3, status="agree"),
    ]
    ((info, stats),) = read.pooled_cases(records)
    assert info["status"] == "disagree"
    assert info["message"] == "loss left the reference at epoch 2"
    assert info["pids"] == [1, 2, 3]
    assert stats["rounds"] == 9
    # a record without a status agrees
    ((info, _),) = read.pooled_cases([bench(pid=1, message="first"), bench(pid=2)])
    assert info["message"] == "first"


def test_a_case_no_process_timed_keeps_its_last_record_and_no_statistics() -> None:
    records = [
        bench(pid=1, data=None, status="failed", message="worker killed by SIGSEGV"),
        bench(pid=2, data=None, status="failed", message="timed out after 600 s"),
    ]
    ((info, stats),) = read.pooled_cases(records)
    assert stats == {}
    assert info["message"] == "timed out after 600 s" and info["pid"] == 2
    assert not {"schema", "kind", "timing", "trajectory"} & set(info)
    # an untimed record beside a timed one is not part of the pool
    ((info, stats),) = read.pooled_cases([bench(pid=1, data=None), bench(pid=2)])
    assert info["pids"] == [2] and stats["rounds"] == 3


# --- pooled_benchmarks ------------------------------------------------------------------


def test_benchmarks_rebuilt_from_records_look_like_pytest_benchmarks() -> None:
    records = [
        bench("jax-scan", pid=4, data=(2.0, 4.0)),
        bench("torch-nn", pid=5, data=None, status="failed"),
        {"schema": 3, "kind": "bandwidth", "method": "numpy-copy", "bytes": 8,
         "timing": {"data": [1.0, 3.0]}},
        {"kind": "bandwidth", "method": "torch-copy", "bytes": 8, "timing": None},
    ]  # fmt: skip
    out = read.pooled_benchmarks(records)
    assert len(out) == 2
    case, copy = out
    assert case["group"] == "epoch-cost"
    assert case["name"] == "test_epoch_cost[jax-scan@cpu-toy]"
    assert case["fullname"] == "test_epoch_cost.py::test_epoch_cost[jax-scan@cpu-toy]"
    assert case["param"] == "jax-scan@cpu-toy"
    assert case["params"] == {"case": ["jax-scan", "cpu", "toy"]}
    assert case["extra_info"]["pids"] == [4]
    assert case["stats"]["median"] == 3.0
    assert case["options"] == {"disable_gc": False, "timer": "perf_counter", "warmup": False}
    assert copy["group"] == "memory-bandwidth"
    assert copy["name"] == "test_memory_bandwidth[numpy-copy]"
    assert copy["fullname"] == "test_epoch_cost.py::test_memory_bandwidth[numpy-copy]"
    assert copy["params"] == {"method": "numpy-copy"} and copy["param"] == "numpy-copy"
    assert copy["extra_info"] == {"kind": "bandwidth", "method": "numpy-copy", "bytes": 8}
    assert copy["stats"]["median"] == 2.0 and copy["stats"]["rounds"] == 2


# --- merged_machine and gdbench_section ---------------------------------------------------


def run_records() -> list[dict]:
    return [
        {"kind": "run", "schema": 4, "config": {"epochs": 5},
         "isolation": {"mode": "variant"},
         "machine": {"node": "alpha", "cpu_model": "Xeon", "gpu": {"name": "H100", "cuda": None}},
         "unavailable": [{"variant": "torch-cudagraph", "device": "cpu", "reason": "cuda only"}]},
        {"kind": "worker", "worker": "01-numpy",
         "machine": {"gpu": {"cuda": "12.8", "name": "other", "cudnn": "9"},
                     "thread_env": {"OMP_NUM_THREADS": "2"}, "affinity": [0, 1],
                     "jax_threads": 2, "allocator_env": {"JAX_PLATFORMS": "cpu"}},
         "unavailable": [{"variant": "torch-cudagraph", "device": "cpu", "reason": "cuda only"},
                         {"variant": "jax-grad", "device": "cuda", "reason": "no gpu"}]},
        {"kind": "worker", "worker": "02-torch",
         "machine": {"gpu": {"cudnn": "8", "driver": "570"}, "affinity": [1],
                     "allocator_env": {"X": "1"}}},
        {"kind": "convergence", "variant": "numpy-manual", "status": "agree"},
        {"kind": "benchmark", "variant": "torch-nn", "status": "failed", "message": "boom"},
        {"kind": "benchmark", "variant": "numpy-manual", "status": "agree"},
        {"kind": "end", "interrupted": False, "workers": [{"label": "01-numpy"}]},
    ]  # fmt: skip


def test_the_runs_machine_is_the_headers_completed_by_its_workers() -> None:
    info = read.merged_machine(run_records())
    assert info["node"] == "alpha" and info["cpu_model"] == "Xeon"
    # the header's GPU fields first, each missing one from the first worker that has it
    assert info["gpu"] == {"name": "H100", "cuda": "12.8", "cudnn": "9", "driver": "570"}
    # what the first worker ran with
    assert info["thread_env"] == {"OMP_NUM_THREADS": "2"}
    assert info["affinity"] == [0, 1] and info["jax_threads"] == 2
    assert info["worker_env"] == {"01-numpy": {"JAX_PLATFORMS": "cpu"}, "02-torch": {"X": "1"}}
    assert info["isolation"] == {"mode": "variant", "workers": 2}


def test_without_a_run_header_the_first_workers_machine_is_used() -> None:
    records = [r for r in run_records() if r["kind"] != "run"]
    info = read.merged_machine(records)
    assert info["gpu"] == {"cuda": "12.8", "name": "other", "cudnn": "9", "driver": "570"}
    assert "isolation" not in info and "node" not in info


def test_a_machine_without_workers_or_gpu_is_the_headers_alone() -> None:
    header = {"kind": "run", "machine": {"node": "n"}}
    assert read.merged_machine([header]) == {"node": "n"}
    assert read.merged_machine([]) == {}
    # the header's own dict is not changed
    records = run_records()
    read.merged_machine(records)
    assert records[0]["machine"]["gpu"] == {"name": "H100", "cuda": None}


def test_the_gdbench_section_of_a_finished_run() -> None:
    section = read.gdbench_section(run_records())
    assert section["schema"] == 4
    assert section["config"] == {"epochs": 5}
    assert section["isolation"] == {"mode": "variant"}
    assert section["convergence"] == [{"kind": "convergence", "variant": "numpy-manual",
                                       "status": "agree"}]  # fmt: skip
    assert section["failures"] == [
        {"kind": "benchmark", "variant": "torch-nn", "status": "failed", "message": "boom"}
    ]
    assert section["unavailable"] == [
        {"variant": "torch-cudagraph", "device": "cpu", "reason": "cuda only"},
        {"variant": "jax-grad", "device": "cuda", "reason": "no gpu"},
    ]
    assert section["interrupted"] is False
    assert section["workers"] == [{"label": "01-numpy"}]
    assert section["machine"] == read.merged_machine(run_records())


def test_a_run_without_an_end_or_an_interrupted_end_is_interrupted() -> None:
    records = run_records()[:-1]
    section = read.gdbench_section(records)
    assert section["interrupted"] is True and section["workers"] == []
    ended = [*records, {"kind": "end", "interrupted": True}]
    assert read.gdbench_section(ended)["interrupted"] is True
    # the last end marker counts
    twice = [*records, {"kind": "end", "interrupted": True}, {"kind": "end", "workers": [1]}]
    section = read.gdbench_section(twice)
    assert section["interrupted"] is False and section["workers"] == [1]


def test_a_section_without_a_header_has_the_defaults() -> None:
    section = read.gdbench_section([{"kind": "end"}])
    assert section["schema"] == 1 and section["config"] == {}
    assert section["isolation"] is None and section["unavailable"] == []


# --- reading records.jsonl ----------------------------------------------------------------


def write_lines(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_blank_and_half_written_lines_are_skipped(tmp_path) -> None:
    path = write_lines(tmp_path, ['{"kind": "run"}', "", "   ", '{"kind": "end"', '{"kind": "x"}'])
    assert report_records.read_records(path, strict=True) == [{"kind": "run"}, {"kind": "x"}]


def test_a_line_that_is_not_a_record_is_named_by_its_number(tmp_path) -> None:
    path = write_lines(tmp_path, ['{"kind": "run"}', "", '{"variant": "numpy-manual"}'])
    with pytest.raises(frame.ReportInputError, match=r"records.jsonl:3: not a gdbench record$"):
        report_records.read_records(path, strict=True)


def test_a_missing_records_file_is_named(tmp_path) -> None:
    with pytest.raises(frame.ReportInputError, match=r"records.jsonl: no such file$"):
        frame.load([tmp_path / "records.jsonl"])


def full_run(tmp_path: Path, end: dict | None) -> Path:
    records = [
        {"kind": "run", "machine": {"node": "alpha", "cpu_model": "Xeon", "threads": 2,
                                    "versions": {"numpy": "2.0"}},
         "unavailable": [{"variant": "jax-grad", "framework": "jax", "device": "cuda",
                          "reason": "no gpu"}]},
        bench("numpy-manual", 1, data=(0.2, 0.2, 0.2), status="agree", n_samples=4,
              n_features=1, framework="numpy", compile_s=0.0, fixed_s=0.0,
              marginal_epoch_s=0.02),
        bench("numpy-manual", 2, data=(0.4, 0.4, 0.4), status="agree", n_samples=4,
              n_features=1, framework="numpy", compile_s=0.0, fixed_s=0.0,
              marginal_epoch_s=0.02),
        bench("torch-nn", 3, data=None, status="failed", message="worker killed by SIGSEGV"),
        {"kind": "bandwidth", "method": "numpy-copy", "device": "cpu", "access": "copy",
         "bytes": 2_000_000_000, "timing": {"data": [1.0, 1.0], "median": 1.0}},
        {"kind": "bandwidth", "method": "numpy-read", "access": "read", "bytes": 1_000_000_000,
         "timing": {"median": 0.5}},
        {"kind": "convergence", "problem": "toy", "variant": "numpy-manual", "device": "cpu",
         "dtype": "float32", "status": "agree", "epoch": None, "message": "agrees",
         "trajectory": {"loss": [3.0, 2.0]}},
    ]  # fmt: skip
    if end is not None:
        records.append(end)
    path = tmp_path / "records.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_a_run_folders_records_load_into_every_frame(tmp_path) -> None:
    frames = frame.load([full_run(tmp_path, {"kind": "end", "interrupted": False})])
    assert frames.partial is False
    assert [m.key for m in frames.machines] == ["alpha (Xeon)"]
    res = frames.results.set_index("variant")
    assert list(res.index) == ["numpy-manual", "torch-nn"]
    numpy_row = res.loc["numpy-manual"]
    # six rounds pooled from two processes: the median of 0.2 ×3 and 0.4 ×3 is 0.3
    assert numpy_row["per_epoch_median_s"] == pytest.approx(0.03)
    assert numpy_row["rounds"] == 6 and numpy_row["processes"] == 2
    assert numpy_row["pid"] == "1 2"
    assert numpy_row["process_spread"] == pytest.approx((0.4 - 0.2) / 0.3)
    assert numpy_row["machine"] == "alpha (Xeon)" and numpy_row["threads"] == 2
    assert numpy_row["numpy_version"] == "2.0"
    assert numpy_row["speedup_vs_numpy"] == 1.0
    # 2·4·1·4 bytes per epoch at 0.03 s
    assert numpy_row["achieved_gbps"] == pytest.approx(32 / 0.03 / 1e9)
    # copies: 2 GB in 1 s is 2 GB/s; reads: 1 GB in 0.5 s is 2 GB/s
    assert numpy_row["bandwidth_fraction"] == pytest.approx(32 / 0.03 / 1e9 / 2.0)
    assert numpy_row["floor_epoch_s"] == pytest.approx(16 / 2e9)
    assert numpy_row["floor_fraction"] == pytest.approx(16 / 2e9 / 0.03)
    failed = res.loc["torch-nn"]
    assert failed["status"] == "failed" and math.isnan(failed["per_epoch_median_s"])
    assert failed["message"] == "worker killed by SIGSEGV"
    bw = frames.bandwidth.set_index("method")
    assert bw.loc["numpy-copy", "gbps"] == pytest.approx(2.0)
    assert bw.loc["numpy-read", "gbps"] == pytest.approx(2.0)
    assert bw.loc["numpy-read", "access"] == "read" and bw.loc["numpy-read", "device"] == "cpu"
    conv = frames.convergence
    assert list(conv["variant"]) == ["numpy-manual"] and list(conv["verdict"]) == ["agree"]
    assert list(frames.trajectories["loss"]) == [3.0, 2.0]
    assert frames.unavailable.to_dict("records") == [
        {"variant": "jax-grad", "framework": "jax", "device": "cuda", "reason": "no gpu",
         "machine": "alpha (Xeon)"}
    ]  # fmt: skip
    assert frames.failures.to_dict("records") == [
        {"kind": "benchmark", "variant": "torch-nn", "device": "cpu", "problem": "toy",
         "message": "worker killed by SIGSEGV", "machine": "alpha (Xeon)"}
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("end", "partial"),
    [(None, True), ({"kind": "end", "interrupted": True}, True), ({"kind": "end"}, False)],
)
def test_records_without_a_clean_end_make_a_partial_report(tmp_path, end, partial) -> None:
    assert frame.load([full_run(tmp_path, end)]).partial is partial


def test_one_partial_input_makes_the_whole_report_partial(tmp_path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    done = full_run(tmp_path / "a", {"kind": "end"})
    cut = full_run(tmp_path / "b", None)
    assert frame.load([cut, done]).partial is True
    assert frame.load([done, cut]).partial is True
    assert frame.load([done, done]).partial is False


def test_cases_after_an_untimed_one_are_still_pooled() -> None:
    records = [
        bench("torch-nn", pid=1, data=None, status="failed"),
        bench("jax-scan", pid=2, data=(1.0,)),
        bench("numpy-manual", pid=3, data=(2.0,)),
    ]
    cases = read.pooled_cases(records)
    assert [info["variant"] for info, _ in cases] == ["torch-nn", "jax-scan", "numpy-manual"]
    assert [stats.get("median") for _, stats in cases] == [None, 1.0, 2.0]
    benchmarks = read.pooled_benchmarks(records)
    assert [b["param"] for b in benchmarks] == ["jax-scan@cpu-toy", "numpy-manual@cpu-toy"]


def test_a_record_without_a_status_counts_as_agreeing() -> None:
    records = [bench(pid=1, status="agree", message="first"), bench(pid=2, message="second")]
    ((info, _),) = read.pooled_cases(records)
    assert info["message"] == "first" and info["status"] == "agree"


# --- what only the records carry: the run's date and commit, the --block-rows option -------


def test_the_caller_says_whether_a_session_was_interrupted_before_its_end_marker() -> None:
    # a pytest session builds its section before the end marker is written
    header = run_records()[:1]
    assert read.gdbench_section(header)["interrupted"] is True  # no end marker yet
    assert read.gdbench_section(header, interrupted=False)["interrupted"] is False
    ended = [*header, {"kind": "end", "interrupted": False}]
    assert read.gdbench_section(ended, interrupted=True)["interrupted"] is True


def test_a_report_from_records_names_the_runs_date_and_commit(tmp_path) -> None:
    end = {"kind": "end", "interrupted": False, "datetime": "2026-12-06T05:00:00+00:00",
           "commit_info": {"id": "0123456789abcdef", "dirty": False}}  # fmt: skip
    assert read.run_stamp([end]) == {"datetime": end["datetime"],
                                     "commit_info": end["commit_info"]}  # fmt: skip
    assert read.run_stamp([{"kind": "end"}]) == {} and read.run_stamp([]) == {}
    (machine,) = frame.load([full_run(tmp_path, end)]).machines
    assert machine.datetime == "2026-12-06T05:00:00+00:00"
    assert machine.commit == "0123456789abcdef"


def test_the_block_rows_option_is_taken_from_the_runs_header() -> None:
    records = run_records()
    assert "block_rows_option" not in read.merged_machine(records)
    records[0]["config"] = {"block_rows": 7}
    assert read.merged_machine(records)["block_rows_option"] == 7
