"""What the two suites share: threads, the convergence run, and the record of each case.

A *record* is the plain dict that describes one finished case (one backend on one
problem). The suites append records as they finish (``records.jsonl``), put them into
pytest-benchmark's JSON, and ``reports`` builds every table and plot from them.
"""

from __future__ import annotations

import ctypes
import gc
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from backends import Backend, BackendInfo, TrainResult, framework_of
from backends.blocking import machine_cache
from suites.convergence import Verdict, compare
from suites.problems import Problem

RECORDS_FILE = "records.jsonl"
# Settings that decide how a framework uses the device's memory, recorded with every run.
ALLOCATOR_ENV = (
    "XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION",
    "XLA_PYTHON_CLIENT_ALLOCATOR", "PYTORCH_CUDA_ALLOC_CONF", "JAX_PLATFORMS",
    "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER",
)  # fmt: skip
SCHEMA = 1  # version of the "gdbench" section and of every record
# The copy-bandwidth benchmarks of each device (suites/test_epoch_cost.py); the manager
# counts them, the suite parametrizes over them.
# The memory benchmarks of each device: copies (read + write) and streaming reads (a
# sum: the floor of an epoch that reads X once).
COPY_METHODS = {
    "cpu": ("numpy-copy", "torch-copy", "numpy-read", "torch-read"),
    "cuda": ("torch-cuda-copy", "jax-cuda-copy", "torch-cuda-read", "jax-cuda-read"),
}


def copy_methods(devices: tuple[str, ...]) -> list[tuple[str, str]]:
    """(method, device) of every copy-bandwidth benchmark of a run on ``devices``: the CPU
    ones always (the host's bandwidth), the CUDA ones when the run uses ``cuda``."""
    return [(m, d) for d in ("cpu", *(d for d in devices if d != "cpu")) for m in COPY_METHODS[d]]


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


def framework_threads(framework: str) -> int:
    """The intra-op threads ``framework`` uses now in this process, read back from the
    framework itself (what :func:`apply_threads`, :func:`thread_env` and
    :func:`pin_cores` achieved, not what they asked for)."""
    if framework == "torch":
        import torch

        return int(torch.get_num_threads())
    if framework == "numpy":
        from threadpoolctl import threadpool_info

        counts = [int(lib["num_threads"]) for lib in threadpool_info() if lib["user_api"] == "blas"]
        return max(counts, default=1)
    # XLA:CPU: one thread under its single-threaded switch, else one per core it may use
    if "--xla_cpu_multi_thread_eigen=false" in os.environ.get("XLA_FLAGS", ""):
        return 1
    return len(usable_cores())


