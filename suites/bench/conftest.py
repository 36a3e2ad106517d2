"""pytest wiring of the two suites: options, parametrization, records, benchmark JSON.

Options (all optional; the ``gdbench`` command passes them through):
``--gdb-problems toy,toy-bias,toy-20,sweep``, ``--gdb-backends``, ``--gdb-devices``,
``--gdb-sizes``, ``--gdb-features``, ``--gdb-epochs``, ``--gdb-lr``, ``--gdb-dtype``,
``--gdb-threads``, ``--gdb-quick``, ``--gdb-out DIR`` (append every finished case to
``DIR/records.jsonl``) and ``--gdb-progress`` (one line per finished case).

``gdbench run`` starts this suite once per worker process (``suites/run/workers.py``), with
``--gdb-worker LABEL`` (its records then carry the label and pid, and its header and end
are a worker's, not a run's) and ``--gdb-count START/TOTAL`` (progress numbered within
the whole run).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from backends import (
    BackendUnavailable,
    block_rows_of,
    case_label,
    devices_of,
    effective_precision,
    framework_of,
    get_backend,
    is_parallel,
    join_world,
    list_backends,
    precision_settings,
)
from reports.read import gdbench_section
from suites import machine, records
from suites.bench.case import PeakMemory, warm_up
from suites.config import (
    OPTIONS,
    SMOKE_DEVICES,
    SMOKE_SIZES,
    ConfigError,
    RunConfig,
    flag,
    parse,
)
from suites.problems import Problem

CONFIG = pytest.StashKey[RunConfig]()
PROBLEMS = pytest.StashKey[dict[str, Problem]]()
LOG = pytest.StashKey[records.RecordLog]()
HEADER = pytest.StashKey[dict[str, Any]]()
INTERRUPTED = pytest.StashKey[bool]()
WARMED = pytest.StashKey[set[tuple[str, str]]]()


class _GracefulStop:
    """With ``--gdb-out`` (a gdbench run): the first SIGINT lets the case in hand finish,
    records it, and stops (pytest's ``shouldstop``); a second one stops at once.

    The flag is set when the signal arrives. Raising KeyboardInterrupt mid-computation
    instead can land in a frame pytest then fails to format (a TypeError that skips the
    rest of its interrupt handling), and pytest-benchmark saves its JSON before any
    plain sessionfinish: neither could tell the report that the run was cut short.
    """

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.session: pytest.Session | None = None
        self.previous = signal.getsignal(signal.SIGINT)

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        self.session = session
        signal.signal(signal.SIGINT, self._handle)

    def pytest_unconfigure(self) -> None:
        signal.signal(signal.SIGINT, self.previous)

    def _handle(self, signum: int, frame: object) -> None:
        if self.config.stash[INTERRUPTED] or self.session is None:
            raise KeyboardInterrupt
        self.config.stash[INTERRUPTED] = True
        self.session.shouldstop = "gdbench: interrupted (SIGINT); the case in hand finished"


def _header(config: pytest.Config) -> dict[str, Any]:
    """What cannot run here and what machine this is, computed once per session."""
    if HEADER not in config.stash:
        run = config.stash[CONFIG]
        config.stash[HEADER] = {
            # Listing backends loads the frameworks, so the GPU can be named after it.
            "unavailable": records.unavailable_rows(
                list_backends(run.devices, run.backends), run.backends
            ),
            "machine": machine.machine_fields(run.threads),
        }
        if config.getoption("--gdb-worker"):
            config.stash[HEADER]["worker"] = config.getoption("--gdb-worker")
            config.stash[HEADER]["pid"] = os.getpid()
    return config.stash[HEADER]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gdbench", "gdbench: what to run")
    for name in OPTIONS:
        group.addoption(
            f"--gdb-{flag(name)}", default=None, help=f"gdbench --{flag(name)} (see gdbench --help)"
        )
    group.addoption("--gdb-quick", action="store_true", help="few rounds, small sizes")
    group.addoption("--gdb-standardize", action="store_true", help="gdbench --standardize")
    group.addoption("--gdb-out", default=None, help="append finished cases to DIR/records.jsonl")
    group.addoption("--gdb-progress", action="store_true", help="one line per finished case")
    group.addoption(
        "--gdb-worker",
        default=None,
        help="run as worker LABEL of a gdbench run (suites/run/workers.py)",
    )
    group.addoption(
        "--gdb-count", default=None, help="START/TOTAL: number progress lines from START of TOTAL"
    )


def pytest_configure(config: pytest.Config) -> None:
    values = {name: config.getoption(f"--gdb-{flag(name)}") for name in OPTIONS}
    try:
        run = parse(
            **values,
            quick=config.getoption("--gdb-quick"),
            standardize=config.getoption("--gdb-standardize"),
            default_sizes=SMOKE_SIZES,
            default_devices=SMOKE_DEVICES,
            # a plain pytest session tests the machinery: every case, even 4 rows split
            default_shard_rows=1,
        )
    except ConfigError as err:
        raise pytest.UsageError(str(err)) from None
    config.stash[CONFIG] = run
    # Before any framework starts its threads: jax sizes its pool from the affinity.
    machine.pin_cores(run.threads)
    if len(run.ranks) == 1:  # a worker of one K: a K-process variant forms its world
        for variant in run.backends:  # before the header below asks jax anything
            for device in run.devices:
                join_world(variant, device, run.ranks[0], run.threads)
    out = config.getoption("--gdb-out")
    log = records.RecordLog(Path(out) / records.RECORDS_FILE if out else None)
    config.stash[LOG] = log
    config.stash[INTERRUPTED] = False
    if out:
        config.pluginmanager.register(_GracefulStop(config), "gdbench-graceful-stop")
        # the header a partial report needs: machine, config, what cannot run here
        kind = records.WORKER if config.getoption("--gdb-worker") else records.RUN
        log.append({"schema": records.SCHEMA, "kind": kind, "config": run.to_dict(),
                    **_header(config)})  # fmt: skip
    if config.getoption("--gdb-progress"):
        config.pluginmanager.register(Progress(config), "gdbench-progress")


def _problem(config: pytest.Config, name: str) -> Problem:
    """The problem ``name``, built once per session with its float64 results computed
    (cases use their own copy of its data: :meth:`Case.measured`)."""
    problems = config.stash.setdefault(PROBLEMS, {})
    if name not in problems:
        problems[name] = config.stash[CONFIG].build_problem(name).precompute()
    return problems[name]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" not in metafunc.fixturenames:
        return
    run = metafunc.config.stash[CONFIG]
    cases = []
    for problem, n_samples, *_ in run.problem_shapes():
        for variant in run.backends:
            # a data-parallel variant is one case per K of --ranks that splits it
            ks = run.ks(variant, n_samples)
            for device in run.devices:
                if device not in devices_of(variant):
                    continue
                for k in ks:
                    label = case_label(variant, k)
                    cases.append(
                        pytest.param(
                            (variant, device, problem, k),
                            id=records.case_id(label, device, problem),
                        )
                    )
    metafunc.parametrize("case", cases, indirect=True)


class Case:
    """The backend and problem of one test, with the means to record its outcome."""

    def __init__(
        self, config: pytest.Config, variant: str, device: str, problem: Problem, ranks: int = 1
    ) -> None:
        self.config = config
        self.run: RunConfig = config.stash[CONFIG]
        self.variant, self.device, self.problem = variant, device, problem
        self.ranks = ranks  # K of a data-parallel variant
        self.label = case_label(variant, ranks)  # its name in records: torch-ddp-x2
        self.memory: dict[str, int | None] = {}
        self.asked_block_rows: int | None = self.run.block_rows  # set by backend()
        # TF32 on CUDA only: what this case computes with, and is judged by
        self.matmul_precision = effective_precision(self.run.matmul_precision, device)

    def backend(self) -> Any:
        """The backend, or skip this test with the reason it cannot run here.

        The first time a variant is used in this process it trains a tiny problem, so
        that the framework's one-time start (XLA client, CUDA context, torch.compile's
        machinery) is charged to no case's peak memory or compile time.
        """
        try:
            backend = get_backend(
                self.variant,
                self.device,
                self.run.matmul_precision,
                self.run.block_rows,
                ranks=self.ranks,
                threads=self.run.threads,
            )
        except BackendUnavailable as err:
            pytest.skip(str(err))
        self.asked_block_rows = getattr(backend, "block_rows", None)
        machine.apply_threads(backend.framework, self.run.threads)
        warmed = self.config.stash.setdefault(WARMED, set())
        if (self.variant, self.device) not in warmed:
            warmed.add((self.variant, self.device))
            warm_up(backend, self.run.dtype)
        return backend

    def first_sizing(self) -> tuple[int, int] | None:
        """(rounds, iterations) of this case's first timed process in this run, if an
        earlier worker timed it (``--processes K``): every process then times the same
        rounds, so that the pooled statistics weigh each process alike (as pyperf does)."""
        out = self.config.getoption("--gdb-out")
        if not out or not self.config.getoption("--gdb-worker"):
            return None
        key = (self.label, self.device, self.problem.dtype, self.problem.name)
        for rec in records.read_records(Path(out) / records.RECORDS_FILE):
            if (
                rec["kind"] == records.BENCHMARK
                and rec.get("timing")
                and rec.get("iterations")
                and ((rec["variant"], rec["device"], rec["dtype"], rec["problem"]) == key)
            ):
                return int(rec["timing"]["rounds"]), int(rec["iterations"])
        return None

    @contextmanager
    def measured(self) -> Iterator[Problem]:
        """The block that trains: it gets its own copy of the problem's data, and its peak
        memory above what the worker held before (data, backend copies, buffers) is kept
        for the record. The float64 reference was computed before, outside it."""
        peak = PeakMemory(framework_of(self.variant), self.device)
        try:
            with peak:
                yield self.problem.with_own_data()
        finally:
            self.memory = peak.fields()

    def identity(self, kind: str) -> dict[str, Any]:
        """The fields that identify this case in a record or a benchmark's extra_info."""
        rec = records.base_record(kind, self.variant, self.device, self.problem)
        if is_parallel(self.variant):
            rec |= {
                "variant": self.label,
                "parallel_variant": self.variant,
                "ranks": self.ranks,
            }
        rec["threads"] = self.run.threads
        # what the framework really uses, read back from it (tests/end_to_end/test_workers.py)
        rec["framework_threads"] = machine.framework_threads(framework_of(self.variant))
        rec["matmul_precision"] = self.matmul_precision
        # rows per block of a single-pass variant (None for the others), as the backend
        # was built (--block-rows, or None: chosen from the L2 cache)
        rec["block_rows"] = block_rows_of(
            self.variant, self.problem.n_features, self.problem.dtype, self.asked_block_rows
        )
        rec["pid"] = os.getpid()
        rec["worker"] = self.config.getoption("--gdb-worker")
        rec["data_bytes"] = int(self.problem.X.nbytes + self.problem.y.nbytes)
        return rec

    def record(self, kind: str, **fields: Any) -> dict[str, Any]:
        rec = self.identity(kind) | self.memory | fields
        # the framework's matmul-precision switches as the case left them
        if settings := precision_settings().get(framework_of(self.variant)):
            rec["precision_settings"] = settings
        self.config.stash[LOG].append(rec)
        return rec


