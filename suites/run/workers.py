"""The manager of a gdbench run: one fresh worker process per variant, one at a time.

pyperf's model (``pyperf/_manager.py``): the manager decides what runs where, starts each
worker, waits for it (with a time limit), and merges what the workers wrote. A worker is
the suites' pytest session started with ``--gdb-worker LABEL`` and the selection of its
job on the command line, so that any worker can be re-run by hand from the line in
``workers/NN-LABEL.log``. The manager imports no framework.

Workers append their finished cases to the run's ``records.jsonl`` (one worker at a time,
so lines never interleave); the manager writes the run's header and end marker around
them, and marks the cases of a worker that died or timed out as failed. The records are
the one source of every output: ``suites/run/export.py`` writes the run's
``benchmark.json`` or ``convergence.json`` from them, and the report is built from them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import importlib.util
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from backends import (
    case_label,
    devices_of,
    framework_of,
    is_parallel,
    is_plugin,
    variant_of,
    world_per_process,
)
from suites import data as data_files
from suites import machine, records
from suites.bench.bandwidth import copy_methods
from suites.config import RunConfig, flag
from suites.run import paired

BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"  # the worker's pytest suites
DATA_FOLDER = "data"  # in the run folder: the arrays of --data, for the workers to map
ISOLATION = ("variant", "framework", "none")
DEFAULT_TIMEOUT_S = 600.0
CONVERGENCE = "test_convergence.py"
COST = "test_epoch_cost.py::test_epoch_cost"
BANDWIDTH = "test_epoch_cost.py::test_memory_bandwidth"

# (kind, variant, device, problem): one case a job is to record.
CaseKey = tuple[str, str, str, str]


@dataclass(frozen=True)
class Job:
    """One worker process: what it runs and which cases it must record.

    Attributes:
        label: unique within the run, e.g. ``"jax-grad@cpu"`` or ``"torch@cpu #2"``.
        backends: the variants it may run (``--gdb-backends``).
        devices: the devices it may use (``--gdb-devices``); without ``cuda`` the worker
            cannot see a GPU at all.
        tests: pytest node ids under ``suites/``.
        cases: what it is to record, for marking the unfinished ones when it dies.
        items: how many progress lines it prints (its collected tests).
    """

    label: str
    backends: tuple[str, ...]
    devices: tuple[str, ...]
    tests: tuple[str, ...]
    cases: tuple[CaseKey, ...]
    items: int
    ranks: tuple[int, ...] | None = None  # its own K (a jax world per process), or all


def plan(cfg: RunConfig, isolate: str, processes: int, timing: bool) -> list[Job]:
    """The workers of a run, in the order they run.

    ``variant``: one worker per (variant, device); ``framework``: one per (framework,
    device), except that a variant from another package always has one of its own (its
    framework is known only once a worker imports it, and a broken one takes no other
    variant down); ``none``: a single worker for everything, as one pytest session
    would, but for the K-process jax variants, whose world is one per process (a worker
    per K whatever the mode). With ``processes`` K > 1 the timed cases are measured
    again in K−1 more workers each, round-robin over the variants so that a drift of
    the machine hits all of them alike.
    The copy-bandwidth benchmarks get a worker of their own (except with ``none``): the
    host's, and with ``cuda`` among the devices the GPU's, so that worker sees the GPU.
    """
    pairs = [(v, d) for v in cfg.backends for d in cfg.devices if d in devices_of(v)]
    groups: dict[str, list[tuple[str, str]]] = {}
    own_k: dict[str, tuple[int, ...]] = {}  # the groups that run one K only
    for variant, device in pairs:
        if world_per_process(variant) and installed(framework_of(variant)):
            # a jax world is one per process, for life: a worker per K, even with none
            for k in cfg.ranks:
                groups.setdefault(f"{variant}@{device}-x{k}", []).append((variant, device))
                own_k[f"{variant}@{device}-x{k}"] = (k,)
            continue
        if isolate == "none":
            key = "all"
        elif is_plugin(variant):
            key = f"{variant}@{device}"
        elif (isolate == "variant" or is_parallel(variant)) and installed(framework_of(variant)):
            # a data-parallel variant always has a worker of its own: jax's device count
            # is fixed when it starts, torch's ranks are processes of their own
            key = f"{variant}@{device}"
        else:  # per framework, or a framework that is not installed: one worker says why
            key = f"{framework_of(variant)}@{device}"
        groups.setdefault(key, []).append((variant, device))
    shapes = [(name, n) for name, n, *_ in cfg.problem_shapes()]

    def job(label: str, members: list[tuple[str, str]], kinds: tuple[str, ...],
            ks: tuple[int, ...] | None) -> Job:  # fmt: skip
        cases = [
            (kind, case_label(v, k), d, problem)
            for kind in kinds
            for problem, n in shapes
            for v, d in members
            for k in cfg.ks(v, n)
            if ks is None or k in ks
        ]  # fmt: skip
        tests = tuple({records.CONVERGENCE: CONVERGENCE, records.BENCHMARK: COST}[k] for k in kinds)
        variants = tuple(dict.fromkeys(v for v, _ in members))
        devices = tuple(dict.fromkeys(d for _, d in members))
        # a group holds every pair of its variants and devices that has a form, which is
        # what pytest parametrizes over: one progress line per case
        return Job(label, variants, devices, tests, tuple(cases), len(cases), ks)

    jobs = []
    first: tuple[str, ...] = (
        (records.CONVERGENCE, records.BENCHMARK) if timing else (records.CONVERGENCE,)
    )
    for k in range(1, processes + 1 if timing else 2):
        for key, members in groups.items():
            label = key if processes == 1 or not timing else f"{key} #{k}"
            kinds = first if k == 1 else (records.BENCHMARK,)
            planned = job(label, members, kinds, own_k.get(key))
            if planned.cases:  # none: a K too large for every problem (--shard-rows)
                jobs.append(planned)
    if timing:
        # the host's copy bandwidth, and the GPU's in a run on cuda: only then may the
        # worker see the GPU
        devices = ("cpu", "cuda") if "cuda" in cfg.devices else ("cpu",)
        methods = len(copy_methods(devices))
        copies = Job("bandwidth", ("numpy-manual",), devices, (BANDWIDTH,), (), methods)
        if isolate == "none" and jobs:
            first_job = jobs[0]
            jobs[0] = dataclasses.replace(
                first_job,
                devices=tuple(dict.fromkeys((*first_job.devices, *devices))),
                tests=(*first_job.tests, BANDWIDTH),
                items=first_job.items + methods,
            )
        else:
            jobs.append(copies)
    return jobs


def worker_env(job: Job, threads: int, ranks: int = 1) -> dict[str, str]:
    """The environment a worker starts with: threads, and what it may see of the GPU.

    A worker with no CUDA case cannot touch a GPU (``JAX_PLATFORMS=cpu``, no visible
    CUDA device): a CPU run never starts a GPU client. One that runs jax on CUDA (a jax
    variant, or the GPU's copy bandwidth after torch's) starts with jax's preallocation
    of 75% of the card switched off, so that the memory it reports is what it used. A
    worker on CUDA numbers the GPUs as nvidia-smi does (``CUDA_DEVICE_ORDER=PCI_BUS_ID``;
    CUDA's own default is fastest first), so the GPU that the report names and whose
    free memory was checked is the one the variants use. A user's own settings win.
    """
    env = {**machine.thread_env(threads), "PYTHONUNBUFFERED": "1"}
    if ranks > 1 and any(
        is_parallel(v) and not world_per_process(v) and framework_of(v) == "jax"
        for v in job.backends
    ):
        # K host devices for jax's one-process data-parallel variants, fixed before jax
        # starts (the K-process ones have one device in each process)
        flags = env.get("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
        env["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={ranks}".strip()
    if "cuda" not in job.devices:
        env |= {"JAX_PLATFORMS": "cpu", "CUDA_VISIBLE_DEVICES": ""}
        return env
    env["CUDA_DEVICE_ORDER"] = os.environ.get("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
    # a plugin's framework is not known here: it may be jax
    if BANDWIDTH in job.tests or any(
        framework_of(v) == "jax" or is_plugin(v) for v in job.backends
    ):
        # a user's own setting wins
        env["XLA_PYTHON_CLIENT_PREALLOCATE"] = os.environ.get(
            "XLA_PYTHON_CLIENT_PREALLOCATE", "false"
        )
    return env


def worker_command(
    job: Job, cfg: RunConfig, out: Path, timing: bool, start: int, total: int
) -> list[str]:
    """The worker's command line: a pytest session over ``job``'s tests and selection."""
    args = [sys.executable, "-m", "pytest", *(str(BENCH_DIR / t) for t in job.tests)]
    args += ["--rootdir", str(BENCH_DIR), "-c", os.devnull, "-q", "--no-header", "--tb=short",
             "-p", "no:cacheprovider", "-p", "no:warnings", "-p", "no:hypothesispytest",
             "--gdb-out", str(out), "--gdb-progress", "--gdb-worker", job.label,
             "--gdb-count", f"{start}/{total}"]  # fmt: skip
    options = cfg.to_options() | {"backends": ",".join(job.backends),
                                  "devices": ",".join(job.devices)}  # fmt: skip
    if job.ranks is not None:  # a worker of one K (a jax world per process)
        options["ranks"] = ",".join(map(str, job.ranks))
    if cfg.data is not None:  # the arrays the manager saved, mapped, not the file again
        options["data"] = str(out / DATA_FOLDER)
        options.pop("target_column", None)
    for name, value in options.items():
        args += [f"--gdb-{flag(name)}", value]
    if cfg.quick:
        args.append("--gdb-quick")
    # Timings go to records.jsonl (rounds included); the manager writes benchmark.json.
    args += ["--benchmark-enable", "--benchmark-quiet"] if timing else ["--benchmark-disable"]
    return args


def inherited_env() -> dict[str, str]:
    """What a worker inherits of this process's environment: all of it but pytest-xdist's
    worker variables. A gdbench run started from a test under pytest-xdist would pass
    them on, and pytest-benchmark disables its timing in any process that has them: the
    run would finish with no timing at all."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST_")}


