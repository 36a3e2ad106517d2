"""Write results.csv, trajectories.csv, report.md, epoch_cost.png and convergence.png.

Every number comes from :class:`reports.frame.Frames`; formatting happens here only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from reports.frame import (
    GROUP_ORDER,
    PER_EPOCH,
    Frames,
    Machine,
    contenders,
    excess_losses,
    groups,
    scaling,
)
from reports.plots import (
    plot_convergence,
    plot_epoch_cost,
    plot_scaling,
    plot_time_to_accuracy,
)
from reports.stats import LOOK_LEVEL


def human_time(seconds: float) -> str:
    """``1.23 µs``-style: three significant digits in ns, µs, ms or s."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if abs(seconds) >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def problem_label(problem: str, n_samples: int, n_features: int) -> str:
    if problem.startswith("synthetic"):
        return f"synthetic {int(n_samples):,}×{int(n_features)}"
    return f"{problem} ({int(n_samples)}×{int(n_features)})"


def _ordered(frame: pd.DataFrame) -> pd.DataFrame:
    """Presets first in their own order, then the sweep by size."""
    synthetic = frame["problem"].str.startswith("synthetic")
    return (
        frame.assign(_syn=synthetic)
        .sort_values(["_syn", "n_samples"], kind="stable")
        .drop(columns="_syn")
    )


def _backend_column(frame: pd.DataFrame) -> pd.Series:
    return frame["variant"] + "@" + frame["device"]


MAX_PROBLEM_COLUMNS = 8  # a table wider than this is split into several


def pivot(frame: pd.DataFrame, cell: pd.Series) -> pd.DataFrame:
    """Rows: variant@device, by group (core, single-pass, data-parallel) in run order;
    columns: problem and size, presets first, then the sweep by size."""
    ordered = _ordered(frame)
    table = pd.DataFrame(
        {
            "problem": [
                problem_label(p, n, d)
                for p, n, d in zip(
                    ordered["problem"], ordered["n_samples"], ordered["n_features"], strict=True
                )
            ],
            "backend": _backend_column(ordered).to_numpy(),
            "cell": cell.loc[ordered.index].to_numpy(),
        }
    )
    out = table.pivot(index="backend", columns="problem", values="cell")
    kinds = groups(frame)
    rank = {g: i for i, g in enumerate(GROUP_ORDER)}
    backends = _backend_column(frame)
    rows = sorted(dict.fromkeys(backends), key=lambda b: rank[kinds[backends == b].iloc[0]])
    cols = list(dict.fromkeys(table["problem"]))
    return out.reindex(index=rows, columns=cols).fillna("–")


def interval_text(low: float, high: float, fmt=human_time) -> str:  # noqa: ANN001
    """``[low, high]``, or "" when the interval is unknown."""
    if pd.isna(low) or pd.isna(high):
        return ""
    return f" [{fmt(low)}, {fmt(high)}]"


def cost_cells(frame: pd.DataFrame) -> pd.Series:
    """``median [95% interval]`` per agreeing row (``median ± IQR`` where no rounds were
    saved). The fastest is bold only when its interval clears every other row's
    (``fastest == "yes"``); rows that cannot be told apart from it are marked ``≈``."""
    cells = []
    for _, r in frame.iterrows():
        if r["status"] != "agree":
            cells.append(r["status"])
            continue
        interval = interval_text(r["per_epoch_ci_low_s"], r["per_epoch_ci_high_s"])
        if r["fastest"] == "yes":
            cells.append(f"**{human_time(r[PER_EPOCH])}**{interval}")
        elif r["fastest"] == "tie":
            cells.append(f"≈ {human_time(r[PER_EPOCH])}{interval}")
        elif r["fastest"] == "untested":  # no rounds saved: fastest median, not tested
            cells.append(f"{human_time(r[PER_EPOCH])} ± {human_time(r['per_epoch_iqr_s'])} †")
        elif interval:
            cells.append(f"{human_time(r[PER_EPOCH])}{interval}")
        else:
            cells.append(f"{human_time(r[PER_EPOCH])} ± {human_time(r['per_epoch_iqr_s'])}")
    return pd.Series(cells, index=frame.index, dtype=object)


def row_cells(frame: pd.DataFrame, column: str, text: Callable[[pd.Series], str]) -> pd.Series:
    """``text(row)`` for every row, ``–`` where the row has no ``column``."""
    return frame.apply(lambda r: "–" if pd.isna(r[column]) else text(r), axis=1)


def _ci(value: float) -> str:
    """An end of a ratio's interval."""
    return f"{value:.3g}"


def _ratio(value: float) -> str:
    return f"{value:.2f}×" if value < 100 else f"{value:.0f}×"


def speedup_cells(frame: pd.DataFrame) -> pd.Series:
    """``2.31× [2.20, 2.45]``: the speedup over numpy-manual and its 95% interval."""
    return row_cells(frame, "speedup_vs_numpy", lambda r: _ratio(r["speedup_vs_numpy"])
                     + interval_text(r["speedup_ci_low"], r["speedup_ci_high"], _ci))  # fmt: skip


def markdown_table(table: pd.DataFrame, index_name: str = "variant") -> str:
    """A table of variants by problems as Markdown, split into tables of at most
    MAX_PROBLEM_COLUMNS problems each."""
    named = table.rename_axis(index=index_name, columns=None)
    chunks = [
        named.iloc[:, i : i + MAX_PROBLEM_COLUMNS]
        for i in range(0, max(1, named.shape[1]), MAX_PROBLEM_COLUMNS)
    ]
    return "\n\n".join(chunk.to_markdown() for chunk in chunks)


def _jax_exception(info: dict) -> str:
    """`` (jax: …)`` when jax could not be given the same thread count as the others."""
    jax_threads = info.get("jax_threads")
    if jax_threads is None or jax_threads == str(info.get("threads")):
        return ""
    return f" (jax: {jax_threads})"


