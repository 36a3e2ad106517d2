"""The sentences of docs/performance.md follow from the numbers (hand-built results)."""

from __future__ import annotations

import pandas as pd
import pytest

from reports.frame import Frames
from suites.perf.analysis import crossovers, isolation_effect, isolation_lines, targets

# gdbench's own machinery: runs in the numpy-only and all-frameworks environments
# (tox.ini), not again in each single-framework one.
pytestmark = pytest.mark.harness


def results(rows: list[tuple[str, str, int, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["variant", "problem", "n_samples", "per_epoch_median_s"])
    frame["dtype"] = "float32"
    frame["bandwidth_fraction"] = 0.6
    frame["achieved_gbps"] = 30.0
    return frame


SWEEP = results([
    ("numpy-manual", "synthetic-100x16", 100, 5e-6),
    ("torch-autograd", "synthetic-100x16", 100, 4e-5),
    ("jax-grad", "synthetic-100x16", 100, 5e-5),
    ("torch-compile", "synthetic-100x16", 100, 2e-5),
    ("jax-scan", "synthetic-100x16", 100, 1e-6),
    ("numpy-manual", "synthetic-1000000x16", 1_000_000, 4e-3),
    ("torch-autograd", "synthetic-1000000x16", 1_000_000, 7e-3),
    ("jax-grad", "synthetic-1000000x16", 1_000_000, 6e-3),
    ("torch-compile", "synthetic-1000000x16", 1_000_000, 3e-3),
    ("jax-scan", "synthetic-1000000x16", 1_000_000, 5e-3),
    ("jax-scan", "toy", 4, 2.5e-7),
])  # fmt: skip


def test_crossovers_name_where_the_ranking_changes() -> None:
    text = "\n".join(crossovers(SWEEP))
    assert "jax-grad is faster from n_samples = 1,000,000" in text
    assert "below n_samples = 1,000,000; from there torch-compile is faster" in text
    assert "100: jax-scan, 1,000,000: torch-compile" in text


def test_targets_are_checked_against_the_run() -> None:
    frames = Frames(SWEEP, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), pd.DataFrame(),
                    pd.DataFrame(), [])  # fmt: skip
    side = pd.DataFrame({"variant": ["torch-nn", "numpy-manual"], "problem": ["toy", "toy"],
                         "ratio": [1.12, 0.7]})  # fmt: skip
    text = "\n".join(targets(frames, side))
    assert "jax-scan under 0.5 µs per epoch: 250 ns (met)" in text
    assert "torch-compile at 60% (30.0 GB/s) (met)" in text
    assert "worst torch-nn on toy, 1.12× (NOT met)" in text


def cost_rows(rows: list[tuple[str, float, float, float]]) -> pd.DataFrame:
    """variant, pooled median, lowest and highest process median (per epoch)."""
    frame = pd.DataFrame(
        rows,
        columns=[
            "variant",
            "per_epoch_median_s",
            "per_epoch_process_min_s",
            "per_epoch_process_max_s",
        ],
    )
    return frame.assign(problem="toy", n_samples=4, n_features=1, device="cpu",
                        dtype="float32", status="agree")  # fmt: skip


def test_isolation_effect_flags_only_differences_beyond_the_spread_between_processes() -> None:
    alone = cost_rows([("numpy-manual", 10e-6, 6e-6, 11e-6), ("jax-scan", 2.0e-6, 1.9e-6, 2.1e-6)])
    together = cost_rows([("numpy-manual", 7e-6, 6.5e-6, 10e-6),
                          ("jax-scan", 1.5e-6, 1.4e-6, 1.6e-6)])  # fmt: skip
    effect = isolation_effect(alone, together).set_index("variant")
    # numpy-manual: 43% apart, but its processes overlap (6-11 µs vs 6.5-10 µs): no effect;
    # jax-scan: 33% apart with disjoint process ranges (1.9-2.1 vs 1.4-1.6): an effect.
    assert effect.loc["numpy-manual", "ratio"] == pytest.approx(10 / 7)
    assert not effect.loc["numpy-manual", "beyond_noise"]
    assert effect.loc["jax-scan", "ratio"] == pytest.approx(2.0 / 1.5)
    assert effect.loc["jax-scan", "beyond_noise"]
    text = "\n".join(isolation_lines(effect.reset_index(), 3))
    assert "largest: numpy-manual on toy, 1.43" in text
    assert "1 of 2 differences go beyond the spread between processes" in text


def test_isolation_effect_leaves_out_cases_that_did_not_agree() -> None:
    alone = cost_rows([("numpy-manual", 10e-6, 9e-6, 11e-6)])
    together = cost_rows([("numpy-manual", 10e-6, 9e-6, 11e-6)]).assign(status="disagree")
    assert isolation_effect(alone, together).empty


def test_beyond_the_cache_means_x_at_least_twice_the_last_level_cache() -> None:
    from suites.perf.studies import beyond_cache_n

    for llc in (260 * 2**20, 32 * 2**20, 2**20):
        n = beyond_cache_n(llc)
        assert n % 1_000_000 == 0
        assert n * 16 * 4 >= 2 * llc  # X of n × 16 float32 is at least twice the LLC
        assert (n - 1_000_000) * 16 * 4 < 2 * llc  # and the smallest whole million so


def test_the_beyond_cache_table_compares_each_framework_from_the_rounds() -> None:
    from suites.perf.document import beyond_lines

    table = pd.DataFrame([
        {"framework": "numpy", "variant": "numpy-manual", "form": "two-pass",
         "per_epoch_s": 0.090, "floor_fraction": 0.24},
        {"framework": "numpy", "variant": "numpy-blocked", "form": "blocked",
         "per_epoch_s": 0.060, "floor_fraction": 0.36},
        {"framework": "torch", "variant": "torch-manual", "form": "two-pass",
         "per_epoch_s": 0.050, "floor_fraction": 0.43},
        {"framework": "torch", "variant": "torch-compile", "form": "two-pass",
         "per_epoch_s": 0.040, "floor_fraction": 0.54},
        {"framework": "torch", "variant": "torch-blocked", "form": "blocked",
         "per_epoch_s": 0.080, "floor_fraction": 0.27},
    ])  # fmt: skip
    info = {"n": 9_000_000, "llc_bytes": 260 * 2**20, "rounds": 5, "epochs": 5,
            "x_read_s": {"torch-read-X": 0.0216},
            "load": ((1.0, 1.0, 1.0), (1.5, 1.2, 1.1))}  # fmt: skip
    text = "\n".join(beyond_lines(table, info))
    assert "### Beyond the last-level cache: 9,000,000 × 16" in text
    assert "X (576 MB) is at least twice the last-level cache (260 MiB" in text
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    # numpy: 90 ms / 60 ms; torch: its best two-pass is torch-compile (40 ms), not manual
    assert "numpy-manual: 90 ms (24%)" in rows["numpy"] and "1.50×" in rows["numpy"]
    assert "| yes" in rows["numpy"]
    assert "torch-compile: 40 ms (54%)" in rows["torch"] and "0.50×" in rows["torch"]
    assert "**no**" in rows["torch"]
