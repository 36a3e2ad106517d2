"""pytest-benchmark JSON -> tidy pandas DataFrames: the one source of every table and plot.

Inputs are the files a gdbench run writes: ``benchmark.json`` (pytest-benchmark's format
with a ``gdbench`` section), ``convergence.json`` (``gdbench check``: no timings) and
``records.jsonl`` (one finished case per line, written as the run goes). Nothing here
imports a framework.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reports.read import (
    Machine,
    gdbench_section,
    machine_of,
    merged_machine,
    pooled_cases,
    read_json,
    run_stamp,
)
from reports.records import BANDWIDTH, END, ReportInputError, read_records
from reports.stats import FASTER, SLOWER, median_interval, paired_ratio, ratio_interval

__all__ = ["Frames", "Machine", "ReportInputError", "load"]

BASELINE = "numpy-manual"
PER_EPOCH = "per_epoch_median_s"  # the cost every table and plot leads with

DEFAULT_TARGET = 1e-6  # the time to accuracy's share of the initial excess loss
CASE_KEYS = ["machine", "problem", "dtype", "n_samples", "n_features", "epochs"]
# Variants that compile their epoch (or their whole loop) before the timed rounds: their
# compile time is paid back after `break_even_epochs` against the fastest of the others.
COMPILED = (
    "torch-compile", "torch-cudagraph", "jax-grad", "jax-manual", "jax-scan", "jax-blocked",
)  # fmt: skip
ROUNDS = "_rounds"  # a row's per-epoch rounds, one list per process (not written out)

RESULT_COLUMNS = [
    "variant", "framework", "device", "dtype", "problem", "n_samples", "n_features", "epochs",
    "status", "per_epoch_median_s", "per_epoch_ci_low_s", "per_epoch_ci_high_s",
    "per_epoch_iqr_s", "per_epoch_min_s", "per_epoch_mean_s", "fastest", "fixed_s",
    "marginal_epoch_s", "break_even_epochs", "break_even_vs",
    "rounds", "iterations", "epochs_per_round", "harness_overhead_pct", "compile_s",
    "target", "target_epoch", "time_to_target_s",
    "final_loss", "ref_final_loss", "speedup_vs_numpy", "speedup_ci_low", "speedup_ci_high",
    "gap_to_fastest", "gap_ci_low", "gap_ci_high", "one_pass_bytes", "floor_epoch_s",
    "floor_fraction", "block_rows", "bytes_per_epoch",
    "achieved_gbps", "bandwidth_fraction", "processes", "process_spread",
    "per_epoch_process_min_s", "per_epoch_process_max_s", "data_bytes",
    "peak_host_bytes", "peak_device_bytes", "pid", "machine", "host", "cpu", "gpu", "threads",
    "parallel_variant", "ranks", "rank_max_epoch_s", "rank_min_epoch_s",
    "collective_epoch_s",
    "matmul_precision", "numpy_version", "torch_version", "jax_version", "message",
]  # fmt: skip

CONVERGENCE_COLUMNS = [
    "machine",
    "problem",
    "variant",
    "device",
    "dtype",
    "matmul_precision",
    "block_rows",
    "n_samples",
    "n_features",
    "epochs",
    "lr",
    "lr_limit",
    "final_loss",
    "ref_final_loss",
    "max_loss_dev",
    "param_dev",
    "optimum_dev",
    "status",
    "epoch",
    "verdict",
    "message",
]


PAIRED_COLUMNS = [
    "machine", "problem", "dtype", "n_samples", "n_features", "epochs", "variant", "device",
    "versus", "ratio", "ratio_ci_low", "ratio_ci_high", "pairs", "outcome", "stop", "budget_s",
    "spent_s",
]  # fmt: skip


@dataclass
class Frames:
    """Everything a report is made from."""

    results: pd.DataFrame  # one row per timed benchmark (RESULT_COLUMNS)
    bandwidth: pd.DataFrame  # one row per copy benchmark: machine, device, method, gbps...
    convergence: pd.DataFrame  # one row per convergence case (CONVERGENCE_COLUMNS)
    trajectories: pd.DataFrame  # one row per (machine, problem, variant, device, epoch)
    unavailable: pd.DataFrame  # variant, device, reason, machine
    failures: pd.DataFrame  # variant, device, problem, kind, message, machine
    machines: list[Machine]
    partial: bool = False  # built from an interrupted run's records
    # per results row (same index): its per-epoch rounds, one list per process
    rounds: pd.Series = field(default_factory=lambda: pd.Series(dtype=object))
    # data-parallel cases left out, their problem too small to split: variant, problem,
    # n_samples, ranks (the K left out), reason, machine
    not_split: pd.DataFrame = field(default_factory=pd.DataFrame)
    # the data files of the runs (--data): what suites.data's describe() says, and machine
    data_files: list[dict[str, Any]] = field(default_factory=list)
    # the contenders' alternating rounds (PAIRED_COLUMNS): one row per contender
    paired: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=PAIRED_COLUMNS))


BANDWIDTH_COLUMNS = [
    "machine", "device", "method", "access", "bytes", "median_s", "gbps", "threads",
]  # fmt: skip


def _bandwidth_row(info: dict[str, Any], stats: dict[str, Any], machine: Machine) -> dict:
    median = stats.get("median")
    gbps = info["bytes"] / median / 1e9 if median else np.nan
    # records from before the GPU's copies have no device (host copies) or access
    access = info.get("access") or "copy"
    return {"machine": machine.key, "device": info.get("device") or "cpu",
            "method": info.get("method"), "access": access, "bytes": info["bytes"],
            "median_s": median, "gbps": gbps, "threads": info.get("threads")}  # fmt: skip


def _benchmark_row(bench: dict[str, Any], machine: Machine) -> dict[str, Any]:
    info = bench.get("extra_info") or {}
    missing = [k for k in ("variant", "device", "problem", "epochs") if k not in info]
    if missing:
        raise ReportInputError(
            f"benchmark '{bench.get('name')}' lacks gdbench's fields {missing} in extra_info"
        )
    stats = bench.get("stats") or {}
    return _row(info, stats, machine)


def _row(info: dict[str, Any], stats: dict[str, Any], machine: Machine) -> dict[str, Any]:
    epochs = info["epochs"]
    status = info.get("status", "agree")
    valid = status == "agree" and bool(stats)

    def per_epoch(key: str) -> float:
        # A run that did not agree with the reference has no valid cost.
        return stats[key] / epochs if valid and stats.get(key) is not None else np.nan

    versions = machine.info.get("versions", {})
    iterations = info.get("iterations") or 1
    median = stats.get("median")
    overhead = info.get("harness_overhead_s")
    overhead_pct = (
        100 * overhead / (iterations * median)
        if valid and overhead is not None and median
        else np.nan
    )
    itemsize = 8 if info.get("dtype") == "float64" else 4
    one_pass_bytes = info.get("n_samples", 0) * info.get("n_features", 0) * itemsize
    # A single-pass variant (block_rows recorded) reads X once per epoch, the others twice.
    block_rows = info.get("block_rows")
    bytes_per_epoch = one_pass_bytes if block_rows else 2 * one_pass_bytes
    return {
        **{
            k: info.get(k)
            for k in (
                "variant",
                "framework",
                "device",
                "dtype",
                "problem",
                "n_samples",
                "n_features",
                "epochs",
            )
        },
        "status": status,
        "per_epoch_median_s": per_epoch("median"),
        "per_epoch_iqr_s": per_epoch("iqr"),
        "per_epoch_min_s": per_epoch("min"),
        "per_epoch_mean_s": per_epoch("mean"),
        **_interval_fields(info, stats, epochs, valid),
        "fixed_s": info.get("fixed_s") if valid else np.nan,
        "marginal_epoch_s": info.get("marginal_epoch_s") if valid else np.nan,
        "rounds": stats.get("rounds"),
        "iterations": iterations,
        "epochs_per_round": iterations * epochs,
        "harness_overhead_pct": overhead_pct,
        "compile_s": info.get("compile_s"),
        "final_loss": info.get("final_loss"),
        "ref_final_loss": info.get("ref_final_loss"),
        "machine": machine.key,
        "host": machine.host,
        "cpu": machine.cpu,
        "gpu": machine.gpu,
        "threads": info.get("threads", machine.info.get("threads")),
        "matmul_precision": info.get("matmul_precision"),
        "numpy_version": versions.get("numpy"),
        "torch_version": versions.get("torch"),
        "jax_version": versions.get("jax"),
        "message": info.get("message", ""),
        # data-parallel variants: K, and the last round's slowest and fastest rank and
        # longest time in the collective, per epoch (the rank's own clock)
        "parallel_variant": info.get("parallel_variant"),
        "ranks": info.get("ranks", info.get("workers")),  # "workers": its earlier name
        **{
            column: info[key] / epochs if valid and info.get(key) is not None else np.nan
            for column, key in (
                ("rank_max_epoch_s", "rank_time_max_s"),
                ("rank_min_epoch_s", "rank_time_min_s"),
                ("collective_epoch_s", "collective_max_s"),
            )
        },
        # What the variant reads per epoch: X twice (Xw, then Xᵀr), or once (blocked).
        "bytes_per_epoch": bytes_per_epoch,
        # The floor: r_i = x_i·w + b − y_i needs only row i, so one pass over the rows
        # can compute Xw and Xᵀr together (each row used twice while in cache).
        "one_pass_bytes": one_pass_bytes,
        "block_rows": block_rows,
        **_process_fields(info, epochs, valid),
    }


def _interval_fields(
    info: dict[str, Any], stats: dict[str, Any], epochs: int, valid: bool
) -> dict[str, Any]:
    """The 95% interval of the per-epoch median (reports/stats.py: over the rounds, and
    over the processes with --processes K), and the rounds per epoch it came from."""
    groups = info.get("process_rounds") or [stats.get("data") or []]
    per_epoch = [[t / epochs for t in g] for g in groups if g] if valid else []
    low, high = median_interval(per_epoch) if per_epoch else (np.nan, np.nan)
    return {"per_epoch_ci_low_s": low, "per_epoch_ci_high_s": high, ROUNDS: per_epoch}


def _process_fields(info: dict[str, Any], epochs: int, valid: bool) -> dict[str, Any]:
    """Which processes measured a case, how far apart their medians were, and memory."""
    medians = [m for m in info.get("process_medians") or [] if m is not None]
    pids = info.get("pids") or ([info["pid"]] if info.get("pid") is not None else [])
    spread = low = high = np.nan
    if valid and len(medians) > 1:
        spread = (max(medians) - min(medians)) / float(np.median(medians))
        low, high = min(medians) / epochs, max(medians) / epochs
    return {
        "processes": len(medians) or (1 if pids else np.nan),
        "process_spread": spread,
        "per_epoch_process_min_s": low,
        "per_epoch_process_max_s": high,
        "data_bytes": info.get("data_bytes"),
        "peak_host_bytes": info.get("peak_host_bytes"),
        "peak_device_bytes": info.get("peak_device_bytes"),
        "pid": " ".join(str(p) for p in pids) if pids else None,
    }


def verdict_text(status: str, epoch: Any, message: str) -> str:
    if status == "agree":
        return "agree"
    if status in ("diverged", "disagree") and epoch is not None and not pd.isna(epoch):
        return f"{status} at epoch {int(epoch)}"
    return f"{status}: {message}" if message else status


def _convergence_rows(records: list[dict[str, Any]], machine: Machine) -> list[dict[str, Any]]:
    rows = []
    for rec in records:
        row = {k: rec.get(k) for k in CONVERGENCE_COLUMNS}
        row["machine"] = machine.key
        row["verdict"] = verdict_text(
            rec.get("status", ""), rec.get("epoch"), rec.get("message", "")
        )
        rows.append(row)
    return rows


def _trajectory_rows(records: list[dict[str, Any]], machine: Machine) -> list[dict[str, Any]]:
    rows = []
    for rec in records:
        traj = rec.get("trajectory")
        if not traj:
            continue
        w = traj.get("w")
        b = traj.get("b")
        ref = traj.get("ref_loss")
        for e, loss in enumerate(traj["loss"]):
            row: dict[str, Any] = {
                "problem": rec["problem"],
                "variant": rec["variant"],
                "device": rec["device"],
                "dtype": rec["dtype"],
                "epoch": e + 1,
                "loss": np.nan if loss is None else loss,
            }
            if w is not None:
                row.update({f"w{i}": v for i, v in enumerate(w[e])})
            if b is not None:
                row["b"] = b[e]
            row["ref_loss"] = ref[e] if ref is not None else np.nan
            row["loss_rtol"] = rec.get("loss_rtol", np.nan)  # what the run was judged by
            row["optimum_loss"] = _nan_if_none(traj.get("optimum_loss"))
            row["machine"] = machine.key
            rows.append(row)
    return rows


def _nan_if_none(value: Any) -> float:
    return np.nan if value is None else float(value)


def load(paths: list[Path], target: float | None = None) -> Frames:
    """Read gdbench output files (JSON, or a run folder's records.jsonl) into DataFrames.

    Args:
        target: the time to accuracy's share of the initial excess loss; by default the
            run's own (``gdbench run --target``), else :data:`DEFAULT_TARGET`.

    Raises:
        ReportInputError: a file is missing, not JSON, or not gdbench output.
    """
    results, convergence, trajectories, unavailable, failures = [], [], [], [], []
    contests: list[dict[str, Any]] = []
    not_split: list[dict[str, Any]] = []
    data_files: list[dict[str, Any]] = []
    targets: list[float | None] = []
    bandwidth: list[dict[str, Any]] = []
    machines: dict[str, Machine] = {}
    partial = False
    for path in paths:
        path = Path(path)
        if path.suffix == ".jsonl":
            if not path.is_file():
                raise ReportInputError(f"{path}: no such file")
            records = read_records(path, strict=True)
            ends = [r for r in records if r["kind"] == END]
            partial = partial or not ends or any(r.get("interrupted") for r in ends)
            machine = machine_of({}, {"machine": merged_machine(records)}, run_stamp(records))
            results += [_row(info, stats, machine) for info, stats in pooled_cases(records)]
            bandwidth += [
                _bandwidth_row(r, r.get("timing") or {}, machine)
                for r in records
                if r["kind"] == BANDWIDTH
            ]
            gdb = gdbench_section(records)
            conv = gdb["convergence"]
        else:
            doc = read_json(path)
            gdb = doc["gdbench"]
            partial = partial or bool(gdb.get("interrupted"))
            machine = machine_of(doc.get("machine_info") or {}, gdb, doc)
            cases: list[dict[str, Any]] = []
            copies: list[dict[str, Any]] = []
            for bench in doc["benchmarks"]:
                is_copy = (bench.get("extra_info") or {}).get("kind") == BANDWIDTH
                (copies if is_copy else cases).append(bench)
            try:
                results += [_benchmark_row(b, machine) for b in cases]
            except ReportInputError as err:
                raise ReportInputError(f"{path}: {err}") from None
            bandwidth += [
                _bandwidth_row(b["extra_info"], b.get("stats") or {}, machine) for b in copies
            ]
            conv = gdb.get("convergence", [])
        machines.setdefault(machine.key, machine)
        convergence += _convergence_rows(conv, machine)
        trajectories += _trajectory_rows(conv, machine)
        unavailable += [{**u, "machine": machine.key} for u in gdb.get("unavailable", [])]
        contests += [{**c, "machine": machine.key} for c in gdb.get("paired", [])]
        not_split += [{**c, "ranks": c.get("ranks", c.get("workers")), "machine": machine.key}
                      for c in gdb.get("not_split", [])]  # fmt: skip
        targets.append((gdb.get("config") or {}).get("target"))
        if gdb.get("data"):
            data_files.append({**gdb["data"], "machine": machine.key})
        failures += [
            {k: f.get(k) for k in ("kind", "variant", "device", "problem", "message")}
            | {"machine": machine.key}
            for f in gdb.get("failures", [])
        ]
    frame = pd.DataFrame(results, columns=[*RESULT_COLUMNS, ROUNDS])
    frame = _dedupe(frame, ["machine", "variant", "device", "dtype", "problem"])
    frame["speedup_vs_numpy"] = speedups(frame)
    rounds = frame.pop(ROUNDS)
    frame[["speedup_ci_low", "speedup_ci_high"]] = speedup_intervals(frame, rounds)
    frame[["break_even_epochs", "break_even_vs"]] = break_even(frame)
    bw_frame = pd.DataFrame(bandwidth, columns=BANDWIDTH_COLUMNS)
    frame["gap_to_fastest"] = gaps(frame)
    frame[["gap_ci_low", "gap_ci_high"]] = gap_intervals(frame, rounds)
    frame["fastest"] = fastest_marks(frame)
    paired = paired_frame(contests)
    settle(frame, rounds, paired)
    traj_frame = pd.DataFrame(trajectories)
    if target is None:
        target = next((t for t in targets if t), DEFAULT_TARGET)
    frame["target"] = target
    frame[["target_epoch", "time_to_target_s"]] = time_to_target(frame, traj_frame, target)
    frame["achieved_gbps"] = frame["bytes_per_epoch"] / frame["per_epoch_median_s"] / 1e9
    frame["bandwidth_fraction"] = frame["achieved_gbps"] / copy_bandwidth(frame, bw_frame)
    read = copy_bandwidth(frame, bw_frame, access="read")
    frame["floor_epoch_s"] = frame["one_pass_bytes"] / (read * 1e9)
    frame["floor_fraction"] = frame["floor_epoch_s"] / frame["per_epoch_median_s"]
    conv_frame = _dedupe(
        pd.DataFrame(convergence, columns=CONVERGENCE_COLUMNS),
        ["machine", "variant", "device", "dtype", "problem"],
    )
    return Frames(
        results=frame,
        rounds=rounds,
        bandwidth=bw_frame,
        convergence=conv_frame,
        trajectories=traj_frame,
        unavailable=pd.DataFrame(
            unavailable, columns=["variant", "framework", "device", "reason", "machine"]
        ).drop_duplicates(),
        failures=pd.DataFrame(
            failures, columns=["kind", "variant", "device", "problem", "message", "machine"]
        ),
        machines=list(machines.values()),
        partial=partial,
        paired=paired,
        data_files=data_files,
        not_split=pd.DataFrame(
            not_split,
            columns=["variant", "problem", "n_samples", "ranks", "reason", "machine"],
        ),
    )


def copy_bandwidth(frame: pd.DataFrame, bandwidth: pd.DataFrame, access: str = "copy") -> pd.Series:
    """The best copy (or, with ``access="read"``, read) bandwidth in GB/s of each row's
    own machine and device: a CUDA row's is the GPU's, never the host's; NaN where that
    device's was not measured."""
    measured = bandwidth[bandwidth["access"] == access]
    best = measured.groupby(["machine", "device"])["gbps"].max()
    keys = pd.MultiIndex.from_frame(frame[["machine", "device"]])
    return pd.Series(best.reindex(keys).to_numpy(dtype=float), index=frame.index)


def _dedupe(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per case: a later file (a re-run) replaces an earlier one's row."""
    if frame.empty:
        return frame.reset_index(drop=True)
    return frame.drop_duplicates(subset=keys, keep="last").reset_index(drop=True)


def ratio_intervals(
    frame: pd.DataFrame,
    rounds: pd.Series,
    reference: Callable[[pd.DataFrame], Any],
    row_over_reference: bool,
    own: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """The 95% interval of each row's ratio to the reference row of its machine and
    problem (``reference(group)``: an index, or None), row/reference or reference/row,
    from both rows' rounds (reports/stats.py); ``own`` for the reference row itself
    where given. NaN where either row has no rounds."""
    out = pd.DataFrame(np.nan, index=frame.index, columns=["low", "high"])
    for _, group in frame.groupby(CASE_KEYS):
        ref = reference(group)
        if ref is None:
            continue
        for i in group.index:
            if i == ref and own is not None:
                out.loc[i] = own
            elif rounds[i] and rounds[ref]:
                pair = (rounds[i], rounds[ref]) if row_over_reference else (rounds[ref], rounds[i])
                out.loc[i] = ratio_interval(*pair)
    return out


def speedup_intervals(frame: pd.DataFrame, rounds: pd.Series) -> pd.DataFrame:
    """The 95% interval of each row's speedup over numpy-manual on the same machine and
    problem."""

    def baseline(group: pd.DataFrame) -> Any:
        base = group.index[group["variant"] == BASELINE]
        return base[-1] if len(base) else None

    return ratio_intervals(frame, rounds, baseline, row_over_reference=False)


def contenders(frame: pd.DataFrame) -> pd.Series:
    """Which rows compete for fastest: all but K = 1 of a data-parallel variant, which is
    its single-device program run through the data-parallel machinery, the baseline of
    its scaling (the report's scaling section), never a winner of its own."""
    if frame.empty or "ranks" not in frame or "parallel_variant" not in frame:
        return pd.Series(True, index=frame.index, dtype=bool)
    baseline = frame["parallel_variant"].notna() & (frame["ranks"] == 1)
    return ~baseline


def fastest_marks(frame: pd.DataFrame) -> pd.Series:
    """Per machine and problem: ``"yes"`` on the fastest agreeing row when every other
    contender's time over it is above 1 by its whole 95% interval (``gap_ci_low`` > 1),
    else ``"tie"`` on it and on every row whose interval reaches 1; ``"untested"`` on the
    fastest median when it has no interval (JSON without its rounds); ``""`` elsewhere.
    K = 1 of a data-parallel variant is never marked (:func:`contenders`)."""
    marks = pd.Series("", index=frame.index, dtype=object)
    timed = frame[frame["per_epoch_median_s"].notna() & contenders(frame)]
    for _, group in timed.groupby(CASE_KEYS):
        ranked = group.sort_values("per_epoch_median_s", kind="stable")
        rivals = ranked.iloc[1:]
        if rivals["gap_ci_low"].isna().any() or pd.isna(ranked["per_epoch_ci_high_s"].iloc[0]):
            marks.loc[ranked.index[:1]] = "untested"
            continue
        overlapping = rivals[~(rivals["gap_ci_low"] > 1)]
        if overlapping.empty:
            marks.loc[ranked.index[:1]] = "yes"
        else:
            marks.loc[ranked.index[:1].append(overlapping.index)] = "tie"
    return marks


def break_even(frame: pd.DataFrame) -> pd.DataFrame:
    """For each compiled variant, the epoch count from which its total time (compile +
    fixed + E × marginal) is below that of the fastest uncompiled variant of the same
    machine and problem (by per-epoch median): 0 when it is never behind, inf when its
    marginal cost is not lower, NaN without a cost model."""
    out = pd.DataFrame({"epochs": np.nan, "vs": None}, index=frame.index)
    costed = frame[frame["marginal_epoch_s"].notna() & frame["compile_s"].notna()]
    for _, group in costed.groupby(CASE_KEYS):
        plain = group[~group["variant"].isin(COMPILED)]
        if plain.empty:
            continue
        ref = plain.sort_values("per_epoch_median_s", kind="stable").iloc[0]
        for i, row in group[group["variant"].isin(COMPILED)].iterrows():
            extra = row["compile_s"] + row["fixed_s"] - ref["compile_s"] - ref["fixed_s"]
            saving = ref["marginal_epoch_s"] - row["marginal_epoch_s"]
            if saving <= 0:
                epochs = 0.0 if extra <= 0 else np.inf
            else:
                epochs = max(0.0, float(np.ceil(extra / saving)))
            out.at[i, "epochs"] = epochs
            out.at[i, "vs"] = f"{ref['variant']}@{ref['device']}"
    return out


def gap_intervals(frame: pd.DataFrame, rounds: pd.Series) -> pd.DataFrame:
    """The 95% interval of each row's gap to the fastest median of its machine and
    problem (among the :func:`contenders`); the fastest row's own is 1."""

    def fastest(group: pd.DataFrame) -> Any:
        timed = group[group["per_epoch_median_s"].notna() & contenders(group)]
        return (
            timed.sort_values("per_epoch_median_s", kind="stable").index[0] if len(timed) else None
        )

    return ratio_intervals(frame, rounds, fastest, row_over_reference=True, own=(1.0, 1.0))


def gaps(frame: pd.DataFrame) -> pd.Series:
    """Each row's median over the fastest agreeing median on its machine and problem
    (among the :func:`contenders`)."""
    if frame.empty:
        return pd.Series(dtype=float)
    cost = frame["per_epoch_median_s"].where(contenders(frame))
    fastest = cost.groupby([frame[k] for k in CASE_KEYS]).transform("min")
    return frame["per_epoch_median_s"] / fastest


def speedups(frame: pd.DataFrame) -> pd.Series:
    """numpy-manual's median over each row's median, on the same machine and problem.

    Grouping by machine means a ratio never divides one machine's time by another's.
    """
    if frame.empty:
        return pd.Series(dtype=float)
    base = frame[frame["variant"] == BASELINE].set_index(CASE_KEYS)["per_epoch_median_s"]
    base = base[~base.index.duplicated(keep="last")]
    keys = pd.MultiIndex.from_frame(frame[CASE_KEYS])
    baseline = base.reindex(keys).to_numpy(dtype=float)
    return pd.Series(
        baseline / frame["per_epoch_median_s"].to_numpy(dtype=float), index=frame.index
    )


SCALING_COLUMNS = [
    "machine", "problem", "n_samples", "n_features", "dtype", "device", "variant", "ranks",
    "per_epoch_median_s", "speedup", "speedup_ci_low", "speedup_ci_high", "efficiency",
    "rank_max_epoch_s", "rank_min_epoch_s", "collective_epoch_s", "collective_share",
]  # fmt: skip


def scaling(frames: Frames) -> pd.DataFrame:
    """Each data-parallel case against the same variant at K = 1 (same machine, problem,
    dtype, device): speedup T(1)/T(K) with its 95% interval, efficiency T(1)/(K·T(K)),
    and the share of an epoch the slowest rank spent in the collective (where measured).
    Empty without data-parallel rows."""
    results = frames.results
    if "parallel_variant" not in results or results["parallel_variant"].isna().all():
        return pd.DataFrame(columns=SCALING_COLUMNS)
    rows = []
    keys = ["machine", "problem", "dtype", "device", "parallel_variant"]
    for _, group in results[results["parallel_variant"].notna()].groupby(keys, sort=False):
        base = group[group["ranks"] == 1]
        t1 = base["per_epoch_median_s"].iloc[0] if len(base) else np.nan
        for i, row in group.sort_values("ranks").iterrows():
            k, tk = int(row["ranks"]), row["per_epoch_median_s"]
            low = high = np.nan
            if len(base) and np.isfinite(t1) and np.isfinite(tk):
                rounds_1, rounds_k = frames.rounds.get(base.index[0]), frames.rounds.get(i)
                if rounds_1 and rounds_k:
                    low, high = ratio_interval(rounds_1, rounds_k)
            speedup = t1 / tk if np.isfinite(tk) and tk > 0 else np.nan
            rows.append({
                **{c: row[c] for c in ("machine", "problem", "n_samples", "n_features",
                                       "dtype", "device")},
                "variant": row["parallel_variant"], "ranks": k,
                "per_epoch_median_s": tk, "speedup": speedup,
                "speedup_ci_low": low, "speedup_ci_high": high, "efficiency": speedup / k,
                "rank_max_epoch_s": row["rank_max_epoch_s"],
                "rank_min_epoch_s": row["rank_min_epoch_s"],
                "collective_epoch_s": row["collective_epoch_s"],
                "collective_share": row["collective_epoch_s"] / row["rank_max_epoch_s"],
            })  # fmt: skip
    return pd.DataFrame(rows, columns=SCALING_COLUMNS)


PAIRED_KEYS = ["machine", "problem", "dtype", "n_samples", "n_features", "epochs"]


def paired_frame(contests: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per contender of each problem settled by alternating rounds: its time over
    the winner's, the interval of that ratio from the pairs of neighbouring rounds
    (reports/stats.py) and what it says (``slower``, ``equivalent``, ``undecided``; the
    winner's own row says ``fastest``). The winner is the leader (the planned rounds'
    fastest, which every contender was timed against) unless a contender's own pairs
    with the leader show it decidedly faster."""
    rows = []
    for contest in contests:
        rounds = {k: v for k, v in (contest.get("rounds") or {}).items() if v}
        leader = contest.get("leader") or next(iter(rounds), None)
        if len(rounds) < 2 or leader not in rounds:
            continue  # the workers did not start: the planned rounds stand
        against_leader = {
            label: paired_ratio(times, rounds[leader])
            for label, times in rounds.items()
            if label != leader
        }
        faster = [k for k, v in against_leader.items() if v.outcome == FASTER]
        winner = min(faster, key=lambda k: against_leader[k].ratio) if faster else leader
        for label, times in rounds.items():
            variant, _, device = label.rpartition("@")
            row = {k: contest.get(k) for k in (*PAIRED_KEYS, "stop", "budget_s", "spent_s")}
            row |= {"variant": variant, "device": device, "versus": winner}
            if label == winner:
                row |= {"ratio": 1.0, "ratio_ci_low": 1.0, "ratio_ci_high": 1.0,
                        "pairs": len(times), "outcome": "fastest"}  # fmt: skip
                rows.append(row)
                continue
            # against the leader: the pairs the rule decided on; against another winner:
            # the cycles both took part in
            verdict = (
                against_leader[label] if winner == leader else paired_ratio(times, rounds[winner])
            )
            row |= {"ratio": verdict.ratio, "ratio_ci_low": verdict.low,
                    "ratio_ci_high": verdict.high, "pairs": verdict.pairs,
                    "outcome": verdict.outcome}  # fmt: skip
            rows.append(row)
    return pd.DataFrame(rows, columns=PAIRED_COLUMNS)


def settle(frame: pd.DataFrame, rounds: pd.Series, paired: pd.DataFrame) -> None:
    """Where alternating rounds were taken, they decide: a contender's gap to the fastest
    is its paired ratio to the winner, with that interval; every other row of the problem
    is measured against the winner; and the winner is marked ``yes`` only when every
    other contender is decidedly slower and no row outside the contest still ties with
    it, else it and those rows ``tie``."""
    if paired.empty or frame.empty:
        return
    labels = frame["variant"] + "@" + frame["device"]
    for keys, duel in paired.groupby(PAIRED_KEYS):
        in_problem = pd.Series(True, index=frame.index)
        for key, value in zip(PAIRED_KEYS, keys, strict=True):
            in_problem &= frame[key] == value
        winner = frame.index[in_problem & (labels == duel["versus"].iloc[0])]
        if winner.empty:
            continue
        w = winner[0]
        for _, row in duel.iterrows():
            i = frame.index[in_problem & (labels == f"{row['variant']}@{row['device']}")]
            if i.empty:
                continue
            frame.loc[i, ["gap_to_fastest", "gap_ci_low", "gap_ci_high"]] = (
                row["ratio"], row["ratio_ci_low"], row["ratio_ci_high"])  # fmt: skip
            frame.loc[i, "fastest"] = "" if row["outcome"] == SLOWER else "tie"
        duelled = set(duel["variant"] + "@" + duel["device"])
        for i in frame.index[in_problem & ~labels.isin(duelled)]:
            mine, best = float(frame.at[i, PER_EPOCH]), float(frame.at[w, PER_EPOCH])  # type: ignore[arg-type]
            frame.at[i, "gap_to_fastest"] = mine / best
            if rounds[i] and rounds[w]:
                low, high = ratio_interval(rounds[i], rounds[w])
                frame.at[i, "gap_ci_low"], frame.at[i, "gap_ci_high"] = low, high
            if frame.at[i, "fastest"] in ("yes", "tie"):  # still within reach of the winner?
                beaten = float(frame.at[i, "gap_ci_low"]) > 1  # type: ignore[arg-type]
                frame.at[i, "fastest"] = "" if beaten else "tie"
        others = frame.loc[in_problem & (frame.index != w), "fastest"]
        frame.at[w, "fastest"] = "tie" if (others == "tie").any() else "yes"


TRAJECTORY_KEYS = ["machine", "problem", "variant", "device", "dtype"]


def excess_losses(trajectories: pd.DataFrame) -> pd.DataFrame:
    """Each trajectory's excess loss over the least-squares optimum as a share of the
    initial excess (the reference's first loss over the optimum's): ``epoch`` (1-based:
    the epoch that computed the loss) and ``excess``, by TRAJECTORY_KEYS."""
    columns = [*TRAJECTORY_KEYS, "epoch", "excess"]
    if trajectories.empty or "optimum_loss" not in trajectories:
        return pd.DataFrame(columns=columns)
    traj = trajectories[trajectories["optimum_loss"].notna()]
    first = traj.sort_values("epoch").groupby(TRAJECTORY_KEYS)["ref_loss"].transform("first")
    initial = first - traj["optimum_loss"]
    out = traj[[*TRAJECTORY_KEYS, "epoch"]].copy()
    out["excess"] = (traj["loss"] - traj["optimum_loss"]) / initial.where(initial > 0)
    return out[columns]


def target_epochs(trajectories: pd.DataFrame, target: float) -> pd.Series:
    """The first epoch whose excess loss is at most ``target`` of the initial excess, per
    trajectory (indexed by TRAJECTORY_KEYS); NaN where no epoch reaches it."""
    excess = excess_losses(trajectories)
    if excess.empty:
        return pd.Series(dtype=float)
    reached = excess[excess["excess"] <= target]
    first = reached.groupby(TRAJECTORY_KEYS)["epoch"].min()
    keys = excess.groupby(TRAJECTORY_KEYS).size().index
    return first.reindex(keys).astype(float)


def seconds_to_epoch(rows: pd.DataFrame, epochs: pd.Series) -> pd.Series:
    """The wall time from the start to the end of ``epochs`` epochs, by the cost model of
    each row: compile + fixed + epochs × marginal, a fixed cost fitted below zero taken as
    zero (noise around zero)."""
    fixed = rows["fixed_s"].clip(lower=0)
    return rows["compile_s"] + fixed + epochs * rows["marginal_epoch_s"]


def time_to_target(frame: pd.DataFrame, trajectories: pd.DataFrame, target: float) -> pd.DataFrame:
    """Per results row: the first epoch of its own convergence run under the target, and
    the wall time to reach it, compile + fixed + epochs × marginal (the cost model of the
    same row, a fixed cost fitted below zero taken as zero); NaN where the target is not
    reached or the row has no cost model."""
    out = pd.DataFrame(np.nan, index=frame.index, columns=["epoch", "seconds"])
    epochs = target_epochs(trajectories, target)
    if frame.empty or epochs.empty:
        return out
    keys = pd.MultiIndex.from_frame(frame[TRAJECTORY_KEYS].astype(object))
    found = epochs.reindex(keys).to_numpy(dtype=float)
    out["epoch"] = found
    valid = frame["status"].eq("agree").to_numpy()
    out.loc[~valid, "epoch"] = np.nan
    out["seconds"] = seconds_to_epoch(frame, out["epoch"])
    return out


GROUP_ORDER = ("core", "single-pass", "data-parallel")


def groups(frame: pd.DataFrame) -> pd.Series:
    """Each row's variant group, from what its record says of it: ``data-parallel``
    (a K), ``single-pass`` (rows per block), else ``core``."""
    out = pd.Series("core", index=frame.index, dtype=object)
    if "block_rows" in frame:
        out[frame["block_rows"].notna()] = "single-pass"
    if "parallel_variant" in frame:
        out[frame["parallel_variant"].notna()] = "data-parallel"
    return out