def _precision(frames: Frames, key: str) -> list[str]:
    """How float32 products were computed in this machine's runs (older runs: unknown)."""
    values: set[str] = set()
    for frame in (frames.results, frames.convergence):
        values |= set(frame.loc[frame["machine"] == key, "matmul_precision"].dropna())
    if not values:
        return []
    how = (
        "TF32 inputs on tensor cores where the GPU has them, judged with the TF32 tolerance"
        if "tf32" in values
        else "full float32 in every framework"
    )
    return [f"- **Matmul precision:** {', '.join(sorted(values))} ({how})"]


def _block_rows(frames: Frames, machine: Machine) -> list[str]:
    """The block sizes of the single-pass variants of this machine's runs, and where
    they came from (the L2 cache as read from the OS, or --block-rows): the sizes the
    workers recorded, and the option as the run's header recorded it."""
    parts = [f[f["machine"] == machine.key] for f in (frames.results, frames.convergence)]
    found = [p[["n_features", "dtype", "block_rows"]] for p in parts
             if "block_rows" in p and not p.empty]  # fmt: skip
    if not found:
        return []
    rows = pd.concat(found).dropna(subset=["block_rows"]).drop_duplicates()
    if rows.empty:
        return []
    cache = machine.info.get("l2_cache") or {}
    l2 = cache.get("l2_bytes")
    how = " (set by --block-rows)" if machine.info.get("block_rows_option") else ""

    def text(r: pd.Series) -> str:
        rows, d = int(r["block_rows"]), int(r["n_features"])
        item = 8 if r["dtype"] == "float64" else 4
        return (f"{rows:,} rows at {d} {r['dtype']} feature{'s' if d != 1 else ''} "
                f"({_kib(rows * d * item)} of X){how}")  # fmt: skip

    sizes = "; ".join(text(r) for _, r in rows.sort_values(["dtype", "n_features"]).iterrows())
    rule = (
        f"chosen as the most rows (a power of two) whose block of X fits in half the "
        f"{_kib(int(l2))} L2 cache of a core ({cache.get('source', '?')})"
        if l2
        else "the L2 cache was not recorded"
    )
    return [f"- **Blocks of the single-pass variants (`*-blocked`):** {sizes}; {rule}"]


