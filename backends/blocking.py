"""The row-block size of the single-pass ("blocked") variants, chosen from the machine.

An epoch needs X twice: for r = Xw + b − y and for Xᵀr. Since r_i depends only on row
i, the blocked variants walk X in blocks of rows and use each block twice while it is
still in cache, so X is read from memory once per epoch. The block size trades two
costs: every block pays a fixed cost (numpy's and torch's calls, a loop iteration in
jax), so blocks should be large; the block must still be in cache for its second use,
and small enough that one core handles it, so they must not be too large.

- The rule: the largest power of two of rows whose block of X takes at most half of
  one core's L2 cache (``L2_SHARE``): the other half holds the block's residual and
  targets and the rows the prefetcher is already fetching. On this project's 2-core VM
  (2 MiB of L2 per core) that is 16384 rows of 16 float32 features (1 MiB). Each core
  walks its own range of rows in blocks of this size (below), so the rule is per core;
  docs/performance.md times 8192 … 65536 rows beside it, in the same rounds.
- The L2 size is read from the OS (Linux: ``/sys/devices/system/cpu/cpu0/cache/index*/
  {level,type,size}``, the level-2 data or unified cache of the first CPU); where it
  cannot be read (another OS, a container hiding /sys) ``FALLBACK_L2_BYTES`` is assumed
  and the source says so.
- ``--block-rows N`` overrides the rule for every blocked variant of a run.

Per-core blocks (:func:`thread_blocks`, :class:`ThreadSplit`): numpy-blocked and
torch-blocked split the rows into one contiguous range per thread, each range walked in
blocks by a Python thread of its own with the framework's intra-op threads at 1 (numpy
and torch release the GIL inside their calls). Left to the framework, every small
matrix–vector product of a block would be split between the threads, a wait for all of
them per call; split by rows, each core keeps its own block in its own L2 and the
threads meet once per epoch. The rule above is per core for that reason.

Nothing here imports a framework.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

CACHE_DIR = Path("/sys/devices/system/cpu/cpu0/cache")
# The smallest per-core L2 of current x86 and Arm server and laptop cores (Intel since
# Skylake-SP/Ice Lake: 1-2 MiB; AMD Zen 2-5: 512 KiB-1 MiB; Apple/Neoverse: 1 MiB or
# more per core or cluster share): assumed where the OS does not say. Smaller than the
# real one only costs a few more (shorter) blocks; larger could spill every block.
FALLBACK_L2_BYTES = 512 * 2**10
L2_SHARE = 2  # a block of X takes at most 1/L2_SHARE of one core's L2


@dataclass(frozen=True)
class CacheInfo:
    """The L2 cache size a block size is chosen from, and where it came from."""

    l2_bytes: int
    source: str  # the sysfs file read, or why the fallback was assumed

    def as_dict(self) -> dict[str, object]:
        return {"l2_bytes": self.l2_bytes, "source": self.source}


def parse_size(text: str) -> int:
    """A sysfs cache size (``"2048K"``, ``"1M"``, ``"32768"``, ``"512 KiB"``) in bytes."""
    value = text.strip().upper().replace("IB", "").replace("B", "").replace(" ", "")
    scale = {"K": 2**10, "M": 2**20, "G": 2**30}.get(value[-1:], 1)
    digits = value[:-1] if scale != 1 else value
    number = int(digits)
    if number <= 0:
        raise ValueError(f"cache size '{text}' is not positive")
    return number * scale


def _caches(cache_dir: Path) -> list[tuple[int, str, int, Path]]:
    """(level, type, size in bytes, size file) of every cache ``cache_dir``'s ``index*``
    folders describe and that can be read; none where the folder cannot be."""
    try:
        indexes = sorted(cache_dir.glob("index*"))
    except OSError:
        return []
    caches = []
    for index in indexes:
        try:
            level = int((index / "level").read_text().strip())
            kind = (index / "type").read_text().strip()
            size = parse_size((index / "size").read_text())
        except (OSError, ValueError):
            continue
        caches.append((level, kind, size, index / "size"))
    return caches


def read_cache(cache_dir: Path = CACHE_DIR) -> CacheInfo:
    """The first CPU's L2 (data or unified) cache from ``cache_dir``'s ``index*``
    folders, or ``FALLBACK_L2_BYTES`` with the reason when it cannot be read."""
    for level, kind, size, path in _caches(cache_dir):
        if level == 2 and kind in ("Data", "Unified"):
            return CacheInfo(size, str(path))
    return CacheInfo(
        FALLBACK_L2_BYTES,
        f"assumed {FALLBACK_L2_BYTES // 2**10} KiB: no level-2 data cache readable "
        f"under {cache_dir}",
    )


def last_level_bytes(cache_dir: Path = CACHE_DIR) -> int | None:
    """The size of the first CPU's last-level data or unified cache (the highest level
    under ``cache_dir``), or None where the OS does not say."""
    sizes = {level: size for level, kind, size, _ in _caches(cache_dir)
             if kind in ("Data", "Unified")}  # fmt: skip
    return sizes[max(sizes)] if sizes else None


@functools.cache
def machine_cache() -> CacheInfo:
    """This machine's L2, read once per process."""
    return read_cache()


