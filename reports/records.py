"""The record format: what a worker writes, and the one reader of it.

A *record* is a plain dict, one JSON line of a run's ``records.jsonl``, written as each
thing happens (``suites/records.py`` writes them). Its ``kind`` says what it is:

- ``run``: the run's header (configuration, machine, isolation), written by the
  manager (or by a plain pytest session of the suites) before anything runs;
- ``worker``: a worker process's header (its pid, machine and what cannot run there);
- ``convergence``, ``benchmark``: one finished case of either suite;
- ``bandwidth``: one memory-bandwidth benchmark;
- ``paired``: the alternating rounds of a problem's contenders (``suites/run/paired.py``);
- ``worker-end``: a worker's last record; ``end``: the run's own end marker.

Everything that reads results (the report, the manager's bookkeeping, ``gdbench
compare``) reads them through :func:`read_records`. This module sits at the bottom of
the results path, below ``suites`` and ``reports`` alike, and imports neither.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

RECORDS_FILE = "records.jsonl"
SCHEMA = 1  # version of the "gdbench" section and of every record

# The kinds of record
RUN = "run"
WORKER = "worker"
CONVERGENCE = "convergence"
BENCHMARK = "benchmark"
BANDWIDTH = "bandwidth"
PAIRED = "paired"
WORKER_END = "worker-end"
END = "end"


class ReportInputError(ValueError):
    """An input file that cannot be reported on; ``str(err)`` names the file and why."""


def case_id(variant: str, device: str, problem: str) -> str:
    """A case's name in pytest node ids, progress lines and benchmark names:
    ``torch-nn@cpu-toy``."""
    return f"{variant}@{device}-{problem}"


def read_records(path: Path | None, *, strict: bool = False) -> list[dict[str, Any]]:
    """Every whole record in a records.jsonl, in order. A line cut short by a killed
    worker is skipped, and so is an empty line; a missing file has none.

    Args:
        strict: a whole JSON line that is not a record (no ``kind``) raises instead of
            being skipped (the report: the file is not gdbench output).

    Raises:
        ReportInputError: with ``strict``, naming the file and line.
    """
    if path is None or not path.exists():
        return []
    out = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and "kind" in rec:
            out.append(rec)
        elif strict:
            raise ReportInputError(f"{path}:{number}: not a gdbench record")
    return out
