"""Problems (the tutorial presets and a synthetic family) and their float64 references.

The references are computed here, in float64 NumPy, independently of every backend:
the same gradient-descent recurrence written out directly, and the least-squares
optimum from ``np.linalg.lstsq``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property

import numpy as np

DTYPES = ("float32", "float64")
PRESETS = ("toy", "toy-bias", "toy-20")


@dataclass(frozen=True, eq=False)
class Problem:
    """Linear regression trained by full-batch gradient descent on the MSE.

    Attributes:
        name: e.g. ``"toy"`` or ``"synthetic-10000x16"``.
        X: (n_samples, n_features), in ``dtype``.
        y: (n_samples,), in ``dtype``.
        bias: whether the model has an intercept.
        lr: learning rate.
        epochs: number of gradient steps.
        dtype: ``"float32"`` or ``"float64"``.
        w0: (n_features,) initial weights, in ``dtype``.
        b0: initial intercept.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    bias: bool
    lr: float
    epochs: int
    dtype: str = "float32"
    w0: np.ndarray = None  # type: ignore[assignment]  # zeros when not given
    b0: float = 0.0

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got '{self.dtype}'")
        X = np.asarray(self.X)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
        y = np.asarray(self.y)
        if y.shape != (X.shape[0],):
            raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"epochs must be a positive integer, got {self.epochs!r}")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive finite number, got {self.lr!r}")
        w0 = np.zeros(X.shape[1]) if self.w0 is None else np.asarray(self.w0)
        if w0.shape != (X.shape[1],):
            raise ValueError(f"w0 must have shape ({X.shape[1]},), got {w0.shape}")
        # Every backend receives exactly these arrays: one dtype, one rounding of the data.
        object.__setattr__(self, "X", np.ascontiguousarray(X, dtype=self.dtype))
        object.__setattr__(self, "y", np.ascontiguousarray(y, dtype=self.dtype))
        object.__setattr__(self, "w0", np.ascontiguousarray(w0, dtype=self.dtype))
        object.__setattr__(self, "b0", float(self.b0) if self.bias else 0.0)
        object.__setattr__(self, "lr", float(self.lr))
        for arr in (self.X, self.y, self.w0):
            arr.flags.writeable = False

    @property
    def n_samples(self) -> int:
        return int(self.X.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.X.shape[1])

    def replace(self, **changes: object) -> Problem:
        """A copy with some fields changed (``dtype``, ``lr``, ``epochs`` ...)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def with_own_data(self) -> Problem:
        """The same problem holding fresh copies of X and y, sharing the float64 results
        already computed. A case starts from this copy, so that the memory it measures
        includes the data it trains on, and nothing of the reference's."""
        copy = self.replace(X=self.X.copy(), y=self.y.copy())
        for name in ("reference", "lr_limit", "optimum"):
            if name in self.__dict__:  # cached_property keeps its value in __dict__
                copy.__dict__[name] = self.__dict__[name]
        return copy

    def precompute(self) -> Problem:
        """Compute the float64 reference, stability limit and optimum now (they are
        cached), so that no later measurement of memory or time includes them."""
        _ = (self.reference, self.lr_limit, self.optimum)
        return self

    @cached_property
    def reference(self) -> Reference:
        """The float64 trajectory of this problem's data (as rounded to its dtype)."""
        return reference_trajectory(self)

    @cached_property
    def lr_limit(self) -> float:
        """The stability limit 2/λ_max: gradient descent converges iff lr is below it."""
        return stability_limit(self.X, self.bias)

    @cached_property
    def optimum(self) -> tuple[np.ndarray, float]:
        """The least-squares optimum (w*, b*) in float64 (b* = 0 without a bias)."""
        return least_squares(self)