def choose_block_rows(n_features: int, itemsize: int, cache: CacheInfo | None = None) -> int:
    """Rows per block: the largest power of two whose block of X (rows × n_features ×
    itemsize bytes) fits in half of one core's L2; at least 1."""
    cache = machine_cache() if cache is None else cache
    budget = cache.l2_bytes // L2_SHARE
    rows = max(1, budget // max(1, n_features * itemsize))
    return 1 << (rows.bit_length() - 1)


def block_rows_for(n_features: int, dtype: str, requested: int | None = None) -> int:
    """The block size a blocked variant uses for a problem: ``requested``
    (``--block-rows``) if given, else :func:`choose_block_rows` for its shape and dtype."""
    if requested is not None:
        if requested < 1:
            raise ValueError(f"block_rows must be a positive integer, got {requested}")
        return int(requested)
    return choose_block_rows(n_features, 8 if dtype == "float64" else 4)


def block_bounds(n_samples: int, block_rows: int) -> list[tuple[int, int]]:
    """(start, stop) of every block: full blocks of ``block_rows``, then the ragged
    remainder (if any) as a block of its own; never past ``n_samples``, nothing padded."""
    return [(s, min(s + block_rows, n_samples)) for s in range(0, n_samples, block_rows)]


def thread_blocks(n_samples: int, block_rows: int, threads: int) -> list[list[tuple[int, int]]]:
    """The blocks each thread walks: the rows split into one contiguous range per thread
    (range k is rows k·N//T … (k+1)·N//T − 1, near-equal lengths), each range cut into
    full blocks of ``block_rows`` and its own ragged remainder. T is ``threads``, but
    no more than there are blocks of ``block_rows`` in N, so that a problem of one block
    runs in the calling thread alone. Every row is in exactly one block; nothing padded.
    """
    parts = max(1, min(threads, -(-n_samples // block_rows)))
    edges = [k * n_samples // parts for k in range(parts + 1)]
    return [
        [(s, min(s + block_rows, hi)) for s in range(lo, hi, block_rows)]
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ]


class ThreadSplit:
    """One call per range, run side by side: range 0 in the calling thread, the others
    on worker threads started once (on first use) and kept for the life of the object,
    so an epoch pays a hand-off, not a thread start. The workers end when the object
    is garbage collected (``ThreadPoolExecutor`` drops its threads then).
    """

    def __init__(self, ranges: int, initializer: Callable[[], None] | None = None) -> None:
        """Args:
        ranges: how many calls each :meth:`map` makes (one per range of rows).
        initializer: run once in each worker thread before its first call (e.g. to
            set the framework's intra-op threads of that thread to 1).
        """
        self.ranges = ranges
        self._pool = (
            ThreadPoolExecutor(ranges - 1, "gdbench-blocks", initializer=initializer)
            if ranges > 1
            else None
        )

    def map(self, fn: Callable[[int], T]) -> list[T]:
        """``[fn(0), fn(1), …, fn(ranges − 1)]``, the calls running concurrently; the
        results in range order whatever order the calls finish in."""
        if self._pool is None:
            return [fn(0)]
        futures = [self._pool.submit(fn, k) for k in range(1, self.ranges)]
        first = fn(0)
        return [first, *(f.result() for f in futures)]
