"""Writing records: the fields of each case's record, and the append-only log.

The format itself (kinds, schema, the reader) is ``reports/records.py``; this module
builds the records the suites write and appends them, each on disk as soon as written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from backends import Backend, BackendInfo, TrainResult, first_line, framework_of
from reports.records import (
    BANDWIDTH,
    BENCHMARK,
    CONVERGENCE,
    END,
    RECORDS_FILE,
    RUN,
    SCHEMA,
    WORKER,
    WORKER_END,
    case_id,
    read_records,
)
from suites.convergence import Verdict
from suites.problems import Problem

__all__ = [
    "BANDWIDTH", "BENCHMARK", "CONVERGENCE", "END", "RECORDS_FILE", "RUN", "SCHEMA",
    "WORKER", "WORKER_END", "RecordLog", "base_record", "case_id", "first_line",
    "read_records", "trajectory", "unavailable_rows", "verdict_fields",
]  # fmt: skip


def base_record(kind: str, backend: Backend | str, device: str, problem: Problem) -> dict[str, Any]:
    """The fields every record has, identifying the case."""
    variant = backend if isinstance(backend, str) else backend.variant
    return {
        "schema": SCHEMA,
        "kind": kind,
        "variant": variant,
        "framework": framework_of(variant),
        "device": device,
        "dtype": problem.dtype,
        "problem": problem.name,
        "n_samples": problem.n_samples,
        "n_features": problem.n_features,
        "bias": problem.bias,
        "epochs": problem.epochs,
        "lr": problem.lr,
        "lr_limit": problem.lr_limit,
    }


def verdict_fields(problem: Problem, result: TrainResult, verdict: Verdict) -> dict[str, Any]:
    """Record fields that say how a run compares with the reference, and the loss
    tolerance it was judged by (the report draws it)."""
    return {
        "status": verdict.status,
        "epoch": verdict.epoch,
        "message": verdict.message,
        "final_loss": _num(result.losses[-1]),
        "ref_final_loss": _num(problem.reference.losses[-1]),
        "max_loss_dev": _num(verdict.max_loss_dev),
        "param_dev": _num(verdict.param_dev),
        "optimum_dev": _num(verdict.optimum_dev),
        "loss_rtol": verdict.rtol,
    }


def trajectory(problem: Problem, result: TrainResult) -> dict[str, Any]:
    """Per-epoch losses and parameters after each update, and the reference's losses."""
    out: dict[str, Any] = {
        "loss": [_num(v) for v in result.losses],
        "ref_loss": [_num(v) for v in problem.reference.losses],
        # the least-squares optimum's loss, from which the excess loss is measured
        "optimum_loss": _num(optimum_loss(problem)),
    }
    if result.w_history is not None:
        out["w"] = [[_num(v) for v in row] for row in result.w_history]
    if result.b_history is not None:
        out["b"] = [_num(v) for v in result.b_history]
    return out


def optimum_loss(problem: Problem) -> float:
    """The MSE at the least-squares optimum, in float64 on the problem's data."""
    w, b = problem.optimum
    residual = problem.X.astype(np.float64) @ w + b - problem.y.astype(np.float64)
    return float(np.mean(residual**2))


def _num(value: Any) -> float | None:
    """A JSON-safe float: NaN and infinities become None (JSON has neither)."""
    if value is None:
        return None
    value = float(value)
    return value if np.isfinite(value) else None


def unavailable_rows(rows: list[BackendInfo], variants: tuple[str, ...]) -> list[dict[str, str]]:
    return [
        {"variant": r.variant, "framework": r.framework, "device": r.device, "reason": r.reason}
        for r in rows
        if not r.available and r.variant in variants
    ]


class RecordLog:
    """Append-only JSON-lines log: each record is on disk (flushed, fsync'd) once written."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.records: list[dict[str, Any]] = []

    def append(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record, allow_nan=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
