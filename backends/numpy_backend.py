"""NumPy with a hand-written gradient: the program every autodiff course starts from, and
its single-pass form over blocks of rows (``numpy-blocked``)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from backends.base import BackendUnavailable, HostArray, ProblemSpec, TrainResult
from backends.blocking import ThreadSplit, block_rows_for, thread_blocks

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


def blas_threads() -> int:
    """The threads NumPy's BLAS is set to now (threadpoolctl; what ``gdbench`` set with
    ``--threads``): the threads numpy-blocked splits the rows between."""
    from threadpoolctl import threadpool_info

    counts = [int(lib["num_threads"]) for lib in threadpool_info() if lib["user_api"] == "blas"]
    return max(counts, default=1)


@functools.cache
def _blas_controller() -> Any:
    # Made once: finding the BLAS libraries walks the loaded shared objects (ms).
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def one_blas_thread() -> contextlib.AbstractContextManager:
    """BLAS limited to one thread (process-wide, as OpenBLAS has no per-thread setting)
    until the block closes, then restored: numpy-blocked's threads each make their own
    BLAS calls and must not each start a parallel region across the same cores."""
    return _blas_controller().limit(limits=1, user_api="blas")


def blocked_gradient(X: HostArray, y: HostArray, block_rows: int, threads: int = 1) -> GradientFn:
    """The gradient of :func:`mse_gradient` computed in one pass over X, block by block,
    the rows split between ``threads`` Python threads.

    The rows are split into one contiguous range per thread, and each thread walks its
    range in blocks (full blocks of ``block_rows``, then the range's ragged remainder
    as a block of its own: slices, nothing padded; ``blocking.thread_blocks``). For each
    block, while it is in that core's cache: r_blk = X_blk·w + b − y_blk, then the
    block's X_blkᵀ·r_blk, Σ r_blk and Σ r_blk². The blocks' partial gradients go into
    rows of one buffer, summed once at the end (one output per block: no
    accumulate-in-place call per block); each thread's two sums are added in range
    order; then everything is scaled by 2/N (1/N for the loss). The result does not
    depend on which thread finishes first. Only the order of the arithmetic differs
    from numpy-manual.

    The caller runs the returned function under :func:`one_blas_thread` when more than
    one thread is used (numpy releases the GIL inside BLAS calls and ufunc loops, so
    the threads compute side by side).

    The views of X, y and of the residual buffer are made once here, for the data the
    returned function will be called with (its X and y arguments are not read again).
    """
    n, d = X.shape
    r = np.empty(n, dtype=X.dtype)
    per_thread = thread_blocks(n, block_rows, threads)
    partial_g = np.empty((sum(map(len, per_thread)), d), dtype=X.dtype)
    views, k = [], 0
    for bounds in per_thread:
        views.append(
            [(X[s:e], y[s:e], r[s:e], partial_g[k + j]) for j, (s, e) in enumerate(bounds)]
        )
        k += len(bounds)
    split = ThreadSplit(len(per_thread))
    zero = X.dtype.type(0)
    scale = X.dtype.type(2.0 / n)

    def gradient(
        _X: HostArray, _y: HostArray, w: HostArray, b: Scalar, bias: bool
    ) -> tuple[Scalar, HostArray, Scalar]:
        def walk(thread: int) -> tuple[Scalar, Scalar]:
            loss, sum_r = zero, zero
            for x_blk, y_blk, r_blk, g_blk in views[thread]:
                np.matmul(x_blk, w, out=r_blk)  # r = X·w + b − y, the block in cache
                if bias:
                    r_blk += b
                r_blk -= y_blk
                np.matmul(r_blk, x_blk, out=g_blk)  # X_blkᵀ·r_blk: the same rows again
                sum_r += r_blk.sum()
                loss += r_blk @ r_blk
            return loss, sum_r

        loss, sum_r = zero, zero
        for part_loss, part_sum_r in split.map(walk):
            loss += part_loss
            sum_r += part_sum_r
        grad_b = scale * sum_r if bias else zero
        return loss / n, scale * partial_g.sum(axis=0), grad_b

    return gradient


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


class NumpyBlocked:
    """``numpy-blocked``: numpy-manual's loop with the gradient from one pass over X in
    blocks of rows that stay in cache, the rows split between threads, one range per
    core (:func:`blocked_gradient`)."""

    variant = "numpy-blocked"
    framework = "numpy"

    def __init__(
        self, device: str = "cpu", block_rows: int | None = None, threads: int | None = None
    ) -> None:
        """Args:
        device: only ``"cpu"``.
        block_rows: rows per block; None chooses from the L2 cache (backends/blocking.py).
        threads: Python threads to split the rows between; None: as many as NumPy's
            BLAS is set to when a problem is prepared (:func:`blas_threads`).
        """
        if device != "cpu":
            raise BackendUnavailable(f"numpy-blocked runs on the CPU only, not on {device}")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be a positive integer, got {threads}")
        self.device = device
        self.block_rows = block_rows
        self.threads = threads

    def prepare(self, problem: ProblemSpec, *, record_params: bool = False) -> _Session:
        rows = block_rows_for(problem.X.shape[1], problem.dtype, self.block_rows)
        threads = blas_threads() if self.threads is None else self.threads
        session = _Session(problem, mse_gradient, record_params)
        # the blocks are views of the session's own copy of the data
        session.gradient = blocked_gradient(session.X, session.y, rows, threads)
        session.block_rows = rows
        session.threads = len(thread_blocks(len(session.X), rows, threads))
        if session.threads > 1:  # the threads, not the BLAS, share the cores
            session.around = one_blas_thread
        return session


class _Session:
    block_rows: int | None = None  # rows per block of a blocked session
    threads: int = 1  # Python threads the rows are split between (blocked sessions)
    # entered around every training and warm-up (numpy-blocked: BLAS at one thread)
    around: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext

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
        with self.around():
            self.gradient(
                self.X, self.y, self.p.w0.astype(self.X.dtype), self.X.dtype.type(0), True
            )

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
        with np.errstate(over="ignore", invalid="ignore"), self.around():
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
