"""Presets reproduce the tutorials; problem fields, the synthetic family and the float64
references, each against a value worked out independently: by hand, from a closed
form, or by another route."""

from __future__ import annotations

import numpy as np
import pytest

from suites.problems import (
    PRESETS,
    Problem,
    least_squares,
    preset,
    reference_trajectory,
    stability_limit,
    synthetic,
    toy,
    toy_20,
    toy_bias,
)


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


X4 = np.array([[1.0], [2.0], [3.0], [4.0]])


def design(X: np.ndarray, bias: bool) -> np.ndarray:
    A = np.asarray(X, dtype=np.float64)
    return np.hstack([A, np.ones((A.shape[0], 1))]) if bias else A


def gd_by_matrix_powers(p: Problem) -> tuple[np.ndarray, np.ndarray]:
    """Losses and the last parameters of GD on p, from the closed form of the linear map
    θ_{k+1} = θ_k − lr (H θ_k − g), H = (2/N)AᵀA, g = (2/N)Aᵀy: θ_k = θ* + M^k (θ₀ − θ*),
    with θ* solving the normal equations (a route that shares no code with problems.py)."""
    A = design(p.X, p.bias)
    y = np.asarray(p.y, np.float64)
    n = A.shape[0]
    H = 2.0 / n * A.T @ A
    theta_star = np.linalg.solve(A.T @ A, A.T @ y)
    theta0 = np.append(np.asarray(p.w0, np.float64), p.b0) if p.bias else np.asarray(p.w0, float)
    M = np.eye(len(theta0)) - p.lr * H
    losses, thetas = [], []
    for k in range(p.epochs):
        theta = theta_star + np.linalg.matrix_power(M, k) @ (theta0 - theta_star)
        r = A @ theta - y
        losses.append(r @ r / n)
        thetas.append(theta_star + np.linalg.matrix_power(M, k + 1) @ (theta0 - theta_star))
    return np.array(losses), np.array(thetas)


def test_presets_are_the_readme_table() -> None:
    assert PRESETS == ("toy", "toy-bias", "toy-20")
    rows = {
        "toy": (False, 0.01, 100, (4, 1)),
        "toy-bias": (True, 0.01, 4000, (4, 1)),
        "toy-20": (False, 0.01, 20, (20, 1)),
    }
    for name, (bias, lr, epochs, shape) in rows.items():
        p = preset(name)
        assert (p.name, p.bias, p.lr, p.epochs, p.X.shape) == (name, bias, lr, epochs, shape)
        assert p.dtype == "float32" and p.X.dtype == np.float32
        assert p.b0 == 0.0
        np.testing.assert_array_equal(p.w0, [0.0])


@pytest.mark.parametrize("builder", [toy, toy_bias, toy_20])
def test_each_preset_builder_takes_the_dtype(builder) -> None:
    p = builder("float64")
    assert p.dtype == "float64"
    assert p.X.dtype == p.y.dtype == p.w0.dtype == np.float64
    assert preset(p.name, "float64").dtype == "float64"


def test_the_toy_bias_data_are_the_toy_data_as_a_column() -> None:
    p = toy_bias()
    np.testing.assert_array_equal(p.X, X4)
    np.testing.assert_array_equal(p.y, [2, 4, 6, 8])


def test_toy_20_rounds_its_data_to_float32_once() -> None:
    p = toy_20()
    i = np.arange(20)
    np.testing.assert_array_equal(p.X[:, 0], (0.3 * i).astype(np.float32))
    np.testing.assert_array_equal(p.y, (2.2 * i).astype(np.float32))


def test_an_unknown_preset_names_the_choices() -> None:
    with pytest.raises(
        ValueError, match=r"^unknown preset 'toy-2'; choose from: toy, toy-bias, toy-20$"
    ):
        preset("toy-2")


def make(**changes) -> Problem:
    fields = {"name": "p", "X": X4, "y": 2 * X4[:, 0], "bias": True, "lr": 0.01, "epochs": 3}
    return Problem(**(fields | changes))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"X": np.ones(4)}, r"^X must be 2-D \(n_samples, n_features\), got shape \(4,\)$"),
        ({"y": np.ones((4, 1))}, r"^y must have shape \(4,\), got \(4, 1\)$"),
        ({"epochs": True}, r"^epochs must be a positive integer, got True$"),
        ({"epochs": 2.0}, r"^epochs must be a positive integer, got 2.0$"),
        ({"epochs": -1}, r"^epochs must be a positive integer, got -1$"),
        ({"lr": 0.0}, r"^lr must be a positive finite number, got 0.0$"),
        ({"lr": -0.1}, r"^lr must be a positive finite number, got -0.1$"),
        ({"lr": float("inf")}, r"^lr must be a positive finite number, got inf$"),
        ({"w0": np.zeros(2)}, r"^w0 must have shape \(1,\), got \(2,\)$"),
        ({"dtype": "int32"}, r"^dtype must be one of float32, float64, got 'int32'$"),
    ],
)
def test_each_invalid_field_is_refused_with_its_value(changes, message) -> None:
    with pytest.raises(ValueError, match=message):
        make(**changes)


