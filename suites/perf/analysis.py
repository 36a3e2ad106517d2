"""What ``docs/performance.md`` says of the measurements: the fastest variant per size,
where a ranking changes, what each variant pays for, the isolation effect, the pairs of
the single-pass comparison. Pure functions of the measured tables: every sentence they
return is computed from them, or says how to read the table it stands beside."""

from __future__ import annotations

import math

import pandas as pd

from reports import write
from reports.frame import PER_EPOCH

WITHIN = 1.10  # the tutorial section's mark: a harness that may cost more than 10%


BIG = "synthetic-1000000x16"  # the largest problem of the sweep


def _median(results: pd.DataFrame, variant: str, n: int) -> float:
    rows = results[
        (results["variant"] == variant)
        & (results["n_samples"] == n)
        & results["problem"].str.startswith("synthetic")
    ]
    return float(rows[PER_EPOCH].iloc[0]) if len(rows) else math.nan


def _sizes_text(chosen: list[int], sizes: list[int]) -> str:
    """Where something holds, of the sizes measured: every size, none, from one size on,
    or the list."""
    if chosen == sizes:
        return "at every size measured"
    if not chosen:
        return "at no size measured"
    if chosen == sizes[sizes.index(chosen[0]) :]:
        return f"from n_samples = {chosen[0]:,} on"
    return "at n_samples = " + ", ".join(f"{n:,}" for n in chosen)


def fastest_text(rows: pd.DataFrame) -> str:
    """The fastest of one problem's rows as the report's cost table marks it (column
    ``fastest``): the bold one, or every row of a tie (≈), or the fastest median left
    untested (†)."""
    several = rows["device"].nunique() > 1

    def name(r: pd.Series) -> str:
        return f"{r['variant']}@{r['device']}" if several else str(r["variant"])

    marked = rows[rows["fastest"].isin(["yes", "tie", "untested"])].sort_values(PER_EPOCH)
    if marked.empty:
        return "no valid timing"
    tied = marked[marked["fastest"] == "tie"]
    if len(tied) > 1:
        return "a tie between " + ", ".join(name(r) for _, r in tied.iterrows()) + " (≈)"
    best = marked.iloc[0]
    return name(best) + (" (untested, †)" if best["fastest"] == "untested" else "")


def crossovers(results: pd.DataFrame) -> list[str]:
    """Sentences on the ranking along the sweep, from the run's medians and the report's
    marks of the fastest."""
    synthetic = results[results["problem"].str.startswith("synthetic")]
    sizes = sorted(int(n) for n in synthetic["n_samples"].unique())
    lines = [
        "- **Fastest per size** (as the cost table below marks it: bold, or ≈ for a tie): "
        + "; ".join(f"{n:,}: {fastest_text(synthetic[synthetic['n_samples'] == n])}" for n in sizes)
        + "."
    ]
    both = [
        n
        for n in sizes
        if not math.isnan(_median(results, "jax-grad", n) + _median(results, "torch-autograd", n))
    ]
    if both:
        below = [
            n for n in both
            if _median(results, "jax-grad", n) < _median(results, "torch-autograd", n)
        ]  # fmt: skip
        lines.append(
            "- **jax-grad vs torch-autograd:** jax-grad's median is the lower "
            + _sizes_text(below, both)
            + "."
        )
    # the variants that dispatch once per epoch (the fused jax loops do not)
    loops = [v for v in results["variant"].unique() if v not in ("jax-scan", "jax-blocked")]

    def lowest(n: int) -> str | None:
        medians = {v: _median(results, v, n) for v in loops}
        medians = {v: m for v, m in medians.items() if not math.isnan(m)}
        return min(medians, key=medians.__getitem__) if medians else None

    best = {n: v for n in sizes if (v := lowest(n)) is not None}
    if best:
        lines.append(
            "- **Lowest median of the variants that dispatch once per epoch** (all but "
            "jax-scan and jax-blocked): " + "; ".join(f"{n:,}: {v}" for n, v in best.items()) + "."
        )
    return lines


