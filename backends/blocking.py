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
  (2 MiB of L2 per core) that is 16384 rows of 16 float32 features (1 MiB). Measured
  there in alternating rounds (docs/performance.md): 8192 rows pay more per-block calls;
  32768 and more make NumPy's BLAS split every product between the two threads, and on
  the shared VM, where other processes hold the cores, each split call waits for both:
  numpy-blocked was 5× slower with them. A block for one core is the size that holds up.
- The L2 size is read from the OS (Linux: ``/sys/devices/system/cpu/cpu0/cache/index*/
  {level,type,size}``, the level-2 data or unified cache of the first CPU); where it
  cannot be read (another OS, a container hiding /sys) ``FALLBACK_L2_BYTES`` is assumed
  and the source says so.
- ``--block-rows N`` overrides the rule for every blocked variant of a run.

Nothing here imports a framework.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

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


def read_cache(cache_dir: Path = CACHE_DIR) -> CacheInfo:
    """The first CPU's L2 (data or unified) cache from ``cache_dir``'s ``index*``
    folders, or ``FALLBACK_L2_BYTES`` with the reason when it cannot be read."""
    try:
        indexes = sorted(cache_dir.glob("index*"))
    except OSError:
        indexes = []
    for index in indexes:
        try:
            level = (index / "level").read_text().strip()
            kind = (index / "type").read_text().strip()
            size = parse_size((index / "size").read_text())
        except (OSError, ValueError):
            continue
        if level == "2" and kind in ("Data", "Unified"):
            return CacheInfo(size, str(index / "size"))
    return CacheInfo(
        FALLBACK_L2_BYTES,
        f"assumed {FALLBACK_L2_BYTES // 2**10} KiB: no level-2 data cache readable "
        f"under {cache_dir}",
    )


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