def death_reason(returncode: int, timed_out: float | None) -> str | None:
    """Why a worker's unfinished cases failed, or ``None`` for a worker that ended as
    pytest does (0; 1 for failed tests; 2 for an interruption or a collection error; 5
    for no tests): then any case it did not record is failed as "not recorded"."""
    if timed_out is not None:
        return f"timed out after {timed_out:g} s"
    if returncode < 0:
        name = _signal_name(-returncode)
        hint = " (the kernel's out-of-memory killer sends this)" if name == "SIGKILL" else ""
        return f"worker killed by {name}{hint}"
    if returncode in (0, 1, 2, 5):
        return None
    return f"worker exited with status {returncode}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class Stop:
    """Ctrl-C or SIGTERM: the worker in hand is asked to stop (SIGINT: it finishes its case
    and records it), no further worker starts; a second signal kills the worker. Installed
    for the workers' time only (``with Stop() as stop``)."""

    GRACE_S = 20.0

    def __init__(self) -> None:
        self.signalled = False
        self.proc: subprocess.Popen | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Stop:
        for signum in (signal.SIGTERM, signal.SIGINT):
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def watch(self, proc: subprocess.Popen) -> None:
        """The worker in hand; one started just as a stop arrived is asked at once."""
        self.proc = proc
        if self.signalled and proc.poll() is None:
            proc.send_signal(signal.SIGINT)

    def _handle(self, signum: int, frame: object) -> None:
        proc = self.proc
        if self.signalled:
            if proc is not None:
                _kill_group(proc)
            return
        self.signalled = True
        print(
            f"\ngdbench: stopping ({signal.Signals(signum).name})...", file=sys.stderr, flush=True
        )
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill a worker and whatever it started (torch.compile's compile workers)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@dataclass
class Outcome:
    """How one worker ended."""

    job: Job
    pid: int
    returncode: int
    reason: str | None  # why its unfinished cases failed; None if it ended normally
    seconds: float
    log: Path


class Manager:
    """Runs the jobs one after another and keeps the run's records.jsonl."""

    def __init__(self, cfg: RunConfig, out: Path, *, timing: bool, timeout: float,
                 isolate: str, processes: int, budget: float | None = None) -> None:  # fmt: skip
        self.cfg, self.out, self.timing = cfg, out, timing
        # seconds per undecided problem for paired rounds (suites/run/paired.py); 0: none
        self.budget = paired.BUDGET_S[cfg.quick] if budget is None else budget
        self.timeout, self.isolate, self.processes = timeout, isolate, processes
        self.log = records.RecordLog(out / records.RECORDS_FILE)
        self.stop = Stop()
        self.outcomes: list[Outcome] = []
        self.display: Display | None = None  # the run's progress, while it runs

    def run(self, jobs: list[Job]) -> int:
        """Run every job (until interrupted); returns the exit status for the run's cases:
        0 if every worker ended normally with all its tests passed, else 1."""
        self.log.append({"schema": records.SCHEMA, "kind": records.RUN,
                         "config": self.cfg.to_dict(), "isolation": self.isolation(),
                         "unavailable": [], "not_split": self.cfg.not_split(),
                         "data": self.cfg.data_file().describe() if self.cfg.data else None,
                         "machine": machine.machine_fields(self.cfg.threads)})  # fmt: skip
        if self.cfg.data is not None:
            data_files.save(self.cfg.data_file(), self.out / DATA_FOLDER)
        total = sum(j.items for j in jobs)
        done = 0
        self.display = Display(total)
        status = 0
        with self.stop, contextlib.closing(self.display):
            for number, job in enumerate(jobs, 1):
                if self.stop.signalled:
                    break
                outcome = self._run_one(number, job, done, total)
                self.outcomes.append(outcome)
                done += job.items
                if self.stop.signalled:
                    break  # what did not finish was not run: the report is partial
                if self._fail_unfinished(outcome):
                    status = 1
                if outcome.reason is not None:
                    self._say(
                        f"gdbench: worker {job.label} (pid {outcome.pid}): "
                        f"{outcome.reason}; the run goes on (log: {outcome.log})"
                    )
                if outcome.returncode not in (0, 5):
                    status = 1
            if self.timing and self.budget > 0 and not self.stop.signalled:
                self._settle(len(jobs))
        self.log.append({"schema": records.SCHEMA, "kind": records.END, "exitstatus": status,
                         "interrupted": self.stop.signalled,
                         "datetime": dt.datetime.now(dt.UTC).isoformat(),
                         "commit_info": commit_info(),
                         "workers": [self._worker_row(o) for o in self.outcomes]})  # fmt: skip
        return status

    def _say(self, text: str) -> None:
        if self.display is None:
            print(text, flush=True)
        else:
            self.display.note(text)

    def isolation(self) -> dict[str, Any]:
        return {"isolate": self.isolate, "processes": self.processes, "timeout_s": self.timeout,
                "budget_s": self.budget}  # fmt: skip

    def _settle(self, number: int) -> None:
        """Paired rounds for every problem whose planned rounds left no answer."""
        for contest in paired.contests(self.out / records.RECORDS_FILE):
            if self.stop.signalled:
                return
            number += 1
            slug = re.sub(r"[^A-Za-z0-9@.-]+", "-", contest.problem)
            log_path = self.out / "workers" / f"{number:02d}-paired-{slug}.log"
            names = " ".join(contest.label(i) for i in range(len(contest.contenders)))
            self._say(
                f"[paired] {contest.problem}: {names} in alternating rounds "
                f"(budget {self.budget:g} s)"
            )
            with open(log_path, "w", encoding="utf-8") as log:

                def start(index: int, contest: paired.Contest = contest, log: TextIO = log):
                    variant, device, _ = contest.contenders[index]
                    command = paired.worker_command(self.cfg, contest, index)
                    job = Job(contest.label(index), (variant,), (device,), (), (), 0)
                    env = worker_env(job, self.cfg.threads)
                    log.write(_shell_line(command, env) + "\n\n")
                    log.flush()
                    return subprocess.Popen(
                        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                        text=True, env={**inherited_env(), **env}, start_new_session=True,
                    )  # fmt: skip

                fields = paired.settle(contest, start, self.budget, self.timeout,
                                       lambda: self.stop.signalled)  # fmt: skip
            self.log.append(paired.record(fields))
            decided = fields["stop"]
            self._say(
                f"[paired] {contest.problem}: {decided} after "
                f"{max(map(len, fields['rounds'].values()), default=0)} rounds each, "
                f"{fields['spent_s']:.1f} s"
            )

    def _run_one(self, number: int, job: Job, done: int, total: int) -> Outcome:
        folder = self.out / "workers"
        folder.mkdir(exist_ok=True)
        slug = re.sub(r"[^A-Za-z0-9@.-]+", "-", job.label).strip("-")
        log_path = folder / f"{number:02d}-{slug}.log"
        command = worker_command(job, self.cfg, self.out, self.timing, done, total)
        env = worker_env(job, self.cfg.threads, max(self.cfg.ranks))
        started = time.monotonic()
        with open(log_path, "w", encoding="utf-8") as log:
            log.write(_shell_line(command, env) + "\n\n")
            log.flush()
            proc = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                errors="replace", env={**inherited_env(), **env}, start_new_session=True,
            )  # fmt: skip
            self.stop.watch(proc)
            reader = threading.Thread(target=_forward, args=(proc.stdout, log, self.display),
                                      daemon=True)  # fmt: skip
            reader.start()
            timed_out = self._wait(proc, started)
            self.stop.proc = None
            # Whatever the worker started and left behind (torch.compile's compile
            # workers, a child of a crashed worker) goes with it, and so does its pipe.
            _kill_group(proc)
            reader.join(timeout=10)
        _end_with_newline(self.log.path)
        reason = death_reason(proc.returncode, timed_out)
        return Outcome(job, proc.pid, proc.returncode, reason, time.monotonic() - started,
                       log_path)  # fmt: skip

    def _wait(self, proc: subprocess.Popen, started: float) -> float | None:
        """Wait for the worker; kill it past the time limit (returns the limit then), or
        past the grace time after a stop signal."""
        signalled_at = None
        while True:
            try:
                proc.wait(timeout=0.1)
                return None
            except subprocess.TimeoutExpired:
                pass
            if self.display is not None:
                self.display.tick()
            now = time.monotonic()
            if now - started > self.timeout:
                _kill_group(proc)
                proc.wait()
                return self.timeout
            if self.stop.signalled:
                signalled_at = signalled_at or now
                if now - signalled_at > Stop.GRACE_S:
                    _kill_group(proc)
                    proc.wait()
                    return None

    def _fail_unfinished(self, outcome: Outcome) -> int:
        """Record every case the worker was to run and did not record as failed, with why
        (it died, timed out, or ended without it: a collection or setup error). Returns
        how many."""
        job = outcome.job
        why = outcome.reason or (
            f"not recorded: the worker exited with status {outcome.returncode} "
            f"(log: {outcome.log.relative_to(self.out)})"
        )
        done = records.read_records(self.log.path)
        finished = {
            (r["kind"], r["variant"], r["device"], r["problem"])
            for r in done
            if r.get("worker") == job.label
            and r["kind"] in (records.CONVERGENCE, records.BENCHMARK)
        }
        unavailable = {
            (u["variant"], u["device"])
            for r in done
            if r["kind"] == records.WORKER and r.get("worker") == job.label
            for u in r.get("unavailable", [])
        }
        shapes = {name: (n, d, e) for name, n, d, e in self.cfg.problem_shapes()}
        missing = 0
        for kind, variant, device, problem in job.cases:
            registered = variant_of(variant)  # torch-ddp-x2 is a case of torch-ddp
            if (kind, variant, device, problem) in finished or (registered, device) in unavailable:
                continue
            missing += 1
            n, d, epochs = shapes[problem]
            self.log.append({
                "schema": records.SCHEMA, "kind": kind, "variant": variant,
                "framework": framework_of(registered), "device": device, "dtype": self.cfg.dtype,
                "problem": problem, "n_samples": n, "n_features": d, "epochs": epochs,
                "threads": self.cfg.threads, "pid": outcome.pid, "worker": job.label,
                "status": "failed", "message": why,
            })  # fmt: skip
        return missing

    def _worker_row(self, o: Outcome) -> dict[str, Any]:
        return {"label": o.job.label, "pid": o.pid, "returncode": o.returncode,
                "reason": o.reason, "seconds": round(o.seconds, 3),
                "log": str(o.log.relative_to(self.out))}  # fmt: skip