def _kib(n: int) -> str:
    """Binary units, as caches are sized: ``512 KiB``, ``2 MiB``."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{n} B"


def _environment(machine: Machine) -> list[str]:
    info = machine.info
    versions = info.get("versions", {})
    gpu = info.get("gpu")
    lines = [
        f"- **Machine:** {machine.host}",
        f"- **CPU:** {machine.cpu}, {info.get('cpu_count', '?')} cores; "
        f"**threads:** {info.get('threads', '?')} per framework{_jax_exception(info)}",
        "- **Versions:** " + ", ".join(f"{k} {v}" for k, v in versions.items() if v),
        f"- **GPU:** {gpu_text(gpu)}",
    ]
    isolation = info.get("isolation")
    if isolation:
        lines.append(f"- **Isolation:** {isolation_text(isolation)}")
    if info.get("affinity"):
        lines.append(f"- **CPU affinity of the workers:** cores {_cores(info['affinity'])}")
    if machine.datetime:
        lines.append(
            f"- **Run:** {machine.datetime}"
            + (
                f", commit {machine.commit[:10]}"
                if machine.commit not in (None, "unversioned")
                else ""
            )
        )
    return lines


def gpu_text(gpu: dict | None) -> str:
    """The GPU in words, with what is known of it: ``NVIDIA H100 80GB HBM3 (compute
    capability 9.0, 79.6 GiB; driver 550.54.15, CUDA 12.8, cuDNN 91002, jax-cuda12-plugin
    0.10.2)``."""
    if not gpu or not gpu.get("name"):
        return "none"
    hardware = {"compute_capability": "compute capability {}", "memory_gib": "{} GiB"}
    software = {"driver": "driver {}", "cuda": "CUDA {}", "cudnn": "cuDNN {}",
                "jax_cuda_plugin": "{}"}  # fmt: skip
    parts = [
        ", ".join(fmt.format(gpu[k]) for k, fmt in labels.items() if gpu.get(k) is not None)
        for labels in (hardware, software)
    ]
    details = "; ".join(part for part in parts if part)
    return f"{gpu['name']} ({details})" if details else str(gpu["name"])


def isolation_text(isolation: dict) -> str:
    """How a run was split into worker processes, in words."""
    mode = str(isolation.get("isolate"))
    what = {
        "variant": "a fresh worker process per variant and device",
        "framework": "a fresh worker process per framework and device",
        "none": "everything in one worker process",
    }.get(mode, f"--isolate {mode}")
    text = f"{what} (`--isolate {mode}`, {isolation.get('workers', '?')} workers)"
    processes = isolation.get("processes") or 1
    if processes > 1:
        text += f"; each variant timed in {processes} processes, rounds pooled"
    if isolation.get("timeout_s"):
        text += f"; a worker is stopped after {isolation['timeout_s']:g} s"
    return text


def _cores(cores: list[int]) -> str:
    return ", ".join(str(c) for c in cores)


def human_bytes(n: float | None) -> str:
    """``68.1 MB``-style, decimal units."""
    if n is None or pd.isna(n):
        return "–"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} B"


INTRO = (
    "Linear regression by full-batch gradient descent on the MSE. Every variant gets the "
    "same data, initial parameters and dtype, and its loss at every epoch is checked "
    "against a float64 run of the same recurrence. Times are per epoch: the median of "
    "the timed rounds (each a whole training run) over the epochs, with its 95% interval "
    "in brackets. A variant is called fastest only when every other's time over it is "
    "above 1 by its whole interval; **≈** marks variants that cannot be told apart from "
    "the fastest here. Where the planned rounds left it open, the contenders were timed "
    "again in alternating rounds until one was ahead or the budget was spent "
    "(`docs/methodology.md` explains how)."
)


def markdown_report(frames: Frames, *, timing: bool = True) -> str:
    """The whole report.md, top-down: the answer, the pictures, then the details;
    ``timing=False`` writes only its convergence part."""
    out = ["# gdbench report", ""]
    if frames.partial:
        out += [
            "> **Partial report:** the run was interrupted; only the cases that finished "
            "are shown.",
            "",
        ]
    out += [INTRO, ""]
    several = len(frames.machines) > 1
    level = "###" if several else "##"
    for machine in frames.machines:
        if several:
            out += [f"## Summary: {machine.key}", ""]
        else:
            out += ["## Summary", ""]
        out += summary_lines(frames, machine.key, timing) + [""]
    out += ["## Figures", ""] + figure_lines(frames, timing) + [""]
    for machine in frames.machines:
        if several:
            out += [f"## Details: {machine.key}", ""]
        out += _machine_sections(frames, machine.key, level, timing)
        out += [f"{level} Environment", ""]
        out += _environment(machine) + _precision(frames, machine.key)
        out += _block_rows(frames, machine) + [""]
    return "\n".join(out).rstrip() + "\n"


FIGURES = (
    ("epoch_cost.png", "Per-epoch cost by variant, against problem size where there is a "
     "sweep", True),
    ("time_to_accuracy.png", "Time to accuracy: excess loss against seconds, compile "
     "included", True),
    ("scaling.png", "Data-parallel scaling over K", True),
    ("convergence.png", "Loss per epoch against the float64 reference", False),
)  # fmt: skip


def figure_lines(frames: Frames, timing: bool) -> list[str]:
    """An embedded link to every PNG the report writes beside it."""
    out = []
    for name, title, timed in FIGURES:
        if timed and not timing:
            continue
        if name == "scaling.png" and scaling(frames).empty:
            continue
        out += [f"**{title}** ([{name}]({name})):", "", f"![{title}]({name})", ""]
    return out


def summary_lines(frames: Frames, key: str, timing: bool = True) -> list[str]:
    """The answer first: does everything agree, then one row per problem (fastest,
    runner-up and by how much, the best of each framework, the first to the target
    accuracy), then what the table cannot say (ties, wide intervals)."""
    out = [*_data_lines(frames, key), _convergence_line(frames, key)]
    results = frames.results[frames.results["machine"] == key]
    if not timing or results.empty:
        return out
    table = summary_table(frames, key, frameworks=True)
    out += ["", table.to_markdown(index=False), ""]
    out += _summary_notes(frames, key)
    return out


def _data_lines(frames: Frames, key: str) -> list[str]:
    """What each data file of the run is, as a problem (``--data``)."""
    out = []
    for d in (d for d in frames.data_files if d["machine"] == key):
        target = f", target column `{d['target']}`" if d.get("target") else ""
        scaled = ("features standardized (zero mean, unit variance)" if d.get("standardized")
                  else "features as they are (not standardized)")  # fmt: skip
        line = (f"- **Data:** problem `{d['name']}` is `{d['source']}`: {d['rows']:,} rows × "
                f"{d['columns']:,} features{target}; {scaled}.")  # fmt: skip
        if d.get("underdetermined"):
            line += (" Fewer rows than parameters: the least-squares optimum is not unique; "
                     "the reference is the one of least norm (`np.linalg.lstsq`), which "
                     "gradient descent from zero parameters also approaches.")  # fmt: skip
        out.append(line)
    return out


def _problems(results: pd.DataFrame) -> Iterator[tuple[str, pd.Series, pd.DataFrame]]:
    """Each problem of the results in the report's order: its dtype, first row, rows."""
    for (dtype, _, _, _), part in _ordered(results).groupby(
        ["dtype", "problem", "n_samples", "n_features"], sort=False
    ):
        yield str(dtype), part.iloc[0], part


