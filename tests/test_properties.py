"""Property-based: any size, feature count, seed and learning rate inside the stable range
gives agreement with the float64 reference for every backend; above the limit, every
backend reports divergence."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends import VARIANTS, BackendUnavailable, devices_of, framework_of, get_backend
from suites.convergence import AGREE, DIVERGED, compare
from suites.problems import stability_limit, synthetic


def available_backends():
    """Every variant that runs on the CPU here, and why each other one does not."""
    out, missing = [], {}
    for variant in VARIANTS:
        try:
            out.append(get_backend(variant))
        except BackendUnavailable as err:
            missing[variant] = str(err)
    return out, missing


BACKENDS, MISSING = available_backends()
SETTINGS = settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None
)


def problem_for(n, d, seed, fraction, epochs, dtype="float32"):
    base = synthetic(n, d, seed, epochs=epochs, dtype=dtype)
    return base.replace(lr=fraction * stability_limit(base.X, bias=True))


@SETTINGS
@given(
    n=st.integers(2, 300),
    d=st.integers(1, 8),
    seed=st.integers(0, 2**16),
    fraction=st.floats(0.02, 0.9),
    epochs=st.integers(1, 60),
    dtype=st.sampled_from(["float32", "float64"]),
)
def test_every_backend_agrees_with_the_reference_below_the_stability_limit(
    n, d, seed, fraction, epochs, dtype
) -> None:
    problem = problem_for(n, d, seed, fraction, epochs, dtype)
    for backend in BACKENDS:
        verdict = compare(problem, backend.prepare(problem).train())
        assert verdict.status == AGREE, (backend.variant, verdict.message)


@SETTINGS
@given(
    n=st.integers(2, 300),
    d=st.integers(1, 8),
    seed=st.integers(0, 2**16),
    fraction=st.floats(1.1, 4.0),
)
def test_every_backend_reports_divergence_above_the_stability_limit(n, d, seed, fraction) -> None:
    problem = problem_for(n, d, seed, fraction, epochs=400)
    for backend in BACKENDS:
        verdict = compare(problem, backend.prepare(problem).train())
        assert verdict.status == DIVERGED, (backend.variant, verdict.message)
        assert verdict.message.startswith(f"diverged at epoch {verdict.epoch}")


@pytest.mark.skipif(
    not os.environ.get("GDBENCH_EXPECT_FRAMEWORKS"), reason="set by tox and `make test` only"
)
def test_the_properties_cover_every_expected_framework() -> None:
    # A framework that failed to import must not shrink the properties silently: every
    # CPU variant of an expected framework runs, or says why it cannot (a missing C++
    # compiler for torch-compile), never "not installed".
    expected = set(os.environ["GDBENCH_EXPECT_FRAMEWORKS"].split(","))
    assert {b.framework for b in BACKENDS} == expected
    for variant, reason in MISSING.items():
        if framework_of(variant) in expected and "cpu" in devices_of(variant):
            assert "not installed" not in reason, (variant, reason)
