"""The ``gdbench`` command: run, check, report, show, compare, list, rank.

``run`` and ``check`` measure each variant in a fresh worker process of its own, one
after another (``suites/run/workers.py``): frameworks never share an allocator, threads or a
GPU, a crash or hang ends one worker only, and every finished case is on disk as it
finishes. The report is built from what the workers wrote.

Exit status: 0 when every selected backend agreed with the reference; 1 when a backend
diverged, disagreed or failed, a worker died or timed out, or nothing ran on a device of
``--devices``; 2 for bad input (one line on stderr, no traceback);
130 when interrupted. ``compare`` exits 1 only under ``--fail-slower PCT``, when a case is
significantly slower by more than PCT percent.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

from backends import (
    DEFAULT_GROUP,
    DEVICES,
    DTYPES,
    GROUPS,
    MATMUL_PRECISIONS,
    PLUGIN_GROUP,
    closest,
    devices_of,
    plugin_variants,
)
from suites.config import (
    OPTIONS,
    PROBLEM_CHOICES,
    ConfigError,
    RunConfig,
    parse,
    positive_int,
    positive_number,
)
from suites.machine import usable_cores
from suites.records import RECORDS_FILE
from suites.run import export, folder, paired, workers
from suites.run.folder import UsageError
from suites.run.limits import check_memory, check_ranks

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _Formatter(argparse.HelpFormatter):
    """argparse's help, without breaking a variant's name at its hyphen."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        import textwrap

        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:  # argparse would print usage + message, exit 2
        raise UsageError(message)


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--problems",
        help=f"comma list of {', '.join(PROBLEM_CHOICES)} or all "
        "(default: all; 'sweep' is the synthetic problems of --sizes)",
    )
    p.add_argument(
        "--backends",
        metavar="NAMES",
        help="comma list of variants and groups, or all (default: core). Groups: "
        + "; ".join(f"{g}: {', '.join(v)}" for g, v in GROUPS.items())
        + f"; {PLUGIN_GROUP}: the variants of other packages (installed here: "
        + (", ".join(plugin_variants()) or "none")
        + "; docs/plugins.md). all: every built-in variant and plugin",
    )
    p.add_argument(
        "--devices",
        metavar="DEVICES",
        help=f"comma list of {', '.join(DEVICES)}, or all (default: cpu; an absent "
        "device's variants are listed as unavailable, and the run exits 1 if nothing ran "
        "on a device named here)",
    )
    p.add_argument(
        "--sizes", help="n_samples of the sweep (default: 100,10000,1000000; --quick: 100,10000)"
    )
    p.add_argument("--features", help="n_features of the sweep (default: 16)")
    p.add_argument(
        "--data",
        metavar="PATH",
        help="your own problem: a .npz (arrays X and y), .csv or .parquet file (with "
        "--target-column), trained with a bias, lr from its Hessian unless --lr, 100 epochs "
        "unless --epochs; the run is this file alone unless --problems adds others",
    )
    p.add_argument(
        "--target-column",
        metavar="COLUMN",
        help="the column of a --data table to predict; every other column is a feature",
    )
    p.add_argument(
        "--standardize",
        action="store_true",
        help="scale the --data features to zero mean and unit variance (default: off, the "
        "data as it is)",
    )
    p.add_argument("--epochs", help="epochs of every problem (default: each problem's own)")
    p.add_argument("--lr", help="learning rate of every problem (default: each problem's own)")
    p.add_argument("--dtype", metavar="{" + ",".join(DTYPES) + "}", help="default: float32")
    p.add_argument("--threads", help="intra-op threads for every framework (default: all cores)")
    p.add_argument("--seed", help="seed of the synthetic data (default: 0)")
    p.add_argument(
        "--matmul-precision",
        metavar="{" + ",".join(MATMUL_PRECISIONS) + "}",
        help="float32 products in full float32 (default, every framework alike) or tf32 "
        "(tensor cores of Ampere+ GPUs; judged with a looser stated tolerance)",
    )
    p.add_argument(
        "--block-rows",
        help="rows per block of the single-pass variants (*-blocked) (default: the most, "
        "a power of two, whose block of X fits in half a core's L2 cache)",
    )
    p.add_argument(
        "--ranks",
        metavar="K,...",
        help="comma list of K, the ranks of the data-parallel variants (torch-ddp, "
        "torch-allreduce, jax-sharded, jax-shardmap, jax-sharded-procs, "
        "jax-shardmap-procs): each K a case (default: 1,2 on 2+ cores, else 1)",
    )
    # the earlier name of --ranks, kept so that scripts go on working; warns once
    p.add_argument("--workers", dest="old_workers", help=argparse.SUPPRESS)
    p.add_argument(
        "--shard-rows",
        help="a data-parallel case runs where each of its K ranks gets at least this many "
        "rows; smaller problems are listed as not run (default: 1000)",
    )
    p.add_argument(
        "--target",
        help="time to accuracy: reached at the first epoch whose excess loss over the "
        "least-squares optimum is at most this share of the initial excess (default: 1e-6)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="small sizes, fewer and shorter rounds (under a minute on 2 cores)",
    )
    p.add_argument("--out", type=Path, help="output folder (default: a new results/<UTC time>/)")
    p.add_argument(
        "--isolate",
        metavar="{" + ",".join(workers.ISOLATION) + "}",
        help="worker processes: one per variant (default), per framework, or none "
        "(everything in one process)",
    )
    p.add_argument(
        "--timeout",
        help=f"seconds a worker may run before it is killed and its unfinished cases "
        f"fail (default: {workers.DEFAULT_TIMEOUT_S:g})",
    )