def thread_env(n: int) -> dict[str, str]:
    """Environment that pins the BLAS/OpenMP pools to ``n`` threads.

    XLA:CPU has no thread-count switch, only single-threaded or not
    (``--xla_cpu_multi_thread_eigen``): jax gets that for ``n == 1``. For other counts
    its thread pool is sized from the process's CPU affinity, which :func:`pin_cores`
    sets before jax starts.
    """
    env = {name: str(n) for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    flags = os.environ.get("XLA_FLAGS", "")
    if n == 1 and "xla_cpu_multi_thread_eigen" not in flags:
        flags += " --xla_cpu_multi_thread_eigen=false"
    if flags.strip():
        env["XLA_FLAGS"] = flags.strip()
    return env


def usable_cores() -> list[int]:
    """The cores this process may run on, in order."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux: no affinity API
        return list(range(os.cpu_count() or 1))


def pin_cores(n: int) -> list[int]:
    """Restrict this process to its first ``n`` usable cores (CPU affinity), so that
    every framework, jax included, sizes its thread pool to ``n``. Must run before a
    framework starts its threads. Returns the cores it now runs on."""
    cores = usable_cores()
    if n < len(cores) and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores[:n])
    return usable_cores()


def jax_threads(n: int) -> str:
    """What jax's CPU thread count is under ``thread_env(n)`` and ``pin_cores(n)``, in
    the process that asks (a worker, once pinned)."""
    if n == 1:
        return "1"  # XLA's single-threaded switch
    if hasattr(os, "sched_setaffinity"):
        return str(len(usable_cores()))  # XLA sizes its pool from the affinity
    return f"XLA default (all {os.cpu_count()} cores)"


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


def run_convergence(
    backend: Backend, problem: Problem, matmul_precision: str = "float32"
) -> tuple[TrainResult, Verdict]:
    """Train once with parameters recorded, and judge the run against the reference."""
    session = backend.prepare(problem, record_params=True)
    try:
        result = session.train()
    finally:
        close_session(session)
    return result, compare(problem, result, matmul_precision)


def close_session(session: object) -> None:
    """End a session that holds processes or a process group (the data-parallel ones
    have ``close``); the others are freed as any object is."""
    close = getattr(session, "close", None)
    if close is not None:
        close()


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


def read_records(path: Path | None) -> list[dict[str, Any]]:
    """Every whole record in a records.jsonl (a line cut short by a killed worker is
    skipped)."""
    if path is None or not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(rec, dict) and "kind" in rec:
            out.append(rec)
    return out


def run_finished(records: Path) -> bool:
    """Whether a records.jsonl ends with the marker of a run that was not interrupted."""
    try:
        finished = read_records(records)
    except OSError:
        return False
    for rec in reversed(finished):
        if rec["kind"] == "end":
            return not rec.get("interrupted", False)
    return False


class PeakMemory:
    """Peak memory of this process over a block, above what it held when the block began.

    Host: the growth of the resident-set high-water mark (``VmHWM``), which Linux resets
    to the current size through ``/proc/self/clear_refs``; freed heap memory is handed
    back first (``malloc_trim``), so that reusing it cannot hide an allocation. Device
    (CUDA): torch's ``max_memory_allocated`` since a reset at the start; jax's
    ``peak_bytes_in_use``, which cannot be reset, so it is the worker's peak so far.
    ``host``/``device`` stay ``None`` where a value cannot be measured.
    """

    def __init__(self, framework: str = "numpy", device: str = "cpu") -> None:
        self.framework, self.device = framework, device
        self.host: int | None = None
        self.device_bytes: int | None = None

    def __enter__(self) -> PeakMemory:
        gc.collect()
        _malloc_trim()
        self._reset = _reset_high_water_mark()
        self._start = _proc_status_bytes("VmRSS")
        if self.device == "cuda" and self.framework == "torch":
            sys.modules["torch"].cuda.reset_peak_memory_stats()
        return self

    def __exit__(self, *exc: object) -> None:
        peak = _proc_status_bytes("VmHWM")
        if self._reset and peak is not None and self._start is not None:
            self.host = max(0, peak - self._start)
        self.device_bytes = _device_peak(self.framework, self.device)

    def fields(self) -> dict[str, int | None]:
        return {"peak_host_bytes": self.host, "peak_device_bytes": self.device_bytes}


def _proc_status_bytes(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _reset_high_water_mark() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # 5: reset the peak RSS (Linux 4.0+)
    except OSError:
        return False
    return True


def _malloc_trim() -> None:
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _device_peak(framework: str, device: str) -> int | None:
    if device != "cuda":
        return None
    try:
        if framework == "torch":
            return int(sys.modules["torch"].cuda.max_memory_allocated())
        if framework == "jax":
            stats = sys.modules["jax"].devices("gpu")[0].memory_stats() or {}
            peak = stats.get("peak_bytes_in_use")
            return int(peak) if peak is not None else None
    except (KeyError, RuntimeError, IndexError):
        pass
    return None


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
    GPU through ``nvidia-smi``, and through torch or jax only where already loaded.
    """
    info: dict[str, Any] = {
        "gdbench_schema": SCHEMA,
        "node": platform.node(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "threads": threads,
        "jax_threads": jax_threads(threads),
        "thread_env": {k: os.environ.get(k) for k in sorted(thread_env(threads))},
        "affinity": usable_cores(),
        "allocator_env": {k: v for k, v in sorted(os.environ.items()) if k in ALLOCATOR_ENV},
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": _version("torch"),
            "jax": _version("jax"),
            "jaxlib": _version("jaxlib"),
            "pytest-benchmark": _version("pytest-benchmark"),
        },
        "gpu": gpu_info(),
        # what the single-pass variants' block size is chosen from (backends/blocking.py)
        "l2_cache": machine_cache().as_dict(),
    }
    return info


# What a report says about GPU 0, each None where unknown: name, compute capability
# ("9.0"), memory (GiB), driver, the CUDA and cuDNN versions torch was built with, and
# the jax CUDA plugin installed (package and version).
GPU_FIELDS = (
    "name", "compute_capability", "memory_gib", "driver", "cuda", "cudnn", "jax_cuda_plugin",
)  # fmt: skip
NVIDIA_SMI_QUERY = "name,compute_cap,memory.total,driver_version"
# Drivers before R510 do not know compute_cap, and refuse the whole query for it.
NVIDIA_SMI_OLD_QUERY = "name,memory.total,driver_version"
NVIDIA_SMI_TIMEOUT_S = 10.0
JAX_CUDA_PLUGINS = ("jax-cuda13-plugin", "jax-cuda12-plugin", "jax-cuda12-pjrt")


def gpu_info() -> dict[str, Any] | None:
    """GPU 0 of this machine (see ``GPU_FIELDS``), or None when no GPU is known.

    Imports no framework: name, compute capability, memory and driver come from
    ``nvidia-smi`` (so a process that hides the GPU from CUDA, or imports no framework,
    still names it); a framework already loaded in this process adds what it knows
    (torch: the CUDA and cuDNN versions; without ``nvidia-smi``, the device itself; jax:
    the device's kind, where torch cannot say). The jax CUDA plugin's version is read
    from package metadata.
    """
    info: dict[str, Any] = dict.fromkeys(GPU_FIELDS)
    for source in (_nvidia_smi(), _torch_gpu(), _jax_gpu()):
        for key, value in (source or {}).items():
            if info.get(key) is None:
                info[key] = value
    if info["name"] is None:
        return None
    info["jax_cuda_plugin"] = next(
        (f"{dist} {v}" for dist in JAX_CUDA_PLUGINS if (v := _version(dist))), None
    )
    return info


def nvidia_smi(query: str) -> list[str] | None:
    """The ``--query-gpu`` fields of the GPU the CUDA variants use, the first of
    ``CUDA_VISIBLE_DEVICES`` (an index or a UUID; GPU 0 when unset or empty); None if the
    command is absent, fails or hangs. Workers on CUDA run with
    ``CUDA_DEVICE_ORDER=PCI_BUS_ID``, so CUDA's index is nvidia-smi's."""
    first = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip() or "0"
    try:
        proc = subprocess.run(
            ["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits",
             f"--id={first}"],
            capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    fields = [f.strip() for f in lines[0].split(",")] if lines else []
    if proc.returncode != 0 or len(fields) != len(query.split(",")):
        return None
    return fields


def _nvidia_smi() -> dict[str, Any] | None:
    """The GPU as ``nvidia-smi`` describes it (see :func:`nvidia_smi`); an old driver
    that does not know the compute capability still names it."""
    fields = nvidia_smi(NVIDIA_SMI_QUERY)
    if fields is None:
        old = nvidia_smi(NVIDIA_SMI_OLD_QUERY)
        if old is None:
            return None
        fields = [old[0], "[N/A]", *old[1:]]
    name, capability, memory_mib, driver = (None if f.startswith("[") else f for f in fields)
    try:
        memory_gib = round(float(memory_mib) / 1024, 1) if memory_mib else None
    except ValueError:
        memory_gib = None
    return {"name": name, "compute_capability": capability, "memory_gib": memory_gib,
            "driver": driver}  # fmt: skip


def _torch_gpu() -> dict[str, Any] | None:
    """What torch, if this process has already loaded it, knows of CUDA device 0."""
    torch = sys.modules.get("torch")
    try:
        if torch is None or not torch.cuda.is_available():
            return None
        props = torch.cuda.get_device_properties(0)
        major, minor = torch.cuda.get_device_capability(0)
    except RuntimeError:  # a driver that fails after all: nvidia-smi said what it could
        return None
    return {
        "name": props.name,
        "compute_capability": f"{major}.{minor}",
        "memory_gib": round(props.total_memory / 2**30, 1),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version(),
    }


def _jax_gpu() -> dict[str, Any] | None:
    """The kind of jax's first GPU, if this process has already loaded jax and it has a
    GPU platform."""
    jax = sys.modules.get("jax")
    if jax is None:
        return None
    try:
        return {"name": jax.devices("gpu")[0].device_kind}
    except (RuntimeError, IndexError):
        return None