@pytest.fixture
def run_config(request: pytest.FixtureRequest) -> RunConfig:
    """The validated selection of this run (options, or their defaults)."""
    return request.config.stash[CONFIG]


@pytest.fixture
def record_log(request: pytest.FixtureRequest) -> records.RecordLog:
    """The run's append-only record log (``--gdb-out DIR/records.jsonl``)."""
    return request.config.stash[LOG]


@pytest.fixture
def case(request: pytest.FixtureRequest) -> Case:
    variant, device, name, ranks = request.param
    return Case(request.config, variant, device, _problem(request.config, name), ranks)


# --- progress -------------------------------------------------------------------------


class Progress:
    """Prints ``[k/N] outcome case`` as each case finishes (``--gdb-progress``)."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.done = 0
        self.total = 0

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.total = len(session.items)
        count = self.config.getoption("--gdb-count")
        if count:  # a worker of a bigger run: numbered within the run
            start, total = (int(v) for v in count.split("/"))
            self.done, self.total = start, total

    def pytest_report_teststatus(self, report: pytest.TestReport) -> tuple[str, str, str] | None:
        # Our line replaces pytest's progress dot; the outcome category is kept for the summary.
        if report.when == "call" or (report.when == "setup" and not report.passed):
            return report.outcome, "", ""
        return None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not (report.when == "call" or (report.when == "setup" and not report.passed)):
            return
        self.done += 1
        suite = report.nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")
        name = report.nodeid.split("[", 1)[-1].rstrip("]")
        line = f"[{self.done:>3}/{self.total}] {report.outcome:7s} {suite:18s} {name}"
        crash = getattr(report.longrepr, "reprcrash", None)
        if report.skipped and isinstance(report.longrepr, tuple):
            line += f"  ({report.longrepr[2].removeprefix('Skipped: ')})"
        elif report.failed and crash is not None:
            line += f"  -- {crash.message.splitlines()[0]}"
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(line)


# --- pytest-benchmark hooks -----------------------------------------------------------


def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    machine_info["gdbench"] = machine.machine_fields(config.stash[CONFIG].threads)


def _gdbench_section(config: pytest.Config) -> dict[str, Any]:
    """The ``gdbench`` section of this session's JSON, built from its records as the
    manager builds a run's (``reports.read.gdbench_section``)."""
    done = config.stash[LOG].records
    if not any(r["kind"] == records.RUN for r in done):  # no --gdb-out: no header written
        run = config.stash[CONFIG]
        header = {"schema": records.SCHEMA, "kind": records.RUN, "config": run.to_dict()}
        done = [header | _header(config), *done]
    return gdbench_section(done, interrupted=config.stash[INTERRUPTED])


def pytest_benchmark_update_json(
    config: pytest.Config, benchmarks: list, output_json: dict
) -> None:
    output_json["gdbench"] = _gdbench_section(config)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """With ``--gdb-out``: mark the end of the records (interrupted or not), and for an
    untimed run (``gdbench check``) write ``convergence.json``; a timed run puts the same
    section into pytest-benchmark's JSON instead."""
    out = session.config.getoption("--gdb-out")
    if not out:
        return
    session.config.stash[LOG].append(
        {
            "schema": records.SCHEMA,
            "kind": records.WORKER_END if session.config.getoption("--gdb-worker") else records.END,
            "exitstatus": int(exitstatus),
            "interrupted": session.config.stash[INTERRUPTED],
        }
    )
    if not session.config.getoption("benchmark_json", None) and not session.config.getoption(
        "--gdb-worker"
    ):
        path = Path(out) / "convergence.json"
        doc = {"benchmarks": [], "gdbench": _gdbench_section(session.config)}
        path.write_text(json.dumps(doc, indent=1, allow_nan=False))
