"""The fields of a case's record (suites/records.py) that the report reads."""

from __future__ import annotations

import pytest

from backends import TrainResult
from suites.convergence import compare
from suites.problems import toy
from suites.records import verdict_fields


@pytest.mark.parametrize(
    ("dtype", "precision", "rtol"),
    [("float32", "float32", 1e-3), ("float32", "tf32", 2e-2), ("float64", "tf32", 1e-9)],
)
def test_a_record_carries_the_loss_tolerance_it_was_judged_by(dtype, precision, rtol) -> None:
    # the documented tolerances (README, suites/convergence.py): float32 1e-3, TF32
    # products 2e-2, float64 1e-9 whatever the float32 products use
    problem = toy(dtype)
    ref = problem.reference
    result = TrainResult(ref.losses, ref.w, None)
    fields = verdict_fields(problem, result, compare(problem, result, precision))
    assert fields["loss_rtol"] == rtol and fields["status"] == "agree"