def test_the_smallest_valid_problem_is_accepted() -> None:
    p = make(epochs=1, lr=1e-300)
    assert (p.epochs, p.lr) == (1, 1e-300)
    assert (p.n_samples, p.n_features) == (4, 1)
    assert isinstance(p.n_samples, int) and isinstance(p.n_features, int)


def test_fields_are_normalised_to_the_problem_dtype() -> None:
    p = make(X=[[1, 2], [3, 4], [5, 7]], y=[1, 2, 3], w0=[1, -1], b0=2, lr=1, dtype="float64")
    assert p.X.dtype == p.y.dtype == p.w0.dtype == np.float64
    assert p.X.flags.c_contiguous and p.y.flags.c_contiguous and p.w0.flags.c_contiguous
    assert type(p.lr) is float and type(p.b0) is float
    assert (p.lr, p.b0) == (1.0, 2.0)
    np.testing.assert_array_equal(p.w0, [1.0, -1.0])
    for arr in (p.X, p.y, p.w0):
        assert not arr.flags.writeable


def test_without_a_bias_the_initial_intercept_is_zero() -> None:
    assert make(bias=False, b0=3.0).b0 == 0.0
    assert make(bias=True, b0=3.0).b0 == 3.0


def test_replace_changes_only_the_named_fields() -> None:
    p = make(w0=[0.5], b0=1.0)
    q = p.replace(lr=0.02, dtype="float64")
    assert (q.lr, q.dtype, q.epochs, q.bias, q.b0, q.name) == (0.02, "float64", 3, True, 1.0, "p")
    assert q.X.dtype == np.float64 and q.w0[0] == 0.5
    assert p.lr == 0.01 and p.dtype == "float32"


def test_own_data_is_a_fresh_copy_that_keeps_the_computed_references() -> None:
    p = make(dtype="float64").precompute()
    for name in ("reference", "lr_limit", "optimum"):
        assert name in p.__dict__  # precompute filled every cache
    q = p.with_own_data()
    assert q.X is not p.X and not np.shares_memory(q.X, p.X)
    assert q.y is not p.y and not np.shares_memory(q.y, p.y)
    np.testing.assert_array_equal(q.X, p.X)
    np.testing.assert_array_equal(q.y, p.y)
    assert q.reference is p.reference
    assert q.lr_limit == p.lr_limit
    assert q.optimum is p.optimum


def test_own_data_never_recomputes_what_was_computed(monkeypatch) -> None:
    p = make(dtype="float64").precompute()
    q = p.with_own_data()

    def forbidden(*args, **kwargs):
        raise AssertionError("recomputed")

    for name in ("reference_trajectory", "stability_limit", "least_squares"):
        monkeypatch.setattr(f"suites.problems.{name}", forbidden)
    assert q.lr_limit == pytest.approx(2 / ((17 + np.sqrt(269)) / 2), rel=1e-12)
    assert q.reference.losses[0] == pytest.approx(30.0, rel=1e-15)  # mean((2x)²)
    assert q.optimum[0][0] == pytest.approx(2.0, abs=1e-12)


def test_own_data_of_a_fresh_problem_computes_nothing() -> None:
    q = make().with_own_data()
    assert not {"reference", "lr_limit", "optimum"} & set(q.__dict__)


def test_stability_limit_with_a_bias_by_hand() -> None:
    # A = [x 1], (2/N)AᵀA = 0.5 [[30, 10], [10, 4]] = [[15, 5], [5, 2]]:
    # λ_max = (17 + sqrt(13² + 100)) / 2
    lam = (17 + np.sqrt(13**2 + 4 * 25)) / 2
    assert stability_limit(X4, bias=True) == pytest.approx(2 / lam, rel=1e-12)
    assert stability_limit(X4, bias=False) == pytest.approx(2 / 15, rel=1e-12)
    assert toy_bias().lr_limit == pytest.approx(2 / lam, rel=1e-6)


def test_stability_limit_is_two_over_the_squared_spectral_norm() -> None:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(50, 3)) * [0.1, 1.0, 10.0]
    for bias in (False, True):
        sigma = np.linalg.norm(design(X, bias), 2)
        assert stability_limit(X, bias) == pytest.approx(2 / (2 / 50 * sigma**2), rel=1e-10)


def test_least_squares_solves_the_normal_equations() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 3))
    y = rng.normal(size=30)
    for bias in (False, True):
        p = Problem("ls", X, y, bias=bias, lr=0.01, epochs=1, dtype="float64")
        A = design(X, bias)
        theta = np.linalg.solve(A.T @ A, A.T @ y)
        w, b = least_squares(p)
        np.testing.assert_allclose(w, theta[:3], rtol=1e-10, atol=1e-12)
        assert b == (pytest.approx(theta[3], rel=1e-10) if bias else 0.0)
        assert isinstance(b, float)
        w2, b2 = p.optimum
        np.testing.assert_array_equal(w2, w)


def test_toy_bias_optimum_is_the_line_through_the_data() -> None:
    w, b = toy_bias("float64").optimum
    np.testing.assert_allclose(w, [2.0], atol=1e-12)
    assert b == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("bias", [False, True])
