"""Every variant's own device check and defaults, constructed directly: an available
variant that refused its device would only be skipped by the suites' backend_or_skip."""

from __future__ import annotations

import pytest

from backends import VARIANTS, BackendUnavailable, list_backends
from backends.numpy_backend import NumpyBlocked, NumpyManual, mse_gradient

# gdbench's own machinery: runs in the numpy-only and all-frameworks environments
# (tox.ini), not again in each single-framework one.
pytestmark = pytest.mark.harness


@pytest.mark.parametrize("cls", [NumpyManual, NumpyBlocked])
def test_numpy_variants_run_on_the_cpu_by_default(cls) -> None:
    backend = cls()
    assert backend.device == "cpu"
    assert cls("cpu").device == "cpu"
    assert backend.framework == "numpy"


@pytest.mark.parametrize(("cls", "name"), [(NumpyManual, "numpy-manual"),
                                           (NumpyBlocked, "numpy-blocked")])  # fmt: skip
def test_numpy_variants_refuse_cuda_saying_why(cls, name) -> None:
    assert cls.variant == name
    with pytest.raises(BackendUnavailable, match=f"^{name} runs on the CPU only, not on cuda$"):
        cls("cuda")


def test_numpy_defaults() -> None:
    assert NumpyManual().gradient is mse_gradient
    assert NumpyBlocked().block_rows is None
    assert NumpyBlocked(block_rows=64).block_rows == 64


def test_every_listed_row_names_its_framework_available_or_not() -> None:
    rows = list_backends()
    assert {r.variant for r in rows} == set(VARIANTS)
    for r in rows:
        assert r.framework == r.variant.split("-")[0]
        assert r.available == (r.reason == "")
    # on a machine without a GPU the CUDA rows are unavailable, and still name theirs
    unavailable = [r for r in rows if not r.available]
    assert all(r.framework in ("numpy", "torch", "jax") for r in unavailable)