def _ranked(part: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """A problem's timed contenders, fastest first (by their time over the fastest, which
    alternating rounds may have settled, then by median), and whether its only timed
    rows are K = 1 of data-parallel variants (their scaling baselines, never contenders)."""
    timed = part[part[PER_EPOCH].notna()]
    ranked = timed[contenders(timed)]
    if "gap_to_fastest" in ranked:
        # the row every gap is measured against first (its own gap exactly 1 [1, 1]):
        # an undecided contender may have a median ratio just below 1 and is not ahead
        reference = ranked["gap_to_fastest"].eq(1.0)
        if "gap_ci_low" in ranked:
            reference &= ranked["gap_ci_low"].eq(1.0) & ranked["gap_ci_high"].eq(1.0)
        ranked = (
            ranked.assign(_ref=~reference)
            .sort_values(["_ref", "gap_to_fastest", PER_EPOCH], kind="stable")
            .drop(columns="_ref")
        )
    else:
        ranked = ranked.sort_values(PER_EPOCH, kind="stable")
    return ranked, ranked.empty and not timed.empty


def _convergence_line(frames: Frames, key: str) -> str:
    conv = frames.convergence[frames.convergence["machine"] == key]
    failures = frames.failures[frames.failures["machine"] == key]
    failed = (
        f" {len(failures)} case{'s' * (len(failures) != 1)} failed (see Failures)."
        if not failures.empty
        else ""
    )
    if conv.empty:
        return "- **Convergence:** not checked in this run." + failed
    agree = conv[conv["status"] == "agree"]
    if len(agree) == len(conv):
        return (
            f"- **Convergence:** all {len(conv)} runs agree with the float64 reference "
            f"(largest relative loss deviation {_sci(agree['max_loss_dev'].max())})." + failed
        )
    return (
        f"- **Convergence:** {len(agree)} of {len(conv)} runs agree with the float64 "
        f"reference; {len(conv) - len(agree)} do not (see Convergence)." + failed
    )


def _name(r: pd.Series, several: bool) -> str:
    return f"{r['variant']}@{r['device']}" if several else str(r["variant"])


def _pct(value: float) -> str:
    return f"{100 * (value - 1):+.1f}%".replace("-", "−")


def _summary_notes(frames: Frames, key: str) -> list[str]:
    """What the summary table cannot say: which variants are not distinguishable and by
    how little they differ, which intervals are too wide to act on and why, and which
    problems no variant brought to the target accuracy."""
    results = frames.results[frames.results["machine"] == key]
    several = results["device"].nunique() > 1
    paired = frames.paired[frames.paired["machine"] == key] if not frames.paired.empty else None
    notes = []
    for _, first, part in _problems(results):
        label = problem_label(first["problem"], first["n_samples"], first["n_features"])
        ranked, _ = _ranked(part)
        tied = ranked[ranked["fastest"] == "tie"]
        if len(tied) > 1:
            best = tied.iloc[0]
            for _, other in tied.iloc[1:].iterrows():
                how = "from the planned rounds"
                if paired is not None:
                    same = pd.Series(True, index=paired.index)
                    for key in ("problem", "dtype", "n_samples", "n_features", "epochs"):
                        same &= paired[key] == first[key]
                    mine = paired[same & (paired["variant"] == other["variant"])
                                  & (paired["device"] == other["device"])]  # fmt: skip
                    if not mine.empty:
                        how = (
                            f"{int(mine['pairs'].iloc[0])} alternating pairs of rounds; "
                            f"a {100 * LOOK_LEVEL:.1f}% interval, as the rule looked "
                            "several times"
                        )
                notes.append(
                    f"- **{label}**: {_name(best, several)} and {_name(other, several)} "
                    f"within {abs(100 * (other['gap_to_fastest'] - 1)):.1f}% "
                    f"[{_pct(other['gap_ci_low'])}, {_pct(other['gap_ci_high'])}]: not "
                    f"distinguishable here ({how})."
                )
        wide = part[part["per_epoch_ci_high_s"] > 2 * part["per_epoch_ci_low_s"]]
        runner = ranked.iloc[1:2]
        wide = pd.concat([wide, runner[runner["gap_ci_high"] > 2 * runner["gap_ci_low"]]])
        for _, row in wide.drop_duplicates(["variant", "device"]).iterrows():
            notes.append(
                f"- **{label}**: the interval of {_name(row, several)} spans more than a "
                f"factor of 2: {int(row['rounds'])} rounds were too few to say more (a "
                "longer run, or a larger --budget, takes more)."
            )
    return notes


def _not_reached(frames: Frames, part: pd.DataFrame) -> str:
    """Why a problem has no time to accuracy."""
    first = part.iloc[0]
    target = first["target"]
    traj = frames.trajectories
    if traj.empty or "optimum_loss" not in traj or traj["optimum_loss"].isna().all():
        return "no time to accuracy: the run recorded no optimum (an older gdbench)."
    excess = excess_losses(traj)
    mine = excess[(excess["problem"] == first["problem"]) & (excess["dtype"] == first["dtype"])
                  & (excess["machine"] == first["machine"])]  # fmt: skip
    last = mine[mine["epoch"] == mine["epoch"].max()]["excess"]
    reached = f"{last.min():.1e}" if not last.empty else "–"
    return (
        f"no variant reaches the target ({target:g} of the initial excess loss) within its "
        f"{int(first['epochs'])} epochs (the best at the last epoch: {reached}); more "
        "epochs (--epochs) may, unless the dtype's rounding stops the loss first."
    )


def _machine_sections(frames: Frames, key: str, level: str, timing: bool) -> list[str]:
    results = frames.results[frames.results["machine"] == key]
    out: list[str] = []
    if timing and not results.empty:
        for dtype, part in results.groupby("dtype", sort=False):
            out += _time_to_accuracy(frames, part, level, f" ({dtype})")
    out += _convergence(frames, key, level)
    failures = frames.failures[frames.failures["machine"] == key]
    if not failures.empty:
        table = pd.DataFrame({
            "case": [f"{r['variant']}@{r['device']} on {r['problem']}"
                     for _, r in failures.iterrows()],
            "in": failures["kind"].to_numpy(),
            "message": failures["message"].to_numpy(),
        })  # fmt: skip
        out += [f"{level} Failures", "", table.to_markdown(index=False), ""]
    unavailable = frames.unavailable[frames.unavailable["machine"] == key]
    not_split = frames.not_split[frames.not_split["machine"] == key]
    if not unavailable.empty or not not_split.empty:
        out += [f"{level} Not run here", ""]
    if not unavailable.empty:
        out += [unavailable[["variant", "device", "reason"]].to_markdown(index=False), ""]
    if not not_split.empty:
        rows = not_split.groupby(["problem", "n_samples", "reason"], sort=False)["variant"]
        table = pd.DataFrame(
            [
                {"problem": problem, "variants": ", ".join(dict.fromkeys(variants)), "why": reason}
                for (problem, _, reason), variants in rows
            ],  # fmt: skip
        )
        out += ["Data-parallel cases of problems too small to split:", "",
                table.to_markdown(index=False), ""]  # fmt: skip
    if not timing or results.empty:
        return out
    for dtype, part in results.groupby("dtype", sort=False):
        suffix = f" ({dtype})"
        out += [f"{level} Per-epoch cost{suffix}: median [95% interval]", ""]
        out += [markdown_table(pivot(part, cost_cells(part))), ""]
        gap = row_cells(part, "gap_to_fastest", lambda r: _gap_text(r))
        out += [f"{level} Time over the fastest{suffix}: per-epoch cost over the problem's "
                "fastest [95% interval]", ""]  # fmt: skip
        out += [markdown_table(pivot(part, gap)), ""]
        out += _cost_model(part, level, suffix)
        compile_cells = part["compile_s"].map(human_time)
        out += [f"{level} Compile and first-call time{suffix}: kept out of the timings", ""]
        out += [markdown_table(pivot(part, compile_cells)), ""]
        out += _process_spread(part, level, suffix)
        out += _memory(part, level, suffix)
        out += _limits(frames, key, part, level, suffix)
        out += _scaling(frames, key, str(dtype), level, suffix)
        out += _timing_method(part, level, suffix)
    return out


def _time_to_accuracy(frames: Frames, part: pd.DataFrame, level: str, suffix: str) -> list[str]:
    """Per variant and problem: the wall time to the target accuracy, compile included,
    and the epoch that reaches it."""
    target = part["target"].iloc[0]

    traced = excess_losses(frames.trajectories)
    measured = set(map(tuple, traced[["machine", "problem", "variant", "device", "dtype"]]
                       .drop_duplicates().to_numpy()))  # fmt: skip

    def cell(r: pd.Series) -> str:
        if pd.isna(r["target_epoch"]):
            if r["status"] != "agree":
                return r["status"]
            key = (r["machine"], r["problem"], r["variant"], r["device"], r["dtype"])
            return "not reached" if key in measured else "–"
        if pd.isna(r["time_to_target_s"]):
            return f"epoch {int(r['target_epoch'])} (no cost model)"
        return f"{human_time(r['time_to_target_s'])} (epoch {int(r['target_epoch'])})"

    out = [
        f"{level} Time to accuracy{suffix}: to {target:g} of the initial excess loss",
        "",
        "The wall-clock time until a variant's loss is within the target of the "
        "least-squares optimum's, as a share of the distance it started from: compile + "
        "fixed cost + epochs × marginal cost (the cost model below), with the epoch of its "
        "own convergence run that first gets there. A compiled variant pays its compile "
        "time here, which the per-epoch cost leaves out.",
        "",
        markdown_table(pivot(part, part.apply(cell, axis=1))),
        "",
    ]
    missing = [
        f"- **{problem_label(first['problem'], first['n_samples'], first['n_features'])}**: "
        + _not_reached(frames, rows)
        for _, first, rows in _problems(part)
        if rows["target_epoch"].notna().sum() == 0 and rows["status"].eq("agree").any()
    ]
    return out + (missing + [""] if missing else [])


def _convergence(frames: Frames, key: str, level: str) -> list[str]:
    """One line when everything agrees, with the largest deviation of each variant; the
    disagreements, one row each, otherwise."""
    conv = frames.convergence[frames.convergence["machine"] == key]
    if conv.empty:
        return []
    out = [f"{level} Convergence: does every variant follow the float64 reference?", ""]
    bad = conv[conv["status"] != "agree"]
    agree = len(conv) - len(bad)
    out += [
        f"{agree} of {len(conv)} runs agree with the float64 reference at every epoch "
        "(relative loss deviation within 1e-3 in float32, 2e-2 with TF32 products, 1e-9 "
        "in float64). The largest deviations of each variant, over its problems:",
        "",
    ]
    worst = (
        conv.assign(backend=_backend_column(conv))
        .groupby("backend", sort=False)
        .agg(
            runs=("status", "size"),
            loss=("max_loss_dev", "max"),
            parameters=("param_dev", "max"),
        )
    )
    worst["loss"] = worst["loss"].map(_sci)
    worst["parameters"] = worst["parameters"].map(_sci)
    out += [worst.rename_axis("variant").to_markdown(), ""]
    if not bad.empty:
        table = _ordered(bad).assign(
            problem=lambda f: [
                problem_label(p, n, d)
                for p, n, d in zip(f["problem"], f["n_samples"], f["n_features"], strict=True)
            ],
            variant=lambda f: _backend_column(f),
            max_loss_dev=lambda f: f["max_loss_dev"].map(_sci),
        )[["problem", "variant", "dtype", "verdict", "max_loss_dev"]]
        out += ["Runs that do not agree:", "", table.to_markdown(index=False), ""]
    diverged = conv[conv["status"] == "diverged"]
    for _, row in diverged.drop_duplicates("problem").iterrows():
        out += [
            f"- **{row['problem']}** diverged: lr = {row['lr']:g} is above the "
            f"stability limit 2/λ_max = {row['lr_limit']:.4g}; any lr below it "
            f"(e.g. {0.5 * row['lr_limit']:.3g}) converges.",
            "",
        ]
    return out


def _scaling(frames: Frames, key: str, dtype: str, level: str, suffix: str) -> list[str]:
    """The data-parallel variants against themselves at K = 1 (scaling.png plots it)."""
    table = scaling(frames)
    table = table[(table["machine"] == key) & (table["dtype"] == dtype)]
    if table.empty:
        return []
    shown = _ordered(table).assign(
        problem=lambda f: [
            problem_label(p, n, d)
            for p, n, d in zip(f["problem"], f["n_samples"], f["n_features"], strict=True)
        ],
        backend=lambda f: f["variant"] + "@" + f["device"],
        K=lambda f: f["ranks"],
        per_epoch=lambda f: f["per_epoch_median_s"].map(human_time),
        speedup=lambda f: [
            f"{s:.2f}× {_ci_pair(lo, hi)}" if math.isfinite(s) else "–"
            for s, lo, hi in zip(
                f["speedup"], f["speedup_ci_low"], f["speedup_ci_high"], strict=True
            )
        ],  # fmt: skip
        efficiency=lambda f: f["efficiency"].map(lambda e: f"{e:.0%}" if math.isfinite(e) else "–"),
        slowest_rank=lambda f: f["rank_max_epoch_s"].map(human_time),
        fastest_rank=lambda f: f["rank_min_epoch_s"].map(human_time),
        in_allreduce=lambda f: [
            f"{human_time(c)} ({share:.0%})" if math.isfinite(c) else "not measured"
            for c, share in zip(f["collective_epoch_s"], f["collective_share"], strict=True)
        ],
    )
    cols = ["problem", "backend", "K", "per_epoch", "speedup", "efficiency", "slowest_rank",
            "fastest_rank", "in_allreduce"]  # fmt: skip
    return [
        f"{level} Scaling of the data-parallel variants{suffix}: K ranks against K = 1",
        "",
        shown[cols].to_markdown(index=False),
        "",
        "`per_epoch`: the median round on rank 0 between the start and the closing "
        "all-reduce, which waits for every rank, so it is the slowest rank's time. "
        "`speedup`: T(1)/T(K) [95% interval]; `efficiency`: T(1)/(K·T(K)). "
        "`slowest_rank`/`fastest_rank`: each rank's own loop in the last round, per "
        "epoch. `in_allreduce`: the longest a rank spent in `dist.all_reduce` per epoch "
        "(torch-allreduce only: DDP overlaps its all-reduce with the backward pass, and "
        "jax's collective is inside one compiled program). K = 1 is the same code on one "
        "rank or device.",
        "",
    ]


def _ci_pair(low: float, high: float) -> str:
    return f"[{low:.2f}, {high:.2f}]" if math.isfinite(low) and math.isfinite(high) else ""


def _cost_model(part: pd.DataFrame, level: str, suffix: str) -> list[str]:
    """Fixed cost per run and marginal cost per epoch, and when compiling pays off."""
    if part["marginal_epoch_s"].isna().all():
        return []
    cells = row_cells(part, "marginal_epoch_s", lambda r: f"{human_time(r['fixed_s'])} + "
                      f"{human_time(r['marginal_epoch_s'])}/epoch")  # fmt: skip
    out = [
        f"{level} Cost model{suffix}: fixed per run + marginal per epoch",
        "",
        "Each case was also timed at a quarter of its epochs, and time(E) = fixed + E × "
        "marginal fitted through the two. The per-epoch cost above is time(E)/E, which "
        "shares the fixed cost (dispatch, launch, fetching losses and parameters) among "
        "the epochs: a fused loop looks cheaper per epoch the longer it runs. The "
        "marginal cost is what one more epoch costs; compare it across epoch counts. A "
        "fixed cost below zero is noise around zero.",
        "",
        markdown_table(pivot(part, cells)),
        "",
    ]
    even = part[part["break_even_epochs"].notna()]
    if not even.empty:

        def epochs_text(v: float) -> str:
            return "never" if math.isinf(v) else f"{int(v):,}"

        table = pd.DataFrame(
            {
                "problem": [problem_label(p, n, d) for p, n, d in
                            zip(even["problem"], even["n_samples"], even["n_features"],
                                strict=True)],
                "compiled": _backend_column(even).to_numpy(),
                "against": even["break_even_vs"].to_numpy(),
                "compile": even["compile_s"].map(human_time).to_numpy(),
                "pays off after (epochs)": even["break_even_epochs"].map(epochs_text).to_numpy(),
            }
        )  # fmt: skip
        out += [
            "Break-even: from how many epochs a compiled variant's whole run (compile + "
            "fixed + epochs × marginal) is faster than the fastest uncompiled variant of "
            "the same problem.",
            "",
            table.to_markdown(index=False),
            "",
        ]
    return out


def _process_spread(part: pd.DataFrame, level: str, suffix: str) -> list[str]:
    """With --processes K > 1: noise between processes next to noise between rounds."""
    several = part[part["processes"].fillna(1) > 1]
    if several.empty:
        return []
    cells = row_cells(
        part,
        "process_spread",
        lambda r: (
            f"{100 * r['per_epoch_iqr_s'] / r[PER_EPOCH]:.1f}% / {100 * r['process_spread']:.1f}%"
        ),
    )
    k = int(several["processes"].max())
    return [
        f"{level} Noise{suffix}: between rounds / between processes",
        "",
        f"Each variant was timed in {k} fresh processes, one after another, and the rounds "
        "pooled (the cost above is the pooled median). Per cell: the interquartile range of "
        "the pooled rounds, then the range (max − min) of the processes' own medians, both "
        "relative to the median. A process spread well above the round IQR means that "
        "what varies is the process (memory layout, allocator state, which core), which "
        "more rounds in one process cannot average out.",
        "",
        markdown_table(pivot(part, cells)),
        "",
    ]


def _memory(part: pd.DataFrame, level: str, suffix: str) -> list[str]:
    """Peak memory of each case, next to the size of its data."""
    if part["peak_host_bytes"].isna().all():
        return []

    def cell(r: pd.Series) -> str:
        peak = r["peak_host_bytes"]
        if pd.isna(peak):
            return "–"
        text = human_bytes(peak)
        if r["data_bytes"] and r["data_bytes"] >= 2**20:  # below, pages and code dominate
            text += f" ({peak / r['n_samples']:.0f} B/sample, {peak / r['data_bytes']:.2f}× data)"
        if not pd.isna(r["peak_device_bytes"]):
            text += f"; device {human_bytes(r['peak_device_bytes'])}"
        return text

    table = pivot(part, part.apply(cell, axis=1))
    data = _ordered(part).drop_duplicates("problem")
    sizes = pd.DataFrame([[human_bytes(b) for b in data["data_bytes"]]],
                         index=["data (X, y)"], columns=table.columns)  # fmt: skip
    table = pd.concat([sizes, table])
    return [
        f"{level} Peak memory per case{suffix}",
        "",
        "How much memory each case took above what its worker held before it: its own copy "
        "of the data (so a case is never below the size of X and y, to within a 4 kB page), "
        "the backend's copies "
        "and buffers, compilation, and the timed rounds; the float64 reference is computed "
        "before and not counted. Host: growth of the process's peak resident set (Linux "
        "`VmHWM`, reset per case). Device: torch's `max_memory_allocated`, or jax's "
        "`peak_bytes_in_use` (which jax cannot reset: the worker's peak so far). "
        "For data of 1 MiB and more the cell also gives bytes per sample and the peak over "
        "the size of X and y: above 1× is what a variant holds beyond the data itself "
        "(a second copy of X shows as about 2×). Small problems are dominated by allocator "
        "pages and compiled code.",
        "",
        markdown_table(table),
        "",
    ]


def _limits(frames: Frames, key: str, part: pd.DataFrame, level: str, suffix: str) -> list[str]:
    """Bandwidth fraction for every run, and the gap to the fastest variant."""
    out = [f"{level} Machine limits{suffix}", ""]
    bw = frames.bandwidth[frames.bandwidth["machine"] == key]
    if bw.empty:
        out += ["No memory-bandwidth measurement in this run.", ""]
    else:
        copies, reads = bw[bw["access"] == "copy"], bw[bw["access"] == "read"]
        out += [
            "Measured copy bandwidth (bytes read + written per second), per device; each "
            "row is divided by the best copy of its own device:",
            "",
            *_copy_lines(copies, part),
            "",
            "Every variant here reads X twice per epoch (Xw, then Xᵀr), 2·N·D·itemsize "
            "bytes, except the single-pass `*-blocked` variants, which read it once "
            "(N·D·itemsize); the cells give the bytes per second that implies and its "
            "fraction of the best copy bandwidth of the row's device. Above 100% the data "
            "is served from cache.",
            "",
        ]
        cells = row_cells(
            part,
            "bandwidth_fraction",
            lambda r: (
                f"{100 * r['bandwidth_fraction']:.0f}% ({_gbps(r['achieved_gbps'], '.2g')} GB/s)"
            ),
        )
        out += [markdown_table(pivot(part, cells)), ""]
        out += _floor(reads, part, level, suffix)
    return out


def _floor(reads: pd.DataFrame, part: pd.DataFrame, level: str, suffix: str) -> list[str]:
    """Each run against the physical floor of an epoch: one pass over X at the measured
    read bandwidth."""
    if reads.empty:
        return []
    lines = [
        f"- {d}: " + ", ".join(f"{m}: {_gbps(g)} GB/s" for m, g in
                               zip(rows["method"], rows["gbps"], strict=True))
        for d, rows in reads.groupby("device", sort=False)
    ]  # fmt: skip
    cells = row_cells(part, "floor_fraction", lambda r: f"{100 * r['floor_fraction']:.0f}%"
                      f" (floor {human_time(r['floor_epoch_s'])})")  # fmt: skip
    return [
        f"{level} Distance to the one-pass floor{suffix}",
        "",
        "An epoch need not read X twice: r_i = x_i·w + b − y_i depends only on row i, so "
        "one pass over the rows can compute Xw and Xᵀr together (each row used twice "
        "while it is in cache). The floor is that one pass, N·D·itemsize bytes, at the "
        "read bandwidth measured in this run (a streaming sum over a buffer of its own, "
        "256 MiB in a full run, the best per device): the *memory* floor. On a machine "
        "whose last-level cache holds X (64 MB at 1 000 000 × 16 fits in a large "
        "server L3), every pass after the first reads X from that cache, faster than "
        "this floor, and a variant can pass 100%; `docs/performance.md` measures the "
        "floor of reading X itself beside this one:",
        "",
        *lines,
        "",
        "Each cell: the floor over the run's per-epoch cost (100% = at the floor). A "
        "two-pass variant at full memory speed reaches 50%; above that, X is served "
        "(partly) from a cache that holds it; small problems are dispatch-bound, far "
        "from it. The `*-blocked` variants make that one pass (blocks of rows used twice "
        "while in cache) and can reach 100%.",
        "",
        markdown_table(pivot(part, cells)),
        "",
    ]


def _copy_lines(bw: pd.DataFrame, part: pd.DataFrame) -> list[str]:
    """One line per device of the machine: its copies and the one its rows are divided
    by (or that it has none, and so its rows no fraction)."""
    lines = []
    for device in dict.fromkeys([*bw["device"], *part["device"]]):
        copies = bw[bw["device"] == device]
        if copies.empty:
            lines.append(f"- {device}: not measured; its rows have no bandwidth fraction")
            continue
        mib = int(copies["bytes"].iloc[0]) // 2**21  # two arrays of this size
        text = ", ".join(
            f"{m}: {_gbps(g)} GB/s" for m, g in zip(copies["method"], copies["gbps"], strict=True)
        )
        best = copies.loc[copies["gbps"].idxmax()] if copies["gbps"].notna().any() else None
        divisor = (
            f"{device} rows are divided by {_gbps(best['gbps'])} GB/s ({best['method']})"
            if best is not None
            else f"no timing: {device} rows have no bandwidth fraction"
        )
        lines.append(f"- {device} ({mib} MiB arrays): {text}; {divisor}")
    return lines


def _gbps(value: float, below_100: str = ".1f") -> str:
    """GB/s without a point from 100 up (a GPU's thousands), ``below_100`` under it."""
    if pd.isna(value):
        return "–"
    return f"{value:.0f}" if value >= 100 else format(value, below_100)


def _timing_method(part: pd.DataFrame, level: str, suffix: str) -> list[str]:
    cells = row_cells(part, "rounds",
                      lambda r: f"{int(r['rounds'])} × {int(r['epochs_per_round'])}")  # fmt: skip
    worst = part["harness_overhead_pct"].max()
    fewest = part["epochs_per_round"].min()
    out = [f"{level} Timed rounds × epochs per round{suffix}", ""]
    if not pd.isna(worst):
        out += [
            f"Each timed round trained at least {int(fewest)} epochs (whole runs, back to "
            "back when one run is short), so that the harness's own cost per round (two "
            "timer reads and a sync of the idle device, measured in this run) stays below "
            f"1% of every reported cost: at most {worst:.2f}% here.",
            "",
        ]
    out += [markdown_table(pivot(part, cells)), ""]
    return out


def _sci(value: float) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.3e}"


