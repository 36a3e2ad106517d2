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


def check_against_finite_differences(gradient, X, y, w, b) -> None:  # noqa: ANN001
    """Assert ``gradient`` (mse_gradient's signature) agrees with central differences of
    the float64 loss, in the loss, every weight and the intercept."""
    loss, gw, gb = gradient(X, y, w.copy(), b, True)
    h = 1e-6
    fd_w = np.array(
        [(loss64(X, y, w + h * e, b) - loss64(X, y, w - h * e, b)) / (2 * h)
         for e in np.eye(len(w))]
    )  # fmt: skip
    fd_b = (loss64(X, y, w, b + h) - loss64(X, y, w, b - h)) / (2 * h)
    assert loss == pytest.approx(loss64(X, y, w, b), rel=1e-14)
    np.testing.assert_allclose(gw, fd_w, rtol=1e-7, atol=1e-9)
    assert gb == pytest.approx(fd_b, rel=1e-7)


def test_hand_written_gradient_matches_central_finite_differences(data) -> None:
    check_against_finite_differences(mse_gradient, *data)


def planted(change):  # noqa: ANN001, ANN201
    """mse_gradient with ``change(loss, grad_w, grad_b, n)`` applied to its result."""

    def gradient(X, y, w, b, bias):  # noqa: ANN001, ANN202
        return change(*mse_gradient(X, y, w, b, bias), len(y))

    return gradient


PLANTED = {
    "n-times": planted(lambda loss, gw, gb, n: (loss, gw * n, gb)),  # the tutorial bug
    "half-intercept": planted(lambda loss, gw, gb, n: (loss, gw, gb / 2)),  # factor 2 lost
    "permuted": planted(lambda loss, gw, gb, n: (loss, gw[::-1].copy(), gb)),
}


@pytest.mark.parametrize("name", PLANTED)
def test_the_finite_difference_check_fails_on_planted_gradients(data, name) -> None:
    with pytest.raises(AssertionError):
        check_against_finite_differences(PLANTED[name], *data)


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
