"""The verdict of suites/convergence.py on runs whose numbers are worked out by hand.

Every run judged here is built from the closed form of the toy recurrence (the loss
falls by 0.85² an epoch, w_e = 2 − 2·0.85^e) or from a float64 loop written in the test,
then perturbed by a known amount: the verdict, the epoch it names, the deviations it
reports and its message are all checked against those known amounts.
"""

from __future__ import annotations

import numpy as np
import pytest

from backends import TrainResult
from suites.convergence import (
    AGREE,
    DISAGREE,
    DIVERGED,
    TF32_TOLERANCE,
    TOLERANCES,
    Tolerance,
    Verdict,
    compare,
    divergence_epoch,
    tolerance,
)
from suites.problems import Problem, toy

# gdbench's own machinery: runs in the numpy-only and all-frameworks environments
# (tox.ini), not again in each single-framework one.
pytestmark = pytest.mark.harness

E = np.arange(1, 101)
TOY_LOSSES = 30 * 0.7225 ** (E - 1)  # L_e = 7.5 (w_{e-1} − 2)², w_{e-1} − 2 = −2·0.85^(e−1)
TOY_W = 2 - 2 * 0.85**100


def toy_run(losses=TOY_LOSSES, w=TOY_W, b=None) -> TrainResult:
    return TrainResult(np.asarray(losses, dtype=np.float64), np.array([w]), b)


# --- tolerances ---------------------------------------------------------------------------


def test_each_dtype_and_precision_gets_its_documented_tolerance() -> None:
    assert tolerance("float32") == Tolerance(rtol=1e-3, floor=1e-2, ptol=1e-4)
    assert tolerance("float64") == Tolerance(rtol=1e-9, floor=1e-3, ptol=1e-9)
    assert tolerance("float32", "tf32") == TF32_TOLERANCE == Tolerance(2e-2, 1e-2, 2e-3)
    # float64 products never use TF32, whatever is asked
    assert tolerance("float64", "tf32") == TOLERANCES["float64"]
    assert tolerance("float32", "float32") == TOLERANCES["float32"]


def test_only_agree_is_ok() -> None:
    def verdict(status):
        return Verdict(status, None, 0.0, 0.0, None, "")

    assert verdict(AGREE).ok
    assert not verdict(DISAGREE).ok and not verdict(DIVERGED).ok
    assert (AGREE, DISAGREE, DIVERGED) == ("agree", "disagree", "diverged")


# --- divergence ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("losses", "epoch"),
    [
        ([3.0, 2.0, 1.0], None),
        ([3.0], None),
        ([3.0, 2.0, np.nan], 3),
        ([3.0, 2.0, np.inf, 1.0], 3),
        ([3.0, -np.inf], 2),
        ([np.inf, 1.0], 1),
        ([np.nan, 1.0], 1),
        ([3.0, 1.0, 4.0, 5.0], 3),  # the first rise above L₁, not the last
        ([3.0, 3.0 * (1 + 5e-7)], None),  # within the 1e-6 allowance for rounding
        ([3.0, 3.0 * (1 + 2e-6)], 2),
        ([0.0, 0.0, 1e-300], 3),
    ],
)
def test_divergence_epoch_by_hand(losses, epoch) -> None:
    found = divergence_epoch(np.array(losses))
    assert found == epoch
    assert found is None or type(found) is int


def test_divergence_epoch_takes_float32_losses() -> None:
    assert divergence_epoch(np.array([2.0, 1.0, 3.0], dtype=np.float32)) == 3


# --- compare: agreement -------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_the_closed_form_agrees(dtype) -> None:
    v = compare(toy(dtype), toy_run())
    assert (v.status, v.epoch, v.ok) == (AGREE, None, True)
    assert v.max_loss_dev < 1e-12 and v.param_dev < 1e-14
    assert v.message.startswith("agrees: loss within ")
    assert f"(rtol {tolerance(dtype).rtol:g}), params within " in v.message


def test_a_loss_error_within_rtol_agrees_and_is_reported() -> None:
    losses = TOY_LOSSES.copy()
    losses[6] *= 1 + 5e-4
    v = compare(toy("float32"), toy_run(losses))
    assert v.status == AGREE
    assert v.max_loss_dev == pytest.approx(5e-4, rel=1e-6)
    assert v.message == f"agrees: loss within 5.0e-04 (rtol 0.001), params within {v.param_dev:.1e}"