def _version() -> str:
    """The installed distribution's version (and "unknown" where it is not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("gdbench")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="gdbench",
        description="Linear regression by full-batch gradient descent in NumPy, PyTorch and "
        "JAX: does every variant compute the same thing, and which is fastest here?",
        epilog="exit status: 0 all agree; 1 a variant diverged, disagreed or failed, a worker "
        "died or timed out, or nothing ran on a device of --devices (compare: a regression "
        "under --fail-slower); 2 bad input; 130 interrupted",
    )
    parser.add_argument("--version", action="version", version=f"gdbench {_version()}")
    sub = parser.add_subparsers(
        dest="command", metavar="{run,check,report,show,compare,list,rank}", parser_class=_Parser
    )
    run = sub.add_parser("run", help="convergence check + per-epoch cost, then the report")
    _add_run_options(run)
    run.add_argument(
        "--processes",
        help="fresh processes per variant whose rounds are pooled (default: 1)",
    )
    run.add_argument(
        "--budget",
        metavar="SECONDS",
        help="per problem whose fastest variants' intervals overlap: seconds of alternating "
        "rounds between them until one is ahead or they are equal within 1%% "
        f"(default: {paired.BUDGET_S[False]:g}, {paired.BUDGET_S[True]:g} with --quick; "
        "0: none)",
    )
    check = sub.add_parser("check", help="convergence only (no timing); exit 0 iff all agree")
    _add_run_options(check)
    report = sub.add_parser("report", help="rebuild every report file from saved JSON")
    report.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="benchmark.json / convergence.json / records.jsonl, or a run folder",
    )
    report.add_argument(
        "--out",
        type=Path,
        help="output folder, never one that holds an input (default: a new "
        "results/<UTC time>-report/)",
    )
    show = sub.add_parser("show", help="print a finished run's summary again")
    show.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder")
    compare = sub.add_parser(
        "compare",
        help="NEW/BASE of every case's per-epoch median with its 95%% interval, as "
        "Markdown; a regression gate with --fail-slower",
    )
    for name, what in (("base", "the reference run"), ("new", "the run to judge")):
        compare.add_argument(
            name,
            type=Path,
            metavar=name.upper(),
            help=f"{what}: a run folder (its records.jsonl, else its benchmark.json) or a "
            "benchmark.json",
        )
    compare.add_argument(
        "--fail-slower",
        metavar="PCT",
        help="exit 1 if a case is significantly slower (its interval of NEW/BASE above 1) "
        "and NEW/BASE is above 1 + PCT/100 (default: exit 0 whatever the verdicts)",
    )
    compare.add_argument(
        "--force",
        action="store_true",
        help="compare runs from different machines (refused without it; a warning heads "
        "the output)",
    )
    compare.add_argument("--out", type=Path, metavar="FILE", help="also write the Markdown to FILE")
    rank = sub.add_parser(
        "rank",
        help="serve as a rank of a data-parallel run whose rank 0 is another host's "
        "`gdbench run` (torch: torchrun's MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE; jax: "
        "JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID)",
    )
    rank.add_argument("--framework", default="torch",
                      help="torch (torch-ddp, torch-allreduce; default) or jax "
                      "(jax-sharded-procs, jax-shardmap-procs)")  # fmt: skip
    rank.add_argument("--device", default="cpu", help="cpu (gloo, default) or cuda (NCCL)")
    listing = sub.add_parser(
        "list",
        help="every variant and device, available or not, and why; the variants of other "
        "packages with their distribution, and those refused",
    )
    listing.add_argument(
        "--require",
        metavar="DEVICE",
        help="exit 1 unless every built-in variant with a form on DEVICE (cpu, cuda) can run there",
    )
    return parser


def _count(n: int, what: str) -> str:
    return f"{n} {what}" + ("" if n == 1 else "s")


def _config(args: argparse.Namespace) -> RunConfig:
    if args.command == "check" and args.target is not None:
        raise UsageError(
            "--target: time to accuracy needs the timing of gdbench run; check does not "
            "time (use it with run)"
        )
    if args.old_workers is not None:
        if args.ranks is not None:
            raise UsageError("--workers is the old name of --ranks: give one of them")
        print("gdbench: --workers is now called --ranks (the data-parallel K); "
              "--workers still works but will go", file=sys.stderr)  # fmt: skip
        args.ranks = args.old_workers
    try:
        cfg = parse(
            **{name: getattr(args, name) for name in OPTIONS}, quick=args.quick,
            standardize=args.standardize,
            default_backends=GROUPS[DEFAULT_GROUP],
        )  # fmt: skip
    except ConfigError as err:
        raise UsageError(str(err)) from None
    cores = len(usable_cores())
    if args.threads is not None and cfg.threads > cores:
        raise UsageError(
            f"--threads {cfg.threads}: this process may use {cores} cores; choose --threads "
            f"up to {cores} (more threads than cores would time the scheduler)"
        )
    return cfg


def _isolation(args: argparse.Namespace) -> tuple[str, int, float]:
    """--isolate, --processes and --timeout, validated."""
    isolate = args.isolate or "variant"
    if isolate not in workers.ISOLATION:
        raise UsageError(
            f"--isolate: unknown value '{isolate}'{closest(isolate, workers.ISOLATION)}; "
            f"choose from: {', '.join(workers.ISOLATION)}"
        )
    processes = 1
    timeout = workers.DEFAULT_TIMEOUT_S
    try:
        if getattr(args, "processes", None) is not None:
            processes = positive_int("--processes", args.processes)
        if args.timeout is not None:
            timeout = positive_number("--timeout", args.timeout, "a positive number of seconds")
    except ConfigError as err:
        raise UsageError(str(err)) from None
    return isolate, processes, timeout


def _budget(args: argparse.Namespace) -> float | None:
    """--budget, validated (None: the default for --quick or not)."""
    value = getattr(args, "budget", None)
    if value is None:
        return None
    try:
        budget = float(value)
    except ValueError:
        budget = -1.0
    if not (budget >= 0 and budget < float("inf")):
        raise UsageError(
            f"--budget: '{value}' is not a number of seconds; give 0 or more (0: no "
            "alternating rounds)"
        )
    return budget


def _run_suites(args: argparse.Namespace, timing: bool) -> int:
    cfg = _config(args)
    isolate, processes, timeout = _isolation(args)
    budget = _budget(args)
    if timing and os.environ.get("TOX_PARALLEL_ENV"):
        raise UsageError(
            "benchmarks must not run in parallel tox environments (timings would "
            "interfere): run `tox -e bench` on its own, without -p"
        )
    try:
        check_memory(cfg, timing=timing, isolate=isolate)
        check_ranks(cfg)
    except ConfigError as err:
        raise UsageError(str(err)) from None
    out = folder.out_folder(args.out)
    folder.claim(out)
    jobs = workers.plan(cfg, isolate, processes, timing)
    what = "the convergence check, then the per-epoch cost" if timing else "the convergence check"
    shapes = cfg.problem_shapes()
    here = [v for v in cfg.backends if any(d in devices_of(v) for d in cfg.devices)]
    print(
        f"gdbench {args.command}: {_count(len(here), 'variant')} × "
        f"{_count(len(shapes), 'problem')} on "
        f"{', '.join(cfg.devices)}: {what}; {sum(j.items for j in jobs)} cases in "
        f"{len(jobs)} worker processes, one at a time (--isolate {isolate}"
        + (f", --processes {processes}" if timing else "")
        + f")\nresults in {out}",
        flush=True,
    )
    manager = workers.Manager(cfg, out, timing=timing, timeout=timeout, isolate=isolate,
                              processes=processes, budget=budget)  # fmt: skip
    rc = manager.run(jobs)
    export.write_json(out, timing)
    if manager.stop.signalled:
        return _partial(out, timing)
    return _report_run(out, timing, rc, cfg.devices)


def _report_run(out: Path, timing: bool, rc: int, devices: tuple[str, ...] = ()) -> int:
    from reports import frame, write

    try:
        frames = frame.load([folder.run_source(out)])
    except (frame.ReportInputError, UsageError) as err:
        print(f"gdbench: no report: {err}", file=sys.stderr)
        return EXIT_FAILED
    write.write_all(frames, out, timing=timing)
    if frames.convergence.empty and frames.results.empty:
        reasons = "; ".join(
            f"{r['variant']}@{r['device']}: {r['reason']}" for _, r in frames.unavailable.iterrows()
        )
        print(
            "gdbench: nothing ran: no selected backend can run on the selected devices here"
            + (f" ({reasons})" if reasons else " (see `gdbench list`)"),
            file=sys.stderr,
        )
        return EXIT_FAILED
    if timing and not frames.results.empty:
        print("\n" + write.cost_table_text(frames))
    conv = frames.convergence
    bad = conv[conv["status"] != "agree"] if not conv.empty else conv
    if not bad.empty:
        print("\nnot in agreement with the float64 reference:")
        for _, row in bad.iterrows():
            print(f"  {row['variant']}@{row['device']} on {row['problem']}: {row['verdict']}")
    if not frames.failures.empty:
        print("\nfailed with an error:")
    for _, row in frames.failures.iterrows():
        print(f"  failed: {row['variant']}@{row['device']} on {row['problem']}: {row['message']}")
    print(f"\nreport: {out / 'report.md'}")
    # A device asked for where nothing ran is a failed run, not a quiet skip: a GPU job
    # must not pass on a machine whose GPU cannot be used.
    idle = [d for d in devices if d not in set(frames.convergence.get("device", []))]
    for device in idle:
        why = frames.unavailable[frames.unavailable["device"] == device]
        reasons = "; ".join(f"{r['variant']}: {r['reason']}" for _, r in why.iterrows())
        reasons = reasons or "no selected variant has a form there"
        print(f"gdbench: nothing ran on {device}: {reasons}", file=sys.stderr)
    return EXIT_OK if rc == 0 and not idle else EXIT_FAILED


def _partial(out: Path, timing: bool) -> int:
    """After an interruption: say what finished, and report on it, marked partial."""
    from reports import frame, write

    records = out / RECORDS_FILE
    try:
        frames = frame.load([records])
    except (frame.ReportInputError, OSError):
        print(f"\ngdbench: interrupted before any case finished ({out})", file=sys.stderr)
        return EXIT_INTERRUPTED
    done = len(frames.convergence) + len(frames.results)
    write.write_all(frames, out, timing=timing and not frames.results.empty)
    print(
        f"\ngdbench: interrupted; {done} finished cases are in {records}; partial report: "
        f"{out / 'report.md'}",
        file=sys.stderr,
    )
    return EXIT_INTERRUPTED


def _report(args: argparse.Namespace) -> int:
    from reports import frame, write

    files = []
    for path in args.files:
        if path.is_dir():  # a run folder: its JSON, or the records of an interrupted run
            files.append(folder.run_source(path))
        else:
            files.append(path)
    try:
        frames = frame.load(files)
    except frame.ReportInputError as err:
        raise UsageError(str(err)) from None
    out = report_folder(args.out, args.files)
    try:
        written = write.write_all(frames, out, timing=not frames.results.empty)
    except OSError as err:
        raise UsageError(f"--out {out}: cannot write there ({err.strerror})") from None
    for path in written:
        print(path)
    return EXIT_OK


def report_folder(out: Path | None, inputs: list[Path]) -> Path:
    """Where ``gdbench report`` writes: ``--out``, never a folder that holds one of its
    inputs (its files would be replaced), or else a new ``results/<UTC time>-report/``."""
    if out is None:
        return folder.new_run_folder(Path("results"), suffix="-report")
    homes = {(p if p.is_dir() else p.parent).resolve() for p in inputs}
    if out.resolve() in homes:
        raise UsageError(
            f"--out {out}: holds an input of this report, whose files a report would "
            "replace; choose another folder (or leave --out out for a new one)"
        )
    return out


def _show(run_dir: Path) -> int:
    """``gdbench show RUN_DIR``: a finished run's answer again, as ``run`` printed it."""
    from reports import frame, write

    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such run folder")
    try:
        frames = frame.load([folder.run_source(run_dir)])
    except frame.ReportInputError as err:
        raise UsageError(str(err)) from None
    stamp = next((m.datetime for m in frames.machines if m.datetime), None)
    print(f"run {run_dir}" + (f", ended {stamp}" if stamp else "")
          + (" (interrupted: partial)" if frames.partial else ""))  # fmt: skip
    for machine in frames.machines:
        line = write.summary_lines(frames, machine.key, timing=False)[0]
        print(line.removeprefix("- ").replace("**", ""))
    if not frames.results.empty:
        print("\n" + write.cost_table_text(frames))
    print(f"\nreport: {run_dir / 'report.md'}")
    return EXIT_OK