TERMINAL_WIDTH = 100  # the summary at the end of `gdbench run` fits this many columns
MARKS = {"yes": "", "tie": " ≈", "untested": " †"}  # as in the report's cost table


def summary_table(
    frames: Frames, key: str, intervals: bool = True, frameworks: bool = False
) -> pd.DataFrame:
    """One row per problem of machine ``key``: the fastest contender (``≈`` where another
    cannot be told apart from it, ``†`` untested), its per-epoch median, the runner-up
    and its time as a multiple of the fastest's with the 95% interval (``intervals``);
    with ``frameworks``, the best of each framework and the first to reach the target
    accuracy too. Variants carry their device where the machine's rows have several."""
    results = frames.results[frames.results["machine"] == key]
    several = results["device"].nunique() > 1  # name the device where it tells rows apart
    names = list(dict.fromkeys(results["framework"].dropna())) if frameworks else []

    rows = []
    for dtype, first, part in _problems(results):
        ranked, baselines_only = _ranked(part)
        # the sweep's problems by their shape alone (N×D), to fit the terminal
        label = problem_label(first["problem"], first["n_samples"], first["n_features"])
        label = label.removeprefix("synthetic ") + ("" if dtype == "float32" else f" {dtype}")
        nothing = "only K = 1 scaling baselines" if baselines_only else "no valid timing"
        row = {"problem": label, "fastest": nothing, "per epoch": "", "runner-up": "",
               "its time [95%]": ""}  # fmt: skip
        if not ranked.empty:
            best = ranked.iloc[0]
            row |= {"fastest": _name(best, several) + MARKS.get(best["fastest"], ""),
                    "per epoch": human_time(best[PER_EPOCH])}  # fmt: skip
        if len(ranked) > 1:
            runner = ranked.iloc[1]
            row |= {"runner-up": _name(runner, several),
                    "its time [95%]": _gap_text(runner, intervals)}  # fmt: skip
        for framework in names:
            mine = ranked[ranked["framework"] == framework]
            row[f"best {framework}"] = (
                f"{_name(mine.iloc[0], several)} {human_time(mine.iloc[0][PER_EPOCH])}"
                if not mine.empty
                else "–"
            )
        if frameworks:
            reached = ranked[ranked["time_to_target_s"].notna()]
            reached = reached.sort_values("time_to_target_s", kind="stable")
            winner = reached.iloc[0] if not reached.empty else None
            row[f"first to {first['target']:g}"] = (
                f"{_name(winner, several)} {human_time(winner['time_to_target_s'])}"
                if winner is not None
                else "–"
            )
        rows.append(row)
    return pd.DataFrame(rows)