def test_a_loss_error_above_rtol_names_its_first_epoch() -> None:
    losses = TOY_LOSSES.copy()
    losses[6] *= 1 + 2e-3
    losses[10] *= 1 + 3e-3  # still above the floor (L₁₁ ≈ 1.2 > 0.3)
    v = compare(toy("float32"), toy_run(losses))
    assert (v.status, v.epoch) == (DISAGREE, 7)
    assert v.max_loss_dev == pytest.approx(3e-3, rel=1e-6)
    assert v.param_dev < 1e-14
    ref7 = 30 * 0.7225**6
    assert v.message == (
        f"loss left the reference at epoch 7: {ref7 * 1.002:.6g} vs {ref7:.6g} "
        "(relative deviation 2.00e-03 > rtol 0.001)"
    )


def test_the_tf32_tolerance_is_used_only_when_asked() -> None:
    losses = TOY_LOSSES * (1 + 5e-3)
    assert compare(toy("float32"), toy_run(losses)).status == DISAGREE
    v = compare(toy("float32"), toy_run(losses), matmul_precision="tf32")
    assert v.status == AGREE
    assert "(rtol 0.02)" in v.message
    assert compare(toy("float64"), toy_run(losses), "tf32").status == DISAGREE


def test_below_the_floor_losses_are_compared_absolutely() -> None:
    # Late toy losses are ~1e-13; the floor is 1e-2 · L₁ = 0.3, so an absolute error δ
    # in the last epoch counts as δ / 0.3.
    for delta, status in ((1e-4, AGREE), (6e-4, DISAGREE)):
        losses = TOY_LOSSES.copy()
        losses[-1] += delta
        v = compare(toy("float32"), toy_run(losses))
        assert v.status == status
        assert v.max_loss_dev == pytest.approx(delta / 0.3, rel=1e-6)
        if status == DISAGREE:
            assert v.epoch == 100


def test_the_float64_floor_is_a_thousandth_of_the_first_loss() -> None:
    losses = TOY_LOSSES.copy()
    losses[-1] += 3e-11  # the scale is 1e-3 · 30 = 0.03: a deviation of 1e-9, at rtol
    v = compare(toy("float64"), toy_run(losses))
    assert v.max_loss_dev == pytest.approx(1e-9, rel=1e-3)


def test_the_floor_scales_with_the_first_loss() -> None:
    # The same data scaled by 10: every loss ×100, and so the floor.
    p = Problem("toy10", toy().X * 10, toy().y * 10, bias=False, lr=1e-4, epochs=100)
    losses = 3000 * 0.7225 ** (E - 1)
    losses[-1] += 1e-2  # scale 1e-2 · 3000 = 30
    v = compare(p, toy_run(losses, w=TOY_W))
    assert v.max_loss_dev == pytest.approx(1e-2 / 30, rel=1e-6)


# --- compare: parameters ------------------------------------------------------------------


def test_final_parameters_are_judged_relative_to_their_size() -> None:
    # θ_ref ≈ 2, so the scale is 2: an error of 3e-4 is 1.5e-4 > ptol, 1.5e-4 is 7.5e-5.
    v = compare(toy("float32"), toy_run(w=TOY_W + 3e-4))
    assert (v.status, v.epoch) == (DISAGREE, 100)
    assert v.param_dev == pytest.approx(1.5e-4, rel=1e-6)
    assert v.message == "final parameters off the reference by 1.50e-04 > ptol 0.0001"
    ok = compare(toy("float32"), toy_run(w=TOY_W - 1.5e-4))
    assert ok.status == AGREE
    assert ok.param_dev == pytest.approx(7.5e-5, rel=1e-6)


def test_small_parameters_are_judged_absolutely() -> None:
    # y = x / 4: θ_ref < 1, so the scale is 1, not |θ_ref|; L₁ = 7.5 / 16
    p = Problem("small", toy().X, toy().X[:, 0] / 4, bias=False, lr=0.01, epochs=100)
    losses = 7.5 / 16 * 0.7225 ** (E - 1)
    w = 0.25 - 0.25 * 0.85**100
    assert compare(p, toy_run(losses, w)).status == AGREE
    v = compare(p, toy_run(losses, w + 5e-5))
    assert v.status == AGREE and v.param_dev == pytest.approx(5e-5, rel=1e-6)
    assert compare(p, toy_run(losses, w + 2e-4)).status == DISAGREE


