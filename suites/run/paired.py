"""Rounds until the answer is known: the contenders of a problem, timed in alternation.

After the planned rounds, a problem whose fastest variant's interval overlaps another's
has no answer yet. For each such problem the manager starts one worker per contender
(the fastest and at most :data:`MOST` − 1 whose intervals overlap it; single-device
variants only) and alternates rounds between them, in the order A B, B A, A B, ...
(a round that follows the other's pays the same cache state on average), until every
contender's ratio to the leader is decided (``reports.stats.SequentialComparison``) or
the problem's budget (``--budget`` seconds, start-up included) is spent. The rounds go
to ``records.jsonl`` as one ``paired`` record per problem; the report judges the
contenders by them.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from reports import frame as report_frame
from reports.records import PAIRED, SCHEMA
from reports.stats import SequentialComparison
from suites.bench import paired as paired_worker

MOST = 3  # contenders per problem: the few real ones
BUDGET_S = {False: 15.0, True: 5.0}  # per problem, by --quick; --budget overrides
STARTUP_SHARE = 0.6  # workers not ready within this share of the budget are given up


@dataclass
class Contest:
    """A problem whose planned rounds left several variants within the fastest's
    interval: who takes part, and with how many trainings per round."""

    problem: str
    dtype: str
    n_samples: int
    n_features: int
    epochs: int
    contenders: list[tuple[str, str, int]]  # (variant, device, iterations), leader first

    def label(self, index: int) -> str:
        variant, device, _ = self.contenders[index]
        return f"{variant}@{device}"


def contests(records_path: Path) -> list[Contest]:
    """The problems to settle, from the planned rounds in ``records_path``."""
    results = report_frame.load([records_path]).results
    if results.empty:
        return []
    out = []
    tied = results[results["fastest"].eq("tie") & results["status"].eq("agree")]
    for keys, group in tied.groupby(["problem", "dtype"], sort=False):
        ranked = group.sort_values("per_epoch_median_s", kind="stable")
        if not ranked["parallel_variant"].isna().iloc[0]:
            continue  # a data-parallel fastest has no worker of alternating rounds
        ranked = ranked[ranked["parallel_variant"].isna()].head(MOST)
        if len(ranked) < 2:
            continue
        first = ranked.iloc[0]
        out.append(Contest(
            problem=str(keys[0]), dtype=str(keys[1]), n_samples=int(first["n_samples"]),
            n_features=int(first["n_features"]), epochs=int(first["epochs"]),
            contenders=[(r["variant"], r["device"], int(r["iterations"]))
                        for _, r in ranked.iterrows()],
        ))  # fmt: skip
    return out


@dataclass
class _Worker:
    label: str
    proc: subprocess.Popen
    lines: queue.Queue = field(default_factory=queue.Queue)
    group: int | None = None  # its process group, when it leads one of its own

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def receive(self, timeout: float) -> dict[str, Any]:
        """The worker's next message; an error message if it has none within ``timeout``
        or its output ended."""
        try:
            line = self.lines.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return {"error": f"no answer within {timeout:.0f} s"}
        if line is None:
            return {"error": f"exited with status {self.proc.wait()}"}
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            return {"error": f"unreadable answer {line.strip()[:80]!r}"}


def _pump(stream: IO[str], lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def settle(contest: Contest, start_worker: Any, budget_s: float, round_limit_s: float,
           stopped: Any) -> dict[str, Any]:  # fmt: skip
    """Alternate rounds between the contest's workers until decided or out of budget.

    Every worker is ended when this returns, whatever happened: asked to stop, then its
    process group killed. A worker not ready by the set-up deadline is killed then, so
    that it cannot compute beside the others' timed rounds.

    Args:
        start_worker: ``(index) -> subprocess.Popen`` with text pipes on stdin/stdout.
        round_limit_s: the longest a worker may take to answer (the run's --timeout);
            no round waits past the budget by more than a minute either.
        stopped: ``() -> bool``, true once the run is asked to stop.

    Returns:
        the ``paired`` record (without the run's own fields).
    """
    started = time.monotonic()
    workers: list[_Worker] = []
    errors: dict[str, str] = {}
    ready: list[_Worker] = []
    rounds: dict[str, list[float]] = {}
    stop_reason = "fewer than two contenders ready"
    try:
        for index in range(len(contest.contenders)):
            proc = start_worker(index)
            worker = _Worker(contest.label(index), proc, group=_own_group(proc))
            threading.Thread(target=_pump, args=(proc.stdout, worker.lines), daemon=True).start()
            workers.append(worker)
        setup_deadline = started + max(STARTUP_SHARE * budget_s, 1.0)
        for worker in workers:
            answer = worker.receive(min(setup_deadline - time.monotonic(), round_limit_s))
            if answer.get("ready"):
                ready.append(worker)
            else:
                errors[worker.label] = str(answer.get("error", answer))
                _end(worker)  # not ready: it must not compute beside the timed rounds
        rounds = {w.label: [] for w in ready}
        if len(ready) >= 2:
            stop_reason = _alternate(ready, rounds, errors, started, budget_s,
                                     min(round_limit_s, budget_s + 60), stopped)  # fmt: skip
    finally:
        for worker in workers:
            _end(worker)
    return {
        "problem": contest.problem, "dtype": contest.dtype, "n_samples": contest.n_samples,
        "n_features": contest.n_features, "epochs": contest.epochs,
        "contenders": [contest.label(i) for i in range(len(contest.contenders))],
        "leader": ready[0].label if ready else None,
        "rounds": rounds,  # seconds per training, the i-th of each in the same cycle
        "iterations": {contest.label(i): c[2] for i, c in enumerate(contest.contenders)},
        "budget_s": budget_s, "spent_s": round(time.monotonic() - started, 3),
        "stop": stop_reason, "errors": errors,
    }  # fmt: skip


def _alternate(ready: list[_Worker], rounds: dict[str, list[float]], errors: dict[str, str],
               started: float, budget_s: float, wait_s: float, stopped: Any) -> str:  # fmt: skip
    """The cycles of rounds, leader first; returns why they stopped."""
    leader, others = ready[0], ready[1:]
    rules = {w.label: SequentialComparison() for w in others}
    order = list(ready)
    while True:
        if stopped():
            return "run stopped"
        active = [leader, *(w for w in others if not rules[w.label].done)]
        if len(active) < 2:
            settled = all(rule.result is not None for rule in rules.values())
            return "decided" if settled else "pairs exhausted"
        if time.monotonic() - started > budget_s:
            return "budget spent"
        cycle = [w for w in order if w in active]
        times = {}
        for worker in cycle:
            try:
                worker.send("round")
            except (BrokenPipeError, OSError, ValueError):
                answer = {"error": f"exited with status {worker.proc.poll()}"}
            else:
                answer = worker.receive(wait_s)
            if "s" not in answer:
                errors[worker.label] = str(answer.get("error", answer))
                return f"{worker.label} failed"
            times[worker.label] = float(answer["s"])
        for label, seconds in times.items():
            rounds[label].append(seconds)
        for worker in cycle:
            if worker is not leader:
                rules[worker.label].add(times[worker.label], times[leader.label])
        order.reverse()


def _own_group(proc: subprocess.Popen) -> int | None:
    """The process group ``proc`` leads (it was started in a session of its own), else
    None: a group shared with this process is never killed."""
    try:
        return proc.pid if os.getpgid(proc.pid) == proc.pid else None
    except ProcessLookupError:
        return None


def _end(worker: _Worker) -> None:
    """Ask a worker to stop, wait a little, then kill its process group (what it started
    goes with it: torch.compile's compile workers)."""
    proc = worker.proc
    if proc.poll() is None:
        try:
            worker.send("stop")
            proc.wait(timeout=5)
        except (BrokenPipeError, OSError, ValueError, subprocess.TimeoutExpired):
            pass
    if worker.group is not None:
        try:
            os.killpg(worker.group, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def worker_command(cfg: Any, contest: Contest, index: int) -> list[str]:
    """The command line of one contender's worker (``suites/bench/paired.py``)."""
    variant, device, iterations = contest.contenders[index]
    job = paired_worker.spec(cfg, variant, device, contest.problem, iterations)
    return [sys.executable, "-m", "suites.bench.paired", job]


def record(fields: dict[str, Any]) -> dict[str, Any]:
    return {"schema": SCHEMA, "kind": PAIRED, **fields}