def _gap_text(row: pd.Series, interval: bool = True) -> str:
    """``1.05× [0.988, 1.12]``: a row's time over the fastest's, with its interval."""
    gap = row.get("gap_to_fastest")
    if gap is None or pd.isna(gap):
        return "–"
    if not interval:
        return _ratio(gap)
    low, high = row.get("gap_ci_low", math.nan), row.get("gap_ci_high", math.nan)
    return _ratio(gap) + interval_text(float(low), float(high), _end)


def _end(value: float) -> str:
    """An end of a ratio's interval, in at most five characters below 100 000, with its
    trailing zeros (``1.00``, never ``1``: the end is not exactly 1)."""
    return f"{value:#.3g}" if value < 100 else f"{value:.0f}"


def cost_table_text(frames: Frames) -> str:
    """The answer per problem as plain text, for the end of ``gdbench run``: the fastest
    variant and its runner-up (the report has every variant)."""
    parts = []
    for key in frames.results["machine"].unique():
        text = plain_table(summary_table(frames, key))
        notes = []
        if " ≈" in text:
            notes.append(
                "≈: the runner-up is not distinguishable from it here (report.md: by how much)"
            )
        if max(map(len, text.splitlines())) > TERMINAL_WIDTH:  # long names: ratios alone
            text = plain_table(summary_table(frames, key, intervals=False))
            text = text.replace("its time [95%]", "its time", 1)
            notes.append("(intervals: report.md)")
        text = "\n".join([text, *notes])
        parts.append(f"fastest per problem, {key}\n{text}")
    return "\n\n".join(parts)


