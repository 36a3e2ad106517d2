"""What a run needs before it starts, and the checks that refuse one that cannot fit:
host and GPU memory (estimated from the problems' shapes, nothing allocated), and the K
of the data-parallel variants against cores, GPUs and rows."""

from __future__ import annotations

import importlib.util
import os
import subprocess

from backends import devices_of, framework_of, is_parallel
from suites.bench.bandwidth import COPY_BYTES, DEVICE_COPY_BYTES
from suites.config import ConfigError, RunConfig
from suites.machine import NVIDIA_SMI_TIMEOUT_S, nvidia_smi, usable_cores

# What a framework holds on a GPU before any data: its CUDA context, the cuBLAS/cuDNN
# handles and workspaces, the allocator's first pool (about 0.5 GiB for torch and for
# jax on recent GPUs; 1 GiB keeps a margin).
CUDA_FRAMEWORK_BYTES = 2**30


# Temporaries of one epoch, in vectors of n_samples: the prediction, the residual, its
# square and their gradients in autograd (torch-nn's (N, 1) shapes alike); the fused
# and hand-written variants need fewer.
EPOCH_TEMPORARIES = 6


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (MemAvailable), or None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        return None


def gpu_count() -> int:
    """GPUs visible to CUDA here: ``CUDA_VISIBLE_DEVICES``'s entries when set, else the
    ones ``nvidia-smi`` lists (0 without a driver)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip()])
    try:
        proc = subprocess.run(
            ["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return 0
    return len(proc.stdout.split()) if proc.returncode == 0 else 0


def check_ranks(run: RunConfig, cores: int | None = None, gpus: int | None = None) -> None:
    """Refuse K larger than what can hold K ranks: the usable cores on the CPU (one
    each), or the visible GPUs on cuda. A problem too small to split at K is not an
    error: its case is not run (``RunConfig.ks``, ``--shard-rows``).

    Raises:
        ConfigError: naming K, what is available and how to choose.
    """
    if not any(is_parallel(v) for v in run.backends):
        return
    k = max(run.ranks)
    cores = len(usable_cores()) if cores is None else cores
    if "cpu" in run.devices and k > cores:
        raise ConfigError(
            f"--ranks {k} needs {k} cores (one per data-parallel rank); this process "
            f"may use {cores}: choose --ranks up to {cores}"
        )
    if "cuda" in run.devices:
        gpus = gpu_count() if gpus is None else gpus
        if k > gpus:
            raise ConfigError(
                f"--ranks {k} on cuda needs {k} GPUs; {gpus} visible: choose --ranks "
                f"up to {max(gpus, 1)}"
            )


def free_gpu_memory() -> int | None:
    """Free bytes on the GPU the CUDA variants will use (the first visible one), from
    ``nvidia-smi`` so that no framework is started for it; None without a GPU."""
    fields = nvidia_smi("memory.free")
    try:
        return int(float(fields[0]) * 2**20) if fields else None  # MiB
    except ValueError:
        return None


def check_memory(
    run: RunConfig,
    available: int | None = None,
    gpu_free: int | None = None,
    *,
    timing: bool = True,
    isolate: str = "variant",
) -> None:
    """Refuse a run whose estimated peak memory exceeds 90% of what is available: host
    memory, and with ``--devices cuda`` the GPU's free memory.

    Args:
        available: host bytes available (default: read from the OS).
        gpu_free: free GPU bytes (default: read with nvidia-smi when the run uses cuda).
        timing: a timed run (``gdbench run``), with the copy-bandwidth benchmarks.
        isolate: the run's ``--isolate`` (``none`` puts every framework in one process).

    Raises:
        ConfigError: with the estimate and the free memory.
    """
    largest = max(run.sizes) if "sweep" in run.problems else None
    what = f"--sizes up to {largest:,} with --features {run.features}" if largest else "this run"
    if run.data is not None:
        d = run.data_file()
        what = f"--data {run.data} ({d.rows:,} rows × {len(d.features):,} features)" + (
            f" with {what}" if largest else ""
        )
    free = available_memory() if available is None else available
    need = estimate_bytes(run)
    if free is not None and need > 0.9 * free:
        raise ConfigError(
            f"{what} needs about {need / 1e9:.1f} GB of memory (data, its float64 reference "
            f"and the backends' copies); this machine has {free / 1e9:.1f} GB available: "
            + ("use a smaller file or " if run.data is not None else "")
            + "choose smaller --sizes, --features or --epochs"
        )
    frameworks = cuda_frameworks(run)
    if not frameworks:
        return
    gpu = free_gpu_memory() if gpu_free is None else gpu_free
    need = device_bytes(run, timing, isolate)
    if gpu is not None and need > 0.9 * gpu:
        raise ConfigError(
            f"{what} needs about {need / 1e9:.1f} GB of GPU memory ({' and '.join(frameworks)}: "
            f"data, buffers and {CUDA_FRAMEWORK_BYTES / 2**30:g} GiB each for the CUDA context); "
            f"the GPU has {gpu / 1e9:.1f} GB free: choose smaller --sizes, --features or "
            "--epochs, or fewer --backends on cuda"
        )


def estimate_bytes(run: RunConfig) -> int:
    """Peak host memory of this run, estimated before anything is allocated.

    Kept for the whole run: every problem's X and y in its dtype. At the peak of one
    case: making the synthetic data (float32 draw + float64 copy), the float64
    reference (a float64 copy of X, and losses and parameters per epoch), the case's
    own copy of the data (so that its peak memory includes it), and the backend's
    copy of the data twice (the timed session and the recorded one), each with its
    per-epoch buffers.
    """
    return max(case_bytes(run), kept_bytes(run) + bandwidth_bytes(run))


def kept_bytes(run: RunConfig) -> int:
    """Every problem's X and y, kept for the whole run."""
    item = 4 if run.dtype == "float32" else 8
    return sum(n * (d + 1) * item for n, d, _ in _shapes(run))


