"""Two runs side by side: NEW/BASE per case with its interval, and a regression gate.

For each case (variant, device, dtype, problem) timed in both runs, the ratio of the
per-epoch medians NEW/BASE with its 95% interval (``reports/stats.py``: from the two
medians' distribution-free intervals, or a bootstrap over each run's processes, then
their rounds). As pyperf's ``compare_to`` does, a case is
*slower* only when the whole interval lies above 1, *faster* when it lies below 1, and
otherwise shows *no significant change*. Cases timed in one run only, or not in agreement
with the float64 reference, are listed, never dropped. Nothing here imports a framework.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from reports import frame, stats
from reports.read import Machine, pooled_cases
from reports.records import BENCHMARK, read_records
from reports.write import human_time

Key = tuple[str, str, str, str]  # variant, device, dtype, problem
Groups = list[list[float]]  # one list of round times per process

SLOWER, FASTER, SAME = "slower", "faster", "no significant change"
NO_ROUNDS = "no rounds to judge"


@dataclass
class Case:
    """One timed case of a run."""

    name: str  # variant@device-problem (dtype)
    epochs: int
    status: str  # "agree", "disagree", "diverged", "failed"...
    groups: Groups  # per process: seconds per epoch of each round
    median_s: float  # per epoch: the median of every round (nan when none is valid)


@dataclass
class Run:
    """A run's timed cases, and where and when it was measured."""

    label: str  # "BASE" or "NEW"
    path: Path  # the file read
    machine: frame.Machine
    partial: bool
    cases: dict[Key, Case] = field(default_factory=dict)


@dataclass
class Row:
    """One case timed in both runs, and the verdict."""

    name: str
    base: Case
    new: Case
    ratio: float = math.nan  # NEW median / BASE median
    low: float = math.nan  # the interval of the ratio
    high: float = math.nan
    verdict: str = NO_ROUNDS


@dataclass
class Comparison:
    """Everything the comparison's Markdown is made from."""

    base: Run
    new: Run
    rows: list[Row]
    only_base: list[str]  # case names
    only_new: list[str]


def source(path: Path) -> Path:
    """The file to read for ``path``: itself, or a run folder's records.jsonl (the one
    source of every output), or its benchmark.json when it has no records.

    Raises:
        frame.ReportInputError: a folder that holds neither.
    """
    if not path.is_dir():
        return path
    for name in ("records.jsonl", "benchmark.json"):
        if (path / name).is_file():
            return path / name
    raise frame.ReportInputError(f"{path}: folder holds no benchmark.json or records.jsonl")


def _case_name(info: dict[str, Any]) -> str:
    return f"{info['variant']}@{info['device']}-{info['problem']} ({info.get('dtype')})"


def _key(info: dict[str, Any]) -> Key:
    return (info["variant"], info["device"], str(info.get("dtype")), info["problem"])


def _case(info: dict[str, Any], timing: dict[str, Any]) -> Case:
    epochs = int(info["epochs"])
    status = info.get("status", "agree")
    # pytest-benchmark's rounds are seconds per iteration, one iteration a whole training
    # of ``epochs`` epochs; gdbench keeps each process's rounds apart (--processes K).
    raw = info.get("process_rounds") or [timing.get("data") or []]
    groups = [[t / epochs for t in g] for g in raw if g] if status == "agree" else []
    median = stats.pooled_median(groups) if groups else math.nan
    if math.isnan(median) and status == "agree" and timing.get("median") is not None:
        median = timing["median"] / epochs  # statistics without their rounds
    return Case(_case_name(info), epochs, status, groups, median)


def _timed(path: Path) -> tuple[list[tuple[dict[str, Any], dict[str, Any]]], list[dict]]:
    """(extra_info, statistics) of every case of a file that frame.load accepted, and
    the records of the cases that failed (a benchmark.json lists them apart)."""
    if path.suffix == ".jsonl":
        # frame's own reader and pooling, as every report: failed cases come without
        # statistics
        return pooled_cases(read_records(path, strict=True)), []
    doc = json.loads(path.read_text(encoding="utf-8"))
    timed = [
        (b.get("extra_info") or {}, b.get("stats") or {})
        for b in doc["benchmarks"]
        if (b.get("extra_info") or {}).get("kind", BENCHMARK) == BENCHMARK
    ]
    needed = ("variant", "device", "problem", "epochs")
    failed = [
        f
        for f in doc["gdbench"].get("failures") or []
        if f.get("kind") == BENCHMARK and all(k in f for k in needed)
    ]
    return timed, failed