def fixed_cost_lines(results: pd.DataFrame) -> list[str]:
    """jax-scan on toy and toy-bias (the same samples, different epoch counts): per-epoch
    medians, marginal costs per epoch and fixed costs per run of the cost model."""
    rows = results[
        (results["variant"] == "jax-scan") & results["problem"].isin(["toy", "toy-bias"])
    ]
    rows = rows.set_index("problem")
    if not {"toy", "toy-bias"} <= set(rows.index) or rows["marginal_epoch_s"].isna().any():
        return []
    median, marginal = rows[PER_EPOCH], rows["marginal_epoch_s"]
    fixed, epochs = rows["fixed_s"], rows["epochs"]

    def spread(s: pd.Series) -> float:
        return float(max(s) / min(s)) if min(s) > 0 else math.inf

    return [
        f"- **jax-scan on toy and toy-bias** ({int(rows['n_samples'].iloc[0])} samples each, "
        f"{int(epochs['toy'])} and {int(epochs['toy-bias'])} epochs): per-epoch median "
        f"{write.human_time(median['toy'])} and {write.human_time(median['toy-bias'])} "
        f"({spread(median):.1f}× apart); the cost model's marginal cost per epoch "
        f"{write.human_time(marginal['toy'])} and {write.human_time(marginal['toy-bias'])} "
        f"({spread(marginal):.1f}× apart) and fixed cost per run "
        f"{write.human_time(fixed['toy'])} and {write.human_time(fixed['toy-bias'])}."
    ]


# (variant, the variant it is set against, problem, what the first has that the second
# has not): the rows of the "what each variant pays for" table
PAYS_FOR = (
    ("torch-autograd", "torch-manual", "toy-bias", "autograd"),
    ("torch-nn", "torch-autograd", "toy-bias", "nn.Module, MSELoss and the optimizer"),
    ("jax-grad", "jax-scan", "toy-bias", "a jit dispatch per epoch"),
    ("jax-grad", "jax-manual", "toy-bias", "jax.grad in place of the hand-written gradient"),
    ("jax-grad", "jax-manual", BIG, "jax.grad in place of the hand-written gradient"),
)


def pays_for(results: pd.DataFrame) -> list[str]:
    """What each style costs per epoch: differences of medians between two variants on one
    problem (a table), and when torch-compile's compilation is paid back."""

    def cost(variant: str, problem: str) -> float:
        rows = results[(results["variant"] == variant) & (results["problem"] == problem)]
        return float(rows[PER_EPOCH].iloc[0]) if len(rows) else math.nan

    cells = []
    for variant, against, problem, what in PAYS_FOR:
        mine, theirs = cost(variant, problem), cost(against, problem)
        if math.isnan(mine) or math.isnan(theirs):
            continue
        cells.append({
            "variant": variant, "against": against, "what the variant adds": what,
            "problem": problem, "variant's median": write.human_time(mine),
            "against's median": write.human_time(theirs),
            "difference per epoch": write.human_time(mine - theirs),
        })  # fmt: skip
    lines = (
        [
            "Each row: the per-epoch median of a variant minus that of a variant without "
            "what the third column names, on the same problem of the run below.",
            "",
            pd.DataFrame(cells).to_markdown(index=False),
        ]
        if cells
        else ["Not measured."]
    )
    compiled = results[(results["variant"] == "torch-compile") & (results["problem"] == BIG)]
    saved = cost("torch-autograd", BIG) - cost("torch-compile", BIG)
    if len(compiled) and saved > 0 and pd.notna(compiled["compile_s"].iloc[0]):
        compile_s = float(compiled["compile_s"].iloc[0])
        lines += [
            "",
            f"- **torch-compile at {BIG}:** {write.human_time(saved)} per epoch less than "
            f"torch-autograd; its {write.human_time(compile_s)} of compilation is paid back "
            f"after about {compile_s / saved:.0f} epochs.",
        ]
    return lines


