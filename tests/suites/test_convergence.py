"""The verdict of suites/convergence.py on runs worked out by hand, and the convergence
check failing where it must: planted bugs, divergence, dtype leaks."""

from __future__ import annotations

import numpy as np
import pytest

from backends import VARIANTS, TrainResult, get_backend, list_backends
from backends.numpy_backend import NumpyManual, mse_gradient
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
from suites.problems import Problem, preset, synthetic, toy
from tests.conftest import backend_or_skip

E = np.arange(1, 101)


TOY_LOSSES = 30 * 0.7225 ** (E - 1)  # L_e = 7.5 (w_{e-1} − 2)², w_{e-1} − 2 = −2·0.85^(e−1)


TOY_W = 2 - 2 * 0.85**100


def toy_run(losses=TOY_LOSSES, w=TOY_W, b=None) -> TrainResult:
    return TrainResult(np.asarray(losses, dtype=np.float64), np.array([w]), b)


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


def classic_wrong_gradient(X, y, w, b, bias):
    """The tutorial bug: np.dot already sums, so .mean() of a scalar changes nothing."""
    x = X[:, 0]
    yhat = x * w[0]
    loss = ((yhat - y) ** 2).mean()
    grad_w = np.dot(2 * x, yhat - y).mean()  # N times too large
    return loss, np.array([grad_w], dtype=X.dtype), X.dtype.type(0)


def test_the_planted_wrong_gradient_is_flagged_as_disagreeing() -> None:
    problem = toy()
    result = NumpyManual(gradient=classic_wrong_gradient).prepare(problem).train()
    verdict = compare(problem, result)
    assert verdict.status == DISAGREE
    assert verdict.epoch == 2  # epoch 1's loss is computed before any update
    assert "loss left the reference at epoch 2" in verdict.message


def test_the_right_gradient_on_the_same_problem_agrees() -> None:
    problem = toy()
    verdict = compare(problem, NumpyManual(gradient=mse_gradient).prepare(problem).train())
    assert verdict.status == AGREE, verdict.message


def test_a_one_percent_learning_rate_error_is_flagged() -> None:
    problem = preset("toy-20")
    shifted = problem.replace(lr=problem.lr * 1.01)
    result = NumpyManual().prepare(shifted).train()
    assert compare(problem, result).status == DISAGREE


def test_wrong_final_parameters_are_flagged_even_with_the_right_losses() -> None:
    problem = toy()
    good = NumpyManual().prepare(problem).train()
    bad = TrainResult(good.losses, good.w + 0.01, good.b)
    verdict = compare(problem, bad)
    assert verdict.status == DISAGREE and "final parameters" in verdict.message


def test_a_truncated_loss_history_is_flagged() -> None:
    problem = toy()
    good = NumpyManual().prepare(problem).train()
    verdict = compare(problem, TrainResult(good.losses[:-1], good.w, good.b))
    assert verdict.status == DISAGREE


def test_divergence_epoch_finds_the_first_rise_or_non_finite_loss() -> None:
    assert divergence_epoch(np.array([3.0, 2.0, 1.0])) is None
    assert divergence_epoch(np.array([3.0, 2.0, 4.0, 9.0])) == 3
    assert divergence_epoch(np.array([3.0, np.nan, 1.0])) == 2
    assert divergence_epoch(np.array([np.inf, 1.0])) == 1


