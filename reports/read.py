"""Reading results: a run's records, or a pytest-benchmark JSON with gdbench's section,
into what the report is built from: each timed case with the rounds of every process
that timed it pooled, the run's ``gdbench`` section, and its machine. Nothing here
imports a framework."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reports.records import (
    BANDWIDTH,
    BENCHMARK,
    CONVERGENCE,
    END,
    PAIRED,
    RUN,
    WORKER,
    ReportInputError,
    case_id,
)


@dataclass
class Machine:
    """What a report says about one machine, and the key that keeps ratios within it.

    The key names the GPU when one is recorded, so that runs on one host with different
    GPUs are never ratioed together.
    """

    key: str  # "host (CPU model)", or "host (CPU model, GPU name)"
    host: str
    cpu: str
    info: dict[str, Any] = field(default_factory=dict)  # machine_info["gdbench"]
    datetime: str | None = None
    commit: str | None = None
    gpu: str = ""  # the GPU's name, "" when none is recorded


def machine_of(machine_info: dict[str, Any], gdb: dict[str, Any], doc: dict[str, Any]) -> Machine:
    info = machine_info.get("gdbench") or gdb.get("machine") or {}
    host = machine_info.get("node") or info.get("node") or "unknown-host"
    cpu = info.get("cpu_model") or (machine_info.get("cpu") or {}).get("brand_raw") or "unknown CPU"
    commit = (doc.get("commit_info") or {}).get("id")
    gpu = (info.get("gpu") or {}).get("name") or ""
    key = f"{host} ({cpu}, {gpu})" if gpu else f"{host} ({cpu})"
    return Machine(key, host, cpu, info, doc.get("datetime"), commit, gpu)


def read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ReportInputError(f"{path}: no such file")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ReportInputError(f"{path}: not JSON ({err.__class__.__name__}: {err})") from None
    if not isinstance(doc, dict) or "benchmarks" not in doc:
        raise ReportInputError(
            f"{path}: not pytest-benchmark output (no 'benchmarks' list); "
            "give the benchmark.json or convergence.json a gdbench run wrote"
        )
    if "gdbench" not in doc:
        raise ReportInputError(
            f"{path}: pytest-benchmark output without gdbench's fields (no 'gdbench' "
            "section): was it written by `gdbench run` or `pytest suites/bench`?"
        )
    return doc


_RECORD_ONLY = ("schema", "kind", "timing", "trajectory")


def pooled_stats(timings: list[dict[str, Any]]) -> dict[str, Any]:
    """pytest-benchmark's statistics over the rounds of several processes together (as
    pyperf pools the values of its worker processes); each timing holds its rounds in
    ``data`` (seconds per iteration)."""
    from pytest_benchmark.stats import Stats

    stats = Stats()
    for timing in timings:
        for value in timing.get("data") or []:
            stats.update(value)
    if not stats:  # rounds not kept (an older record): the last process's statistics
        return dict(timings[-1]) if timings else {}
    out: dict[str, Any] = stats.as_dict()
    out["data"] = list(stats.data)
    out["iterations"] = timings[0].get("iterations", 1)
    return out


def pooled_cases(records: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """One (extra_info, stats) per timed case of a run's records, the rounds of every
    process that timed it pooled. If any process disagreed with the reference, the case
    takes that status (its cost is then no valid result); a case no process timed keeps
    its last record (failed...) and no stats."""
    cases: dict[tuple, list[dict[str, Any]]] = {}
    for rec in records:
        if rec.get("kind") == BENCHMARK:
            key = (rec.get("variant"), rec.get("device"), rec.get("dtype"), rec.get("problem"))
            cases.setdefault(key, []).append(rec)
    out: list[tuple[dict[str, Any], dict[str, Any]]] = []
    for recs in cases.values():
        timed = [r for r in recs if r.get("timing")]
        if not timed:
            out.append(({k: v for k, v in recs[-1].items() if k not in _RECORD_ONLY}, {}))
            continue
        wrong = [r for r in timed if r.get("status", "agree") != "agree"]
        info = {k: v for k, v in (wrong or timed)[0].items() if k not in _RECORD_ONLY}

        def most(key: str, timed: list[dict[str, Any]] = timed) -> Any:
            values = [r[key] for r in timed if r.get(key) is not None]
            return max(values) if values else None

        compile_s = [r["compile_s"] for r in timed if r.get("compile_s") is not None]

        def middle(key: str, timed: list[dict[str, Any]] = timed) -> float | None:
            values = [r[key] for r in timed if r.get(key) is not None]
            return float(np.median(values)) if values else None

        info |= {
            "fixed_s": middle("fixed_s"),
            "marginal_epoch_s": middle("marginal_epoch_s"),
            "pids": [r.get("pid") for r in timed],
            "process_medians": [r["timing"].get("median") for r in timed],
            # each process's rounds (seconds per iteration), for intervals that
            # account for the spread between processes (reports/stats.py)
            "process_rounds": [r["timing"].get("data") or [] for r in timed],
            "compile_s": float(np.median(compile_s)) if compile_s else None,
            "peak_host_bytes": most("peak_host_bytes"),
            "peak_device_bytes": most("peak_device_bytes"),
        }
        stats = pooled_stats([r["timing"] for r in timed])
        info["rounds"] = stats.get("rounds")
        out.append((info, stats))
    return out


def pooled_benchmarks(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The benchmarks of pytest-benchmark's JSON, built from a run's records: one per
    timed case (pytest-benchmark leaves out only those whose timed call raised), then
    the copy-bandwidth benchmarks."""
    out = []
    for info, stats in pooled_cases(records):
        if not stats:
            continue
        case = case_id(info["variant"], info["device"], info["problem"])
        out.append(_benchmark_entry("epoch-cost", "test_epoch_cost", "test_epoch_cost.py",
                                    case, {"case": [info["variant"], info["device"],
                                                    info["problem"]]}, info, stats))  # fmt: skip
    for rec in records:
        if rec.get("kind") == BANDWIDTH and rec.get("timing"):
            info = {k: v for k, v in rec.items() if k not in ("schema", "timing")}
            out.append(_benchmark_entry("memory-bandwidth", "test_memory_bandwidth",
                                        "test_epoch_cost.py", rec["method"],
                                        {"method": rec["method"]}, info,
                                        pooled_stats([rec["timing"]])))  # fmt: skip
    return out