def isolation_effect(alone: pd.DataFrame, together: pd.DataFrame) -> pd.DataFrame:
    """Each case's per-epoch median measured in a worker of its own (``alone``) and in one
    process with every other variant (``together``), from two runs' results, each timed
    in several processes (``--processes K``).

    The two differ beyond the noise (``beyond_noise``) only where the ranges of their
    process medians do not overlap: a difference that a fresh process can produce by
    itself (memory layout, allocator state, which core) is no effect of isolation.
    """
    keys = ["problem", "n_samples", "n_features", "variant", "device", "dtype"]
    cols = [*keys, "per_epoch_median_s", "per_epoch_process_min_s", "per_epoch_process_max_s"]
    ok = [f[f["status"] == "agree"][cols] for f in (alone, together)]
    both = ok[0].merge(ok[1], on=keys, suffixes=("_alone", "_together"))
    out = both[keys].copy()
    out["alone"] = both["per_epoch_median_s_alone"]
    out["together"] = both["per_epoch_median_s_together"]
    out["ratio"] = out["alone"] / out["together"]
    for side in ("alone", "together"):
        low = both[f"per_epoch_process_min_s_{side}"].fillna(out[side])
        high = both[f"per_epoch_process_max_s_{side}"].fillna(out[side])
        out[f"{side}_range"] = list(zip(low, high, strict=True))
    out["beyond_noise"] = [
        a[1] < b[0] or b[1] < a[0]
        for a, b in zip(out["alone_range"], out["together_range"], strict=True)
    ]
    return out.reset_index(drop=True)


def isolation_lines(effect: pd.DataFrame, processes: int) -> list[str]:
    """The isolation section: a sentence from the numbers, then the table."""
    if effect.empty:
        return ["No case was measured in both runs."]
    worst = effect.iloc[(effect["ratio"] - 1).abs().argmax()]
    beyond = effect[effect["beyond_noise"]]
    flags = ["" if not b else " ⚠" for b in effect["beyond_noise"]]
    shapes = zip(effect["problem"], effect["n_samples"], effect["n_features"], strict=True)
    labels = [write.problem_label(p, n, d) for p, n, d in shapes]

    def span(pair: tuple[float, float]) -> str:
        return f"{write.human_time(pair[0])} – {write.human_time(pair[1])}"

    table = effect.assign(
        problem=labels,
        alone=effect["alone"].map(write.human_time),
        together=effect["together"].map(write.human_time),
        ratio=[f"{r:.2f}{flag}" for r, flag in zip(effect["ratio"], flags, strict=True)],
        **{
            "processes alone": effect["alone_range"].map(span),
            "processes together": effect["together_range"].map(span),
        },
    )[["problem", "variant", "alone", "together", "ratio", "processes alone",
       "processes together"]]  # fmt: skip
    return [
        "Each row: a variant's per-epoch median (pooled rounds) in the same quick run made "
        f"twice, each variant timed in {processes} fresh processes (`--processes "
        f"{processes}`), alone in a worker process of its own (`gdbench run`, the default) "
        "and together with every other variant in one process (`--isolate none`); `ratio` "
        "is alone over together, the last two columns the range of the processes' own "
        "medians, and ⚠ marks a ratio where those two ranges do not overlap.",
        "",
        f"Median |ratio − 1|: {100 * float((effect['ratio'] - 1).abs().median()):.1f}%; "
        f"largest: {worst['variant']} on {worst['problem']}, {worst['ratio']:.2f}. "
        + (
            "No difference goes beyond the spread between processes."
            if beyond.empty
            else f"{len(beyond)} of {len(effect)} differences go beyond the spread between "
            "processes (⚠)."
        ),
        "",
        table.to_markdown(index=False),
    ]


def pairs(table: pd.DataFrame) -> list[tuple[str, pd.Series, pd.Series]]:
    """(framework, its fastest two-pass row, its blocked row) for every framework of a
    blocked comparison that has both."""
    pairs = []
    for framework, part in table.groupby("framework", sort=False):
        two = part[part["form"] == "two-pass"].sort_values("per_epoch_s")
        blk = part[part["form"] == "blocked"]
        if not two.empty and not blk.empty:
            pairs.append((str(framework), two.iloc[0], blk.iloc[0]))
    return pairs