def load_run(path: Path, label: str) -> Run:
    """Read a run folder, benchmark.json or records.jsonl.

    Raises:
        frame.ReportInputError: missing, not JSON, not gdbench output, or no timed case.
    """
    path = source(Path(path))
    frames = frame.load([path])  # checks the file, says why it cannot be read
    run = Run(label, path, frames.machines[0], frames.partial)
    timed, failed = _timed(path)
    for info, timing in timed:
        run.cases[_key(info)] = _case(info, timing)  # a later entry (a re-run) replaces one
    for info in failed:  # a case that failed in one process and was timed in another is timed
        run.cases.setdefault(_key(info), _case(info, {}))
    if not run.cases:
        raise frame.ReportInputError(
            f"{path}: no timed case (the output of `gdbench check`, or a run interrupted "
            "before any case finished?)"
        )
    return run


# What makes two runs comparable: the hardware and the software that ran them, never
# the host's name (a hosted CI runner gets a new one for every job).
IDENTITY_VERSIONS = ("python", "numpy", "torch", "jax", "jaxlib")


def identity(machine: Machine) -> dict[str, Any]:
    """A run's machine as compare judges it: CPU model, cores, memory, GPU and library
    versions. A field the run did not record (an older gdbench) is left out."""
    info = machine.info
    out: dict[str, Any] = {"CPU": machine.cpu, "GPU": machine.gpu or "none"}
    if info.get("cpu_count") is not None:
        out["cores"] = info["cpu_count"]
    if info.get("memory_bytes") is not None:
        out["memory"] = f"{info['memory_bytes'] / 2**30:.0f} GiB"
    for name in IDENTITY_VERSIONS:
        version = (info.get("versions") or {}).get(name)
        if version is not None:
            out[name] = version
    return out


def machine_mismatch(base: Run, new: Run) -> str | None:
    """Why two runs must not be ratioed (different hardware or software), or None; each
    difference named with both values."""
    one, other = identity(base.machine), identity(new.machine)
    differences = [
        f"{key} {one[key]} / {other[key]}" for key in one if key in other and one[key] != other[key]
    ]
    if not differences:
        return None
    return (
        f"BASE and NEW are from different machines (BASE / NEW: {'; '.join(differences)}): "
        f"BASE {base.machine.key}, NEW {new.machine.key}"
    )


def judge(base: Case, new: Case) -> Row:
    """NEW/BASE of one case, its 95% interval and the verdict."""
    row = Row(base.name, base, new)
    if base.epochs != new.epochs:
        row.verdict = (
            f"not compared: a different problem ({base.epochs} epochs in BASE, {new.epochs} in NEW)"
        )
        return row
    sides = (("BASE", base), ("NEW", new))
    wrong = [f"{side} {c.status}" for side, c in sides if c.status != "agree"]
    if wrong:
        row.verdict = f"not compared: {', '.join(wrong)}"
        return row
    if base.median_s > 0:
        row.ratio = new.median_s / base.median_s
    # A single round says nothing of how the case varies: no interval from it.
    if sum(map(len, base.groups)) < 2 or sum(map(len, new.groups)) < 2:
        return row
    row.low, row.high = stats.ratio_interval(new.groups, base.groups)
    row.verdict = SLOWER if row.low > 1 else FASTER if row.high < 1 else SAME
    return row


def compare(base: Run, new: Run) -> Comparison:
    """Every case of both runs: judged where both timed it, else listed by name."""
    rows = [judge(case, new.cases[key]) for key, case in base.cases.items() if key in new.cases]
    return Comparison(
        base,
        new,
        rows,
        only_base=[c.name for k, c in base.cases.items() if k not in new.cases],
        only_new=[c.name for k, c in new.cases.items() if k not in base.cases],
    )


