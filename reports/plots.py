"""The report's figures: per-epoch cost against size, scaling over K, and the
convergence of every variant against the float64 reference (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from reports.frame import PER_EPOCH, Frames


def plot_epoch_cost(frames: Frames, path: Path) -> None:
    """Per-epoch cost against n_samples, log-log, one line per variant@device (and machine)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = frames.results[frames.results["status"] == "agree"]
    data = data[data["problem"].str.startswith("synthetic")]
    fig, ax = plt.subplots(figsize=(8, 5))
    several = data["machine"].nunique() > 1
    styles = ["-", "--", ":", "-."]
    for m, (machine, by_machine) in enumerate(data.groupby("machine", sort=False)):
        for (variant, device, dtype), line in by_machine.groupby(
            ["variant", "device", "dtype"], sort=False
        ):
            line = line.sort_values("n_samples")
            label = f"{variant}@{device} {dtype}" + (f" — {machine}" if several else "")
            ax.errorbar(
                line["n_samples"],
                line[PER_EPOCH],
                yerr=line["per_epoch_iqr_s"] / 2,
                marker="o",
                linestyle=styles[m % len(styles)],
                capsize=3,
                label=label,
            )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(
        "n_samples (synthetic, n_features = "
        + ", ".join(str(int(d)) for d in sorted(data["n_features"].unique()))
        + ")"
    )
    ax.set_ylabel("time per epoch (s), median ± IQR/2")
    ax.set_title("Per-epoch cost of full-batch gradient descent")
    ax.grid(True, which="both", alpha=0.3)
    if data.empty:
        ax.text(
            0.5, 0.5, "no timed synthetic problem in this run", ha="center", transform=ax.transAxes
        )
    else:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


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
            line = line.sort_values("workers")
            label = f"{variant}@{device} {dtype}" + (f" — {machine}" if several else "")
            axes[row][0].plot(line["workers"], line["per_epoch_median_s"], marker="o", label=label)
            axes[row][1].plot(line["workers"], line["efficiency"], marker="o", label=label)
        ks = sorted(part["workers"].unique())
        for ax, what in ((axes[row][0], "time per epoch (s)"), (axes[row][1], "efficiency")):
            ax.set_xticks(ks)
            ax.set_xlabel("K (workers)")
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
    and below it each backend's relative deviation from the reference, so a disagreement
    that the loss curves hide is visible."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    traj = frames.trajectories
    problems = list(dict.fromkeys(traj["problem"])) if not traj.empty else []
    ncols = max(1, len(problems))
    fig, axes = plt.subplots(2, ncols, figsize=(4.2 * ncols, 6.5), squeeze=False, sharex="col")
    for col, problem in enumerate(problems):
        top, bottom = axes[0, col], axes[1, col]
        part = traj[traj["problem"] == problem]
        ref = part.drop_duplicates("epoch")
        top.plot(
            ref["epoch"],
            ref["ref_loss"],
            color="black",
            linewidth=3,
            alpha=0.25,
            label="float64 reference",
        )
        several = part["machine"].nunique() > 1
        for (variant, device, machine), line in part.groupby(
            ["variant", "device", "machine"], sort=False
        ):
            label = f"{variant}@{device}" + (f" ({machine})" if several else "")
            top.plot(line["epoch"], line["loss"], label=label)
            scale = np.maximum(np.abs(line["ref_loss"]), 1e-2 * abs(line["ref_loss"].iloc[0]))
            dev = np.abs(line["loss"] - line["ref_loss"]) / scale
            bottom.plot(line["epoch"], dev.clip(lower=1e-17), label=label)
        bottom.axhline(1e-3, color="red", linestyle="--", linewidth=1, label="float32 tolerance")
        top.set_yscale("log")
        bottom.set_yscale("log")
        top.set_title(problem)
        top.set_ylabel("loss (before the update)")
        bottom.set_ylabel("relative deviation from float64")
        bottom.set_xlabel("epoch")
        top.grid(True, alpha=0.3)
        bottom.grid(True, alpha=0.3)
    if problems:
        axes[0, 0].legend(fontsize=7)
        axes[1, 0].legend(fontsize=7)
    else:
        axes[0, 0].text(
            0.5, 0.5, "no convergence records", ha="center", transform=axes[0, 0].transAxes
        )
    fig.suptitle("Loss per epoch: every backend against the float64 reference")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
