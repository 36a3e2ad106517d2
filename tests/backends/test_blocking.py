"""The single-pass variants and backends/blocking.py: blocks and thread splits that do not
divide N follow the float64 reference, thread counts are given back, and the L2 cache
size is read from sysfs-like text written here."""

from __future__ import annotations

import numpy as np
import pytest

from backends import VARIANTS, block_rows_of, blocking, get_backend
from backends.base import BackendUnavailable
from backends.blocking import (
    FALLBACK_L2_BYTES,
    CacheInfo,
    ThreadSplit,
    block_bounds,
    choose_block_rows,
    parse_size,
    read_cache,
    thread_blocks,
)
from suites.convergence import compare, tolerance
from suites.problems import Problem, stability_limit

BLOCKED = tuple(v for v in VARIANTS if v.endswith("-blocked"))


def blocked_or_skip(variant: str, block_rows: int | None):
    try:
        return get_backend(variant, "cpu", block_rows=block_rows)
    except BackendUnavailable as err:
        pytest.skip(str(err))


def problem(n: int = 1000, d: int = 4, epochs: int = 60, dtype: str = "float32") -> Problem:
    """A problem whose optimum depends on every row: y is not linear in X, and the last
    rows (the ragged block of most block sizes here) are shifted, so a block that is
    lost or weighted wrongly moves the trajectory and the final parameters far beyond
    the float32 tolerance. Non-zero initial parameters."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((n, d)).astype(np.float32).astype(np.float64)
    y = X @ rng.uniform(-2, 2, d) + 0.5 + rng.standard_normal(n)
    y[-n // 8 :] += 3.0
    lr = 0.5 * stability_limit(X, bias=True)
    w0 = np.linspace(0.5, -0.5, d)
    return Problem(f"blocked-{n}x{d}", X, y, bias=True, lr=lr, epochs=epochs, dtype=dtype,
                   w0=w0, b0=-0.25).precompute()  # fmt: skip


def train(variant: str, block_rows: int, p: Problem):
    session = blocked_or_skip(variant, block_rows).prepare(p, record_params=True)
    assert session.block_rows == block_rows
    session.warmup()
    return session.train()


def assert_same_trajectory(a, b, p: Problem) -> None:
    """Two runs agree within the float32 tolerance of the convergence check, at every
    epoch (losses) and in the parameters after every epoch."""
    tol = tolerance(p.dtype)
    scale = np.maximum(np.abs(b.losses), tol.floor * abs(b.losses[0]))
    assert np.max(np.abs(a.losses - b.losses) / scale) <= tol.rtol
    for x, y in ((a.w_history, b.w_history), (a.b_history, b.b_history)):
        assert np.max(np.abs(x - y)) / max(1.0, np.max(np.abs(y))) <= tol.ptol


@pytest.mark.parametrize("variant", BLOCKED)
def test_a_block_size_that_does_not_divide_n_follows_the_same_trajectory(variant) -> None:
    p = problem()  # 1000 rows: 125 divides them (8 blocks), 128 leaves a ragged 104
    assert block_bounds(1000, 128)[-1] == (896, 1000)
    dividing, ragged = train(variant, 125, p), train(variant, 128, p)
    for result in (dividing, ragged):
        verdict = compare(p, result)
        assert verdict.ok, verdict.message
        assert verdict.param_dev <= tolerance("float32").ptol
    assert_same_trajectory(ragged, dividing, p)


@pytest.mark.parametrize("variant", BLOCKED)
@pytest.mark.parametrize("block_rows", [1, 203, 204, 10_000])
def test_blocks_of_one_row_and_of_all_rows_at_once(variant, block_rows) -> None:
    # 1: every row a block (203 iterations, no remainder); N and more: no full block at
    # all, the whole of X is the remainder (jax's loop is then not traced at all).
    p = problem(n=203, d=3, epochs=30)
    result = train(variant, block_rows, p)
    verdict = compare(p, result)
    assert verdict.ok, verdict.message
    assert_same_trajectory(result, train(variant, 64, p), p)


@pytest.mark.parametrize("variant", BLOCKED)
def test_float64_blocks_follow_the_float64_reference(variant) -> None:
    p = problem(n=500, d=3, epochs=40, dtype="float64")
    verdict = compare(p, train(variant, 96, p))  # 5 full blocks and a ragged 20
    assert verdict.ok and verdict.max_loss_dev < 1e-12, verdict.message


@pytest.mark.parametrize("variant", BLOCKED)
def test_the_default_block_size_is_the_one_recorded(variant) -> None:
    p = problem(n=100, d=16, epochs=3)
    try:
        session = get_backend(variant, "cpu").prepare(p)
    except BackendUnavailable as err:
        pytest.skip(str(err))
    assert session.block_rows == block_rows_of(variant, 16, "float32")
    assert session.block_rows == choose_block_rows(16, 4)


def test_only_the_blocked_variants_have_a_block_size() -> None:
    assert BLOCKED == ("numpy-blocked", "torch-blocked", "jax-blocked")
    assert block_rows_of("numpy-manual", 16, "float32", 512) is None
    assert block_rows_of("jax-blocked", 16, "float32", 512) == 512


# The variants that split the rows between Python threads (jax leaves threads to XLA).
THREADED = ("numpy-blocked", "torch-blocked")


def threaded_or_skip(variant: str, block_rows: int, threads: int):
    if variant == "numpy-blocked":
        from backends.numpy_backend import NumpyBlocked

        return NumpyBlocked(block_rows=block_rows, threads=threads)
    pytest.importorskip("torch", reason="torch is not installed: pip install 'gdbench[torch]'")
    from backends.torch_backend import TorchBlocked

    return TorchBlocked(block_rows=block_rows, threads=threads)


def train_split(variant: str, block_rows: int, threads: int, p: Problem):
    session = threaded_or_skip(variant, block_rows, threads).prepare(p, record_params=True)
    assert (session.block_rows, session.threads) == (block_rows, threads)
    session.warmup()
    return session.train()


@pytest.mark.parametrize("variant", THREADED)
def test_a_thread_split_that_does_not_divide_n_follows_the_same_trajectory(variant) -> None:
    p = problem()  # 1000 rows
    # 2 threads of 500 rows in blocks of 125: everything divides. 3 threads: ranges of
    # 333, 333 and 334 rows, none a multiple of 128, so each ends in its own ragged block
    assert thread_blocks(1000, 125, 2) == [
        [(0, 125), (125, 250), (250, 375), (375, 500)],
        [(500, 625), (625, 750), (750, 875), (875, 1000)],
    ]
    assert [blocks[-1] for blocks in thread_blocks(1000, 128, 3)] == [(256, 333), (589, 666),
                                                                      (922, 1000)]  # fmt: skip
    dividing, ragged = train_split(variant, 125, 2, p), train_split(variant, 128, 3, p)
    for result in (dividing, ragged, one := train_split(variant, 1000, 1, p)):
        verdict = compare(p, result)
        assert verdict.ok, verdict.message
        assert verdict.param_dev <= tolerance("float32").ptol
    assert_same_trajectory(ragged, dividing, p)
    assert_same_trajectory(ragged, one, p)


@pytest.mark.parametrize("variant", THREADED)
def test_more_threads_than_blocks_use_one_thread_per_block(variant) -> None:
    p = problem(n=300, d=3, epochs=20)
    session = threaded_or_skip(variant, 128, 8).prepare(p)
    assert session.threads == 3  # 300 rows are 3 blocks of (at most) 128
    session.warmup()
    assert compare(p, session.train()).ok


def test_torch_blocked_gives_the_callers_thread_count_back() -> None:
    torch = pytest.importorskip(
        "torch", reason="torch is not installed: pip install 'gdbench[torch]'"
    )
    before = torch.get_num_threads()
    torch.set_num_threads(3)  # not the machine's count: a restore to it is no accident
    try:
        session = threaded_or_skip("torch-blocked", 100, 2).prepare(problem(n=400, d=3, epochs=3))
        session.warmup()
        session.train()
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)


def test_numpy_blocked_gives_the_blas_thread_count_back() -> None:
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas() -> list[int]:
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    with threadpool_limits(3, user_api="blas"):
        session = threaded_or_skip("numpy-blocked", 100, 2).prepare(problem(n=400, d=3, epochs=3))
        session.warmup()
        session.train()
        assert blas() and set(blas()) == {3}


def test_a_thread_split_runs_every_range_once_and_returns_them_in_order() -> None:
    import threading

    split = ThreadSplit(3, initializer=lambda: None)
    seen: list[tuple[int, str]] = []
    for _ in range(2):  # the same workers serve every call
        assert split.map(lambda k: seen.append((k, threading.current_thread().name)) or k * 10) == [
            0,
            10,
            20,
        ]
    assert sorted(k for k, _ in seen) == [0, 0, 1, 1, 2, 2]
    assert {name for k, name in seen if k == 0} == {threading.current_thread().name}
    assert all(name.startswith("gdbench-blocks") for k, name in seen if k > 0)
    assert ThreadSplit(1).map(lambda k: k + 1) == [1]


def test_thread_ranges_cover_every_row_once_without_padding() -> None:
    for n, rows, threads in ((1000, 128, 3), (10, 4, 2), (7, 1, 3), (3, 8, 4), (5, 2, 16)):
        blocks = [b for part in thread_blocks(n, rows, threads) for b in part]
        covered = [i for s, e in blocks for i in range(s, e)]
        assert covered == list(range(n))
        assert all(0 < e - s <= rows for s, e in blocks)
    assert len(thread_blocks(5, 2, 16)) == 3  # no more threads than blocks
    assert thread_blocks(3, 8, 4) == [[(0, 3)]]


def test_blocks_cover_every_row_once_without_padding() -> None:
    assert block_bounds(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert block_bounds(8, 4) == [(0, 4), (4, 8)]
    assert block_bounds(3, 8) == [(0, 3)]
    assert block_bounds(3, 1) == [(0, 1), (1, 2), (2, 3)]


def fake_cache(root, entries: list[tuple[str, str, str]]):
    """A /sys/devices/system/cpu/cpu0/cache look-alike: (level, type, size) per index."""
    for k, (level, kind, size) in enumerate(entries):
        index = root / f"index{k}"
        index.mkdir(parents=True)
        (index / "level").write_text(level + "\n")
        (index / "type").write_text(kind + "\n")
        (index / "size").write_text(size + "\n")
    return root


def test_the_l2_is_read_from_the_os_cache_files(tmp_path) -> None:
    # this project's VM: 48K L1d, 32K L1i, 2048K L2, 260 MiB L3
    levels = [("1", "Data", "48K"), ("1", "Instruction", "32K"), ("2", "Unified", "2048K"),
              ("3", "Unified", "266240K")]  # fmt: skip
    root = fake_cache(tmp_path, levels)
    cache = read_cache(root)
    assert cache == CacheInfo(2 * 2**20, str(root / "index2" / "size"))
    # half of 2 MiB: 1 MiB, 16384 rows of 16 float32 (64 B)
    assert choose_block_rows(16, 4, cache) == 16384
    assert choose_block_rows(16, 8, cache) == 8192
    assert choose_block_rows(1, 4, cache) == 262144
    assert choose_block_rows(3, 4, cache) == 65536  # 87381 fit: a power of two below
    assert choose_block_rows(10**7, 8, cache) == 1  # a row larger than the budget


def test_an_instruction_or_unreadable_l2_is_skipped(tmp_path) -> None:
    root = fake_cache(tmp_path, [("2", "Instruction", "64K"), ("2", "Data", "junk"),
                                 ("2", "Data", "1M")])  # fmt: skip
    assert read_cache(root).l2_bytes == 2**20


def test_without_cache_files_the_fallback_is_assumed_and_said(tmp_path) -> None:
    for root in (tmp_path / "absent", fake_cache(tmp_path / "l1", [("1", "Data", "32K")])):
        cache = read_cache(root)
        assert cache.l2_bytes == FALLBACK_L2_BYTES
        assert cache.source.startswith("assumed 512 KiB: no level-2 data cache readable")


@pytest.mark.parametrize(
    ("text", "size"), [("2048K", 2**21), ("1M", 2**20), ("32768", 32768), ("512 KiB", 2**19)]
)
def test_cache_sizes_in_every_unit(text, size) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("2048K\n", 2048 * 1024),
        ("2048KB", 2048 * 1024),
        ("512 KiB", 512 * 1024),
        ("1M", 1024**2),
        ("3MiB", 3 * 1024**2),
        ("1G", 1024**3),
        ("32768", 32768),
    ],
)
def test_cache_sizes_in_every_spelling(text, size) -> None:
    assert blocking.parse_size(text) == size


@pytest.mark.parametrize("text", ["0K", "-1M"])
def test_a_size_that_is_not_positive_is_refused(text) -> None:
    with pytest.raises(ValueError, match=f"cache size '{text}' is not positive"):
        blocking.parse_size(text)


def test_cache_info_as_a_record() -> None:
    info = blocking.CacheInfo(1024, "/sys/x/size")
    assert info.as_dict() == {"l2_bytes": 1024, "source": "/sys/x/size"}


class Unreadable:
    """A cache folder whose listing fails (as /sys can in a container)."""

    def glob(self, pattern):
        raise PermissionError("no")

    def __str__(self) -> str:
        return "/hidden"


def test_an_unreadable_cache_folder_falls_back_and_says_so() -> None:
    info = blocking.read_cache(Unreadable())  # type: ignore[arg-type]
    assert info.l2_bytes == 512 * 1024
    assert info.source == "assumed 512 KiB: no level-2 data cache readable under /hidden"


def test_the_level_two_data_cache_is_read(tmp_path) -> None:
    for name, level, kind, size in [
        ("index0", "1", "Data", "48K"),
        ("index1", "1", "Instruction", "32K"),
        ("index2", "2", "Unified", "2048K"),
        ("index3", "3", "Unified", "260M"),
    ]:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "level").write_text(level + "\n")
        (folder / "type").write_text(kind + "\n")
        (folder / "size").write_text(size + "\n")
    info = blocking.read_cache(tmp_path)
    assert info == blocking.CacheInfo(2048 * 1024, str(tmp_path / "index2" / "size"))


def _cache_dir(tmp_path, entries):  # noqa: ANN001, ANN202
    for i, (level, kind, size) in enumerate(entries):
        index = tmp_path / f"index{i}"
        index.mkdir()
        (index / "level").write_text(f"{level}\n")
        (index / "type").write_text(f"{kind}\n")
        (index / "size").write_text(f"{size}\n")
    return tmp_path


def test_the_last_level_cache_is_the_highest_data_or_unified_level(tmp_path) -> None:
    folder = _cache_dir(tmp_path, [(1, "Data", "48K"), (1, "Instruction", "32K"),
                                   (2, "Unified", "2048K"), (3, "Unified", "266240K")])  # fmt: skip
    assert blocking.last_level_bytes(folder) == 266240 * 1024
    # a machine whose OS lists only L1 and L2 (or an instruction cache above): the L2
    (tmp_path / "b").mkdir()
    only_l2 = _cache_dir(tmp_path / "b", [(2, "Data", "1M"), (3, "Instruction", "8M")])
    assert blocking.last_level_bytes(only_l2) == 2**20
    assert blocking.last_level_bytes(tmp_path / "nothing-here") is None
