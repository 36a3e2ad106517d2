"""What ``docs/performance.md`` says of the measurements: crossovers, what each variant
pays for, the targets, the isolation effect, the pairs of the single-pass comparison.
Pure functions of the measured tables."""

from __future__ import annotations

import math

import pandas as pd

from reports import frame, write

WITHIN = 1.10  # a variant may cost at most 10% more than its tutorial loop


FLOOR_TARGET = 0.85  # issue 13: the best blocked variant at >= 85% of the one-pass floor


def _median(results: pd.DataFrame, variant: str, n: int) -> float:
    rows = results[
        (results["variant"] == variant)
        & (results["n_samples"] == n)
        & results["problem"].str.startswith("synthetic")
    ]
    return float(rows["per_epoch_median_s"].iloc[0]) if len(rows) else math.nan


def crossovers(results: pd.DataFrame) -> list[str]:
    """Sentences on where the ranking changes along the sweep."""
    sizes = sorted(
        results.loc[results["problem"].str.startswith("synthetic"), "n_samples"].unique()
    )
    lines = []

    def first_size(pred) -> int | None:  # noqa: ANN001
        return next((n for n in sizes if pred(n)), None)

    jax_beats = first_size(
        lambda n: _median(results, "jax-grad", n) < _median(results, "torch-autograd", n)
    )
    if jax_beats is not None:
        lines.append(
            f"- **jax-grad vs torch-autograd:** jax-grad is faster from n_samples = {jax_beats:,}"
            + (" (at every size measured)." if jax_beats == sizes[0] else ".")
        )
    # the variants that dispatch once per epoch (the fused jax loops do not)
    fused = ("numpy-manual", "jax-scan", "jax-blocked")
    loops = [v for v in results["variant"].unique() if v not in fused]

    def numpy_loses(n: int) -> bool:
        return any(_median(results, v, n) < _median(results, "numpy-manual", n) for v in loops)

    stops = first_size(numpy_loses)
    if stops is None:
        lines.append(
            "- **numpy-manual** is the fastest Python-loop variant at every size measured."
        )
    else:
        winners = [
            v for v in loops if _median(results, v, stops) < _median(results, "numpy-manual", stops)
        ]
        lines.append(
            f"- **numpy-manual** is the fastest of the variants that dispatch once per epoch "
            f"below n_samples = {stops:,}; from there {' and '.join(winners)} "
            f"{'is' if len(winners) == 1 else 'are'} faster."
        )
    fastest = {
        n: results[(results["n_samples"] == n) & results["problem"].str.startswith("synthetic")]
        .sort_values("per_epoch_median_s")["variant"]
        .iloc[0]
        for n in sizes
    }
    lines.append(
        "- **Fastest per size:** " + ", ".join(f"{n:,}: {v}" for n, v in fastest.items()) + "."
    )
    return lines


def _fraction(
    results: pd.DataFrame, variant: str, problem: str, column: str = "bandwidth_fraction"
) -> str:
    rows = results[(results["variant"] == variant) & (results["problem"] == problem)]
    if not len(rows) or pd.isna(rows[column].iloc[0]):
        return "an unmeasured fraction"
    return f"{100 * float(rows[column].iloc[0]):.0f}%"


