"""The intervals of reports/stats.py cover what they claim, checked by simulation against
distributions whose median is known; and the report's intervals, ties, speedups, cost
model and break-even from machine_a.json with hand-written rounds (numbers on paper)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from reports import frame, stats, write


def test_the_median_interval_covers_the_true_median_about_95_percent_of_the_time() -> None:
    # Log-normal rounds (timings are skewed): true median exp(0) = 1.
    rng = np.random.default_rng(7)
    trials = 300
    hits = sum(
        low <= 1.0 <= high
        for low, high in (
            stats.median_interval([rng.lognormal(0.0, 0.1, 30)]) for _ in range(trials)
        )
    )
    assert 0.90 <= hits / trials <= 0.99, hits / trials


def test_the_ratio_interval_covers_the_true_ratio_and_excludes_one_when_it_should() -> None:
    rng = np.random.default_rng(8)
    trials, hits, excludes = 200, 0, 0
    for _ in range(trials):
        slow = rng.lognormal(np.log(1.5), 0.05, 20)
        fast = rng.lognormal(0.0, 0.05, 20)
        low, high = stats.ratio_interval([slow], [fast])
        hits += low <= 1.5 <= high
        excludes += low > 1.0
    assert 0.90 <= hits / trials <= 0.995, hits / trials
    assert excludes == trials  # 50% slower with 5% noise: always told apart


def test_a_tiny_difference_in_wide_noise_is_not_significant() -> None:
    rng = np.random.default_rng(9)
    base = rng.lognormal(0.0, 0.3, 15)
    new = base * 1.02
    low, high = stats.ratio_interval([new], [rng.permutation(base)])
    assert low < 1.0 < high


def test_spread_between_processes_widens_the_interval() -> None:
    # Three processes whose medians differ by ±10%, tight rounds within each: pooling
    # them as one process would claim a precision the machine does not have.
    rng = np.random.default_rng(10)
    groups = [m * (1 + 0.005 * rng.standard_normal(40)) for m in (0.9, 1.0, 1.1)]
    as_one = stats.median_interval([np.concatenate(groups)])
    by_process = stats.median_interval(groups)
    assert (by_process[1] - by_process[0]) > 5 * (as_one[1] - as_one[0])
    assert by_process[0] <= stats.pooled_median(groups) <= by_process[1]


def test_no_data_gives_no_interval_and_is_reproducible() -> None:
    assert np.isnan(stats.median_interval([])).all()
    assert np.isnan(stats.median_interval([[np.nan]])).all()
    rounds = [[3.0, 1.0, 2.0, 5.0, 4.0]]
    assert stats.median_interval(rounds) == stats.median_interval(rounds)


A = Path(__file__).parents[1] / "fixtures" / "machine_a.json"


def with_rounds(tmp_path: Path, rounds: dict[str, list[float]], **extra: dict) -> Path:
    """machine_a.json with the given rounds (seconds per run) for its synthetic-100x16
    benchmarks, by variant, and extra_info fields added by variant."""
    doc = json.loads(A.read_text())
    for bench in doc["benchmarks"]:
        info = bench["extra_info"]
        if info.get("problem") != "synthetic-100x16":
            continue
        variant = info["variant"]
        if variant in rounds:
            bench["stats"]["data"] = rounds[variant]
            bench["stats"]["median"] = float(np.median(rounds[variant]))
        info.update(extra.get(variant.replace("-", "_"), {}))
    path = tmp_path / "run.json"
    path.write_text(json.dumps(doc))
    return path


def synthetic(frames: frame.Frames):  # noqa: ANN201
    """The synthetic-100x16 rows, by variant."""
    results = frames.results
    return results[results["problem"] == "synthetic-100x16"].set_index("variant")


def spread(center: float, width: float, n: int = 30) -> list[float]:
    """n rounds evenly spread over center ± width/2 (a known, symmetric sample)."""
    return list(np.linspace(center - width / 2, center + width / 2, n))


def synthetic_line(report: str, marker: str) -> str:
    return next(
        line
        for line in report.splitlines()
        if line.startswith("| synthetic 100×16") and marker in line
    )


def test_a_winner_whose_interval_clears_the_others_is_bold(tmp_path: Path) -> None:
    path = with_rounds(tmp_path, {"numpy-manual": spread(2e-3, 1e-4),
                                  "torch-nn": spread(4e-3, 2e-4),
                                  "jax-scan": spread(5e-4, 2e-5)})  # fmt: skip
    frames = frame.load([path])
    jax = synthetic(frames).loc["jax-scan"]
    assert jax["fastest"] == "yes"
    # per epoch (100 epochs): the interval lies within the rounds' range around 5 µs
    assert 4.9e-6 <= jax["per_epoch_ci_low_s"] < 5e-6 < jax["per_epoch_ci_high_s"] <= 5.1e-6
    # speedup 2 ms / 0.5 ms = 4, its interval around it and narrow
    assert jax["speedup_vs_numpy"] == pytest.approx(4.0)
    assert 3.8 < jax["speedup_ci_low"] < 4.0 < jax["speedup_ci_high"] < 4.2
    line = synthetic_line(write.markdown_report(frames), "µs")
    assert "**5 µs** [" in line and "≈" not in line


def test_a_winner_within_the_runner_ups_interval_is_a_tie_never_bold(tmp_path: Path) -> None:
    # jax-scan 3% faster than numpy-manual, both with ±25% noise: no winner
    path = with_rounds(tmp_path, {"numpy-manual": spread(2e-3, 1e-3),
                                  "torch-nn": spread(4e-3, 2e-4),
                                  "jax-scan": spread(1.94e-3, 1e-3)})  # fmt: skip
    frames = frame.load([path])
    marks = synthetic(frames)["fastest"]
    assert marks["jax-scan"] == "tie" and marks["numpy-manual"] == "tie"
    assert marks["torch-nn"] == ""
    line = synthetic_line(write.markdown_report(frames), "µs")
    assert "**" not in line and line.count("≈") == 2


def test_break_even_epochs_follow_from_compile_fixed_and_marginal_cost(tmp_path: Path) -> None:
    path = with_rounds(
        tmp_path,
        {"numpy-manual": spread(2e-3, 1e-4), "jax-scan": spread(5e-4, 2e-5)},
        numpy_manual={"fixed_s": 1e-4, "marginal_epoch_s": 2e-5, "compile_s": 0.01},
        jax_scan={"fixed_s": 3e-5, "marginal_epoch_s": 2e-7, "compile_s": 0.5},
    )
    frames = frame.load([path])
    jax = synthetic(frames).loc["jax-scan"]
    # compile + fixed: 0.50003 s against 0.0101 s; each epoch saves 19.8 µs
    expected = math.ceil((0.5 + 3e-5 - 0.01 - 1e-4) / (2e-5 - 2e-7))
    assert jax["break_even_epochs"] == expected
    assert jax["break_even_vs"] == "numpy-manual@cpu"
    report = write.markdown_report(frames)
    assert "Cost model (float32): fixed per run + marginal per epoch" in report
    assert "30 µs + 200 ns/epoch" in report
    assert "| synthetic 100×16 | jax-scan@cpu | numpy-manual@cpu | 500 ms" in report
    assert f" {expected:,} |" in report


def summary(report: str) -> str:
    return report.split("## Summary")[1].split("## Environment")[0]


def test_the_report_opens_with_the_answer(tmp_path: Path) -> None:
    clear = with_rounds(tmp_path, {"numpy-manual": spread(2e-3, 1e-4),
                                   "torch-nn": spread(4e-3, 2e-4),
                                   "jax-scan": spread(5e-4, 2e-5)})  # fmt: skip
    report = write.markdown_report(frame.load([clear]))
    assert report.index("## Summary") < report.index("## Convergence")
    text = summary(report)
    # the diverged run is named; the winner, its speedup and interval; each framework's best
    assert "1 of 2 runs agree" in text and "jax-scan@cpu on toy-bias (diverged at epoch 2)" in text
    line = next(x for x in text.splitlines() if "synthetic 100×16" in x)
    assert "fastest **jax-scan@cpu** (5 µs/epoch, 4.00× [" in line
    assert "numpy numpy-manual@cpu 20 µs" in line and "torch torch-nn@cpu 40 µs" in line


def test_a_tie_is_summarised_as_a_tie(tmp_path: Path) -> None:
    tie = with_rounds(tmp_path, {"numpy-manual": spread(2e-3, 1e-3),
                                 "torch-nn": spread(4e-3, 2e-4),
                                 "jax-scan": spread(1.94e-3, 1e-3)})  # fmt: skip
    line = next(
        x
        for x in summary(write.markdown_report(frame.load([tie]))).splitlines()
        if "synthetic 100×16" in x
    )
    assert "a tie between jax-scan@cpu, numpy-manual@cpu" in line and "**jax" not in line


def test_the_floor_is_one_pass_over_x_at_the_measured_read_bandwidth(tmp_path: Path) -> None:
    doc = json.loads(A.read_text())
    doc["benchmarks"].append({
        "group": "memory-bandwidth", "name": "test_memory_bandwidth[numpy-read]",
        "extra_info": {"kind": "bandwidth", "method": "numpy-read", "device": "cpu",
                       "access": "read", "bytes": 2**28, "threads": 2},
        "stats": {"median": 0.05, "rounds": 10},
    })  # fmt: skip
    path = tmp_path / "run.json"
    path.write_text(json.dumps(doc))
    frames = frame.load([path])
    numpy = synthetic(frames).loc["numpy-manual"]
    read_gbps = 2**28 / 0.05 / 1e9  # 5.37 GB/s, never the copies' 10.7 and 13.4
    floor = 100 * 16 * 4 / (read_gbps * 1e9)  # one pass over X: 6400 bytes
    assert numpy["one_pass_bytes"] == 6400 and numpy["bytes_per_epoch"] == 12800
    assert numpy["floor_epoch_s"] == pytest.approx(floor)
    assert numpy["floor_fraction"] == pytest.approx(floor / 20e-6)  # 2 ms / 100 epochs
    report = write.markdown_report(frames)
    assert "Distance to the one-pass floor (float32)" in report
    assert "- cpu: numpy-read: 5.4 GB/s" in report
    assert f"{100 * floor / 20e-6:.0f}% (floor {write.human_time(floor)})" in report
    # the copy fraction still uses only the copies
    assert numpy["bandwidth_fraction"] == pytest.approx(12800 / 20e-6 / 1e9 / (2**29 / 0.04 / 1e9))


def test_gaps_to_the_fastest_have_intervals_too(tmp_path: Path) -> None:
    path = with_rounds(tmp_path, {"numpy-manual": spread(2e-3, 1e-4),
                                  "torch-nn": spread(4e-3, 2e-4),
                                  "jax-scan": spread(5e-4, 2e-5)})  # fmt: skip
    rows = synthetic(frame.load([path]))
    assert (rows.loc["jax-scan", "gap_ci_low"], rows.loc["jax-scan", "gap_ci_high"]) == (1, 1)
    numpy = rows.loc["numpy-manual"]
    assert numpy["gap_to_fastest"] == pytest.approx(4.0)
    assert 3.8 < numpy["gap_ci_low"] < 4.0 < numpy["gap_ci_high"] < 4.2
