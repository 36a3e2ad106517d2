"""What the two suites share: threads, the convergence run, and the record of each case.

A *record* is the plain dict that describes one finished case (one backend on one
problem). The suites append records as they finish (``records.jsonl``), put them into
pytest-benchmark's JSON, and ``reports`` builds every table and plot from them.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

from backends import Backend, BackendInfo, TrainResult, framework_of
from suites.convergence import Verdict, compare
from suites.problems import Problem

RECORDS_FILE = "records.jsonl"
SCHEMA = 1  # version of the "gdbench" section and of every record


def apply_threads(framework: str, n: int) -> None:
    """Give ``framework`` ``n`` intra-op threads (the CLI also sets the env vars).

    jax reads its thread settings from XLA_FLAGS when it starts, so it is set in the
    environment by ``gdbench run`` before the process starts, not here.
    """
    if framework == "torch":
        import torch

        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    elif framework == "numpy":
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)


def thread_env(n: int) -> dict[str, str]:
    """Environment that pins the BLAS/OpenMP pools to ``n`` threads.

    XLA:CPU has one switch, single-threaded or not (``--xla_cpu_multi_thread_eigen``):
    jax gets it for ``n == 1``; for other counts jax keeps its default (every core), and
    ``jax_threads`` in machine_info says so.
    """
    env = {name: str(n) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    flags = os.environ.get("XLA_FLAGS", "")
    if n == 1 and "xla_cpu_multi_thread_eigen" not in flags:
        flags += " --xla_cpu_multi_thread_eigen=false"
    if flags.strip():
        env["XLA_FLAGS"] = flags.strip()
    return env


def jax_threads(n: int) -> str:
    """What jax's CPU thread count is under ``thread_env(n)``."""
    if n == 1:
        return "1"
    return f"XLA default (all {os.cpu_count()} cores)" if n != os.cpu_count() else str(n)


def case_id(variant: str, device: str, problem: str) -> str:
    return f"{variant}@{device}-{problem}"


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
    """Record fields that say how a run compares with the reference."""
    return {
        "status": verdict.status,
        "epoch": verdict.epoch,
        "message": verdict.message,
        "final_loss": _num(result.losses[-1]),
        "ref_final_loss": _num(problem.reference.losses[-1]),
        "max_loss_dev": _num(verdict.max_loss_dev),
        "param_dev": _num(verdict.param_dev),
        "optimum_dev": _num(verdict.optimum_dev),
    }


def trajectory(problem: Problem, result: TrainResult) -> dict[str, Any]:
    """Per-epoch losses and parameters after each update, and the reference's losses."""
    out: dict[str, Any] = {
        "loss": [_num(v) for v in result.losses],
        "ref_loss": [_num(v) for v in problem.reference.losses],
    }
    if result.w_history is not None:
        out["w"] = [[_num(v) for v in row] for row in result.w_history]
    if result.b_history is not None:
        out["b"] = [_num(v) for v in result.b_history]
    return out


def run_convergence(backend: Backend, problem: Problem) -> tuple[TrainResult, Verdict]:
    """Train once with parameters recorded, and judge the run against the reference."""
    session = backend.prepare(problem, record_params=True)
    result = session.train()
    return result, compare(problem, result)


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


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


def run_finished(records: Path) -> bool:
    """Whether a records.jsonl ends with the marker of a run that was not interrupted."""
    try:
        lines = records.read_text(encoding="utf-8").splitlines()
    except OSError:
        return False
    for line in reversed(lines):
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("kind") == "end":
            return not rec.get("interrupted", False)
    return False


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_fields(threads: int) -> dict[str, Any]:
    """Versions, CPU, threads and GPU, for pytest-benchmark's ``machine_info``.

    Reads versions from package metadata so that no framework is imported for it; the
    GPU is queried through torch only if torch is already loaded by a backend.
    """
    info: dict[str, Any] = {
        "gdbench_schema": SCHEMA,
        "node": platform.node(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "jax_threads": jax_threads(threads),
        "thread_env": {k: os.environ.get(k) for k in sorted(thread_env(threads))},
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": _version("torch"),
            "jax": _version("jax"),
            "jaxlib": _version("jaxlib"),
            "pytest-benchmark": _version("pytest-benchmark"),
        },
        "gpu": gpu_info(),
    }
    return info


def gpu_info() -> dict[str, Any] | None:
    """Name, driver and CUDA version of GPU 0 when torch (already loaded) sees one."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available():
        return None
    props = torch.cuda.get_device_properties(0)
    driver = None
    try:
        import subprocess

        driver = (
            subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            )
            .stdout.strip()
            .splitlines()[0]
        )
    except (OSError, IndexError, subprocess.SubprocessError):
        pass
    return {
        "name": props.name,
        "driver": driver,
        "cuda": torch.version.cuda,
        "memory_gib": round(props.total_memory / 2**30, 1),
    }