def fixed_cost_lines(results: pd.DataFrame) -> list[str]:
    """jax-scan on toy and toy-bias (the same 4 samples, 100 and 4000 epochs): per-epoch
    medians that differ with the epoch count, marginal costs that should not."""
    rows = results[
        (results["variant"] == "jax-scan") & results["problem"].isin(["toy", "toy-bias"])
    ]
    rows = rows.set_index("problem")
    if not {"toy", "toy-bias"} <= set(rows.index) or rows["marginal_epoch_s"].isna().any():
        return []
    median, marginal = rows["per_epoch_median_s"], rows["marginal_epoch_s"]
    fixed = rows["fixed_s"]

    def spread(s: pd.Series) -> float:
        return float(max(s) / min(s)) if min(s) > 0 else math.inf

    return [
        "- **Fixed cost per run vs cost per epoch (jax-scan, the same 4 samples):** per-epoch "
        f"median {write.human_time(median['toy'])} on toy (100 epochs) and "
        f"{write.human_time(median['toy-bias'])} on toy-bias (4000 epochs), "
        f"{spread(median):.1f}× apart; the cost model's marginal cost per epoch "
        f"{write.human_time(marginal['toy'])} and {write.human_time(marginal['toy-bias'])} "
        f"({spread(marginal):.1f}× apart), with a fixed cost per run of "
        f"{write.human_time(fixed['toy'])} and {write.human_time(fixed['toy-bias'])} "
        "(dispatch, fetching the losses and parameters) that a short run divides among "
        "few epochs."
    ]


def pays_for(results: pd.DataFrame) -> list[str]:
    """What each style costs per epoch, from differences between variants on one problem."""

    def cost(variant: str, problem: str) -> float:
        rows = results[(results["variant"] == variant) & (results["problem"] == problem)]
        return float(rows["per_epoch_median_s"].iloc[0]) if len(rows) else math.nan

    def diff(a: str, b: str, problem: str) -> str:
        return write.human_time(cost(a, problem) - cost(b, problem))

    big = "synthetic-1000000x16"
    compile_rows = results[(results["variant"] == "torch-compile") & (results["problem"] == big)]
    saved = cost("torch-autograd", big) - cost("torch-compile", big)
    break_even = (
        f" At 1 000 000 × 16 it saves {write.human_time(saved)} per epoch over torch-autograd, "
        f"so its {write.human_time(float(compile_rows['compile_s'].iloc[0]))} of compilation pays "
        f"off after about {float(compile_rows['compile_s'].iloc[0]) / saved:.0f} epochs."
        if len(compile_rows) and saved > 0
        else ""
    )
    return [
        f"- **numpy-manual** pays the Python interpreter and about ten NumPy calls per epoch: "
        f"{write.human_time(cost('numpy-manual', 'toy-bias'))} per epoch on 4 samples, where the "
        "arithmetic itself is nanoseconds. At large N it is bandwidth-bound like the rest.",
        f"- **torch-autograd** pays for autograd: building and walking the graph costs "
        f"{diff('torch-autograd', 'torch-manual', 'toy-bias')} per epoch over torch-manual "
        "(the same arithmetic without autograd) on toy-bias.",
        f"- **torch-nn** adds module calls, MSELoss and the optimizer: "
        f"{diff('torch-nn', 'torch-autograd', 'toy-bias')} per epoch over torch-autograd "
        "on toy-bias.",
        "- **torch-manual** pays only torch's per-op dispatch: "
        f"{write.human_time(cost('torch-manual', 'toy-bias'))} per epoch on toy-bias for the "
        "nine tensor operations of an epoch (mv, add, sub, dot, div, mv, sub, sum, sub).",
        "- **torch-compile** pays one call of a compiled graph per epoch (guards and "
        f"launch: {write.human_time(cost('torch-compile', 'toy-bias'))} per epoch on toy-bias), "
        f"and runs its generated kernel at {_fraction(results, 'torch-compile', big)} of the "
        "measured copy bandwidth at 1 000 000 × 16 (counting two passes over X), "
        f"{_fraction(results, 'torch-compile', big, 'floor_fraction')} of the one-pass "
        "floor (its generated C++ has two loops over X)." + break_even,
        f"- **jax-grad** pays one jit dispatch per epoch: "
        f"{diff('jax-grad', 'jax-scan', 'toy-bias')} per epoch over the fused jax-scan on "
        "toy-bias. Under jit the autodiff gradient is traced once and compiles to the same "
        "arithmetic as the hand-written one: jax-grad and jax-manual differ by "
        f"{diff('jax-grad', 'jax-manual', 'toy-bias')} per epoch on toy-bias and "
        f"{diff('jax-grad', 'jax-manual', big)} at 1 000 000 × 16, within the noise of "
        "a per-epoch dispatch.",
        "- **jax-scan** compiles the whole loop once: no per-epoch dispatch at all, so on tiny "
        "problems it is orders of magnitude ahead, and at large N it is bandwidth-bound.",
    ]


