"""The machine a case runs on: cores, threads and affinity, and the CPU and GPU facts
that a report names. Imports no framework; reads what one already loaded knows."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from backends.blocking import machine_cache
from reports.records import SCHEMA

# Settings that decide how a framework uses the device's memory, recorded with every run.
ALLOCATOR_ENV = (
    "XLA_PYTHON_CLIENT_PREALLOCATE", "XLA_PYTHON_CLIENT_MEM_FRACTION",
    "XLA_PYTHON_CLIENT_ALLOCATOR", "PYTORCH_CUDA_ALLOC_CONF", "JAX_PLATFORMS",
    "CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER",
)  # fmt: skip


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


def memory_bytes() -> int | None:
    """The machine's physical memory, in bytes (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


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
        "memory_bytes": memory_bytes(),
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
