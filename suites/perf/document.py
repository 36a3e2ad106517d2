"""Measure this machine and write docs/performance.md whole: ``make perf``.

The page is written from the measurements of this one invocation and nothing else: no
part of an earlier page is read or kept. Its top says when it ran (UTC), on which
machine and by which command; every sentence below either says how to read the table
beside it or is computed from this run's numbers.

1. ``gdbench run`` over the presets and a sweep of 100 … 1 000 000 samples (16
   features), in a child process with the usual thread settings: per-epoch costs,
   compile times, bandwidth fractions.
2. A quick ``gdbench run`` twice, each variant timed in 3 processes: with a worker per
   variant, and with every variant in one process (``--isolate none``); each variant's
   per-epoch cost alone and among all the others, side by side.
3. In this process, every CPU variant against the tutorial-style loop of its style
   (``suites/perf/idiomatic.py``), side by side: rounds alternate between the two, so that a
   drift of the machine hits both alike. The ratio shows what the harness costs.
4. The single-pass (``*-blocked``) variants at 1 000 000 × 16 against the two-pass
   variants of their framework and the one-pass floor, all in this process, rounds
   alternating (``blocked_comparison``), and again beyond the last-level cache.
5. docs/performance.md: the header, the fastest per size, what each variant pays for,
   the side-by-side tables, and the full report of the run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from reports import frame, write
from suites import machine
from suites.perf.analysis import (
    WITHIN,
    crossovers,
    fixed_cost_lines,
    isolation_effect,
    isolation_lines,
    pairs,
    pays_for,
)
from suites.perf.idiomatic import IDIOMATIC
from suites.perf.studies import (
    BLOCKED_N,
    BLOCKED_ROUNDS,
    ISOLATION_PROCESSES,
    SETTLE_S,
    SIDE_BY_SIDE,
    beyond_cache,
    blocked_comparison,
    problem_of,
    run_benchmark,
    side_by_side,
)

# --- the header ------------------------------------------------------------------------


def machine_facts() -> dict[str, Any]:
    """This machine as the header names it: what a run records of it
    (:func:`suites.machine.machine_fields`), and its OS."""
    return machine.machine_fields(len(machine.usable_cores())) | {"os": platform.platform()}


def header_lines(
    facts: dict[str, Any], started: dt.datetime, finished: dt.datetime, command: str,
    commit: str,
) -> list[str]:  # fmt: skip
    """The top of the page: when this invocation ran (UTC), by which command, at which
    commit, and on which machine."""
    cores = f"{facts.get('cpu_count', '?')} cores"
    usable = len(facts.get("affinity") or [])
    if usable and usable != facts.get("cpu_count"):
        cores += f", {usable} usable by this process"
    memory = facts.get("memory_bytes")
    versions = facts.get("versions") or {}
    return [
        "# Performance on this machine",
        "",
        f"Measured from {_utc(started)} to {_utc(finished)} by `{command}` at commit {commit}, on:",
        "",
        f"- **Machine:** {facts.get('node') or 'unknown'}",
        f"- **CPU:** {facts.get('cpu_model') or 'unknown'}, {cores}",
        f"- **Memory:** {f'{memory / 2**30:.1f} GiB' if memory else 'unknown'}",
        f"- **OS:** {facts.get('os') or 'unknown'}",
        f"- **GPU:** {write.gpu_text(facts.get('gpu'))}",
        "- **Versions:** " + ", ".join(f"{k} {v}" for k, v in versions.items() if v),
        "",
        "Every table and sentence below comes from this one invocation.",
    ]


def _utc(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _commit() -> str:
    """The commit checked out (Markdown), marked where tracked files differ from it."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                            capture_output=True, text=True)  # fmt: skip
    dirty = (
        " (with uncommitted changes)" if status.returncode == 0 and status.stdout.strip() else ""
    )
    return f"`{head.stdout.strip() or 'unknown'}`{dirty}"