@pytest.mark.parametrize("name", ["toy", "toy-bias", "toy-20"])
def test_every_backend_reports_divergence_at_the_same_epoch_above_the_limit(name) -> None:
    base = preset(name)
    problem = base.replace(lr=base.lr_limit * 1.5, epochs=min(base.epochs, 200))
    epochs = {}
    # every variant that runs here (looping over VARIANTS with backend_or_skip skipped
    # this whole test on the CPU: torch-cudagraph is CUDA-only)
    for backend in available_cpu_backends():
        variant = backend.variant
        verdict = compare(problem, backend.prepare(problem).train())
        assert verdict.status == DIVERGED, (variant, verdict.message)
        # the epoch the float64 reference diverges at, not compare's own output
        assert verdict.epoch == divergence_epoch(problem.reference.losses)
        assert verdict.message.startswith(f"diverged at epoch {verdict.epoch}")
        assert f"stability limit {problem.lr_limit:.4g}" in verdict.message
        epochs[variant] = verdict.epoch
    assert max(epochs.values()) - min(epochs.values()) <= 1, epochs


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_each_backend_returns_the_problem_dtype_and_agrees(variant, dtype) -> None:
    backend = backend_or_skip(variant)
    problem = synthetic(64, 3, seed=1, epochs=50, dtype=dtype)
    result = backend.prepare(problem, record_params=True).train()
    assert result.losses.dtype == np.dtype(dtype)
    assert result.w.dtype == np.dtype(dtype)
    assert result.w_history.shape == (50, 3) and result.b_history.shape == (50,)
    verdict = compare(problem, result)
    assert verdict.ok, verdict.message
    assert verdict.max_loss_dev <= TOLERANCES[dtype].rtol


@pytest.mark.parametrize("variant", ["jax-grad", "jax-manual", "jax-scan"])
def test_jax_float32_stays_float32_when_x64_is_enabled_globally(variant) -> None:
    jax = pytest.importorskip("jax", reason="jax is not installed")
    backend = backend_or_skip(variant)
    problem = toy()
    previous = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)
    try:
        result = backend.prepare(problem).train()
    finally:
        jax.config.update("jax_enable_x64", previous)
    assert result.losses.dtype == np.float32
    # A float64 run cast to float32 would equal the reference cast to float32 nearly
    # everywhere; a float32 run's own rounding makes most epochs differ from it.
    ref32 = problem.reference.losses.astype(np.float32)
    assert np.mean(result.losses != ref32) > 0.5