def targets(frames: frame.Frames, side: pd.DataFrame) -> list[str]:
    """The three targets of this document, checked against this run."""
    results = frames.results[frames.results["dtype"] == "float32"]
    lines = []
    toy = results[(results["variant"] == "jax-scan") & (results["problem"] == "toy")]
    if len(toy):
        cost = float(toy["per_epoch_median_s"].iloc[0])
        mark = "met" if cost < 0.5e-6 else "NOT met"
        lines.append(
            f"- `toy`, jax-scan under 0.5 µs per epoch: {write.human_time(cost)} ({mark})."
        )
    big = results[results["n_samples"] == 1_000_000].sort_values("per_epoch_median_s")
    if len(big) and not big["bandwidth_fraction"].isna().all():
        best = big.iloc[0]
        frac = float(best["bandwidth_fraction"])
        mark = "met" if frac >= 0.5 else "NOT met"
        lines.append(
            f"- 1 000 000 × 16, the fastest variant at ≥ 50% of the measured bandwidth: "
            f"{best['variant']} at {100 * frac:.0f}% ({best['achieved_gbps']:.1f} GB/s) ({mark})."
        )
    if len(side):
        lines.append(tutorial_target(side))
    return lines


TUTORIAL_TARGET = "- No variant more than 10% slower than its tutorial loop"


def tutorial_target(side: pd.DataFrame) -> str:
    """The target line of the side by side: the worst median ratio, with its interval."""
    worst = side.sort_values("ratio").iloc[-1]
    mark = "met" if worst["ratio"] <= WITHIN else "NOT met"
    interval = (
        f" [{worst['ratio_ci_low']:.2f}, {worst['ratio_ci_high']:.2f}]"
        if "ratio_ci_low" in worst
        else ""
    )
    return (
        f"{TUTORIAL_TARGET}: worst {worst['variant']} on {worst['problem']}, "
        f"{worst['ratio']:.2f}×{interval} ({mark})."
    )


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
        "The same quick run twice, each timed in "
        f"{processes} fresh processes per variant (`--processes {processes}`): each variant "
        "in a worker process of its own (`gdbench run`, the default), and every variant in "
        "one process (`--isolate none`, what a plain `pytest suites/bench` run does). Per-epoch "
        "medians of the pooled rounds; `ratio` is alone over together; the last two "
        "columns give the range of the processes' own medians. A difference counts as an "
        "effect of isolation (⚠) only where those two ranges do not overlap: a fresh "
        "process alone can move a median that far. "
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


def blocked_targets(table: pd.DataFrame) -> list[str]:
    """The issue-13 target per framework, for the Targets section: judged against the
    floor the issue defines, one read of X itself (the stricter of the two where the
    cache holds X); the fraction of the memory floor is given beside it."""
    lines = []
    for framework, best, b in pairs(table):
        ok = b["per_epoch_s"] < best["per_epoch_s"] and b["floor_fraction"] >= FLOOR_TARGET
        fraction = b.get("memory_floor_fraction", math.nan)
        memory = "" if pd.isna(fraction) else f" ({100 * fraction:.0f}% of the memory floor)"
        lines.append(
            f"- 1 000 000 × 16, {b['variant']} faster than the best two-pass {framework} "
            f"variant and at ≥ {100 * FLOOR_TARGET:.0f}% of the one-pass floor (reading X "
            f"itself): {write.human_time(b['per_epoch_s'])} against {best['variant']}'s "
            f"{write.human_time(best['per_epoch_s'])}, {100 * b['floor_fraction']:.0f}% of "
            f"the floor{memory} ({'met' if ok else 'NOT met'}; section below)."
        )
    return lines
