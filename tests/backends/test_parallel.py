"""Data-parallel ranks without a run: shards, cores, case labels, and what a jax world
refuses in this process."""

from __future__ import annotations

import pytest

from backends import (
    case_label,
    variant_of,
)
from backends.parallel.ranks import rank_cores, shard_bounds


@pytest.mark.parametrize(("n", "k"), [(1001, 2), (1000, 2), (10, 3), (7, 7), (5, 1)])
def test_shards_cover_every_row_once_and_differ_by_at_most_one(n, k) -> None:
    bounds = shard_bounds(n, k)
    assert len(bounds) == k and bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))
    sizes = [stop - start for start, stop in bounds]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1 and sum(sizes) == n


def test_more_ranks_than_rows_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot split 3 rows over 4 ranks"):
        shard_bounds(3, 4)


def test_ranks_get_disjoint_equal_shares_of_the_cores() -> None:
    assert [rank_cores(r, 2, [0, 1, 2, 3]) for r in range(2)] == [[0, 1], [2, 3]]
    assert [rank_cores(r, 3, [4, 5, 6]) for r in range(3)] == [[4], [5], [6]]
    assert rank_cores(1, 4, [0, 1]) == [0, 1]  # more ranks than cores: all of them


def test_case_labels_name_k_and_lead_back_to_the_variant() -> None:
    assert case_label("torch-ddp", 2) == "torch-ddp-x2"
    assert case_label("numpy-manual", 2) == "numpy-manual"
    assert variant_of("torch-ddp-x2") == "torch-ddp"
    assert variant_of("jax-shardmap-x16") == "jax-shardmap"
    assert variant_of("numpy-manual") == "numpy-manual"
    assert variant_of("torch-ddp-xx") == "torch-ddp-xx"  # not a label: left as it is


def test_a_process_in_one_jax_world_refuses_another_k_or_device() -> None:
    pytest.importorskip("jax", reason="jax is not installed")
    from backends import BackendUnavailable
    from backends.parallel import jax_parallel, ranks

    world = jax_parallel._World(ranks.Launch("127.0.0.1", 1, 0, 2, False), "cpu", [])
    jax_parallel._WORLD.append(world)
    try:
        assert jax_parallel.join_world(2, "cpu", None) is world
        for k, device in ((3, "cpu"), (2, "cuda")):
            with pytest.raises(BackendUnavailable, match=(
                    f"rank 0 of a jax world of 2 processes on cpu; {k} on {device} need a "
                    "process of their own")):  # fmt: skip
                jax_parallel.join_world(k, device, None)
    finally:
        jax_parallel._WORLD.remove(world)