@pytest.mark.parametrize("variant", VARIANTS)
def test_recorded_parameters_follow_the_reference_trajectory(variant) -> None:
    backend = backend_or_skip(variant)
    problem = preset("toy-bias", "float64").replace(epochs=50)
    result = backend.prepare(problem, record_params=True).train()
    np.testing.assert_allclose(result.w_history, problem.reference.w_history, rtol=1e-10)
    np.testing.assert_allclose(result.b_history, problem.reference.b_history, rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("variant", VARIANTS)
def test_rounds_start_from_the_initial_parameters(variant) -> None:
    backend = backend_or_skip(variant)
    session = backend.prepare(preset("toy-20"))
    session.warmup()
    first, second = session.train(), session.train()
    np.testing.assert_array_equal(first.losses, second.losses)


def _tf32(a: np.ndarray) -> np.ndarray:
    """``a`` rounded to TF32 (10-bit mantissa, round to nearest even), kept in float32:
    what tensor cores do to the inputs of a float32 product in TF32 mode."""
    bits = np.ascontiguousarray(a, np.float32).view(np.uint32).astype(np.uint64)
    bits = (bits + 0x0FFF + ((bits >> 13) & 1)) & ~np.uint64(0x1FFF)
    return bits.astype(np.uint32).view(np.float32).reshape(np.shape(a))


def tf32_gradient(X, y, w, b, bias):
    """mse_gradient with every matrix product's inputs rounded to TF32."""
    n = X.shape[0]
    Xt = _tf32(X)
    r = Xt @ _tf32(w) + (b if bias else 0) - y
    grad_w = (2.0 / n) * (Xt.T @ _tf32(r))
    return r @ r / n, grad_w, (2.0 / n) * r.sum() if bias else X.dtype.type(0)


@pytest.mark.parametrize(
    "problem", [preset("toy"), preset("toy-bias"), preset("toy-20"), synthetic(10_000, 16)],
    ids=lambda p: p.name,
)  # fmt: skip
def test_tf32_tolerance_admits_tf32_arithmetic_that_full_float32_rejects(problem) -> None:
    # An emulation of TF32 products, independent of any framework: it must fail the
    # float32 tolerance (or the TF32 one is loose for no reason) and pass the TF32 one.
    result = NumpyManual(gradient=tf32_gradient).prepare(problem).train()
    assert compare(problem, result).status == DISAGREE
    assert compare(problem, result, "tf32").status == AGREE


def test_tf32_tolerance_still_flags_a_one_percent_gradient_error() -> None:
    problem = preset("toy-20")
    wrong = problem.replace(lr=problem.lr * 1.01)
    result = NumpyManual(gradient=tf32_gradient).prepare(wrong).train()
    assert compare(problem, result, "tf32").status == DISAGREE


def available_cpu_backends() -> list:
    """Every variant that runs on the CPU here (the others are tested where installed)."""
    return [get_backend(r.variant) for r in list_backends(("cpu",)) if r.available]


def test_the_documented_tolerances_and_the_measured_float32_bound() -> None:
    # suites/convergence.py and the README state these values; loosening one must fail.
    assert (TOLERANCES["float32"].rtol, TOLERANCES["float32"].floor) == (1e-3, 1e-2)
    assert TOLERANCES["float32"].ptol == 1e-4
    assert (TOLERANCES["float64"].rtol, TOLERANCES["float64"].ptol) == (1e-9, 1e-9)
    # the README's measured float32 deviation: below 3e-5 for every backend on the presets
    for backend in available_cpu_backends():
        variant = backend.variant
        for name in ("toy", "toy-bias", "toy-20"):
            problem = preset(name)
            verdict = compare(problem, backend.prepare(problem).train())
            assert verdict.max_loss_dev < 3e-5, (variant, name, verdict.max_loss_dev)


def test_a_tenth_of_a_percent_learning_rate_error_is_flagged() -> None:
    # 0.1% deviates by about 5e-3 (measured): inside a tolerance loosened 5×, caught at 1e-3
    problem = preset("toy-20")
    wrong = NumpyManual().prepare(problem.replace(lr=problem.lr * 1.001)).train()
    verdict = compare(problem, wrong)
    assert verdict.status == DISAGREE, verdict.message


def test_every_backend_diverges_at_exactly_the_reference_epoch_just_above_the_limit() -> None:
    # On the 1-D presets everything diverges at epoch 2, which proves little. At 1.02×
    # the stability limit the loss first rises at epoch 22 (the float64 reference's
    # epoch), and the README promises every backend reports that same epoch.
    base = synthetic(200, 4, seed=0)
    problem = synthetic(200, 4, seed=0, lr=base.lr_limit * 1.02, epochs=300)
    expected = divergence_epoch(problem.reference.losses)
    assert expected is not None and expected > 10
    for backend in available_cpu_backends():
        verdict = compare(problem, backend.prepare(problem).train())
        assert (verdict.status, verdict.epoch) == (DIVERGED, expected), (
            backend.variant,
            verdict.message,
        )
        assert verdict.message.startswith(f"diverged at epoch {expected} ")


def test_the_optimum_is_reported_where_the_reference_reached_it_and_off_it_is_caught() -> None:
    # Gaussian data, lr = 1/λ_max: the float64 reference reaches the optimum in 300 epochs.
    problem = synthetic(200, 4, seed=1, epochs=300, dtype="float64")
    A = np.hstack([problem.X, np.ones((200, 1))])
    theta_opt = np.linalg.lstsq(A, problem.y, rcond=None)[0]  # independent of the code
    good = NumpyManual().prepare(problem).train()
    verdict = compare(problem, good)
    assert verdict.ok
    assert verdict.optimum_dev is not None and verdict.optimum_dev < 1e-9
    # A run that stops a little short of the optimum, on the right loss trajectory, is
    # caught by the parameter check, with its distance to the optimum reported beside it.
    short = TrainResult(good.losses, good.w - 1e-6, good.b)
    verdict = compare(problem, short)
    assert verdict.status == DISAGREE and "final parameters off the reference" in verdict.message
    expected = 1e-6 / max(1.0, np.abs(theta_opt).max())
    assert verdict.optimum_dev == pytest.approx(expected, rel=1e-3)
    # Where the reference has not reached the optimum (toy-20: 20 epochs), none is reported.
    unfinished = preset("toy-20", "float64")
    assert compare(unfinished, NumpyManual().prepare(unfinished).train()).optimum_dev is None
