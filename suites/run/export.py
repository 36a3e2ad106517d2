"""``benchmark.json`` and ``convergence.json``: exports of a run's records.

pytest-benchmark's format (one entry per timed case, the rounds of all its processes
pooled) for the tools that read it; the report itself is built from the records.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from reports.read import gdbench_section, merged_machine, pooled_benchmarks, run_stamp
from reports.records import RECORDS_FILE, read_records
from suites.run.workers import commit_info


def write_json(out: Path, timing: bool) -> Path:
    """Write ``benchmark.json`` (pytest-benchmark's format, one entry per timed case with
    the rounds of all its processes pooled) or, for a check, ``convergence.json``."""
    records = read_records(out / RECORDS_FILE)
    doc: dict[str, Any] = {"benchmarks": []}
    if timing:
        stamp = run_stamp(records)
        doc = {
            "machine_info": _machine_info(records),
            "commit_info": stamp.get("commit_info") or commit_info(),
            "benchmarks": pooled_benchmarks(records),
            "datetime": stamp.get("datetime") or dt.datetime.now(dt.UTC).isoformat(),
            "version": _pytest_benchmark_version(),
        }
    doc["gdbench"] = gdbench_section(records)
    path = out / ("benchmark.json" if timing else "convergence.json")
    path.write_text(json.dumps(doc, indent=1, allow_nan=False), encoding="utf-8")
    return path


def _machine_info(records: list[dict[str, Any]]) -> dict[str, Any]:
    from pytest_benchmark.plugin import pytest_benchmark_generate_machine_info

    info = pytest_benchmark_generate_machine_info()
    info["gdbench"] = merged_machine(records)
    return info


def _pytest_benchmark_version() -> str:
    import pytest_benchmark

    return pytest_benchmark.__version__
