"""The figures (reports/plots.py): framework colours, the tolerance each run was judged
by, panels that wrap, one legend outside the data, and a width a screen shows."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import matplotlib
import matplotlib.figure
import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from reports import plots

CORE = ["numpy-manual", "torch-autograd", "torch-nn", "torch-manual", "torch-compile",
        "jax-grad", "jax-manual", "jax-scan"]  # fmt: skip


def test_a_variant_is_coloured_by_its_framework_and_styled_within_it() -> None:
    styles = plots.variant_styles(CORE)
    for variant, style in styles.items():
        r, g, b, _ = style["color"]
        family = {"numpy": b, "torch": r, "jax": g}[variant.split("-")[0]]
        assert family == max(r, g, b), variant  # blue numpy, red torch, green jax
    torch = [styles[v] for v in CORE if v.startswith("torch")]
    assert len({s["color"] for s in torch}) == 4  # a shade per style
    assert len({(s["linestyle"], s["marker"]) for s in torch}) == 4


def test_the_tolerance_drawn_is_the_one_each_run_was_judged_by() -> None:
    part = pd.DataFrame({"dtype": ["float32", "float32", "float64", "float32"],
                         "loss_rtol": [1e-3, 1e-3, 1e-9, 2e-2]})  # fmt: skip
    assert plots.tolerance_lines(part) == [
        ("float32 tolerance (rtol 0.001)", 1e-3),
        ("float64 tolerance (rtol 1e-09)", 1e-9),
        ("float32 tolerance (rtol 0.02)", 2e-2),
    ]
    assert plots.tolerance_lines(part.assign(loss_rtol=np.nan)) == []
    assert plots.tolerance_lines(part.drop(columns="loss_rtol")) == []


def trajectories(problems: int, rtol: float) -> pd.DataFrame:
    rows = []
    for p in range(problems):
        for variant in CORE:
            for epoch in range(1, 11):
                ref = 10.0 * 0.5**epoch
                rows.append({"problem": f"p{p}", "variant": variant, "device": "cpu",
                             "dtype": "float32", "epoch": epoch, "ref_loss": ref,
                             "loss": ref * (1 + 1e-5), "loss_rtol": rtol,
                             "machine": "m"})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture
def saved(monkeypatch):  # noqa: ANN201
    """The figures the plot functions save, kept open for inspection."""
    figures = []
    real = matplotlib.figure.Figure.savefig

    def savefig(self, path, **kwargs):  # noqa: ANN001, ANN003, ANN202
        figures.append(self)
        return real(self, path, **kwargs)

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    monkeypatch.setattr("matplotlib.pyplot.close", lambda *a: None)
    return figures


def test_convergence_wraps_its_panels_and_keeps_one_legend_outside(tmp_path: Path, saved) -> None:
    path = tmp_path / "convergence.png"
    plots.plot_convergence(SimpleNamespace(trajectories=trajectories(6, 2e-2)), path)
    (fig,) = saved
    width, height = fig.get_size_inches() * fig.dpi
    assert width <= plots.MAX_WIDTH_PX
    assert matplotlib.image.imread(path).shape[1] <= plots.MAX_WIDTH_PX
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert len(titled) == 6 and len({round(ax.get_position().y0, 3) for ax in titled}) == 2
    (legend,) = fig.legends  # one, for the figure, and none inside a panel
    assert not [ax for ax in fig.axes if ax.get_legend() is not None]
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts == ["float64 reference", *(f"{v}@cpu" for v in CORE),
                     "float32 tolerance (rtol 0.02)"]  # fmt: skip
    assert len(texts) <= 10
    deviations = [ax for ax in fig.axes if ax.get_ylabel() == "relative deviation from float64"]
    assert len(deviations) == 6
    for ax in deviations:  # the recorded tolerance, not float32's 1e-3
        assert [line.get_ydata()[0] for line in ax.lines if line.get_color() == "red"] == [2e-2]


def test_epoch_cost_error_bars_are_the_95_percent_intervals(tmp_path: Path, saved) -> None:
    results = pd.DataFrame([
        {"variant": "numpy-manual", "device": "cpu", "dtype": "float32", "machine": "m",
         "status": "agree", "problem": f"synthetic-{n}x16", "n_samples": n, "n_features": 16,
         "per_epoch_median_s": 2e-6 * n, "per_epoch_ci_low_s": 1.5e-6 * n,
         "per_epoch_ci_high_s": 3e-6 * n}
        for n in (100, 10_000)
    ])  # fmt: skip
    plots.plot_epoch_cost(SimpleNamespace(results=results), tmp_path / "e.png")
    (fig,) = saved
    (ax,) = fig.axes
    (bars,) = ax.containers
    segments = bars.lines[2][0].get_segments()
    ends = [v for seg in segments for v in seg[:, 1]]
    assert ends == pytest.approx([1.5e-4, 3e-4, 1.5e-2, 3e-2])  # low and high, at each size
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["numpy-manual@cpu"]


SINGLE_PASS = ["numpy-blocked", "torch-blocked", "jax-blocked"]
PARALLEL = ["torch-ddp", "torch-allreduce", "jax-sharded", "jax-shardmap", "jax-sharded-procs",
            "jax-shardmap-procs"]  # fmt: skip


def every_variant(sizes: tuple[int, ...] = (100, 10_000, 1_000_000)) -> pd.DataFrame:
    """Rows of every variant (data-parallel at K = 1 and 2) on a sweep, as --backends all
    gives them: 8 core, 3 single-pass and 12 data-parallel lines."""
    rows = []
    for n in sizes:
        base = {"device": "cpu", "dtype": "float32", "machine": "m", "status": "agree",
                "problem": f"synthetic-{n}x16", "n_samples": n, "n_features": 16,
                "block_rows": None, "parallel_variant": None, "ranks": None}  # fmt: skip
        for i, v in enumerate(CORE):
            rows.append(base | {"variant": v, "per_epoch_median_s": (i + 1) * 1e-6 * n})
        for i, v in enumerate(SINGLE_PASS):
            rows.append(base | {"variant": v, "per_epoch_median_s": (i + 2) * 1e-6 * n,
                                "block_rows": 4096})  # fmt: skip
        for i, v in enumerate(PARALLEL):
            for k in (1, 2):
                rows.append(base | {"variant": f"{v}-x{k}", "parallel_variant": v,
                                    "ranks": k,
                                    "per_epoch_median_s": (i + 3) * 1e-6 * n / k})  # fmt: skip
    frame = pd.DataFrame(rows)
    return frame.assign(per_epoch_ci_low_s=frame["per_epoch_median_s"] * 0.9,
                        per_epoch_ci_high_s=frame["per_epoch_median_s"] * 1.1)  # fmt: skip


def test_epoch_cost_is_one_panel_per_group_each_with_its_own_short_legend(
    tmp_path: Path, saved
) -> None:
    path = tmp_path / "epoch_cost.png"
    plots.plot_epoch_cost(SimpleNamespace(results=every_variant()), path)
    (fig,) = saved
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["core", "single-pass", "data-parallel (K > 1)"]
    legends = {ax.get_title(): [t.get_text() for t in ax.get_legend().get_texts()]
               for ax in fig.axes}  # fmt: skip
    assert legends["core"] == [f"{v}@cpu" for v in CORE]
    assert legends["single-pass"] == [f"{v}@cpu" for v in SINGLE_PASS]
    # K = 1 is each data-parallel variant's scaling baseline (scaling.png), not drawn here
    assert legends["data-parallel (K > 1)"] == [f"{v}-x2@cpu" for v in PARALLEL]
    assert all(len(texts) <= plots.MOST_LINES for texts in legends.values())
    assert not fig.legends
    # the best of each framework in a panel is drawn bold: numpy-manual, torch-autograd,
    # jax-grad among the core styles (the lowest medians of their frameworks)
    core = fig.axes[0]
    widths = {bars.get_label(): bars.lines[0].get_linewidth() for bars in core.containers}
    bold = {label for label, width in widths.items() if width > 2}
    assert bold == {"numpy-manual@cpu", "torch-autograd@cpu", "jax-grad@cpu"}
    assert matplotlib.image.imread(path).shape[1] <= plots.MAX_WIDTH_PX


def test_time_to_accuracy_starts_each_line_at_its_compile_time(tmp_path: Path, saved) -> None:
    # two variants, 10 epochs each halving the excess; jax-scan pays 0.5 s to compile
    results = pd.DataFrame([
        {"variant": v, "device": "cpu", "dtype": "float32", "machine": "m", "status": "agree",
         "problem": "toy", "per_epoch_median_s": m, "compile_s": c, "fixed_s": 0.0,
         "marginal_epoch_s": m, "target": 1e-2, "time_to_target_s": c + 7 * m}
        for v, c, m in (("numpy-manual", 0.0, 1e-3), ("jax-scan", 0.5, 1e-5))
    ])  # fmt: skip
    traj = pd.DataFrame([
        {"problem": "toy", "variant": v, "device": "cpu", "dtype": "float32", "epoch": e,
         "loss": 1 + 2.0 ** (1 - e), "ref_loss": 1 + 2.0 ** (1 - e), "optimum_loss": 1.0,
         "machine": "m"}
        for v in ("numpy-manual", "jax-scan") for e in range(1, 12)
    ])  # fmt: skip
    path = tmp_path / "t.png"
    plots.plot_time_to_accuracy(SimpleNamespace(results=results, trajectories=traj), path)
    (fig,) = saved
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    jax = lines["jax-scan@cpu"]
    # epoch 1 (the initial loss) is over after compile + fixed + one epoch
    assert jax.get_xdata()[0] == pytest.approx(0.5 + 1e-5)
    assert lines["numpy-manual@cpu"].get_xdata()[1] == pytest.approx(2e-3)
    assert jax.get_ydata()[0] == pytest.approx(1.0)  # the initial excess, as a share of itself
    # the same lines in every panel: one legend for the figure, outside the data
    (legend,) = fig.legends
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts == ["numpy-manual@cpu", "jax-scan@cpu", "target (0.01 of the initial excess)"]
    assert ax.get_legend() is None


def test_convergence_of_many_variants_names_the_frameworks_not_each_variant(
    tmp_path: Path, saved
) -> None:
    many = pd.concat([trajectories(2, 1e-3)] + [
        trajectories(2, 1e-3).assign(variant=v) for v in SINGLE_PASS
    ])  # fmt: skip
    plots.plot_convergence(SimpleNamespace(trajectories=many), tmp_path / "c.png")
    (fig,) = saved
    (legend,) = fig.legends
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts == ["float64 reference", "numpy (2 variants, by shade)",
                     "torch (5 variants, by shade)", "jax (4 variants, by shade)",
                     "float32 tolerance (rtol 0.001)"]  # fmt: skip