def _column(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(-1, 1)


def toy(dtype: str = "float32") -> Problem:
    """x = [1, 2, 3, 4], y = 2x, no bias, w = 0, lr = 0.01, 100 epochs."""
    x = np.array([1.0, 2.0, 3.0, 4.0])
    return Problem("toy", _column(x), 2 * x, bias=False, lr=0.01, epochs=100, dtype=dtype)


def toy_bias(dtype: str = "float32") -> Problem:
    """The toy data as a (4, 1) column with an intercept (``nn.Linear``), 4000 epochs."""
    x = np.array([1.0, 2.0, 3.0, 4.0])
    return Problem("toy-bias", _column(x), 2 * x, bias=True, lr=0.01, epochs=4000, dtype=dtype)


def toy_20(dtype: str = "float32") -> Problem:
    """x = 0.3 i, y = 2.2 i for i = 0 … 19, no bias, w = 0, lr = 0.01, 20 epochs."""
    i = np.arange(20, dtype=np.float64)
    return Problem("toy-20", _column(0.3 * i), 2.2 * i, bias=False, lr=0.01, epochs=20, dtype=dtype)


def stability_limit(X: np.ndarray, bias: bool) -> float:
    """The largest learning rate for which gradient descent on this MSE converges.

    The loss is quadratic with Hessian H = (2/N) AᵀA (A = X, plus a column of ones with a
    bias), so GD converges iff lr < 2 / λ_max(H).
    """
    A = np.asarray(X, dtype=np.float64)
    if bias:
        A = np.hstack([A, np.ones((A.shape[0], 1))])
    hessian = (2.0 / A.shape[0]) * (A.T @ A)
    return float(2.0 / np.linalg.eigvalsh(hessian)[-1])


def synthetic(
    n_samples: int,
    n_features: int = 16,
    seed: int = 0,
    *,
    epochs: int = 100,
    dtype: str = "float32",
    lr: float | None = None,
) -> Problem:
    """X ~ N(0, 1), y = X·w_true + b_true + small noise, with a bias.

    The default learning rate is half the stability limit 2/λ_max (i.e. 1/λ_max), which
    converges provably, and fast for well-conditioned Gaussian data.
    """
    for label, value in (("n_samples", n_samples), ("n_features", n_features)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{label} must be a positive integer, got {value!r}")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features), dtype=np.float32).astype(np.float64)
    w_true = rng.uniform(-2.0, 2.0, n_features)
    b_true = rng.uniform(-1.0, 1.0)
    y = X @ w_true + b_true + 0.01 * rng.standard_normal(n_samples)
    if lr is None:
        lr = 0.5 * stability_limit(X, bias=True)
    name = f"synthetic-{n_samples}x{n_features}"
    return Problem(name, X, y, bias=True, lr=lr, epochs=epochs, dtype=dtype)


_PRESET_BUILDERS = {"toy": toy, "toy-bias": toy_bias, "toy-20": toy_20}


def preset(name: str, dtype: str = "float32") -> Problem:
    """One of :data:`PRESETS` by name."""
    try:
        return _PRESET_BUILDERS[name](dtype)
    except KeyError:
        raise ValueError(f"unknown preset '{name}'; choose from: {', '.join(PRESETS)}") from None


@dataclass(frozen=True, eq=False)
class Reference:
    """The float64 trajectory of a problem: losses and parameters after every epoch.

    Attributes:
        losses: (epochs,) forward-pass loss of each epoch, before its update.
        w_history: (epochs, n_features) weights after each update.
        b_history: (epochs,) intercept after each update (zeros without a bias).
    """

    losses: np.ndarray
    w_history: np.ndarray
    b_history: np.ndarray

    @property
    def w(self) -> np.ndarray:
        return self.w_history[-1]

    @property
    def b(self) -> float:
        return float(self.b_history[-1])


def reference_trajectory(problem: Problem) -> Reference:
    """Gradient descent in float64, written out from the recurrence itself.

    Deliberately not shared with any backend: the residual form below is derived on
    paper (dL/dw = (2/N) Xᵀr, dL/db = (2/N) Σr, r = Xw + b − y).
    """
    X = problem.X.astype(np.float64)
    y = problem.y.astype(np.float64)
    n = X.shape[0]
    w = problem.w0.astype(np.float64).copy()
    b = float(problem.b0)
    losses = np.empty(problem.epochs)
    w_hist = np.empty((problem.epochs, X.shape[1]))
    b_hist = np.zeros(problem.epochs)
    with np.errstate(over="ignore", invalid="ignore"):
        for e in range(problem.epochs):
            r = X @ w + b - y
            losses[e] = np.dot(r, r) / n
            w = w - problem.lr * (2.0 / n) * (X.T @ r)
            if problem.bias:
                b = b - problem.lr * (2.0 / n) * r.sum()
            w_hist[e] = w
            b_hist[e] = b
    return Reference(losses, w_hist, b_hist)


def least_squares(problem: Problem) -> tuple[np.ndarray, float]:
    """The minimiser of the MSE in float64, by ``np.linalg.lstsq``."""
    A = problem.X.astype(np.float64)
    if problem.bias:
        A = np.hstack([A, np.ones((A.shape[0], 1))])
    coef, *_ = np.linalg.lstsq(A, problem.y.astype(np.float64), rcond=None)
    if problem.bias:
        return coef[:-1], float(coef[-1])
    return coef, 0.0