def regressions(comparison: Comparison, fail_slower_pct: float) -> list[Row]:
    """The cases that fail ``--fail-slower PCT``: significantly slower (the interval's
    low end above 1) and NEW/BASE above 1 + PCT/100."""
    limit = 1 + fail_slower_pct / 100
    return [r for r in comparison.rows if r.verdict == SLOWER and r.ratio > limit]


def _ratio(x: float) -> str:
    return f"{x:.2f}" if abs(x) >= 0.1 else f"{x:.3g}"


def ratio_text(row: Row) -> str:
    """``1.98× [1.95, 2.01]``; the ratio alone where there is no interval."""
    if math.isnan(row.ratio):
        return "–"
    if math.isnan(row.low):
        return f"{_ratio(row.ratio)}×"
    return f"{_ratio(row.ratio)}× [{_ratio(row.low)}, {_ratio(row.high)}]"


def _cost(case: Case) -> str:
    return human_time(case.median_s) if case.status == "agree" else case.status


def _run_line(run: Run) -> str:
    when = f", {run.machine.datetime}" if run.machine.datetime else ""
    commit = f", commit {run.machine.commit[:10]}" if run.machine.commit else ""
    partial = " (an interrupted run: partial)" if run.partial else ""
    return f"- {run.label}: `{run.path}`{partial}: {run.machine.key}{when}{commit}"


def markdown(
    comparison: Comparison, *, fail_slower_pct: float | None = None, forced: bool = False
) -> str:
    """The comparison as Markdown: a table of every case in both runs, the cases in one
    run only, and the outcome of ``--fail-slower`` when it was given."""
    base, new = comparison.base, comparison.new
    lines = []
    if forced:
        lines += [
            f"> **Warning: different machines, compared because of --force.** "
            f"{machine_mismatch(base, new)}: each ratio measures the machines as well as "
            "the change.",
            "",
        ]
    lines += [
        "# gdbench compare: NEW against BASE",
        "",
        _run_line(base),
        _run_line(new),
        "",
        "Per-epoch cost: the median of the timed rounds over the epochs. NEW/BASE is the "
        "ratio of the medians with its 95% interval (docs/methodology.md). *slower*: the "
        "whole interval is above 1; *faster*: below 1; otherwise "
        "*no significant change*.",
        "",
    ]
    table = pd.DataFrame(
        [(r.name, _cost(r.base), _cost(r.new), ratio_text(r), r.verdict) for r in comparison.rows],
        columns=["case", "BASE per epoch", "NEW per epoch", "NEW/BASE [95%]", "verdict"],
    )
    lines += [table.to_markdown(index=False) if len(table) else "No case is in both runs.", ""]
    counts = pd.Series([r.verdict for r in comparison.rows], dtype=object).value_counts()
    summary = ", ".join(f"{n} {verdict}" for verdict, n in counts.items())
    lines += [f"{len(comparison.rows)} cases in both runs" + (f": {summary}." if summary else ".")]
    for label, names in (("BASE", comparison.only_base), ("NEW", comparison.only_new)):
        if names:
            lines += ["", f"## Only in {label} ({len(names)})", ""]
            lines += [f"- {name}" for name in names]
    if fail_slower_pct is not None:
        lines += ["", *gate_lines(comparison, fail_slower_pct)]
    return "\n".join(lines) + "\n"


def gate_lines(comparison: Comparison, fail_slower_pct: float) -> list[str]:
    """What ``--fail-slower PCT`` decided, and why."""
    limit = 1 + fail_slower_pct / 100
    slow = regressions(comparison, fail_slower_pct)
    head = f"## Regression gate: --fail-slower {fail_slower_pct:g} (NEW/BASE above {limit:g}×)"
    if not slow:
        return [head, "", "Passed: no case is significantly slower by more than the limit."]
    return [
        head,
        "",
        f"Failed: {len(slow)} case{'s' if len(slow) > 1 else ''} significantly slower "
        "by more than the limit:",
        "",
        *[f"- {r.name}: {ratio_text(r)}" for r in slow],
    ]