_PROGRESS = re.compile(r"\[\s*(\d+)/(\d+)\] ")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}:{secs:02d}"


def progress_suffix(line: str, elapsed_s: float) -> str:
    """``  1:05 elapsed, about 2:10 left`` for a progress line ``[ k/N] ...``: the time
    so far, and what is left at the mean time per finished case so far (cases differ:
    an estimate)."""
    match = _PROGRESS.match(line)
    if match is None:
        return ""
    done, total = int(match.group(1)), int(match.group(2))
    left = elapsed_s / done * (total - done) if done else float("nan")
    estimate = f", about {_clock(left)} left" if done and done < total else ""
    return f"  ({_clock(elapsed_s)} elapsed{estimate})"


class Display:
    """Where a run shows its progress: on a terminal, a bar (tqdm) with the cases' lines
    above it; otherwise (a pipe, a file, CI) one plain line per finished case, with the
    run's elapsed time and an estimate of what is left."""

    def __init__(self, total: int, stream: TextIO | None = None, bar: bool | None = None):
        self.stream = stream or sys.stdout
        self.started = self.shown = time.monotonic()
        self.bar: Any = None
        if bar if bar is not None else wants_bar(self.stream):
            from tqdm import tqdm

            self.bar = tqdm(total=total, file=self.stream, unit="case", dynamic_ncols=True,
                            bar_format="{n}/{total} cases |{bar}| {elapsed} elapsed, "
                            "about {remaining} left")  # fmt: skip

    def case(self, line: str) -> None:
        """A worker's progress line, ``[ k/N] outcome test case``."""
        if self.bar is None:
            suffix = progress_suffix(line, time.monotonic() - self.started)
            self.stream.write(line.rstrip("\n") + suffix + "\n")
            self.stream.flush()
            return
        self.bar.write(line.rstrip("\n"), file=self.stream)
        match = _PROGRESS.match(line)
        if match:
            self.bar.n = int(match.group(1))
            self.bar.refresh()

    def tick(self) -> None:
        """Keep the bar's clock going while a long case runs (once a second at most)."""
        now = time.monotonic()
        if self.bar is not None and now - self.shown >= 1.0:
            self.bar.refresh()
            self.shown = now

    def note(self, text: str) -> None:
        """A line of the manager's own (a worker's death, the paired rounds)."""
        if self.bar is None:
            print(text, file=self.stream, flush=True)
        else:
            self.bar.write(text, file=self.stream)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def wants_bar(stream: TextIO) -> bool:
    """A bar only where a person watches a terminal: not in CI, not on a dumb terminal,
    not when ``GDBENCH_PROGRESS=lines`` asks for plain lines."""
    if os.environ.get("CI") or os.environ.get("TERM") == "dumb":
        return False
    if os.environ.get("GDBENCH_PROGRESS") == "lines":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _forward(stream: TextIO, log: TextIO, display: Display | None = None) -> None:
    """Copy a worker's output into its log; show its progress lines (through ``display``,
    else as they are) and its failures. Reads to the end whatever happens, so that the
    worker never blocks on a full pipe."""
    for line in stream:
        try:
            log.write(line)
            log.flush()
            # a progress line ("[  2/14] passed ..."), not a library's "[Gloo] ..."
            if _PROGRESS.match(line) and display is not None:
                display.case(line)
            elif _PROGRESS.match(line) or "Fatal Python error" in line:
                if display is not None:
                    display.note(line.rstrip("\n"))
                else:
                    sys.stdout.write(line)
                    sys.stdout.flush()
        except (OSError, ValueError):  # the log closed, the terminal went away
            pass


def _shell_line(command: list[str], env: dict[str, str]) -> str:
    """The command as a shell line, with the environment it needs, to re-run by hand."""
    import shlex

    return " ".join(
        [*(f"{k}={shlex.quote(v)}" for k, v in env.items()), *map(shlex.quote, command)]
    )


def _end_with_newline(path: Path | None) -> None:
    """A worker killed while writing may leave half a line: end it, so the next worker's
    records start on a line of their own (the reader skips the broken one)."""
    if path is None or not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) != b"\n":
            fh.write(b"\n")


def installed(framework: str) -> bool:
    """Whether ``framework`` is importable, without importing it."""
    return importlib.util.find_spec(framework) is not None


def commit_info() -> dict[str, Any]:
    """The git commit of the working directory, as pytest-benchmark records it."""
    from pytest_benchmark.utils import get_commit_info

    return get_commit_info()
