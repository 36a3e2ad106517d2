"""backends/__init__.py's lookups that need no framework: the "did you mean" hint, the
block size of a variant, and the precision switches of the frameworks already loaded."""

from __future__ import annotations

import sys
import types

import pytest

import backends
import backends.registry
from backends import VARIANTS, closest

# gdbench's own machinery: runs in the numpy-only and all-frameworks environments
# (tox.ini), not again in each single-framework one.
pytestmark = pytest.mark.harness


def test_a_near_miss_names_the_closest_variant() -> None:
    assert closest("jax-scna", VARIANTS) == " (did you mean 'jax-scan'?)"
    assert closest("cdua", ("cpu", "cuda")) == " (did you mean 'cuda'?)"


def test_nothing_close_means_no_hint() -> None:
    assert closest("zzzzzz", VARIANTS) == ""
    assert closest("x", []) == ""


def test_the_hint_cutoff_is_half_similar() -> None:
    # "abcdef" vs "abcxyz": 2·3 matching / 12 characters = 0.5, just at the cutoff, which
    # difflib's default (0.6) would not accept
    assert closest("abcdef", ["abcxyz"]) == " (did you mean 'abcxyz'?)"
    assert closest("abcdef", ["abxyzw"]) == ""  # 4 / 12 = 0.33


def test_block_rows_of_a_blocked_variant_depend_on_the_itemsize() -> None:
    f32 = backends.block_rows_of("numpy-blocked", 16, "float32")
    f64 = backends.block_rows_of("numpy-blocked", 16, "float64")
    # a power of two of rows per block of X: float64 rows are twice as wide
    assert f32 & (f32 - 1) == 0 and f32 >= 2
    assert f64 * 2 == f32
    assert backends.block_rows_of("numpy-blocked", 16, "float64", 7) == 7
    assert backends.block_rows_of("numpy-manual", 16, "float32") is None
    assert backends.block_rows_of("numpy-manual", 16, "float32", 7) is None


def test_precision_settings_come_from_the_loaded_framework_modules(monkeypatch) -> None:
    fake = types.ModuleType("backends.torch_backend")
    fake.precision_settings = lambda: {"float32_matmul_precision": "highest"}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "backends.torch_backend", fake)
    monkeypatch.delitem(sys.modules, "backends.jax_backend", raising=False)
    assert backends.precision_settings() == {"torch": {"float32_matmul_precision": "highest"}}
    jax_fake = types.ModuleType("backends.jax_backend")
    jax_fake.precision_settings = lambda: {"session_matmul_precision": ["float32"]}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "backends.jax_backend", jax_fake)
    assert backends.precision_settings() == {
        "torch": {"float32_matmul_precision": "highest"},
        "jax": {"session_matmul_precision": ["float32"]},
    }
    monkeypatch.delitem(sys.modules, "backends.torch_backend")
    monkeypatch.delitem(sys.modules, "backends.jax_backend")
    assert backends.precision_settings() == {}


@pytest.mark.parametrize(
    ("missing", "unavailable"),
    [("torch", True), ("torch.nn", True), (None, True), ("yaml", False), ("torchvision", False)],
)
def test_only_a_missing_framework_makes_a_variant_unavailable(monkeypatch, missing, unavailable):
    # what `import backends.torch_backend` raises where torch (or something else) is absent
    def broken(name, *args):
        raise ImportError(f"No module named '{missing}'", name=missing)

    monkeypatch.setattr(backends.registry.importlib, "import_module", broken)
    if unavailable:
        with pytest.raises(backends.BackendUnavailable) as info:
            backends.get_backend("torch-nn", "cpu")
        assert str(info.value) == (
            "torch is not installed: pip install 'gdbench[torch]' -c constraints.txt"
        )
    else:  # a broken install of something else is not hidden
        with pytest.raises(ImportError, match=f"'{missing}'"):
            backends.get_backend("torch-nn", "cpu")
