"""NumPy with a hand-written gradient: the program every autodiff course starts from."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from backends.base import BackendUnavailable, HostArray, ProblemSpec, TrainResult

# A NumPy scalar of the problem's dtype (np.float32 or np.float64).
Scalar = Any
# (X, y, w, b, bias) -> (loss, dL/dw, dL/db): the gradient a variant trains with.
GradientFn = Callable[
    [HostArray, HostArray, HostArray, Scalar, bool], tuple[Scalar, HostArray, Scalar]
]


def mse_gradient(
    X: HostArray, y: HostArray, w: HostArray, b: Scalar, bias: bool
) -> tuple[Scalar, HostArray, Scalar]:
    """Loss and hand-written gradient of ``mean((X @ w + b - y)**2)``.

    dL/dw = (2/N) Xᵀ(Xw + b − y) and dL/db = (2/N) Σ(Xw + b − y).

    Args:
        X: (n_samples, n_features)
        y: (n_samples,)
        w: (n_features,)
        b: intercept (a scalar of X's dtype; zero and unused without a bias).
        bias: whether the model has an intercept.

    Returns:
        (loss, dL/dw of shape (n_features,), dL/db), all in X's dtype.
    """
    n = X.shape[0]
    # Fresh arrays each epoch: reusing buffers (np.matmul(..., out=)) measured no faster
    # (docs/performance.md), so the plain tutorial form stays.
    r = X @ w
    if bias:
        r += b
    r -= y
    loss = r @ r / n
    grad_w = (2.0 / n) * (X.T @ r)
    grad_b = (2.0 / n) * r.sum() if bias else np.zeros((), X.dtype)[()]
    return loss, grad_w, grad_b


class NumpyManual:
    """``numpy-manual``: NumPy arrays, gradient written by hand, a Python loop."""

    variant = "numpy-manual"
    framework = "numpy"

    def __init__(self, device: str = "cpu", gradient: GradientFn = mse_gradient) -> None:
        """Args:
        device: only ``"cpu"``.
        gradient: the gradient to train with; tests plant a wrong one here.
        """
        if device != "cpu":
            raise BackendUnavailable(f"numpy-manual runs on the CPU only, not on {device}")
        self.device = device
        self.gradient = gradient

    def prepare(self, problem: ProblemSpec, *, record_params: bool = False) -> _Session:
        return _Session(problem, self.gradient, record_params)


class _Session:
    def __init__(self, problem: ProblemSpec, gradient: GradientFn, record: bool) -> None:
        self.p = problem
        self.gradient = gradient
        self.record = record
        dt = np.dtype(problem.dtype)
        # Own contiguous copies, so the caller's arrays cannot alias the training data.
        self.X = np.ascontiguousarray(problem.X, dtype=dt)
        self.y = np.ascontiguousarray(problem.y, dtype=dt)
        self.lr = dt.type(problem.lr)

    def warmup(self) -> None:
        # First BLAS calls spin up the thread pool; pay that here, not in round one.
        self.gradient(self.X, self.y, self.p.w0.astype(self.X.dtype), self.X.dtype.type(0), True)

    def sync(self) -> None:
        """NumPy computes synchronously: nothing to wait for."""

    def train(self, epochs: int | None = None) -> TrainResult:
        p, dt = self.p, self.X.dtype
        epochs = epochs or p.epochs
        w = np.array(p.w0, dtype=dt)
        b = dt.type(p.b0 if p.bias else 0.0)
        losses = np.empty(epochs, dtype=dt)
        w_hist = np.empty((epochs, w.size), dtype=dt) if self.record else None
        b_hist = np.empty(epochs, dtype=dt) if self.record and p.bias else None
        # A diverging run overflows; the convergence check reports it, not a warning.
        with np.errstate(over="ignore", invalid="ignore"):
            b = self._loop(epochs, w, b, losses, w_hist, b_hist)
        return TrainResult(losses, w, float(b) if p.bias else None, w_hist, b_hist)

    def _loop(self, epochs, w, b, losses, w_hist, b_hist) -> Scalar:
        """The training loop: updates w in place, returns the final b."""
        p, lr = self.p, self.lr
        for e in range(epochs):
            loss, grad_w, grad_b = self.gradient(self.X, self.y, w, b, p.bias)
            losses[e] = loss
            w -= lr * grad_w
            if p.bias:
                b = b - lr * grad_b
            if w_hist is not None:
                w_hist[e] = w
            if b_hist is not None:
                b_hist[e] = b
        return b
