"""The sentences of docs/performance.md follow from the numbers (hand-built results)."""

from __future__ import annotations

import pandas as pd
import pytest

from reports.frame import Frames
from suites.perf import crossovers, isolation_effect, isolation_lines, targets

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