def bandwidth_bytes(run: RunConfig) -> int:
    """The two arrays of the memory-bandwidth copy (``suites/bench/bandwidth.py``)."""
    return 2 * COPY_BYTES["quick" if run.quick else "timed"]


def case_bytes(run: RunConfig) -> int:
    """The kept data plus the peak of the largest single case."""
    item = 4 if run.dtype == "float32" else 8
    peak = 0
    for n, d, epochs in _shapes(run):
        make = n * d * (4 + 8) + n * 8
        reference = n * (d + 1) * 8 + 3 * n * 8 + epochs * (d + 2) * 8
        backend = n * (d + 1) * item + 2 * (n * (d + 2) * item + epochs * (d + 2) * item)
        peak = max(peak, make, reference + backend)
    return kept_bytes(run) + peak


def cuda_frameworks(run: RunConfig) -> list[str]:
    """The installed frameworks of this run that would use the GPU (none without
    cuda); found without importing them."""
    if "cuda" not in run.devices:
        return []
    found = {framework_of(v) for v in run.backends if "cuda" in devices_of(v)}
    return sorted(f for f in found if importlib.util.find_spec(f) is not None)


def device_bytes(run: RunConfig, timing: bool = True, isolate: str = "variant") -> int:
    """Peak GPU memory of this run, estimated before anything is allocated.

    A worker holds, per framework it runs on cuda, a fixed cost (CUDA context,
    libraries) plus its largest case: X and y, one epoch's temporaries, and the
    per-epoch losses and parameters of the recorded (convergence) session. Workers
    run one at a time, so the peak is one worker's, except with ``--isolate none``
    where one process holds every framework (each allocator keeps what it freed). A
    timed run also has the GPU's copy-bandwidth worker: each installed framework's
    fixed cost and one copy's two arrays (the torch copy frees its arrays first).
    """
    frameworks = cuda_frameworks(run)
    if not frameworks:
        return 0
    item = 4 if run.dtype == "float32" else 8
    case = max(
        (n * (d + 1) + EPOCH_TEMPORARIES * n + epochs * (d + 3)) * item
        for n, d, epochs in _shapes(run)
    )
    together = len(frameworks) if isolate == "none" else 1
    need = together * (CUDA_FRAMEWORK_BYTES + case)
    if timing:
        installed = [f for f in ("torch", "jax") if importlib.util.find_spec(f) is not None]
        copies = len(installed) * CUDA_FRAMEWORK_BYTES + device_bandwidth_bytes(run)
        need = need + copies if isolate == "none" else max(need, copies)
    return need


def device_bandwidth_bytes(run: RunConfig) -> int:
    """The two arrays of the GPU's copy-bandwidth benchmark (``suites/bench/bandwidth.py``)."""
    return 2 * DEVICE_COPY_BYTES["quick" if run.quick else "timed"]


def _shapes(run: RunConfig) -> list[tuple[int, int, int]]:
    """(n_samples, n_features, epochs) of every problem, without building any."""
    return [(n, d, epochs) for _, n, d, epochs in run.problem_shapes()]