def plain_table(table: pd.DataFrame) -> str:
    """Columns of text, left-aligned, two spaces apart, no trailing blanks."""
    cells = [list(table.columns), *table.astype(str).values.tolist()]
    widths = [max(len(row[i]) for row in cells) for i in range(len(table.columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                     for row in cells)  # fmt: skip


def trajectories_csv(frames: Frames) -> pd.DataFrame:
    """problem, variant, device, dtype, epoch, loss, w0 … w{D-1}, b, then machine."""
    traj = frames.trajectories
    if traj.empty:
        return pd.DataFrame(columns=["problem", "variant", "device", "dtype", "epoch", "loss"])
    w_cols = sorted(
        (c for c in traj.columns if c.startswith("w") and c[1:].isdigit()), key=lambda c: int(c[1:])
    )
    cols = ["problem", "variant", "device", "dtype", "epoch", "loss", *w_cols]
    cols += ["b"] if "b" in traj.columns else []
    return traj[[*cols, "machine"]]


def write_all(frames: Frames, out: Path, *, timing: bool = True) -> list[Path]:
    """Write every report file into ``out``; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    if timing:
        frames.results.to_csv(out / "results.csv", index=False)
        plot_epoch_cost(frames, out / "epoch_cost.png")
        plot_time_to_accuracy(frames, out / "time_to_accuracy.png")
        written += [out / "results.csv", out / "epoch_cost.png", out / "time_to_accuracy.png"]
        table = scaling(frames)
        if not table.empty:
            table.to_csv(out / "scaling.csv", index=False)
            plot_scaling(table, out / "scaling.png")
            written += [out / "scaling.csv", out / "scaling.png"]
    trajectories_csv(frames).to_csv(out / "trajectories.csv", index=False)
    (out / "report.md").write_text(markdown_report(frames, timing=timing), encoding="utf-8")
    plot_convergence(frames, out / "convergence.png")
    written += [out / "trajectories.csv", out / "report.md", out / "convergence.png"]
    return written