def _command(argv: list[str]) -> str:
    """The command line of this invocation, the interpreter as a path from the working
    folder where it lies inside it (``.venv/bin/python -m suites.perf``)."""
    python = Path(sys.executable)
    try:
        shown = str(python.relative_to(Path.cwd()))
    except ValueError:
        shown = str(python)
    return shlex.join([shown, "-m", "suites.perf", *argv])


# --- the single-pass variants ----------------------------------------------------------


def _x_reads_text(info: dict) -> str:
    n = info["n"]
    return ", ".join(
        f"{m} {write.human_time(t)} ({n * 64 / t / 1e9:.1f} GB/s)"
        for m, t in info.get("x_read_s", {}).items()
    )


def _pair_cells(table: pd.DataFrame, cell: Any) -> list[dict[str, str]]:
    """One row per framework: its best two-pass variant against its blocked one."""
    return [
        {
            "framework": framework,
            "best two-pass": cell(best),
            "blocked": cell(b),
            "two-pass / blocked": f"{best['per_epoch_s'] / b['per_epoch_s']:.2f}×",
            "beats its two-pass": "yes" if b["per_epoch_s"] < best["per_epoch_s"] else "**no**",
        }
        for framework, best, b in pairs(table)
    ]


PAIRS_KEY = (
    "`two-pass / blocked` is the best two-pass variant's median over the blocked one's; "
    "`beats its two-pass` compares the two medians."
)


def beyond_lines(table: pd.DataFrame, info: dict) -> list[str]:
    """The sub-section on the comparison beyond the last-level cache."""
    n, llc = info["n"], info["llc_bytes"]

    def cell(row: pd.Series) -> str:
        return (f"{row['variant']}: {write.human_time(row['per_epoch_s'])} "
                f"({100 * row['floor_fraction']:.0f}%)")  # fmt: skip

    cells = _pair_cells(table, cell)
    return [
        f"### Beyond the last-level cache: {n:,} × 16",
        "",
        f"The same comparison at {n:,} rows: X ({n * 64 / 1e6:,.0f} MB) is "
        f"{n * 64 / llc:.1f}× the last-level cache ({llc / 2**20:,.0f} MiB, read from the "
        f"OS). {info['rounds']} alternating rounds of {info['epochs']} epochs, no block-size "
        f"sweep; reading X itself: {_x_reads_text(info) or 'not measured'}. Load average "
        f"before: {_load_text(info['load'][0])}; after: {_load_text(info['load'][1])}.",
        "",
        "Each cell: a variant's per-epoch median (its fraction of reading X). " + PAIRS_KEY,
        "",
        pd.DataFrame(cells).to_markdown(index=False) if cells else "Not measured.",
    ]


def _load_text(load: tuple[float, ...]) -> str:
    return ", ".join(f"{v:.2f}" for v in load)


def _llc_text(info: dict) -> str:
    """This machine's last-level cache against X, as the comparison read it."""
    llc = info.get("llc_bytes")
    if not llc:
        return "not given by the OS"
    holds = "holds" if llc >= info["n"] * 64 else "does not hold"
    return f"{llc / 2**20:,.0f} MiB, which {holds} X"


