"""Run options survive the trip from the command to the pytest child unchanged."""

from __future__ import annotations

from suites.config import OPTIONS, RunConfig, parse


def test_every_option_round_trips_through_its_strings() -> None:
    cfg = RunConfig(
        problems=("toy", "sweep"), backends=("jax-scan", "numpy-manual"), devices=("cuda",),
        sizes=(7, 300), features=3, epochs=11, lr=0.123456789, dtype="float64", quick=True,
        threads=1, seed=42, matmul_precision="tf32", block_rows=999,
    )  # fmt: skip
    options = cfg.to_options()
    assert set(options) == set(OPTIONS)  # none is left behind
    assert parse(**options, quick=True) == cfg


def test_unset_overrides_stay_unset() -> None:
    options = RunConfig().to_options()
    assert "epochs" not in options and "lr" not in options and "block_rows" not in options
    assert parse(**options) == RunConfig()