def biased_problem_and_run(epochs: int = 6) -> tuple[Problem, np.ndarray, float, float]:
    """toy's data with an intercept, from w₀ = 0.5, b₀ = −1: the float64 loop by hand."""
    p = Problem("tb", toy().X, toy().y, bias=True, lr=0.02, epochs=epochs, w0=[0.5], b0=-1.0)
    x, y, w, b, losses = np.array([1.0, 2, 3, 4]), np.array([2.0, 4, 6, 8]), 0.5, -1.0, []
    for _ in range(epochs):
        r = w * x + b - y
        losses.append(np.mean(r**2))
        w, b = w - 0.02 * np.mean(2 * r * x), b - 0.02 * np.mean(2 * r)
    return p, np.array(losses), w, b


def test_a_biased_run_is_judged_on_its_intercept_too() -> None:
    p, losses, w, b = biased_problem_and_run()
    assert compare(p, TrainResult(losses, np.array([w]), b)).status == AGREE
    scale = max(1.0, abs(w), abs(b))
    v = compare(p, TrainResult(losses, np.array([w]), b + 1e-3))
    assert v.status == DISAGREE
    assert v.param_dev == pytest.approx(1e-3 / scale, rel=1e-6)


def test_without_a_bias_the_runs_intercept_is_ignored() -> None:
    assert compare(toy("float32"), toy_run(b=123.0)).status == AGREE


# --- compare: the optimum -----------------------------------------------------------------


def test_the_distance_to_the_optimum_is_reported_where_the_reference_reached_it() -> None:
    # float32: ptol/10 = 1e-5 and the reference is 0.85^100 ≈ 8.7e-8 from w* = 2 (scale 2)
    v = compare(toy("float32"), toy_run(w=TOY_W + 1e-5))
    assert v.status == AGREE
    assert v.optimum_dev == pytest.approx(abs(TOY_W + 1e-5 - 2) / 2, rel=1e-6)
    # float64: ptol/10 = 1e-10, and 8.7e-8 is not reached
    assert compare(toy("float64"), toy_run()).optimum_dev is None


def test_the_optimum_is_reported_on_a_disagreeing_run_too() -> None:
    v = compare(toy("float32"), toy_run(w=2.5))
    assert v.status == DISAGREE
    assert v.optimum_dev == pytest.approx(0.25, rel=1e-6)


# --- compare: shapes and divergence -------------------------------------------------------


def test_a_run_with_the_wrong_number_of_losses_disagrees_at_epoch_one() -> None:
    v = compare(toy(), toy_run(TOY_LOSSES[:99]))
    assert (v.status, v.epoch, v.optimum_dev) == (DISAGREE, 1, None)
    assert v.max_loss_dev == np.inf and v.param_dev == np.inf
    assert v.message == "returned 99 losses for 100 epochs"


def test_a_run_that_diverges_alone_is_a_backend_error() -> None:
    losses = TOY_LOSSES.copy()
    losses[4:] = np.nan
    v = compare(toy(), toy_run(losses))
    assert (v.status, v.epoch, v.optimum_dev) == (DISAGREE, 5, None)
    assert v.max_loss_dev == np.inf and v.param_dev == np.inf
    assert v.message == "diverged at epoch 5 (the float64 reference did not: a backend error)"


# lr = 0.2 on toy: w − 2 is multiplied by 1 − 15·0.2 = −2 each epoch, so L_e = 30·4^(e−1)
# and the loss rises at epoch 2; the stability limit is 2/15.
HOT_LOSSES = 30.0 * 4.0 ** (E - 1)


def test_a_reference_that_diverges_while_the_run_does_not_disagrees() -> None:
    v = compare(toy().replace(lr=0.2), toy_run())
    assert (v.status, v.epoch, v.optimum_dev) == (DISAGREE, 2, None)
    assert v.max_loss_dev == np.inf and v.param_dev == np.inf
    assert v.message == "reference diverged at epoch 2 but this run did not"


def test_both_diverging_is_a_divergence_with_the_stable_limit() -> None:
    v = compare(toy().replace(lr=0.2), toy_run(HOT_LOSSES, w=np.inf))
    assert (v.status, v.epoch, v.ok, v.optimum_dev) == (DIVERGED, 2, False, None)
    assert v.max_loss_dev == np.inf and v.param_dev == np.inf
    assert v.message == "diverged at epoch 2 (lr=0.2 is above the stability limit 0.1333)"


def test_a_later_divergence_names_the_runs_epoch() -> None:
    losses = HOT_LOSSES.copy()
    losses[1:3] = [20.0, 25.0]  # the run rises above L₁ = 30 only at epoch 4
    v = compare(toy().replace(lr=0.2), toy_run(losses))
    assert (v.status, v.epoch) == (DIVERGED, 4)