def blocked_lines(table: pd.DataFrame, info: dict) -> list[str]:
    """The section on the single-pass variants."""
    if table.empty:
        return ["No blocked variant could run here."]
    n, floor_s, rows = info["n"], info["floor_s"], info["block_rows"]
    memory_floor_s = info.get("memory_floor_s", floor_s)
    blocks = math.ceil(n / rows)
    reads = ", ".join(f"{m} {g:.1f} GB/s" for m, g in info["read_gbps"].items())

    def cell(row: pd.Series) -> str:
        return (f"{row['variant']}: {write.human_time(row['per_epoch_s'])} "
                f"({100 * row['floor_fraction']:.0f}% / "
                f"{100 * row.get('memory_floor_fraction', math.nan):.0f}%)")  # fmt: skip

    memory = table["memory_floor_fraction"] if "memory_floor_fraction" in table else math.nan
    every = table.assign(
        per_epoch=table["per_epoch_s"].map(write.human_time),
        floor=table["floor_fraction"].map(lambda f: f"{100 * f:.0f}%"),
        memory=pd.Series(memory, index=table.index).map(lambda f: f"{100 * f:.0f}%"),
    )[["framework", "variant", "form", "per_epoch", "floor", "memory"]].rename(
        columns={"floor": "of reading X", "memory": "of the memory floor"}
    )
    cost = info["block_cost_s"]

    def block_text(variant: str) -> str:
        c = cost[variant]
        return (f"{write.human_time(c)} per block, {blocks} blocks: "
                f"{write.human_time(c * blocks)} per epoch")  # fmt: skip

    return [
        f"{n:,} × 16 float32 ({n * 64 / 1e6:.0f} MB of X), {info['epochs']} epochs per "
        f"training, every CPU variant timed in this process in {info['rounds']} "
        f"alternating rounds, each call after an untimed pause of {SETTLE_S:g} s; "
        f"{info['threads']} threads per framework. Load average (1, 5, 15 min) before the "
        f"rounds: {_load_text(info['load'][0])}; after: {_load_text(info['load'][1])}.",
        "",
        "Floors per epoch, from the same rounds: reading X itself, the fastest of "
        f"{_x_reads_text(info) or 'no framework that sums in parallel'}: "
        f"{write.human_time(floor_s)}; one pass over X at the best 256 MiB read bandwidth "
        f"({reads}), the memory floor: {write.human_time(memory_floor_s)}. Last-level "
        f"cache: {_llc_text(info)}. Blocks of {rows:,} rows ({rows * 64 // 1024} KiB of X), "
        f"{blocks} per epoch.",
        "",
        "Each cell: a variant's per-epoch median (its fraction of reading X / of the "
        "memory floor). " + PAIRS_KEY,
        "",
        pd.DataFrame(_pair_cells(table, cell)).to_markdown(index=False),
        "",
        "Every variant of the comparison (per-epoch median, fraction of each floor):",
        "",
        every.to_markdown(index=False),
        "",
        "Each blocked variant at other block sizes, timed in the same rounds (per-epoch "
        "medians; the size in use in bold):",
        "",
        _block_size_table(info.get("block_sizes") or [], rows),
        *(
            [
                "",
                "What a block costs beyond its arithmetic (the per-epoch time with blocks "
                "of one row, per block): " + "; ".join(f"{v}: {block_text(v)}" for v in cost) + ".",
            ]
            if cost
            else []
        ),
        *(["", *beyond_lines(*info["beyond"])] if "beyond" in info else []),
    ]


def _block_size_table(sizes: list[dict], chosen: int) -> str:
    if not sizes:
        return "Not measured."
    table = pd.DataFrame(sizes)
    table["cell"] = [
        f"**{write.human_time(t)}**" if r == chosen else write.human_time(t)
        for t, r in zip(table["per_epoch_s"], table["block_rows"], strict=True)
    ]
    wide = table.pivot(index="variant", columns="block_rows", values="cell")
    wide.columns = pd.Index([f"{c:,} rows" for c in wide.columns])
    return wide.reset_index().to_markdown(index=False)


# --- the other sections ------------------------------------------------------------------


def tutorial_lines(side: pd.DataFrame) -> list[str]:
    """The section of gdbench against the tutorial loop of each style."""
    if side.empty:
        return ["No variant could run here."]
    table = side.assign(
        gdbench=side["gdbench"].map(write.human_time),
        **{"tutorial loop": side["tutorial loop"].map(write.human_time)},
        ratio=[
            f"{r:.2f} [{lo:.2f}, {hi:.2f}]" + ("" if hi <= WITHIN else " ⚠")
            for r, lo, hi in zip(
                side["ratio"], side["ratio_ci_low"], side["ratio_ci_high"], strict=True
            )
        ],  # fmt: skip
    )[["problem", "variant", "gdbench", "tutorial loop", "ratio"]]
    worst = side.sort_values("ratio").iloc[-1]
    above = int((side["ratio_ci_high"] > WITHIN).sum())
    return [
        "Each row: the per-epoch median of a backend's timed code path (`Session.train`) "
        "and of the simplest correct loop of its style (`suites/perf/idiomatic.py`), timed "
        "in this process in alternating rounds, and the median of the per-round ratios "
        f"with its 95% interval (`docs/methodology.md`); ⚠ marks an interval that reaches "
        f"above {WITHIN:.2f}.",
        "",
        f"Highest median ratio: {worst['variant']} on {worst['problem']}, "
        f"{worst['ratio']:.2f} [{worst['ratio_ci_low']:.2f}, {worst['ratio_ci_high']:.2f}]; "
        f"{above} of {len(side)} intervals reach above {WITHIN:.2f}.",
        "",
        table.to_markdown(index=False),
    ]


