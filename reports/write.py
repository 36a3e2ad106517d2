"""Write results.csv, trajectories.csv, report.md, epoch_cost.png and convergence.png.

Every number comes from :class:`reports.frame.Frames`; formatting happens here only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from reports.frame import BASELINE, PER_EPOCH, Frames, Machine, contenders, scaling
from reports.plots import plot_convergence, plot_epoch_cost, plot_scaling


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


def pivot(frame: pd.DataFrame, cell: pd.Series) -> pd.DataFrame:
    """Rows: problem and size; columns: variant@device (registry order kept)."""
    frame = _ordered(frame)
    table = pd.DataFrame(
        {
            "problem": [
                problem_label(p, n, d)
                for p, n, d in zip(
                    frame["problem"], frame["n_samples"], frame["n_features"], strict=True
                )
            ],
            "backend": _backend_column(frame).to_numpy(),
            "cell": cell.loc[frame.index].to_numpy(),
        }
    )
    out = table.pivot(index="problem", columns="backend", values="cell")
    rows = list(dict.fromkeys(table["problem"]))
    cols = list(dict.fromkeys(table["backend"]))
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


def markdown_table(table: pd.DataFrame, index_name: str) -> str:
    return table.rename_axis(index=index_name, columns=None).to_markdown()


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


def markdown_report(frames: Frames, *, timing: bool = True) -> str:
    """The whole report.md; ``timing=False`` writes only its convergence part."""
    out = ["# gdbench report", ""]
    if frames.partial:
        out += [
            "> **Partial report:** the run was interrupted; only the cases that finished "
            "are shown.",
            "",
        ]
    out += [
        "Linear regression by full-batch gradient descent on the MSE. Every backend gets "
        "the same data, initial parameters and dtype; its loss at every epoch is compared "
        "with a float64 run of the same recurrence. Timings are per epoch: the median of "
        "the timed rounds (each a full training run) divided by the number of epochs, "
        "with its 95% interval in brackets (a bootstrap over the rounds, and over the "
        "processes with --processes K). A fastest variant is bold only when its interval "
        "clears every other's; ≈ marks variants that cannot be told apart from it; † "
        "marks the fastest median where no rounds were saved to test it (± the IQR).",
        "",
    ]
    for machine in frames.machines:
        several = len(frames.machines) > 1
        if several:
            out += [f"## Machine: {machine.key}", ""]
        out += ["## Summary" if not several else "### Summary", ""]
        out += summary_lines(frames, machine.key, timing) + [""]
        out += ["## Environment" if not several else "### Environment", ""]
        out += _environment(machine) + _precision(frames, machine.key)
        out += _block_rows(frames, machine) + [""]
        level = "###" if several else "##"
        out += _machine_sections(frames, machine.key, level, timing)
    return "\n".join(out).rstrip() + "\n"


def summary_lines(frames: Frames, key: str, timing: bool = True) -> list[str]:
    """The answer first: does everything agree, and per problem who is fastest (or which
    variants tie), by how much over numpy-manual, and the fastest of each framework."""
    out = [_convergence_line(frames, key)]
    results = frames.results[frames.results["machine"] == key]
    if not timing or results.empty:
        return out
    for dtype, first, part in _problems(results):
        label = f"**{problem_label(first['problem'], first['n_samples'], first['n_features'])}**"
        ranked, baselines_only = _ranked(part)
        if baselines_only:
            out.append(f"- {label} ({dtype}): only K = 1 scaling baselines (see Scaling)")
        elif ranked.empty:
            out.append(f"- {label} ({dtype}): no valid timing")
        else:
            out.append(f"- {label} ({dtype}): {_winner_text(ranked)}; {_per_framework(ranked)}")
    return out


def _problems(results: pd.DataFrame) -> Iterator[tuple[str, pd.Series, pd.DataFrame]]:
    """Each problem of the results in the report's order: its dtype, first row, rows."""
    for (dtype, _, _, _), part in _ordered(results).groupby(
        ["dtype", "problem", "n_samples", "n_features"], sort=False
    ):
        yield str(dtype), part.iloc[0], part


