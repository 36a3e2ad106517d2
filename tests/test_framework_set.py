"""Each tox environment holds exactly its framework set: a missing framework is real."""

from __future__ import annotations

import importlib.util
import os

import pytest

from backends import list_backends

EXPECTED = os.environ.get("GDBENCH_EXPECT_FRAMEWORKS")
pytestmark = pytest.mark.skipif(
    EXPECTED is None, reason="GDBENCH_EXPECT_FRAMEWORKS is set by tox environments only"
)


def test_exactly_the_expected_frameworks_are_installed() -> None:
    expected = set((EXPECTED or "").split(","))
    installed = {name for name in ("numpy", "torch", "jax") if importlib.util.find_spec(name)}
    assert installed == expected


def test_variants_of_missing_frameworks_are_unavailable_with_an_install_hint() -> None:
    expected = set((EXPECTED or "").split(","))
    for row in list_backends(("cpu",)):
        if row.framework in expected:
            assert row.available, row.reason
        else:
            assert not row.available
            assert row.reason.startswith(f"{row.framework} is not installed: pip install")