def run_report(frames: frame.Frames) -> str:
    """The report of the run, its headings one level down, without its figures (their
    PNGs stay in the run's folder)."""
    report = write.markdown_report(frames).split("\n", 1)[1]
    start = report.find("\n## Figures\n")
    if start >= 0:
        end = report.find("\n## ", start + 1)
        report = report[:start] + (report[end:] if end >= 0 else "\n")
    return report.replace("\n## ", "\n### ").strip("\n")


def document(
    frames: frame.Frames,
    side: pd.DataFrame,
    effect: pd.DataFrame,
    header: list[str],
    blocked: tuple[pd.DataFrame, dict] | None = None,
) -> str:
    """The whole page, from this invocation's measurements alone: its ``header``
    (:func:`header_lines`), then a section per study, then the report of the run."""
    results = frames.results[frames.results["dtype"] == "float32"]
    lines = [
        *header,
        "",
        "## Crossovers",
        "",
        *crossovers(results),
        "",
        "## What each variant pays for",
        "",
        *pays_for(results),
        *(["", *fixed] if (fixed := fixed_cost_lines(results)) else []),
        "",
        "## Single-pass variants: one pass over X, block by block",
        "",
        *(blocked_lines(*blocked) if blocked else ["Not measured."]),
        "",
        "## gdbench against the tutorial loop of each style",
        "",
        *tutorial_lines(side),
        "",
        "## Isolation: each variant alone, and all in one process",
        "",
        *isolation_lines(effect, ISOLATION_PROCESSES),
        "",
        "## The run",
        "",
        run_report(frames),
    ]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m suites.perf", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/performance.md"))
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args(argv)
    command = _command(sys.argv[1:] if argv is None else argv)
    started = dt.datetime.now(dt.UTC)
    facts, commit = machine_facts(), _commit()
    run_dir = Path("results") / f"perf-{started:%Y%m%dT%H%M%SZ}"
    frames = frame.load([run_benchmark(run_dir, args.quick)])
    # Isolation: quick runs (presets, 100 and 10 000 samples), K processes each way.
    runs = [
        frame.load([run_benchmark(run_dir.with_name(f"{run_dir.name}-{mode}"), True,
                                   "--isolate", mode, "--processes", str(ISOLATION_PROCESSES))])
        for mode in ("variant", "none")
    ]  # fmt: skip
    effect = isolation_effect(runs[0].results, runs[1].results)
    specs = ("toy", 100) if args.quick else SIDE_BY_SIDE
    # The side by side is CPU against CPU, in this process: jax must not start a GPU
    # client (and preallocate 75% of the card) on a GPU machine.
    os.environ["JAX_PLATFORMS"] = "cpu"
    rows = [
        row
        for spec in specs
        for variant in IDIOMATIC
        if (row := side_by_side(problem_of(spec), variant)) is not None
    ]
    side = pd.DataFrame(rows)
    if not side.empty:
        print(side.assign(ratio=side["ratio"].round(3)).to_string(index=False))
    blocked = blocked_comparison(10_000 if args.quick else BLOCKED_N, 3 if args.quick else
                                 BLOCKED_ROUNDS)  # fmt: skip
    print(blocked[0].to_string(index=False))
    if (beyond := beyond_cache(args.quick)) is not None:
        print(beyond[0].to_string(index=False))
        blocked[1]["beyond"] = beyond
    header = header_lines(facts, started, dt.datetime.now(dt.UTC), command, commit)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(document(frames, side, effect, header, blocked), encoding="utf-8")
    print(f"wrote {args.out} (run: {run_dir})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