def _compare(args: argparse.Namespace) -> int:
    """``gdbench compare BASE NEW``: the Markdown on stdout (and in --out FILE); exit 1
    when --fail-slower finds a case too slow, 2 for bad input or different machines."""
    from reports import compare, frame

    pct = None
    if args.fail_slower is not None:
        try:
            pct = positive_number(
                "--fail-slower", args.fail_slower, "a positive percentage (10: 10% slower)"
            )
        except ConfigError as err:
            raise UsageError(str(err)) from None
    try:
        base = compare.load_run(args.base, "BASE")
        new = compare.load_run(args.new, "NEW")
    except frame.ReportInputError as err:
        raise UsageError(str(err)) from None
    mismatch = compare.machine_mismatch(base, new)
    if mismatch and not args.force:
        raise UsageError(f"{mismatch}; a ratio between machines is refused (--force compares)")
    result = compare.compare(base, new)
    text = compare.markdown(result, fail_slower_pct=pct, forced=mismatch is not None)
    if args.out is not None:
        try:
            args.out.write_text(text, encoding="utf-8")
        except OSError as err:
            raise UsageError(f"--out {args.out}: cannot write there ({err.strerror})") from None
    print(text, end="")
    slow = compare.regressions(result, pct) if pct is not None else []
    for row in slow:
        print(
            f"gdbench compare: {row.name} is slower: NEW/BASE {compare.ratio_text(row)}, "
            f"above --fail-slower {pct:g}%",
            file=sys.stderr,
        )
    return EXIT_FAILED if slow else EXIT_OK


