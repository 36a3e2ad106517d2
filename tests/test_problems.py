"""Presets reproduce the tutorials; references agree with closed forms and lstsq."""

from __future__ import annotations

import numpy as np
import pytest

from suites.problems import (
    Problem,
    least_squares,
    preset,
    reference_trajectory,
    stability_limit,
    synthetic,
    toy,
)

# gdbench's own machinery: runs in the numpy-only and all-frameworks environments
# (tox.ini), not again in each single-framework one.
pytestmark = pytest.mark.harness


def test_toy_is_the_tutorial_problem() -> None:
    p = toy()
    np.testing.assert_array_equal(p.X[:, 0], [1, 2, 3, 4])
    np.testing.assert_array_equal(p.y, [2, 4, 6, 8])
    assert (p.bias, p.lr, p.epochs, p.dtype) == (False, 0.01, 100, "float32")
    np.testing.assert_array_equal(p.w0, [0.0])


def test_toy_bias_has_an_intercept_and_4000_epochs() -> None:
    p = preset("toy-bias")
    assert p.X.shape == (4, 1) and p.bias and p.epochs == 4000 and p.b0 == 0.0


def test_toy_20_data() -> None:
    p = preset("toy-20")
    i = np.arange(20)
    np.testing.assert_allclose(p.X[:, 0], 0.3 * i, rtol=1e-7)
    np.testing.assert_allclose(p.y, 2.2 * i, rtol=1e-7)
    assert (p.bias, p.epochs) == (False, 20)


def test_reference_matches_the_closed_form_of_the_toy_recurrence() -> None:
    # L(w) = mean((w x - 2x)^2) = 7.5 (w - 2)^2, so w_e = 2 - 2 (1 - 15 lr)^e and the
    # loss before update e is 30 (1 - 15 lr)^(2(e-1)).
    p = toy("float64")
    ref = reference_trajectory(p)
    e = np.arange(1, 101)
    # atol: w - 2 cancels, so the tiny late losses carry ~1e-16 absolute rounding.
    np.testing.assert_allclose(ref.losses, 30 * 0.85 ** (2 * (e - 1)), rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(ref.w_history[:, 0], 2 - 2 * 0.85**e, rtol=1e-12)


def test_reference_reaches_the_least_squares_optimum_where_it_converges() -> None:
    p = preset("toy-bias", "float64")
    w_opt, b_opt = least_squares(p)
    np.testing.assert_allclose(w_opt, [2.0], atol=1e-12)
    assert b_opt == pytest.approx(0.0, abs=1e-12)
    assert p.reference.w[0] == pytest.approx(2.0, abs=1e-5)


def test_synthetic_learning_rate_is_below_the_stability_limit_and_converges() -> None:
    p = synthetic(200, 8, seed=3, dtype="float64")
    # exactly 1/λ_max, half the limit, as documented: λ_max of the Hessian (2/N)[X 1]ᵀ[X 1]
    A = np.hstack([np.asarray(p.X, np.float64), np.ones((200, 1))])
    lam_max = np.linalg.eigvalsh(2 / 200 * A.T @ A).max()
    assert p.lr == pytest.approx(1 / lam_max, rel=1e-9)
    assert p.lr == pytest.approx(p.lr_limit / 2, rel=1e-12)
    w_opt, b_opt = p.optimum
    np.testing.assert_allclose(p.reference.w, w_opt, atol=1e-6)
    assert np.all(np.diff(p.reference.losses) <= 1e-15)  # GD below the limit never climbs


def test_stability_limit_is_two_over_the_largest_hessian_eigenvalue() -> None:
    X = np.array([[1.0], [2.0], [3.0], [4.0]])
    assert stability_limit(X, bias=False) == pytest.approx(2 / 15)


def test_problem_arrays_share_one_dtype_and_are_read_only() -> None:
    p = synthetic(10, 3, dtype="float64")
    assert p.X.dtype == p.y.dtype == p.w0.dtype == np.float64
    with pytest.raises(ValueError):
        p.X[0, 0] = 1.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": 0}, "epochs must be a positive integer, got 0"),
        ({"lr": float("nan")}, "lr must be a positive finite number, got nan"),
        ({"dtype": "float16"}, "dtype must be one of float32, float64, got 'float16'"),
    ],
)
def test_invalid_problem_fields_are_refused_with_the_value(changes, message) -> None:
    with pytest.raises(ValueError, match=message):
        toy().replace(**changes)


def test_problem_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match=r"y must have shape \(3,\)"):
        Problem("bad", np.ones((3, 2)), np.ones(4), bias=False, lr=0.1, epochs=1)
