"""make perf: the tutorial-style loops compute what the backends compute, docs/performance.md
is written whole from one invocation with its date, machine and command on top, and its
sentences follow from the numbers (hand-built results)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from backends import framework_of
from suites.convergence import compare
from suites.perf.analysis import crossovers, isolation_effect, isolation_lines, pays_for
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


def results(rows: list[tuple[str, str, int, float, str]]) -> pd.DataFrame:
    """variant, problem, n_samples, per-epoch median, the cost table's mark of the fastest."""
    frame = pd.DataFrame(
        rows, columns=["variant", "problem", "n_samples", "per_epoch_median_s", "fastest"]
    )
    frame["dtype"], frame["device"] = "float32", "cpu"
    frame["bandwidth_fraction"] = 0.6
    frame["achieved_gbps"] = 30.0
    return frame


SWEEP = results([
    ("numpy-manual", "synthetic-100x16", 100, 5e-6, ""),
    ("torch-autograd", "synthetic-100x16", 100, 4e-5, ""),
    ("jax-grad", "synthetic-100x16", 100, 5e-5, ""),
    ("torch-compile", "synthetic-100x16", 100, 2e-5, ""),
    ("jax-scan", "synthetic-100x16", 100, 1e-6, "yes"),
    ("numpy-manual", "synthetic-1000000x16", 1_000_000, 4e-3, ""),
    ("torch-autograd", "synthetic-1000000x16", 1_000_000, 7e-3, ""),
    ("jax-grad", "synthetic-1000000x16", 1_000_000, 6e-3, ""),
    ("torch-compile", "synthetic-1000000x16", 1_000_000, 3e-3, "yes"),
    ("jax-scan", "synthetic-1000000x16", 1_000_000, 5e-3, ""),
    ("jax-scan", "toy", 4, 2.5e-7, "yes"),
])  # fmt: skip


def test_crossovers_name_where_the_ranking_changes() -> None:
    text = "\n".join(crossovers(SWEEP))
    assert "jax-grad's median is the lower from n_samples = 1,000,000 on" in text
    assert "dispatch once per epoch** (all but jax-scan and jax-blocked): 100: numpy-manual; " \
           "1,000,000: torch-compile." in text  # fmt: skip
    assert "100: jax-scan; 1,000,000: torch-compile." in text


def test_the_fastest_per_size_is_a_tie_where_the_cost_table_calls_it_one() -> None:
    # at 1,000,000 torch-compile has the lowest median, but the table marks a tie (≈)
    # with jax-scan: the sentence must not crown torch-compile alone
    tied = SWEEP.assign(fastest=SWEEP["fastest"].mask(
        (SWEEP["n_samples"] == 1_000_000) & SWEEP["variant"].isin(["torch-compile", "jax-scan"]),
        "tie"))  # fmt: skip
    line = crossovers(tied)[0]
    assert "1,000,000: a tie between torch-compile, jax-scan (≈)." in line
    assert "100: jax-scan;" in line


def test_what_each_variant_pays_for_is_a_table_of_differences_between_medians() -> None:
    rows = results([("torch-autograd", "toy-bias", 4, 90e-6, ""),
                    ("torch-manual", "toy-bias", 4, 20e-6, "")])  # fmt: skip
    rows["compile_s"] = float("nan")
    text = "\n".join(pays_for(rows))
    assert "| torch-autograd | torch-manual | autograd" in text and "| 70 µs " in text
    assert "torch-nn" not in text  # a pair the run did not measure has no row


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
    assert "X (576 MB) is 2.1× the last-level cache (260 MiB" in text
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


@pytest.mark.parametrize(("numpy_s", "beats"), [(3.4e-3, "yes"), (6e-3, "**no**")])
def test_the_single_pass_section_compares_each_blocked_variant_with_its_two_pass(
    numpy_s, beats
) -> None:
    from suites.perf.document import blocked_lines

    table, info = comparison(numpy_s)
    text = "\n".join(blocked_lines(table, info))
    pairs = text.split("Every variant")[0]  # the first table: one row per framework
    rows = {
        line.split("|")[1].strip(): line for line in pairs.splitlines() if line.startswith("| ")
    }
    assert rows["numpy"].rstrip(" |").endswith(beats)
    assert "jax-scan: 4 ms (75% / 150%)" in rows["jax"] and "1.21×" in rows["jax"]
    assert "123 per epoch" in text and "5 µs per block, 123 blocks: 615 µs per epoch" in text
    assert "load average" in text.lower() and "1.50, 2.00, 2.50" in text
    # both floors: reading X itself (3 ms) and one pass at the best read bandwidth (6 ms)
    assert "torch-read-X 3 ms (21.3 GB/s)" in text and "the memory floor: 6 ms" in text
    assert "jax-blocked: 3.3 ms (91% / 182%)" in text
    assert not re.search(r"\btarget|\bmet\b", text)  # no acceptance criteria of past work


FACTS = {"node": "alpha", "cpu_model": "Intel Xeon Test", "cpu_count": 2, "affinity": [0, 1],
         "memory_bytes": 8 * 2**30, "os": "Linux-6.1-x86_64-with-glibc2.36", "gpu": None,
         "versions": {"python": "3.11.7", "numpy": "2.4.6", "torch": None}}  # fmt: skip


