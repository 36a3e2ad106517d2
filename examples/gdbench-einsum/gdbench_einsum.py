"""``numpy-einsum``: numpy-manual's gradient descent with every product written as
``np.einsum``; a gdbench variant from another package (docs/plugins.md).

Its entry point (``pyproject.toml``) makes it a variant of gdbench:
``numpy-einsum = "gdbench_einsum:NumpyEinsum"`` in the ``gdbench.variants`` group.
gdbench builds it as ``NumpyEinsum(device)`` in a worker of its own, prepares each
problem once and calls ``train`` as it does numpy-manual's: the same data, the same
initial parameters, the same float64 check before anything is timed.
"""

from __future__ import annotations

import numpy as np

from backends import BackendUnavailable, ProblemSpec, TrainResult


class NumpyEinsum:
    """``numpy-einsum``: NumPy arrays, the gradient by hand in ``np.einsum``, a Python loop.

    dL/dw = (2/N) Xᵀ(Xw + b − y) and dL/db = (2/N) Σ(Xw + b − y), as numpy-manual's,
    with each product an einsum: ``nd,d->n`` (Xw), ``n,n->`` (the loss), ``nd,n->d``
    (Xᵀr). The arithmetic is the same; einsum's own loops replace the BLAS calls of ``@``.
    """

    variant = "numpy-einsum"  # the entry point's name
    framework = "numpy"

    def __init__(self, device: str = "cpu") -> None:
        """Args:
        device: only ``"cpu"``; any other raises BackendUnavailable with the reason.
        """
        if device != "cpu":
            raise BackendUnavailable(f"numpy-einsum runs on the CPU only, not on {device}")
        self.device = device

    def prepare(self, problem: ProblemSpec, *, record_params: bool = False) -> _Session:
        return _Session(problem, record_params)


class _Session:
    def __init__(self, problem: ProblemSpec, record: bool) -> None:
        self.p = problem
        self.record = record
        dt = np.dtype(problem.dtype)
        # Own contiguous copies: the problem's arrays are shared with the other variants.
        self.X = np.ascontiguousarray(problem.X, dtype=dt)
        self.y = np.ascontiguousarray(problem.y, dtype=dt)
        self.lr = dt.type(problem.lr)

    def warmup(self) -> None:
        """One epoch, untimed: einsum parses its subscripts on first use."""
        self.train(1)

    def sync(self) -> None:
        """NumPy computes synchronously: nothing to wait for."""

    def train(self, epochs: int | None = None) -> TrainResult:
        """``epochs`` epochs (default: the problem's) from the initial parameters.

        Returns:
            losses (epochs,), w (n_features,) and b in the problem's dtype (b a float,
            None without a bias); with ``record_params`` the parameters after each epoch.
        """
        p, X, y, lr = self.p, self.X, self.y, self.lr
        dt = X.dtype
        epochs = epochs or p.epochs
        n = X.shape[0]
        scale = dt.type(2.0 / n)
        w = np.array(p.w0, dtype=dt)
        b = dt.type(p.b0 if p.bias else 0.0)
        losses = np.empty(epochs, dtype=dt)
        w_hist = np.empty((epochs, w.size), dtype=dt) if self.record else None
        b_hist = np.empty(epochs, dtype=dt) if self.record and p.bias else None
        # A diverging run overflows; gdbench's convergence check reports it.
        with np.errstate(over="ignore", invalid="ignore"):
            for e in range(epochs):
                r = np.einsum("nd,d->n", X, w)
                if p.bias:
                    r += b
                r -= y
                losses[e] = np.einsum("n,n->", r, r) / n
                w -= lr * (scale * np.einsum("nd,n->d", X, r))
                if p.bias:
                    b = b - lr * (scale * np.einsum("n->", r))
                if w_hist is not None:
                    w_hist[e] = w
                if b_hist is not None:
                    b_hist[e] = b
        return TrainResult(losses, w, float(b) if p.bias else None, w_hist, b_hist)
