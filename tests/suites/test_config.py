"""Run options survive the trip from the command to the pytest child unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from backends import plugin_variants
from suites import problems
from suites.config import OPTIONS, ConfigError, RunConfig, parse


def test_every_option_round_trips_through_its_strings(tmp_path) -> None:
    (tmp_path / "t.csv").write_text("a,y\n1,2\n2,3\n")
    cfg = RunConfig(
        problems=("toy", "sweep"), backends=("jax-scan", "numpy-manual"), devices=("cuda",),
        sizes=(7, 300), features=3, epochs=11, lr=0.123456789, dtype="float64", quick=True,
        threads=1, seed=42, matmul_precision="tf32", block_rows=999,
        data=str(tmp_path / "t.csv"), target_column="y", standardize=True,
    )  # fmt: skip
    options = cfg.to_options()
    assert set(options) == set(OPTIONS)  # none is left behind
    assert parse(**options, quick=True, standardize=True) == cfg


def test_unset_overrides_stay_unset() -> None:
    options = RunConfig().to_options()
    assert "epochs" not in options and "lr" not in options and "block_rows" not in options
    assert parse(**options) == RunConfig()


def test_the_planner_reads_the_presets_shapes_from_the_problems(monkeypatch) -> None:
    # the tutorials' shapes: (name, rows, features, epochs)
    presets = RunConfig(problems=("toy", "toy-bias", "toy-20"))
    assert presets.problem_shapes() == [
        ("toy", 4, 1, 100), ("toy-bias", 4, 1, 4000), ("toy-20", 20, 1, 20),
    ]  # fmt: skip
    assert RunConfig(problems=("toy-bias",), epochs=7).problem_shapes() == [("toy-bias", 4, 1, 7)]
    # one source: a preset changed in suites/problems.py is what the planner sees
    wider = problems.toy().replace(X=np.ones((6, 3)), y=np.ones(6), w0=np.zeros(3), epochs=9)
    monkeypatch.setitem(problems._PRESET_BUILDERS, "toy", lambda dtype="float32": wider)
    assert RunConfig(problems=("toy",)).problem_shapes() == [("toy", 6, 3, 9)]


def test_groups_expand_to_their_variants_where_they_are_named() -> None:
    core = ("numpy-manual", "torch-autograd", "torch-nn", "torch-manual", "torch-compile",
            "torch-cudagraph", "jax-grad", "jax-manual", "jax-scan")  # fmt: skip
    blocked = ("numpy-blocked", "torch-blocked", "jax-blocked")
    parallel = ("torch-ddp", "torch-allreduce", "jax-sharded", "jax-shardmap",
                "jax-sharded-procs", "jax-shardmap-procs")  # fmt: skip
    assert parse(backends="core").backends == core
    assert parse(backends="single-pass").backends == blocked
    assert parse(backends="data-parallel").backends == parallel
    # names and groups mixed, in the order given, each variant once
    assert parse(backends="jax-blocked,core,numpy-manual").backends == ("jax-blocked", *core)
    every = parse(backends="all").backends
    # the built-in variants, then whatever plugin this environment has installed
    assert len(every) == 18 + len(plugin_variants())
    assert set(every[:18]) == {*core, *blocked, *parallel}
    assert every[18:] == plugin_variants()
    assert parse(backends="all,core").backends == every  # all, beside anything


def test_the_command_selects_core_unless_told_otherwise() -> None:
    from suites.run.cli import _config, build_parser

    run = _config(build_parser().parse_args(["check"]))
    assert run.backends == parse(backends="core").backends
    # a plain pytest run: every built-in variant (all, less the plugins installed here)
    assert parse().backends == parse(backends="all").backends[:18]


def test_an_unknown_group_names_the_groups() -> None:
    with pytest.raises(ConfigError) as err:
        parse(backends="core,single_pass")
    message = str(err.value)
    assert "--backends: unknown value 'single_pass' (did you mean 'single-pass'?)" in message
    assert message.endswith("core, single-pass, data-parallel, plugins or all")


def test_a_data_parallel_case_runs_only_where_every_rank_gets_its_rows() -> None:
    # 1,000 rows per rank by default: 10,000 rows split at K = 2, 4 (5,000, 2,500 each);
    # 1,500 rows at K = 2 only (750 per rank is too few at K = 2: not at all, nor K = 1)
    run = RunConfig(backends=("torch-ddp", "numpy-manual"), ranks=(1, 2, 4),
                    problems=("toy", "sweep"), sizes=(1_500, 2_000, 10_000))  # fmt: skip
    assert run.ks("torch-ddp", 10_000) == (1, 2, 4)
    assert run.ks("torch-ddp", 2_000) == (1, 2)
    assert run.ks("torch-ddp", 1_500) == ()
    assert run.ks("torch-ddp", 4) == ()
    assert run.ks("numpy-manual", 4) == (1,)
    # K = 1 alone was asked for: it runs wherever it is asked
    assert RunConfig(backends=("torch-ddp",), ranks=(1,)).ks("torch-ddp", 4) == (1,)
    # --shard-rows 1: everything that can be split at all
    small = parse(backends="torch-ddp", ranks="1,2", shard_rows="1", problems="toy")
    assert small.ks("torch-ddp", 4) == (1, 2) and small.ks("torch-ddp", 1) == ()
    left_out = {(e["problem"], tuple(e["ranks"])): e["reason"] for e in run.not_split()}
    assert set(left_out) == {("toy", (1, 2, 4)), ("synthetic-1500x16", (1, 2, 4)),
                             ("synthetic-2000x16", (4,))}  # fmt: skip
    assert left_out[("synthetic-2000x16", (4,))] == (
        "2,000 rows give fewer than 1,000 per rank at K = 4 (--shard-rows)"
    )
    assert left_out[("toy", (1, 2, 4))] == (
        "4 rows give fewer than 1,000 per rank at K = 2, 4 (--shard-rows); K = 1, its "
        "baseline, left out too"
    )
    with pytest.raises(ConfigError, match="--shard-rows must be a positive integer, got '0'"):
        parse(shard_rows="0")
