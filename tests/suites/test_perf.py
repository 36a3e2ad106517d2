"""make perf: the tutorial-style loops compute what the backends compute, and the sentences
of docs/performance.md follow from the numbers (hand-built results)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backends import framework_of
from reports.frame import Frames
from suites.convergence import compare
from suites.perf.analysis import crossovers, isolation_effect, isolation_lines, targets
from suites.perf.idiomatic import IDIOMATIC
from suites.problems import preset, synthetic


@pytest.mark.parametrize("variant", list(IDIOMATIC))
@pytest.mark.parametrize(
    "problem",
    [
        preset("toy"),
        preset("toy-bias").replace(epochs=300),
        synthetic(200, 4, seed=2, epochs=60, dtype="float64"),
    ],
)
def test_idiomatic_loop_agrees_with_the_float64_reference(variant, problem) -> None:
    framework = framework_of(variant)
    if importlib.util.find_spec(framework) is None:
        pytest.skip(f"{framework} is not installed")
    run = IDIOMATIC[variant](problem)
    first, second = run(), run()
    verdict = compare(problem, first)
    assert verdict.ok, verdict.message
    np.testing.assert_array_equal(first.losses, second.losses)  # each run starts from zero
    assert first.losses.dtype == np.dtype(problem.dtype)


def test_idiomatic_jax_loops_run_on_the_cpu_when_the_default_device_is_another() -> None:
    # On a GPU machine jax's default device is the GPU; the loops are compared with the
    # CPU backends, so they must place their arrays on the CPU. Here the stand-in for
    # "another default device" is a second host device.
    pytest.importorskip("jax", reason="jax is not installed")
    script = """
import jax
from suites.perf.idiomatic import IDIOMATIC
from suites.problems import preset
jax.config.update("jax_default_device", jax.devices("cpu")[1])
runs = [IDIOMATIC[v](preset("toy-bias")) for v in ("jax-grad", "jax-manual", "jax-scan")]
results = [run() for run in runs]
print(sorted({str(d) for a in jax.live_arrays() for d in a.devices()}), jax.devices()[:2])
"""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(Path(__file__).parents[2])}  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    used, devices = proc.stdout.strip().split(" ", 1)
    assert used == "['cpu:0']" and devices == "[CpuDevice(id=0), CpuDevice(id=1)]", proc.stdout


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


def comparison(numpy_blocked_s: float) -> tuple:
    import pandas as pd

    floor = 3e-3
    rows = [("numpy", "numpy-manual", "two-pass", 5e-3), ("numpy", "numpy-blocked", "blocked",
            numpy_blocked_s), ("jax", "jax-scan", "two-pass", 4e-3),
            ("jax", "jax-blocked", "blocked", 3.3e-3)]  # fmt: skip
    table = pd.DataFrame(rows, columns=["framework", "variant", "form", "per_epoch_s"])
    table["floor_fraction"] = floor / table["per_epoch_s"]
    table["memory_floor_fraction"] = 2 * floor / table["per_epoch_s"]
    info = {"n": 1_000_000, "epochs": 20, "rounds": 15, "threads": 2, "floor_s": floor,
            "memory_floor_s": 2 * floor, "x_read_s": {"torch-read-X": floor},
            "read_gbps": {"numpy-read": 8.0, "torch-read": 21.3}, "block_rows": 8192,
            "load": ((1.5, 2.0, 2.5), (1.6, 2.0, 2.5)),
            "block_cost_s": {"numpy-blocked": 5e-6}}  # fmt: skip
    return table, info


@pytest.mark.parametrize(("numpy_s", "verdict"), [(3.4e-3, "met"), (3.6e-3, "NOT met"),
                                                  (6e-3, "NOT met")])  # fmt: skip
def test_the_performance_section_says_whether_the_target_is_met(numpy_s, verdict) -> None:
    from suites.perf.analysis import blocked_targets
    from suites.perf.document import blocked_lines, replace_blocked_section

    table, info = comparison(numpy_s)
    targets = blocked_targets(table)
    numpy_line = next(t for t in targets if "numpy-blocked" in t)
    assert numpy_line.endswith(f"({verdict}; section below).")
    assert "jax-blocked" in targets[1] and "(met;" in targets[1]  # 91%, faster than 4 ms
    lines = blocked_lines(table, info)
    text = "\n".join(lines)
    assert "123 per epoch" in text and "5 µs per block, 123 blocks: 615 µs per epoch" in text
    assert "load average" in text.lower() and "1.50, 2.00, 2.50" in text
    # both floors, the target judged against reading X itself (3 ms), not memory (6 ms)
    assert "torch-read-X 3 ms (21.3 GB/s)" in text and "6 ms per epoch" in text
    assert "jax-blocked: 3.3 ms (91% / 182%)" in text
    assert "(reading X itself): 3.3 ms against jax-scan's 4 ms, 91% of the floor (182% of " \
           "the memory floor) (met;" in targets[1]  # fmt: skip
    doc = "\n".join(["# P", "", "## Targets", "", "- old", "- 1 000 000 × 16, numpy-blocked "
                     "faster than x", "", "## Crossovers", "", "x", *lines, "tail"])  # fmt: skip
    new = replace_blocked_section(doc, ["<!-- blocked: generated by suites/perf (make "
                                        "perf, or --only blocked) -->", "new", "<!-- /blocked -->"],
                                  targets)  # fmt: skip
    assert new.count("numpy-blocked faster than") == 1 and "- old" in new
    assert "\nnew\n" in new and new.endswith("tail") and "1.50, 2.00, 2.50" not in new


def test_the_performance_section_is_dated_when_its_run_is_known() -> None:
    from suites.perf.document import blocked_lines

    table, info = comparison(3.4e-3)
    assert "\nMeasured in one process at 1,000,000 × 16" in "\n".join(blocked_lines(table, info))
    dated = "\n".join(blocked_lines(table, info | {"stamp": "2026-12-06 at commit `abc`"}))
    assert "\nMeasured on 2026-12-06 at commit `abc`, in one process at 1,000,000 × 16" in dated