def _ranked(part: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """A problem's timed contenders, fastest first, and whether its only timed rows are
    K = 1 of data-parallel variants (their scaling baselines, never contenders)."""
    timed = part[part[PER_EPOCH].notna()]
    ranked = timed[contenders(timed)].sort_values(PER_EPOCH, kind="stable")
    return ranked, ranked.empty and not timed.empty


def _convergence_line(frames: Frames, key: str) -> str:
    conv = frames.convergence[frames.convergence["machine"] == key]
    failures = frames.failures[frames.failures["machine"] == key]
    if conv.empty:
        return "- **Convergence:** not checked in this run."
    agree = conv[conv["status"] == "agree"]
    largest = agree["max_loss_dev"].max()
    if len(agree) == len(conv) and failures.empty:
        return (
            f"- **Convergence:** all {len(conv)} runs agree with the float64 reference "
            f"(largest relative loss deviation {_sci(largest)})."
        )
    bad = conv[conv["status"] != "agree"]
    names = [f"{r['variant']}@{r['device']} on {r['problem']} ({r['verdict']})"
             for _, r in bad.iterrows()]  # fmt: skip
    names += [f"{r['variant']}@{r['device']} on {r['problem']} (failed in {r['kind']})"
              for _, r in failures.iterrows()]  # fmt: skip
    return (
        f"- **Convergence:** {len(agree)} of {len(conv)} runs agree with the float64 "
        f"reference; not: {'; '.join(names)}."
    )


def _winner_text(timed: pd.DataFrame) -> str:
    def name(r: pd.Series) -> str:
        return f"{r['variant']}@{r['device']}"

    def speedup(r: pd.Series) -> str:
        if pd.isna(r["speedup_vs_numpy"]):
            return ""
        ci = interval_text(r["speedup_ci_low"], r["speedup_ci_high"], _ci)
        return f", {_ratio(r['speedup_vs_numpy'])}{ci} over {BASELINE}"

    ranked = timed.sort_values(PER_EPOCH, kind="stable")
    best = ranked.iloc[0]
    per_epoch = f"{human_time(best[PER_EPOCH])}/epoch"
    if best["fastest"] == "yes":
        return f"fastest **{name(best)}** ({per_epoch}{speedup(best)})"
    if best["fastest"] == "tie":
        tied = ranked[ranked["fastest"] == "tie"]
        return (
            f"a tie between {', '.join(name(r) for _, r in tied.iterrows())} (their 95% "
            f"intervals overlap; fastest median {name(best)}, {per_epoch}{speedup(best)})"
        )
    return f"fastest median {name(best)} ({per_epoch}{speedup(best)}; untested: no rounds saved)"


def _per_framework(timed: pd.DataFrame) -> str:
    best = timed.sort_values(PER_EPOCH, kind="stable").drop_duplicates("framework")
    cells = [
        f"{r['framework']} {r['variant']}@{r['device']} {human_time(r[PER_EPOCH])}"
        for _, r in best.iterrows()
    ]
    return "best of each framework: " + ", ".join(cells)


def _machine_sections(frames: Frames, key: str, level: str, timing: bool) -> list[str]:
    out: list[str] = []
    unavailable = frames.unavailable[frames.unavailable["machine"] == key]
    if not unavailable.empty:
        out += [f"{level} Not run here", ""]
        out += [unavailable[["variant", "device", "reason"]].to_markdown(index=False), ""]
    failures = frames.failures[frames.failures["machine"] == key]
    if not failures.empty:
        out += [f"{level} Failures", ""]
        out += [
            failures[["kind", "variant", "device", "problem", "message"]].to_markdown(index=False),
            "",
        ]

    conv = frames.convergence[frames.convergence["machine"] == key]
    if not conv.empty:
        out += [f"{level} Convergence: does every backend follow the float64 reference?", ""]
        table = _ordered(conv).assign(
            problem=lambda f: [
                problem_label(p, n, d)
                for p, n, d in zip(f["problem"], f["n_samples"], f["n_features"], strict=True)
            ],
            backend=lambda f: _backend_column(f),
            final_loss=lambda f: f["final_loss"].map(_sci),
            ref_final_loss=lambda f: f["ref_final_loss"].map(_sci),
            max_loss_dev=lambda f: f["max_loss_dev"].map(_sci),
            param_dev=lambda f: f["param_dev"].map(_sci),
        )[
            [
                "problem",
                "backend",
                "dtype",
                "final_loss",
                "ref_final_loss",
                "max_loss_dev",
                "param_dev",
                "verdict",
            ]
        ]
        out += [table.to_markdown(index=False), ""]
        out += [
            "`max_loss_dev`: largest relative deviation of any epoch's loss from the "
            "float64 reference (compared with 1e-3 in float32, 2e-2 with TF32 products, "
            "1e-9 in float64; see `suites/convergence.py`). `param_dev`: the same for the "
            "final parameters.",
            "",
        ]
        diverged = conv[conv["status"] == "diverged"]
        for _, row in diverged.drop_duplicates("problem").iterrows():
            out += [
                f"- **{row['problem']}** diverged: lr = {row['lr']:g} is above the "
                f"stability limit 2/λ_max = {row['lr_limit']:.4g}; any lr below it "
                f"(e.g. {0.5 * row['lr_limit']:.3g}) converges.",
                "",
            ]

    results = frames.results[frames.results["machine"] == key]
    if not timing or results.empty:
        return out
    for dtype, part in results.groupby("dtype", sort=False):
        suffix = f" ({dtype})"
        out += [f"{level} Per-epoch cost{suffix}: median [95% interval]", ""]
        out += [markdown_table(pivot(part, cost_cells(part)), "problem"), ""]
        out += [f"{level} Speedup over {BASELINE}{suffix}: higher is faster", ""]
        out += [markdown_table(pivot(part, speedup_cells(part)), "problem"), ""]
        out += _cost_model(part, level, suffix)
        compile_cells = part["compile_s"].map(human_time)
        out += [f"{level} Compile and first-call time{suffix}: kept out of the timings", ""]
        out += [markdown_table(pivot(part, compile_cells), "problem"), ""]
        out += _process_spread(part, level, suffix)
        out += _memory(part, level, suffix)
        out += _limits(frames, key, part, level, suffix)
        out += _scaling(frames, key, str(dtype), level, suffix)
        out += _timing_method(part, level, suffix)
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
        K=lambda f: f["workers"],
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
        f"{level} Scaling of the data-parallel variants{suffix}: K workers against K = 1",
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
        markdown_table(pivot(part, cells), "problem"),
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
        markdown_table(pivot(part, cells), "problem"),
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
    table.insert(0, "data (X, y)", [human_bytes(b) for b in data["data_bytes"]])
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
        markdown_table(table, "problem"),
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
        out += [markdown_table(pivot(part, cells), "problem"), ""]
        out += _floor(reads, part, level, suffix)
    gap = row_cells(part, "gap_to_fastest", lambda r: f"{r['gap_to_fastest']:.2f}×"
                    + interval_text(r["gap_ci_low"], r["gap_ci_high"], _ci))  # fmt: skip
    out += [f"{level} Gap to the fastest variant{suffix}: per-epoch cost over the row's best", ""]
    out += [
        "For small problems the cost is dispatch, not bandwidth: this is how much each "
        "variant pays per epoch above the fastest (usually the fused jax-scan loop).",
        "",
    ]
    out += [markdown_table(pivot(part, gap), "problem"), ""]
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
        markdown_table(pivot(part, cells), "problem"),
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
    out += [markdown_table(pivot(part, cells), "problem"), ""]
    return out


def _sci(value: float) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:.3e}"


