"""backends/blocking.py's reading of the L2 cache size, on sysfs-like text written here."""

from __future__ import annotations

import pytest

from backends import blocking

# gdbench's own machinery: runs in the numpy-only and all-frameworks environments
# (tox.ini), not again in each single-framework one.
pytestmark = pytest.mark.harness


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
