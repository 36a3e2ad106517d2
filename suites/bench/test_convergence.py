"""The equal-convergence suite: every available backend follows the float64 trajectory.

One test per (variant, device, problem). The verdict (agree, disagree, diverged) and the
whole trajectory are recorded whatever the outcome; the test passes only on "agree". A
result of the wrong shape or dtype is refused: the case fails with one line naming the
variant (a plugin with its distribution), and no traceback.
"""

from __future__ import annotations

import pytest

from backends import BadResult
from suites.bench.case import run_convergence
from suites.records import CONVERGENCE, first_line, trajectory, verdict_fields


def test_backend_follows_the_float64_reference(case) -> None:
    backend = case.backend()
    refused = ""
    try:
        with case.measured() as own:
            result, verdict = run_convergence(backend, own, case.matmul_precision)
    except BadResult as err:
        refused = str(err)
    except Exception as err:  # one backend failing must not hide the others' results
        case.record(CONVERGENCE, status="failed", message=first_line(err))
        raise
    if refused:  # its one line, outside the except: no traceback, no chained error
        case.record(CONVERGENCE, status="failed", message=refused)
        pytest.fail(refused, pytrace=False)
    case.record(
        CONVERGENCE,
        **verdict_fields(case.problem, result, verdict),
        trajectory=trajectory(case.problem, result),
    )
    if not verdict.ok:
        pytest.fail(f"{backend.variant}@{backend.device} on {case.problem.name}: {verdict.message}")