def test_the_header_says_when_where_and_by_which_command_the_page_was_measured() -> None:
    from suites.perf.document import header_lines, machine_facts

    started = dt.datetime(2026, 12, 7, 9, 58, 1, tzinfo=dt.UTC)
    finished = dt.datetime(2026, 12, 7, 11, 0, 59, tzinfo=dt.UTC)
    top = "\n".join(header_lines(FACTS, started, finished, ".venv/bin/python -m suites.perf",
                                 "`abc1234`"))  # fmt: skip
    assert "from 2026-12-07 09:58:01 UTC to 2026-12-07 11:00:59 UTC" in top
    assert "by `.venv/bin/python -m suites.perf` at commit `abc1234`" in top
    for fact in ("**Machine:** alpha", "**CPU:** Intel Xeon Test, 2 cores", "**Memory:** 8.0 GiB",
                 "**OS:** Linux-6.1-x86_64-with-glibc2.36", "**GPU:** none",
                 "**Versions:** python 3.11.7, numpy 2.4.6\n"):  # fmt: skip
        assert fact in top
    # and this machine's own facts, as main() reads them, name it
    here = machine_facts()
    assert here["os"] == platform.platform() and here["cpu_model"] and here["cpu_count"]
    assert here["memory_bytes"] and here["versions"]["numpy"] == np.__version__


FIXTURE = Path(__file__).parents[1] / "fixtures" / "machine_a.json"


OLD_PAGE = """# Performance on this machine

Generated by `make perf` on 2026-11-22 at commit `d336f0f`.

## Targets

- `toy`, jax-scan under 0.5 µs per epoch: 966 ns (NOT met).

<!-- blocked: generated by suites/perf (make perf, or --only blocked) -->
Measured on 2026-12-06 at commit `96e27df`: OLD-BLOCKED-SENTINEL
<!-- /blocked -->

<!-- tutorial: generated by suites/perf (make perf, or --only tutorial) -->
## gdbench against the tutorial loop of each style

OLD-TUTORIAL-SENTINEL
<!-- /tutorial -->

## The run

> Note (written by hand; the next `make perf` replaces it): OLD-NOTE-SENTINEL
"""


def test_make_perf_writes_the_whole_page_from_its_own_run_and_keeps_nothing_of_the_old(
    tmp_path, monkeypatch
) -> None:
    from suites.perf import document as perf

    # every study stands in for itself: the gdbench runs read a fixture, the side by side
    # and the single-pass comparison give hand-built rows
    monkeypatch.setattr(perf, "run_benchmark", lambda *args: FIXTURE)
    monkeypatch.setattr(perf, "side_by_side", lambda problem, variant: None if variant !=
                        "numpy-manual" else {"problem": problem.name, "variant": variant,
                        "gdbench": 1e-5, "tutorial loop": 2e-5, "ratio": 0.5,
                        "ratio_ci_low": 0.45, "ratio_ci_high": 1.2})  # fmt: skip
    monkeypatch.setattr(perf, "blocked_comparison", lambda *args: comparison(3.4e-3))
    monkeypatch.setattr(perf, "beyond_cache", lambda quick: None)
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")  # main sets it; restored after the test
    out = tmp_path / "performance.md"
    out.write_text(OLD_PAGE, encoding="utf-8")
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    assert perf.main(["--out", str(out), "--quick"]) == 0
    after = dt.datetime.now(dt.UTC)
    page = out.read_text(encoding="utf-8")

    for old in ("SENTINEL", "Targets", "NOT met", "d336f0f", "96e27df", "<!--", "by hand"):
        assert old not in page, f"{old!r} carried over from the old page"
    # the header: when (UTC), the exact command, the machine
    top = "\n".join(page.splitlines()[:12])
    stamps = re.search(r"Measured from (\S+ \S+) UTC to (\S+ \S+) UTC by `([^`]+)`", top)
    assert stamps, top
    started, finished = (dt.datetime.strptime(t, "%Y-%m-%d %H:%M:%S").replace(tzinfo=dt.UTC)
                         for t in stamps.groups()[:2])  # fmt: skip
    assert before <= started <= finished <= after
    assert stamps[3].endswith(f"-m suites.perf --out {out} --quick")
    here = perf.machine_facts()
    for fact in (here["cpu_model"], f"{here['cpu_count']} cores", "GiB", platform.platform(),
                 f"numpy {np.__version__}"):  # fmt: skip
        assert fact in top, f"the header does not name {fact!r}"
    # then every section, from this run alone
    for heading in (
        "## Crossovers",
        "## What each variant pays for",
        "## Single-pass variants: one pass over X, block by block",
        "## gdbench against the tutorial loop of each style",
        "## Isolation: each variant alone, and all in one process",
        "## The run",
    ):
        assert page.count(heading) == 1, heading  # fmt: skip
    assert "jax-blocked: 3.3 ms (91% / 182%)" in page and "| numpy-manual | 10 µs" in page
    assert "](epoch_cost.png)" not in page  # the run's figures stay in its folder


def test_no_option_rewrites_one_section_of_an_existing_page(monkeypatch) -> None:
    from suites.perf import document as perf

    def measure(*args: object, **kwargs: object) -> None:
        raise AssertionError("a study ran: the option was accepted")

    for study in ("run_benchmark", "side_by_side", "blocked_comparison", "beyond_cache"):
        monkeypatch.setattr(perf, study, measure)
    for section in ("blocked", "tutorial"):
        with pytest.raises(SystemExit) as refused:
            perf.main(["--only", section])
        assert refused.value.code == 2  # argparse: unrecognized arguments