def _list(require: str | None) -> int:
    """Every variant on every device, then the variants of other packages (each with its
    distribution; imported to find out) and the refused ones; with ``--require DEVICE``,
    exit 1 (one line on stderr per variant and reason) unless every built-in variant with
    a form on DEVICE can run there (a plugin's forms are known to it alone)."""
    from backends import DEVICES, all_variants, installed_plugins, list_backends

    if require is not None and require not in DEVICES:
        raise UsageError(
            f"--require: unknown device '{require}'{closest(require, DEVICES)}; choose from: "
            f"{', '.join(DEVICES)}"
        )
    rows = list_backends(variants=all_variants())
    refused = [p for p in installed_plugins() if p.refused]
    width = max(len(name) for name in [*(r.variant for r in rows), *(p.name for p in refused)])
    for r in rows:
        state = "available" if r.available else "unavailable"
        state += f" (plugin from {r.origin})" if r.origin else ""
        state += "" if r.available else f": {r.reason}"
        print(f"{r.variant:<{width}}  {r.framework:<5}  {r.device:<4}  {state}")
    for p in refused:  # never imported, never run
        state = f"refused (plugin from {p.dist}, {p.target}): {p.refused}"
        print(f"{p.name:<{width}}  {'?':<5}  {'-':<4}  {state}")
    missing = [r for r in rows if r.device == require and not r.available and not r.origin]
    for r in missing:
        print(f"gdbench: required {require}: {r.variant} unavailable: {r.reason}", file=sys.stderr)
    return EXIT_FAILED if missing else EXIT_OK


def _rank(framework: str, device: str) -> int:
    """A peer rank on another host (docs/parallel.md, "Several hosts"): serves rank 0's sessions
    until none has come for GDBENCH_RANK_IDLE seconds."""
    from backends.parallel import peer, ranks

    if framework not in ranks.FRAMEWORKS:
        hint = closest(framework, ranks.FRAMEWORKS)
        raise UsageError(f"--framework: unknown value '{framework}'{hint}; "
                         f"choose from: {', '.join(ranks.FRAMEWORKS)}")  # fmt: skip
    if device not in ("cpu", "cuda"):
        raise UsageError(f"--device: unknown value '{device}'; choose from: cpu, cuda")
    os.environ["GDBENCH_RANK_DEVICE"] = device
    return peer.serve_worlds(framework)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        if args.command == "list":
            return _list(args.require)
        if args.command == "show":
            return _show(args.run_dir)
        if args.command == "report":
            return _report(args)
        if args.command == "compare":
            return _compare(args)
        if args.command == "rank":
            return _rank(args.framework, args.device)
        return _run_suites(args, timing=args.command == "run")
    except UsageError as err:
        print(f"gdbench: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:  # outside the workers' time: while reporting
        print("\ngdbench: interrupted; finished cases are in records.jsonl", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
