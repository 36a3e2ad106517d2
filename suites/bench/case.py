"""What one case does around the backend: train and judge once, close a session, and
measure its peak memory."""

from __future__ import annotations

import ctypes
import gc
import sys
from pathlib import Path

from backends import Backend, TrainResult, check_result
from suites.convergence import Verdict, compare
from suites.problems import Problem, preset


def run_convergence(
    backend: Backend, problem: Problem, matmul_precision: str = "float32"
) -> tuple[TrainResult, Verdict]:
    """Train once with parameters recorded, and judge the run against the reference.

    Raises:
        BadResult: the result is of the wrong shape or dtype (it is refused, not judged).
    """
    session = backend.prepare(problem, record_params=True)
    try:
        result = session.train()
    finally:
        close_session(session)
    check_result(backend.variant, result, problem)
    return result, compare(problem, result, matmul_precision)


def warm_up(backend: Backend, dtype: str) -> None:
    """Train a tiny problem once, so that the framework's one-time start (XLA client, CUDA
    context, torch.compile's machinery) is charged to no later case's compile time or
    peak memory."""
    warm = backend.prepare(preset("toy-20", dtype).replace(name="warm-up"))
    warm.warmup()
    close_session(warm)


def close_session(session: object) -> None:
    """End a session that holds processes or a process group (the data-parallel ones
    have ``close``); the others are freed as any object is."""
    close = getattr(session, "close", None)
    if close is not None:
        close()


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
