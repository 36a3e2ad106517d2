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


# --- numpy sessions: what a session holds and returns ------------------------------------


def test_a_session_records_parameters_only_when_asked() -> None:
    from suites.problems import toy_bias

    problem = toy_bias().replace(epochs=3)
    for cls in (NumpyManual, NumpyBlocked):
        plain = cls().prepare(problem).train()
        assert plain.w_history is None and plain.b_history is None
        recorded = cls().prepare(problem, record_params=True).train()
        assert recorded.w_history.shape == (3, 1) and recorded.b_history.shape == (3,)


def test_a_session_trains_in_the_problems_dtype_whatever_it_is_given() -> None:
    import types

    import numpy as np

    # a ProblemSpec that is not a suites.problems.Problem: float64 arrays, float32 asked
    spec = types.SimpleNamespace(
        name="spec", X=np.array([[1.0], [2.0]]), y=np.array([2.0, 4.0]), bias=False,
        lr=0.1, epochs=2, dtype="float32", w0=np.zeros(1), b0=0.0,
    )  # fmt: skip
    session = NumpyManual().prepare(spec)
    assert session.X.dtype == session.y.dtype == np.float32
    result = session.train()
    assert result.losses.dtype == result.w.dtype == np.float32
    # L₁ = mean(y²) = 10; w₁ = 0 + 0.1 · (2/2)·(1·2 + 2·4) = 1; L₂ = mean((x − 2x)²) = 2.5
    np.testing.assert_allclose(result.losses, [10.0, 2.5], rtol=1e-6)


def test_a_diverging_numpy_run_overflows_without_a_warning() -> None:
    import warnings

    import numpy as np

    from suites.problems import toy

    problem = toy().replace(lr=1.0, epochs=300)  # far above the limit 2/15
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = NumpyManual().prepare(problem).train()
    assert not np.all(np.isfinite(result.losses))
    assert np.isnan(result.losses[-1])  # inf − inf: the invalid operation is silenced too
