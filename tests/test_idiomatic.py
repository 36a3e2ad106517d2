"""The tutorial-style loops that the harness is timed against compute the same thing."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from backends import framework_of
from suites.convergence import compare
from suites.idiomatic import IDIOMATIC
from suites.problems import preset, synthetic


@pytest.mark.parametrize("variant", list(IDIOMATIC))
@pytest.mark.parametrize(
    "problem",
    [
        preset("toy"),
        preset("toy-bias").replace(epochs=300),
        synthetic(200, 4, seed=2, epochs=60, dtype="float64"),
    ],
)
def test_idiomatic_loop_agrees_with_the_float64_reference(variant, problem) -> None:
    framework = framework_of(variant)
    if importlib.util.find_spec(framework) is None:
        pytest.skip(f"{framework} is not installed")
    run = IDIOMATIC[variant](problem)
    first, second = run(), run()
    verdict = compare(problem, first)
    assert verdict.ok, verdict.message
    np.testing.assert_array_equal(first.losses, second.losses)  # each run starts from zero
    assert first.losses.dtype == np.dtype(problem.dtype)
