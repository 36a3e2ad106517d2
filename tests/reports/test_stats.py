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
from tests.reports.markdown import cell, section


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
    # each median's interval at √95%: the ratio's is conservative, never below 95%
    assert 0.95 <= hits / trials, hits / trials
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


def test_the_median_interval_is_the_binomial_one_between_order_statistics() -> None:
    # n = 11: P(Binomial(11, 1/2) <= 1) = 12/2048 <= 2.5% < P(<= 2) = 67/2048, so the
    # 95% interval runs from the 2nd to the 10th smallest round
    assert stats.order_interval(11) == (1, 9)
    # n = 30: P(<= 9) = 2.1% <= 2.5% < P(<= 10) = 4.9%: the 10th to the 21st
    assert stats.order_interval(30) == (9, 20)
    # n = 5 cannot reach 95% (P(0) = 1/32 > 2.5%): the range
    assert stats.order_interval(5) == (0, 4)
    assert stats.median_interval([[5.0, 1.0, 4.0, 2.0, 3.0, 6.0, 7.0, 9.0, 8.0, 11.0, 10.0]]) == (
        2.0,
        10.0,
    )


def test_too_few_pairs_decide_nothing_whatever_they_say() -> None:
    # 3 pairs, every ratio 1.1: the range of 3 values covers the median with 75% only
    three = stats.paired_ratio([1.1, 1.1, 1.1], [1.0, 1.0, 1.0])
    assert three.outcome == stats.UNDECIDED and three.pairs == 3
    # 8 all on one side reach 99.2%, below a look's 1 − 5%/7: still nothing; 10 do
    assert stats.paired_ratio([1.1] * 8, [1.0] * 8).outcome == stats.UNDECIDED
    assert stats.paired_ratio([1.1] * 10, [1.0] * 10).outcome == stats.SLOWER
    assert not stats.covers(8, stats.LOOK_LEVEL) and stats.covers(10, stats.LOOK_LEVEL)
    assert stats.covers(6) and not stats.covers(5)
    # thousands of rounds (a long pytest-benchmark file): no overflow, and the ranks the
    # normal approximation gives, n/2 ∓ 1.96·√n/2, symmetric about the middle
    low, high = stats.order_interval(5000)
    assert abs(low - (2500 - 1.96 * math.sqrt(5000) / 2)) <= 1 and low + high == 4999


OUTLIER = 20.0  # one round 20× slower than the others: a page fault, a neighbour's burst


def test_one_disturbed_round_moves_an_interval_by_at_most_one_rank() -> None:
    # 11 rounds with 2% noise; one of them 20× slower. The stated bound: each end of the
    # median's interval moves by no more than the spread of the clean rounds (≤ 5% here),
    # and the ratio's interval stays within a factor 1.1 of its clean value.
    rng = np.random.default_rng(11)
    for _ in range(50):
        clean = rng.lognormal(0.0, 0.02, 11)
        disturbed = clean.copy()
        disturbed[rng.integers(11)] *= OUTLIER
        before, after = stats.median_interval([clean]), stats.median_interval([disturbed])
        assert abs(after[0] - before[0]) <= 0.05 and abs(after[1] - before[1]) <= 0.05
        other = rng.lognormal(np.log(2.0), 0.02, 11)
        low, high = stats.ratio_interval([other], [clean])
        low2, high2 = stats.ratio_interval([other], [disturbed])
        assert 1 / 1.1 <= low2 / low <= 1.1 and 1 / 1.1 <= high2 / high <= 1.1
        assert high2 < 2.5  # the ratio is about 2: never stretched towards 20


def run_sequential(rng: np.random.Generator, ratio: float, noise: float, pairs: int,
                   outlier_every: int = 0) -> stats.Paired:  # fmt: skip
    """Alternating rounds of two variants whose true medians differ by ``ratio``, each
    round with log-normal ``noise``, at most ``pairs`` pairs (the budget); with
    ``outlier_every``, about one round in that many, of either variant, is 20× slower."""
    rule = stats.SequentialComparison()
    for _ in range(pairs):
        a, b = ratio * rng.lognormal(0.0, noise), rng.lognormal(0.0, noise)
        if outlier_every and rng.integers(outlier_every) == 0:
            a *= OUTLIER
        if outlier_every and rng.integers(outlier_every) == 0:
            b *= OUTLIER
        rule.add(a, b)
        if rule.done:
            break
    return rule.final()


def test_a_five_percent_difference_is_called_once_enough_rounds_are_taken() -> None:
    # 5% apart with 5% noise per round: 8 pairs rarely settle it, more do. A rule that
    # stops after its planned rounds (8) calls it in about a third of the trials.
    rng = np.random.default_rng(12)
    results = [run_sequential(rng, 1.05, 0.05, stats.MAX_PAIRS) for _ in range(300)]
    called = [r for r in results if r.outcome == stats.SLOWER]
    assert len(called) / len(results) >= 0.97
    assert sum(r.low <= 1.05 <= r.high for r in called) / len(called) >= 0.95
    assert np.median([r.pairs for r in called]) > stats.LOOKS[0]  # it needed more rounds


