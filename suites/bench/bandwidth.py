"""The memory-bandwidth benchmarks: a large copy (read + write) and a streaming read
(a sum: the floor of an epoch that reads X once), in host memory and, in a run on
``cuda``, on the GPU. The manager counts them (:func:`copy_methods`), the suite
parametrizes over them and times :func:`copy_function`."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from suites.machine import apply_threads
from suites.records import first_line

# The copy-bandwidth benchmarks of each device; the manager counts them, the suite
# parametrizes over them.
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


# Bytes per array of the bandwidth copy: far beyond any cache (two arrays are live).
COPY_BYTES = {"timed": 256 * 2**20, "quick": 64 * 2**20, "smoke": 8 * 2**20}


# The same on a GPU: far beyond its L2 cache (50 MiB on an H100, 126 MiB on a B200).
DEVICE_COPY_BYTES = {"timed": 2**30, "quick": 256 * 2**20, "smoke": 8 * 2**20}


def copy_function(method: str, n_bytes: int, threads: int) -> Callable[[], object]:
    """A copy of ``n_bytes`` between two float32 arrays (``*-copy``), or a sum of one
    array of ``n_bytes`` (``*-read``: a streaming read, the floor of an epoch that reads
    X once), done when it returns.

    ``numpy-*`` and ``torch-*`` work in host memory; ``torch-cuda-*`` on CUDA device 0
    and ``jax-cuda-*`` on jax's first GPU, each synchronised within the call. The CUDA
    ones skip, with the reason, where the framework or the GPU is missing.
    """
    count = n_bytes // 4
    read = method.endswith("-read")
    if method.startswith("numpy-"):
        src = np.random.default_rng(0).standard_normal(count, dtype=np.float32)
        if read:
            return lambda: src.sum()
        dst = np.empty_like(src)
        return lambda: np.copyto(dst, src)
    if method.startswith("jax-cuda-"):
        return _jax_cuda(count, method)
    torch = pytest.importorskip("torch", reason=f"torch is not installed: no {method}")
    if not method.startswith("torch-cuda-"):
        apply_threads("torch", threads)
        src_t = torch.randn(count, dtype=torch.float32)
        if read:
            return lambda: src_t.sum()
        dst_t = torch.empty_like(src_t)
        return lambda: dst_t.copy_(src_t)
    if not torch.cuda.is_available():
        pytest.skip(f"CUDA is not available: torch.cuda.is_available() is False: no {method}")
    src_c = torch.randn(count, dtype=torch.float32, device="cuda")
    dst_c = None if read else torch.empty_like(src_c)

    def cuda_op() -> None:
        if dst_c is None:
            src_c.sum()
        else:
            dst_c.copy_(src_c)
        torch.cuda.synchronize()  # the kernel is asynchronous: time it to its end

    return cuda_op


def _jax_cuda(count: int, method: str) -> Callable[[], object]:
    """On jax's first GPU: ``jax-cuda-copy`` copies ``count`` float32 values by a jitted
    ``x * s`` with ``s`` a traced 1.0 (it reads and writes every byte as a copy does,
    and XLA cannot fold it away: ``x * 1`` simplifies to ``x``, which jax may hand back
    without copying); ``jax-cuda-read`` sums them."""
    jax = pytest.importorskip("jax", reason=f"jax is not installed: no {method}")
    import jax.numpy as jnp

    try:
        gpu = jax.devices("gpu")[0]
    except RuntimeError as err:
        pytest.skip(f"CUDA is not available to jax ({first_line(err)}): no {method}")
    # made on the GPU (no host copy of the data, and no random-number temporaries)
    src = jnp.ones((count,), jnp.float32, device=gpu)
    if method.endswith("-read"):
        total = jax.jit(jnp.sum)
        return lambda: total(src).block_until_ready()
    one = jax.device_put(np.float32(1), gpu)
    scale = jax.jit(lambda x, s: x * s)
    return lambda: scale(src, one).block_until_ready()
