"""The hand-written gradient against central finite differences and two autodiff engines."""

from __future__ import annotations

import numpy as np
import pytest

from backends.numpy_backend import mse_gradient


def loss64(X, y, w, b):
    r = X @ w + b - y
    return float(np.mean(r * r))


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    X = rng.standard_normal((50, 5))
    y = rng.standard_normal(50)
    w = rng.standard_normal(5)
    b = np.float64(0.3)
    return X, y, w, b


def test_hand_written_gradient_matches_central_finite_differences(data) -> None:
    X, y, w, b = data
    loss, gw, gb = mse_gradient(X, y, w.copy(), b, True)
    h = 1e-6
    fd_w = np.array(
        [(loss64(X, y, w + h * e, b) - loss64(X, y, w - h * e, b)) / (2 * h) for e in np.eye(5)]
    )
    fd_b = (loss64(X, y, w, b + h) - loss64(X, y, w, b - h)) / (2 * h)
    assert loss == pytest.approx(loss64(X, y, w, b), rel=1e-14)
    np.testing.assert_allclose(gw, fd_w, rtol=1e-7, atol=1e-9)
    assert gb == pytest.approx(fd_b, rel=1e-7)


def test_finite_differences_would_catch_a_gradient_n_times_too_large(data) -> None:
    X, y, w, b = data
    _, gw, _ = mse_gradient(X, y, w.copy(), b, True)
    h = 1e-6
    fd0 = (loss64(X, y, w + h * np.eye(5)[0], b) - loss64(X, y, w - h * np.eye(5)[0], b)) / (2 * h)
    assert not np.isclose(gw[0] * X.shape[0], fd0, rtol=1e-3)


def test_hand_written_gradient_matches_torch_autograd(data) -> None:
    torch = pytest.importorskip("torch", reason="torch is not installed")
    X, y, w, b = data
    _, gw, gb = mse_gradient(X, y, w.copy(), b, True)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(float(b), dtype=torch.float64, requires_grad=True)
    loss = ((torch.tensor(X) @ wt + bt - torch.tensor(y)) ** 2).mean()
    loss.backward()
    np.testing.assert_allclose(gw, wt.grad.numpy(), rtol=1e-12)
    assert gb == pytest.approx(bt.grad.item(), rel=1e-12)


def test_hand_written_gradient_matches_jax_grad(data) -> None:
    jax = pytest.importorskip("jax", reason="jax is not installed")
    from backends.jax_backend import mse_loss

    X, y, w, b = data
    _, gw, gb = mse_gradient(X, y, w.copy(), b, True)
    with jax.enable_x64(True):
        grads = jax.grad(mse_loss)({"w": w, "b": np.float64(b)}, X, y)
    np.testing.assert_allclose(gw, np.asarray(grads["w"]), rtol=1e-12)
    assert gb == pytest.approx(float(grads["b"]), rel=1e-12)