def test_the_reference_is_the_gd_map_applied_epoch_by_epoch(bias) -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(12, 2))
    y = X @ [1.5, -0.5] + 0.3 + 0.1 * rng.normal(size=12)
    p = Problem("r", X, y, bias=bias, lr=0.05, epochs=30, dtype="float64", w0=[0.2, -0.7], b0=0.4)
    losses, thetas = gd_by_matrix_powers(p)
    ref = reference_trajectory(p)
    np.testing.assert_allclose(ref.losses, losses, rtol=1e-12)
    np.testing.assert_allclose(ref.w_history, thetas[:, :2], rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(ref.w, thetas[-1, :2], rtol=1e-11)
    if bias:
        np.testing.assert_allclose(ref.b_history, thetas[:, 2], rtol=1e-11)
        assert ref.b == pytest.approx(thetas[-1, 2], rel=1e-11)
        assert isinstance(ref.b, float)
    else:
        np.testing.assert_array_equal(ref.b_history, np.zeros(30))
        assert ref.b == 0.0
    assert ref.losses.shape == (30,) and ref.w_history.shape == (30, 2)


def test_toy_reference_first_epochs_by_hand() -> None:
    # L₁ = mean((2x)²) = 30; dL/dw = (2/4) Σ x(0 − 2x) = −30, so w₁ = 0.3;
    # L₂ = 7.5 (0.3 − 2)² = 21.675
    ref = toy("float64").reference
    assert ref.losses[0] == pytest.approx(30.0, rel=1e-15)
    assert ref.w_history[0, 0] == pytest.approx(0.3, rel=1e-15)
    assert ref.losses[1] == pytest.approx(21.675, rel=1e-14)


def test_the_reference_uses_the_data_as_rounded_to_the_dtype() -> None:
    p32 = toy_20("float32")
    X = p32.X.astype(np.float64)  # 0.3·i rounded to float32, then exact in float64
    y = p32.y.astype(np.float64)
    r = -y
    assert p32.reference.losses[0] == pytest.approx(r @ r / 20, rel=1e-15)
    w1 = -0.01 * (2 / 20) * (X[:, 0] @ r)
    assert p32.reference.w_history[0, 0] == pytest.approx(w1, rel=1e-14)


def test_a_diverging_reference_overflows_quietly() -> None:
    p = toy("float64").replace(lr=1.0, epochs=400)
    with np.errstate(all="raise"):
        losses = p.reference.losses
    assert not np.all(np.isfinite(losses))


def test_synthetic_defaults_are_the_readme_sweep() -> None:
    p = synthetic(100)
    assert p.name == "synthetic-100x16"
    assert (p.n_samples, p.n_features, p.epochs, p.dtype, p.bias) == (100, 16, 100, "float32", True)
    assert p.X.dtype == np.float32
    np.testing.assert_array_equal(p.w0, np.zeros(16))
    assert p.b0 == 0.0


def test_synthetic_is_seeded() -> None:
    a, b, c = synthetic(40, 3, seed=0), synthetic(40, 3), synthetic(40, 3, seed=1)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(a.X, c.X)


def test_synthetic_data_are_standard_normal_and_nearly_linear() -> None:
    p = synthetic(20_000, 4, seed=2, dtype="float64", epochs=1)
    assert abs(p.X.mean()) < 0.02 and abs(p.X.std() - 1) < 0.02
    # y = X w_true + b_true + 0.01 noise: the least-squares residual is the noise
    A = design(p.X, True)
    theta, *_ = np.linalg.lstsq(A, p.y, rcond=None)
    resid = p.y - A @ theta
    assert np.std(resid) == pytest.approx(0.01, rel=0.05)
    assert np.all(np.abs(theta[:4]) <= 2.0) and abs(theta[4]) <= 1.0 + 1e-3
    assert np.std(p.y) > 0.5  # the signal is not the noise


def test_synthetic_lr_is_one_over_the_largest_hessian_eigenvalue() -> None:
    p = synthetic(300, 5, seed=4, dtype="float64")
    sigma = np.linalg.norm(design(p.X, True), 2)
    assert p.lr == pytest.approx(1 / (2 / 300 * sigma**2), rel=1e-10)


def test_synthetic_takes_an_explicit_lr_and_epochs() -> None:
    p = synthetic(10, 2, epochs=7, lr=0.125, dtype="float64")
    assert (p.lr, p.epochs, p.dtype) == (0.125, 7, "float64")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0,), r"^n_samples must be a positive integer, got 0$"),
        ((True,), r"^n_samples must be a positive integer, got True$"),
        ((10.0,), r"^n_samples must be a positive integer, got 10.0$"),
        ((10, 0), r"^n_features must be a positive integer, got 0$"),
        ((10, False), r"^n_features must be a positive integer, got False$"),
    ],
)
def test_synthetic_refuses_bad_sizes(args, message) -> None:
    with pytest.raises(ValueError, match=message):
        synthetic(*args)


def test_synthetic_accepts_numpy_integers_and_one_sample() -> None:
    p = synthetic(np.int64(1), np.int32(1), epochs=1)
    assert (p.n_samples, p.n_features) == (1, 1)
