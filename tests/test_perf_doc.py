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


def cost_rows(rows: list[tuple[str, float, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["variant", "per_epoch_median_s", "per_epoch_iqr_s"])
    return frame.assign(problem="toy", n_samples=4, n_features=1, device="cpu",
                        dtype="float32", status="agree")  # fmt: skip


def test_isolation_effect_pairs_each_case_and_flags_only_differences_beyond_the_noise() -> None:
    alone = cost_rows([("numpy-manual", 10e-6, 0.2e-6), ("jax-scan", 2.0e-6, 0.02e-6)])
    together = cost_rows([("numpy-manual", 10.3e-6, 0.3e-6), ("jax-scan", 1.5e-6, 0.03e-6)])
    effect = isolation_effect(alone, together).set_index("variant")
    # numpy-manual: 3% apart with 2% + 2.9% of IQR: a tie; jax-scan: 33% apart, 3% of IQR
    assert effect.loc["numpy-manual", "ratio"] == pytest.approx(10 / 10.3)
    assert not effect.loc["numpy-manual", "beyond_noise"]
    assert effect.loc["jax-scan", "ratio"] == pytest.approx(2.0 / 1.5)
    assert effect.loc["jax-scan", "beyond_noise"]
    text = "\n".join(isolation_lines(effect.reset_index()))
    assert "largest: jax-scan on toy, 1.33" in text
    assert "1 of 2 differences exceed the noise" in text


def test_isolation_effect_leaves_out_cases_that_did_not_agree() -> None:
    alone = cost_rows([("numpy-manual", 10e-6, 0.2e-6)])
    together = cost_rows([("numpy-manual", 10e-6, 0.2e-6)]).assign(status="disagree")
    assert isolation_effect(alone, together).empty
