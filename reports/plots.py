"""The report's figures: per-epoch cost against size, time to accuracy, scaling over
K, and the convergence of every variant against the float64 reference (matplotlib,
Agg).

Every figure colours a variant by its framework (numpy blue, torch red, jax green, a
shade per style), puts its legend outside the data, has at most about ten lines per
panel (small multiples by variant group or problem, wrapping at ``PANELS_PER_ROW``),
and is at most ``MAX_WIDTH_PX`` pixels wide."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reports.frame import (
    GROUP_ORDER,
    PER_EPOCH,
    Frames,
    contenders,
    excess_losses,
    groups,
    seconds_to_epoch,
)

MAX_WIDTH_PX = 1600
PANELS_PER_ROW = 4  # convergence.png wraps its problems at this many per row
FRAMEWORK_COLORMAPS = {"numpy": "Blues", "torch": "Reds", "jax": "Greens"}
LINESTYLES = ("-", "--", "-.", ":")


def variant_styles(variants: list[str]) -> dict[str, dict[str, Any]]:
    """A colour, line style and marker per variant: its framework's colour family (by
    the name's prefix), a darker shade and another line style for each further style of
    that framework, in the order given; grey for a framework not named here."""
    import matplotlib

    out: dict[str, dict[str, Any]] = {}
    by_framework: dict[str, list[str]] = {}
    for v in dict.fromkeys(variants):
        by_framework.setdefault(v.split("-")[0], []).append(v)
    markers = ("o", "s", "^", "D", "v", "P", "X", "*")
    for framework, names in by_framework.items():
        cmap = matplotlib.colormaps[FRAMEWORK_COLORMAPS.get(framework, "Greys")]
        for i, name in enumerate(names):
            shade = 0.45 + 0.5 * (i / max(1, len(names) - 1)) if len(names) > 1 else 0.75
            out[name] = {"color": cmap(shade), "linestyle": LINESTYLES[i % len(LINESTYLES)],
                         "marker": markers[i % len(markers)]}  # fmt: skip
    return out


def tolerance_lines(part: pd.DataFrame) -> list[tuple[str, float]]:
    """The loss tolerances the runs of one problem were judged by, as recorded (one per
    dtype and matmul precision present), each with its label; none for records that
    predate the field."""
    if "loss_rtol" not in part:
        return []
    found = part.dropna(subset=["loss_rtol"]).drop_duplicates(["dtype", "loss_rtol"])
    return [(f"{r['dtype']} tolerance (rtol {r['loss_rtol']:g})", float(r["loss_rtol"]))
            for _, r in found.iterrows()]  # fmt: skip


def _panels(count: int, width: float, height: float, extra_width: float = 2.6):
    """A figure of ``count`` panels wrapping at PANELS_PER_ROW, with room for a legend
    on the right, within MAX_WIDTH_PX at the dpi of :func:`_save`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ncols = max(1, min(PANELS_PER_ROW, count))
    nrows = max(1, -(-count // ncols))
    total = min(width * ncols + extra_width, MAX_WIDTH_PX / DPI)
    fig, axes = plt.subplots(nrows, ncols, figsize=(total, height * nrows), squeeze=False,
                             layout="constrained")  # fmt: skip
    for k in range(count, nrows * ncols):
        axes[k // ncols, k % ncols].axis("off")
    return fig, [axes[k // ncols, k % ncols] for k in range(count)] or [axes[0, 0]]


DPI = 100


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=DPI)
    plt.close(fig)


MOST_LINES = 10  # legend entries (lines) per panel


def _panel_legend(ax: Any, handles: dict[str, Any]) -> None:
    """A panel's own legend, under its axes, outside the data."""
    if handles:
        ax.legend(list(handles.values()), list(handles), loc="upper center", fontsize=7,
                  bbox_to_anchor=(0.5, -0.22), ncols=2, frameon=False)  # fmt: skip


def _best_of_each_framework(part: pd.DataFrame) -> set[str]:
    """The variant with the lowest median of each framework, over a panel's rows."""
    timed = part[part[PER_EPOCH].notna()]
    framework = timed["variant"].str.split("-").str[0]  # as variant_styles colours them
    best = timed.assign(_framework=framework).sort_values(PER_EPOCH)
    return set(best.drop_duplicates("_framework")["variant"])


def _error_bars(rows: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """How far each row's 95% interval reaches below and above its median; IQR/2 where
    no rounds were kept (a JSON without them), 0 where neither is known."""
    half_iqr = (rows["per_epoch_iqr_s"] / 2) if "per_epoch_iqr_s" in rows else 0.0
    low = (rows[PER_EPOCH] - rows["per_epoch_ci_low_s"]).fillna(half_iqr).fillna(0)
    high = (rows["per_epoch_ci_high_s"] - rows[PER_EPOCH]).fillna(half_iqr).fillna(0)
    return low.clip(lower=0), high.clip(lower=0)


def plot_epoch_cost(frames: Frames, path: Path) -> None:
    """Per-epoch cost against n_samples, log-log, one panel per variant group (core,
    single-pass, data-parallel at K > 1), one line per variant@device (and machine) with
    its 95% interval, coloured by framework; the best of each framework bold."""
    results = frames.results
    data = results[(results["status"] == "agree") & contenders(results)]
    if not data.empty and not data["problem"].str.startswith("synthetic").any():
        _plot_epoch_cost_per_problem(data, path)  # no sweep: a data file, the presets
        return
    data = data[data["problem"].str.startswith("synthetic")]
    kinds = groups(data)
    if data["device"].nunique() > 1:  # a panel per group and device: at most ten lines
        kinds = kinds + " on " + data["device"]
        order = [f"{g} on {d}" for g in GROUP_ORDER for d in dict.fromkeys(data["device"])]
    else:
        order = list(GROUP_ORDER)
    present = [g for g in order if (kinds == g).any()]
    fig, axes = _panels(len(present), 4.6, 5.6, extra_width=0.4)
    several = data["machine"].nunique() > 1
    dtypes = data["dtype"].nunique() > 1
    styles = variant_styles(list(data["variant"]))
    for ax, group in zip(axes, present, strict=False):
        handles: dict[str, Any] = {}
        part = data[kinds == group]
        best = _best_of_each_framework(part)
        for m, (machine, by_machine) in enumerate(part.groupby("machine", sort=False)):
            for (variant, device, dtype), line in by_machine.groupby(
                ["variant", "device", "dtype"], sort=False
            ):
                line = line.sort_values("n_samples")
                label = f"{variant}@{device}" + (f" {dtype}" if dtypes else "")
                label += f" — {machine}" if several else ""
                style = dict(styles[str(variant)])
                if several:  # the machine by line style, the variant by colour and marker
                    style["linestyle"] = LINESTYLES[m % len(LINESTYLES)]
                style["linewidth"] = 2.6 if variant in best else 1.2
                low, high = _error_bars(line)
                handle = ax.errorbar(line["n_samples"], line[PER_EPOCH], yerr=[low, high],
                                     capsize=3, label=label, **style)  # fmt: skip
                handles.setdefault(label, handle)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(group + (" (K > 1)" if group.startswith("data-parallel") else ""))
        ax.set_xlabel(
            "n_samples (n_features = "
            + ", ".join(str(int(d)) for d in sorted(part["n_features"].unique()))
            + ")"
        )
        ax.set_ylabel("time per epoch (s): median, 95% interval")
        ax.grid(True, which="both", alpha=0.3)
        _panel_legend(ax, handles)
    if data.empty:
        axes[0].text(0.5, 0.5, "no timed synthetic problem in this run", ha="center",
                     transform=axes[0].transAxes)  # fmt: skip
    fig.suptitle("Per-epoch cost (bold: the best of each framework)", x=0.02, ha="left")
    _save(fig, path)


def _plot_epoch_cost_per_problem(data: pd.DataFrame, path: Path) -> None:
    """Without a sweep to draw against n_samples: per problem (one panel each), every
    variant@device's per-epoch median with its 95% interval, fastest at the top."""
    problems = list(dict.fromkeys(data["problem"]))
    rows = max(len(part) for _, part in data.groupby("problem"))
    fig, axes = _panels(len(problems), 4.6, 1.6 + 0.32 * rows, extra_width=0.4)
    styles = variant_styles(list(data["variant"]))
    several = data["machine"].nunique() > 1
    for ax, problem in zip(axes, problems, strict=False):
        part = data[data["problem"] == problem].sort_values(PER_EPOCH, ascending=False)
        best = _best_of_each_framework(part)
        lows, highs = _error_bars(part)
        for y, (i, row) in enumerate(part.iterrows()):
            style = styles[str(row["variant"])]
            xerr = [[lows[i]], [highs[i]]]
            ax.errorbar([row[PER_EPOCH]], [y], xerr=xerr, capsize=3, color=style.get("color"),
                        marker=style.get("marker", "o"), linestyle="none",
                        markersize=8 if row["variant"] in best else 5)  # fmt: skip
        labels = [f"{r['variant']}@{r['device']}" + (f" — {r['machine']}" if several else "")
                  for _, r in part.iterrows()]  # fmt: skip
        ax.set_yticks(range(len(part)), labels, fontsize=8)
        ax.set_xscale("log")
        first = part.iloc[0]
        ax.set_title(f"{problem} ({int(first['n_samples']):,}×{int(first['n_features'])})")
        ax.set_xlabel("time per epoch (s): median, 95% interval")
        ax.grid(True, which="both", axis="x", alpha=0.3)
    fig.suptitle("Per-epoch cost (large marker: the best of each framework)", x=0.02, ha="left")
    _save(fig, path)


def plot_time_to_accuracy(frames: Frames, path: Path) -> None:
    """Per problem (one panel each): the excess loss over the least-squares optimum, as
    a share of the initial excess, against the wall-clock time it takes to get there,
    compile + fixed + epochs × marginal, log-log; each line starts after its compile
    time. A dotted line marks the target."""
    results = frames.results
    timed = results[results["status"].eq("agree") & results["marginal_epoch_s"].notna()
                    & contenders(results)]  # fmt: skip
    excess = excess_losses(frames.trajectories)
    keys = ["machine", "problem", "variant", "device", "dtype"]
    data = excess.merge(
        timed[[*keys, "compile_s", "fixed_s", "marginal_epoch_s", "target"]], on=keys
    )
    if "time_to_target_s" not in timed:
        timed = timed.assign(time_to_target_s=np.nan)
    problems = list(dict.fromkeys(zip(data["problem"], data["dtype"], strict=True)))
    shown: dict[tuple[str, str], set[str]] = {}
    for problem, dtype in problems:
        # the first MOST_LINES - 1 to the target (then the cheapest per epoch), and the
        # target line
        order = (
            timed[(timed["problem"] == problem) & (timed["dtype"] == dtype)]
            .assign(_t=lambda f: f["time_to_target_s"].fillna(np.inf))
            .sort_values(["_t", PER_EPOCH])
        )
        shown[problem, dtype] = set((order["variant"] + "@" + order["device"]).head(MOST_LINES - 1))
    # the same lines in every panel: one legend for the figure, else one under each panel
    shared = len({frozenset(v) for v in shown.values()}) <= 1
    fig, axes = _panels(len(problems), 3.9, 3.6 if shared else 5.2, extra_width=0.4)
    styles = variant_styles(list(data["variant"]))
    legends: list[tuple[Any, dict[str, Any]]] = []
    for ax, (problem, dtype) in zip(axes, problems, strict=False):
        handles: dict[str, Any] = {}
        part = data[(data["problem"] == problem) & (data["dtype"] == dtype)]
        part = part[(part["variant"] + "@" + part["device"]).isin(shown[problem, dtype])]
        if part.empty:
            continue
        several = part["machine"].nunique() > 1
        target = float(part["target"].iloc[0])
        floor = target / 1000
        for (machine, variant, device), line in part.groupby(
            ["machine", "variant", "device"], sort=False
        ):
            line = line.sort_values("epoch")
            # up to the first epoch far below the target: below it is float rounding
            below = np.flatnonzero(line["excess"].to_numpy() <= floor)
            line = line.iloc[: below[0] + 1] if below.size else line
            seconds = seconds_to_epoch(line, line["epoch"])  # as the table's times
            label = f"{variant}@{device}" + (f" — {machine}" if several else "")
            style = {k: v for k, v in styles[str(variant)].items() if k != "marker"}
            (handle,) = ax.plot(seconds, line["excess"].clip(lower=floor), label=label, **style)
            handles.setdefault(label, handle)
        handle = ax.axhline(target, color="black", linestyle=":", linewidth=1)
        handles.setdefault(f"target ({target:g} of the initial excess)", handle)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylim(bottom=floor / 2, top=2)
        ax.set_title(f"{problem} ({dtype})", fontsize=10)
        ax.set_xlabel("seconds from the start (compile included)")
        ax.set_ylabel("excess loss / initial")
        ax.grid(True, which="both", alpha=0.3)
        legends.append((ax, handles))
    if not problems:
        axes[0].text(0.5, 0.5, "no timed run with a cost model and a trajectory", ha="center",
                     transform=axes[0].transAxes)  # fmt: skip
    if shared and legends:
        handles = legends[0][1]
        fig.legend(list(handles.values()), list(handles), loc="outside right upper", fontsize=8)
    else:
        for ax, handles in legends:
            _panel_legend(ax, handles)
    fig.suptitle("Time to accuracy: excess loss over the least-squares optimum", x=0.02,
                 ha="left")  # fmt: skip
    _save(fig, path)


def plot_scaling(table: pd.DataFrame, path: Path) -> None:
    """Per problem: per-epoch cost against K (left) and efficiency T(1)/(K·T(K)) (right),
    one line per data-parallel variant@device (and machine)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems = list(dict.fromkeys(table["problem"]))
    fig, axes = plt.subplots(len(problems), 2, figsize=(10, 3.5 * len(problems)), squeeze=False)
    several = table["machine"].nunique() > 1
    for row, problem in enumerate(problems):
        part = table[table["problem"] == problem]
        for (variant, device, machine, dtype), line in part.groupby(
            ["variant", "device", "machine", "dtype"], sort=False
        ):
            line = line.sort_values("ranks")
            label = f"{variant}@{device} {dtype}" + (f" — {machine}" if several else "")
            axes[row][0].plot(line["ranks"], line["per_epoch_median_s"], marker="o", label=label)
            axes[row][1].plot(line["ranks"], line["efficiency"], marker="o", label=label)
        ks = sorted(part["ranks"].unique())
        for ax, what in ((axes[row][0], "time per epoch (s)"), (axes[row][1], "efficiency")):
            ax.set_xticks(ks)
            ax.set_xlabel("K (ranks)")
            ax.set_ylabel(what)
            ax.set_title(problem)
            ax.grid(True, alpha=0.3)
        axes[row][0].set_yscale("log")
        axes[row][1].axhline(1.0, color="grey", linewidth=0.8)
        axes[row][0].legend(fontsize=7)
    fig.suptitle("Data-parallel scaling: per-epoch cost and T(1)/(K·T(K))")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_convergence(frames: Frames, path: Path) -> None:
    """Per problem: loss against epoch (log y) for every backend and the float64 reference,
    and below it each backend's relative deviation from the reference with the tolerance
    it was judged by, so a disagreement that the loss curves hide is visible. Problems
    wrap at ``PANELS_PER_ROW`` per row; one legend, outside the panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    traj = frames.trajectories
    problems = list(dict.fromkeys(traj["problem"])) if not traj.empty else []
    ncols = max(1, min(PANELS_PER_ROW, len(problems)))
    nrows = max(1, -(-len(problems) // ncols))
    fig, axes = plt.subplots(2 * nrows, ncols, figsize=(3.4 * ncols + 2.4, 5.4 * nrows),
                             squeeze=False, layout="constrained")  # fmt: skip
    styles = variant_styles(list(traj["variant"])) if problems else {}
    labels: dict[str, Any] = {}  # one legend entry per line, whatever its panel
    # more variants than a legend can name: one entry per framework (its shades)
    lines = traj.drop_duplicates(["variant", "device", "machine"]) if problems else traj
    by_framework = len(lines) > MOST_LINES - 2
    counts: Any = lines["variant"].str.split("-").str[0].value_counts() if problems else {}
    for k, problem in enumerate(problems):
        top, bottom = axes[2 * (k // ncols), k % ncols], axes[2 * (k // ncols) + 1, k % ncols]
        bottom.sharex(top)
        part = traj[traj["problem"] == problem]
        ref = part.drop_duplicates("epoch")
        (handle,) = top.plot(ref["epoch"], ref["ref_loss"], color="black", linewidth=3,
                             alpha=0.25)  # fmt: skip
        labels.setdefault("float64 reference", handle)
        several = part["machine"].nunique() > 1
        for (variant, device, machine), line in part.groupby(
            ["variant", "device", "machine"], sort=False
        ):
            label = f"{variant}@{device}" + (f" ({machine})" if several else "")
            if by_framework:
                framework = str(variant).split("-")[0]
                label = f"{framework} ({counts[framework]} variants, by shade)"
            style = {k: v for k, v in styles[str(variant)].items() if k != "marker"}
            (handle,) = top.plot(line["epoch"], line["loss"], **style)
            labels.setdefault(label, handle)
            scale = np.maximum(np.abs(line["ref_loss"]), 1e-2 * abs(line["ref_loss"].iloc[0]))
            dev = np.abs(line["loss"] - line["ref_loss"]) / scale
            bottom.plot(line["epoch"], dev.clip(lower=1e-17), **style)
        for i, (label, rtol) in enumerate(tolerance_lines(part)):
            handle = bottom.axhline(rtol, color="red", linewidth=1,
                                    linestyle=LINESTYLES[1 + i % 3])  # fmt: skip
            labels.setdefault(label, handle)
        top.set_yscale("log")
        bottom.set_yscale("log")
        top.set_title(problem)
        top.set_ylabel("loss (before the update)")
        bottom.set_ylabel("relative deviation from float64")
        bottom.set_xlabel("epoch")
        top.grid(True, alpha=0.3)
        bottom.grid(True, alpha=0.3)
    for k in range(len(problems), nrows * ncols):  # the empty places of the last row
        axes[2 * (k // ncols), k % ncols].axis("off")
        axes[2 * (k // ncols) + 1, k % ncols].axis("off")
    if problems:
        fig.legend(list(labels.values()), list(labels), loc="outside right upper", fontsize=8)
    else:
        axes[0, 0].text(
            0.5, 0.5, "no convergence records", ha="center", transform=axes[0, 0].transAxes
        )
    fig.suptitle("Loss per epoch: every backend against the float64 reference")
    fig.savefig(path, dpi=100)
    plt.close(fig)