def _benchmark_entry(group: str, test: str, module: str, param: str, params: dict[str, Any],
                     info: dict[str, Any], stats: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    return {
        "group": group,
        "name": f"{test}[{param}]",
        "fullname": f"{module}::{test}[{param}]",
        "params": params,
        "param": param,
        "extra_info": info,
        "options": {"disable_gc": False, "timer": "perf_counter", "warmup": False},
        "stats": stats,
    }


def merged_machine(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The machine of a run: the run header's, with what only the workers know (what a
    framework says of the GPU: CUDA and cuDNN versions; their CPU affinity) and how the
    run was isolated."""
    header = next((r for r in records if r.get("kind") == RUN), {})
    workers = [r for r in records if r.get("kind") == WORKER]
    info = dict(header.get("machine") or (workers[0].get("machine") if workers else {}) or {})
    gpu = dict(info.get("gpu") or {})
    for w in workers:  # the header's fields first, then each worker's where it had none
        for name, value in ((w.get("machine") or {}).get("gpu") or {}).items():
            if gpu.get(name) is None:
                gpu[name] = value
    if gpu:
        info["gpu"] = gpu
    if workers:
        # what the workers ran with, not the manager: threads, affinity, jax's pool
        first = workers[0].get("machine") or {}
        info |= {k: first[k] for k in ("thread_env", "affinity", "jax_threads") if k in first}
        # what each worker was started with: GPU visibility, jax's preallocation
        info["worker_env"] = {
            w.get("worker"): (w.get("machine") or {}).get("allocator_env", {}) for w in workers
        }
    if header.get("isolation"):
        info["isolation"] = header["isolation"] | {"workers": len(workers)}
    if (header.get("config") or {}).get("block_rows"):  # else chosen from the L2 cache
        info["block_rows_option"] = header["config"]["block_rows"]
    return info


def gdbench_section(
    records: list[dict[str, Any]], interrupted: bool | None = None
) -> dict[str, Any]:
    """The ``gdbench`` section of a run's JSON, from its records (run header, workers'
    headers, finished cases, end marker): the one builder, for the manager's export and
    for a plain pytest session of the suites.

    Args:
        interrupted: whether the run was cut short, where the caller knows it before the
            end marker is written (a pytest session); by default, from the end marker.
    """
    header = next((r for r in records if r.get("kind") == RUN), {})
    end = end_record(records)
    unavailable: list[dict[str, Any]] = []
    for rec in records:
        if rec.get("kind") in (RUN, WORKER):
            unavailable += [u for u in rec.get("unavailable", []) if u not in unavailable]
    return {
        "schema": header.get("schema", 1),
        "config": header.get("config", {}),
        "isolation": header.get("isolation"),
        "convergence": [r for r in records if r.get("kind") == CONVERGENCE],
        "paired": [r for r in records if r.get("kind") == PAIRED],
        "failures": [r for r in records if r.get("status") == "failed"],
        "unavailable": unavailable,
        "not_split": header.get("not_split", []),
        "data": header.get("data"),
        "interrupted": (
            (end is None or bool(end.get("interrupted"))) if interrupted is None else interrupted
        ),
        "workers": (end or {}).get("workers", []),
        "machine": merged_machine(records),
    }


def run_stamp(records: list[dict[str, Any]]) -> dict[str, Any]:
    """When a run ended and at which commit (``datetime``, ``commit_info``), from its end
    marker, in the shape of pytest-benchmark's JSON; {} for a run that has none."""
    end = end_record(records) or {}
    return {k: end[k] for k in ("datetime", "commit_info") if end.get(k)}


def end_record(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A run's last end marker (a run re-ended keeps its last), or None."""
    return next((r for r in reversed(records) if r.get("kind") == END), None)