TERMINAL_WIDTH = 100  # the summary at the end of `gdbench run` fits this many columns
MARKS = {"yes": "", "tie": " ≈", "untested": " †"}  # as in the report's cost table


def summary_table(frames: Frames, key: str, intervals: bool = True) -> pd.DataFrame:
    """One row per problem of machine ``key``: the fastest contender (``≈`` where its
    interval overlaps another's, ``†`` untested), its per-epoch median, the runner-up and
    its time as a multiple of the fastest's, with the 95% interval (``intervals``).
    Variants carry their device where the machine's rows have several."""
    results = frames.results[frames.results["machine"] == key]
    several = results["device"].nunique() > 1  # name the device where it tells rows apart

    def name(r: pd.Series) -> str:
        return f"{r['variant']}@{r['device']}" if several else str(r["variant"])

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
            row |= {"fastest": name(best) + MARKS.get(best["fastest"], ""),
                    "per epoch": human_time(best[PER_EPOCH])}  # fmt: skip
        if len(ranked) > 1:
            runner = ranked.iloc[1]
            row |= {"runner-up": name(runner), "its time [95%]": _gap_text(runner, intervals)}
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
    """An end of a ratio's interval, in at most five characters below 100 000."""
    return f"{value:.3g}" if value < 100 else f"{value:.0f}"


def cost_table_text(frames: Frames) -> str:
    """The answer per problem as plain text, for the end of ``gdbench run``: the fastest
    variant and its runner-up (the report has every variant)."""
    parts = []
    for key in frames.results["machine"].unique():
        text = plain_table(summary_table(frames, key))
        if max(map(len, text.splitlines())) > TERMINAL_WIDTH:  # long names: ratios alone
            text = plain_table(summary_table(frames, key, intervals=False))
            text = text.replace("its time [95%]", "its time", 1) + "\n(intervals: report.md)"
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
        written += [out / "results.csv", out / "epoch_cost.png"]
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