def test_two_equal_variants_are_called_different_at_most_at_the_stated_rate() -> None:
    # Equal medians, 5% noise and an occasional 20× round, looked at every look up to the
    # budget: the rate of "faster" or "slower" stays within α = 5% (Bonferroni over the
    # looks makes it well below). Looking at 95% each time, it would be about 15%.
    rng = np.random.default_rng(13)
    trials = 1000
    wrong = sum(
        run_sequential(rng, 1.0, 0.05, stats.MAX_PAIRS, outlier_every=30).outcome
        in (stats.FASTER, stats.SLOWER)
        for _ in range(trials)
    )
    assert wrong / trials <= 1 - stats.LEVEL, wrong / trials


def test_equal_variants_with_tight_rounds_stop_early_as_equivalent() -> None:
    rng = np.random.default_rng(14)
    result = run_sequential(rng, 1.0, 0.002, stats.MAX_PAIRS)
    assert result.outcome == stats.EQUIVALENT_OUTCOME and result.pairs < stats.MAX_PAIRS
    assert 1 / 1.01 <= result.low <= 1 <= result.high <= 1.01


def test_an_exhausted_budget_leaves_the_comparison_undecided_with_its_interval() -> None:
    rng = np.random.default_rng(15)
    result = run_sequential(rng, 1.02, 0.2, 12)  # 2% apart in 20% noise, 12 pairs only
    assert result.outcome == stats.UNDECIDED and result.pairs == 12
    assert result.low < 1 < result.high


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


SYNTHETIC = "synthetic 100×16"
COST = "Per-epoch cost"


def cost_cells(report: str, *variants: str) -> list[str]:
    """The per-epoch cost cells of ``variants`` (on cpu) on synthetic 100×16."""
    return [cell(report, COST, f"{v}@cpu", SYNTHETIC) for v in variants]


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
    (jax_cell, numpy_cell) = cost_cells(write.markdown_report(frames), "jax-scan", "numpy-manual")
    assert jax_cell.startswith("**5 µs** [") and "≈" not in numpy_cell


def test_a_winner_within_the_runner_ups_interval_is_a_tie_never_bold(tmp_path: Path) -> None:
    # jax-scan 3% faster than numpy-manual, both with ±25% noise: no winner
    path = with_rounds(tmp_path, {"numpy-manual": spread(2e-3, 1e-3),
                                  "torch-nn": spread(4e-3, 2e-4),
                                  "jax-scan": spread(1.94e-3, 1e-3)})  # fmt: skip
    frames = frame.load([path])
    marks = synthetic(frames)["fastest"]
    assert marks["jax-scan"] == "tie" and marks["numpy-manual"] == "tie"
    assert marks["torch-nn"] == ""
    cells = cost_cells(write.markdown_report(frames), "jax-scan", "numpy-manual", "torch-nn")
    assert not any("**" in c for c in cells)
    assert [c.startswith("≈") for c in cells] == [True, True, False]


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
    # this file predates the optimum in the records: no time to accuracy, and it says why
    assert cell(report, "Time to accuracy", "jax-scan@cpu", SYNTHETIC) == "–"
    assert "the run recorded no optimum" in section(report, "Time to accuracy")
    assert f" {expected:,} |" in report


def summary(report: str) -> str:
    return section(report, "Summary")


def test_the_report_opens_with_the_answer(tmp_path: Path) -> None:
    clear = with_rounds(tmp_path, {"numpy-manual": spread(2e-3, 1e-4),
                                   "torch-nn": spread(4e-3, 2e-4),
                                   "jax-scan": spread(5e-4, 2e-5)})  # fmt: skip
    report = write.markdown_report(frame.load([clear]))
    assert report.index("## Summary") < report.index("## Convergence")
    assert report.index("## Summary") < report.index("## Figures") < report.index("## Per-epoch")
    text = summary(report)
    # the count of runs that disagree (named once, under Convergence); the winner, the
    # runner-up and its time over the winner's; each framework's best
    assert "1 of 2 runs agree with the float64 reference; 1 do not (see Convergence)" in text
    assert "diverged" not in text
    row = next(x for x in text.splitlines() if x.startswith("| 100×16"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[:4] == ["100×16", "jax-scan", "5 µs", "numpy-manual"]
    assert cells[4].startswith("4.00× [")
    assert cells[5:8] == ["numpy-manual 20 µs", "torch-nn 40 µs", "jax-scan 5 µs"]
    disagreeing = section(report, "Convergence")
    assert "| toy-bias (4×1) | jax-scan@cpu | float32 | diverged at epoch 2 |" in disagreeing


def test_a_tie_is_summarised_as_a_tie(tmp_path: Path) -> None:
    tie = with_rounds(tmp_path, {"numpy-manual": spread(2e-3, 1e-3),
                                 "torch-nn": spread(4e-3, 2e-4),
                                 "jax-scan": spread(1.94e-3, 1e-3)})  # fmt: skip
    text = summary(write.markdown_report(frame.load([tie])))
    row = next(x for x in text.splitlines() if x.startswith("| 100×16"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "jax-scan ≈" and cells[3] == "numpy-manual"
    # 3% apart in ±25% noise: named as not distinguishable, with the interval of the ratio
    note = next(x for x in text.splitlines() if x.startswith("- **synthetic 100×16**"))
    assert "jax-scan and numpy-manual within 3.1% [−" in note
    assert "not distinguishable here (from the planned rounds)" in note


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
