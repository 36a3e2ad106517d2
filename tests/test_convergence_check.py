"""The convergence check can fail: planted bugs, divergence, dtype leaks."""

from __future__ import annotations

import numpy as np
import pytest

from backends import VARIANTS, TrainResult
from backends.numpy_backend import NumpyManual, mse_gradient
from suites.convergence import AGREE, DISAGREE, DIVERGED, TOLERANCES, compare, divergence_epoch
from suites.problems import preset, synthetic, toy
from tests.conftest import backend_or_skip


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
    for variant in VARIANTS:
        backend = backend_or_skip(variant)
        verdict = compare(problem, backend.prepare(problem).train())
        assert verdict.status == DIVERGED, (variant, verdict.message)
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


@pytest.mark.parametrize("variant", ["jax-grad", "jax-scan"])
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
    # A float64 run would match the reference to ~1e-16; float32 rounding shows.
    assert np.max(np.abs(result.losses - problem.reference.losses)) > 0


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
