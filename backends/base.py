"""The backend protocol: what every variant takes, what it returns, how it fails.

Nothing here imports a framework. A variant module (``numpy_backend``,
``torch_backend``, ``jax_backend``) implements :class:`Backend` with small final
classes that share method names, not a base class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

# A NumPy array on the host; shapes are given where it is used.
HostArray = np.ndarray

DTYPES = ("float32", "float64")
# How float32 matrix products are computed: "float32" in full (the default, for every
# framework alike), or "tf32" (10-bit mantissa inputs on the tensor cores of Ampere and
# later GPUs; CUDA only). float64 is never affected.
MATMUL_PRECISIONS = ("float32", "tf32")


def check_precision(precision: str) -> str:
    """``precision`` if it is one of MATMUL_PRECISIONS, else a ValueError naming them."""
    if precision not in MATMUL_PRECISIONS:
        raise ValueError(
            f"unknown matmul precision '{precision}'; choose from: {', '.join(MATMUL_PRECISIONS)}"
        )
    return precision


def effective_precision(precision: str, device: str) -> str:
    """The matmul precision a variant on ``device`` uses when ``precision`` is asked:
    TF32 on CUDA only. The CPU stays at full float32 (torch's switch would otherwise
    also let oneDNN use reduced precision on the CPUs that have it), so CPU rows are
    always judged with the float32 tolerance."""
    return check_precision(precision) if device == "cuda" else "float32"


def first_line(err: BaseException) -> str:
    """An error in one line: its type and the first line of its message."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


class BackendUnavailable(Exception):
    """A variant cannot run here; ``str(err)`` says why and how to fix it.

    Raised for a framework that is not installed or a device that is not present,
    never for a bug in a built-in backend; a variant from another package that cannot
    be imported or built is unavailable too (``backends/plugins.py``), with the error.
    Tests and suites turn it into ``pytest.skip``.
    """


class BadResult(Exception):
    """A variant's ``train`` returned a :class:`TrainResult` of the wrong shape or dtype;
    ``str(err)`` names the variant and says what was wrong. The case fails with it."""


class ProblemSpec(Protocol):
    """What a backend needs to know about a problem (``suites.problems.Problem`` is one).

    Attributes:
        name: the problem's name, e.g. ``"toy"``.
        X: (n_samples, n_features) design matrix, already in ``dtype``.
        y: (n_samples,) targets, in ``dtype``.
        bias: whether the model has an intercept ``b``.
        lr: the learning rate of ``w -= lr * dL/dw``.
        epochs: number of full-batch gradient steps.
        dtype: ``"float32"`` or ``"float64"``.
        w0: (n_features,) initial weights, in ``dtype``.
        b0: initial intercept (ignored without a bias).
    """

    @property
    def name(self) -> str: ...
    @property
    def X(self) -> HostArray: ...
    @property
    def y(self) -> HostArray: ...
    @property
    def bias(self) -> bool: ...
    @property
    def lr(self) -> float: ...
    @property
    def epochs(self) -> int: ...
    @property
    def dtype(self) -> str: ...
    @property
    def w0(self) -> HostArray: ...
    @property
    def b0(self) -> float: ...


@dataclass(frozen=True, eq=False)
class TrainResult:
    """What a training run produced, on the host.

    Attributes:
        losses: (epochs,) the loss of each epoch's forward pass, before its update.
        w: (n_features,) weights after the last update.
        b: intercept after the last update, or ``None`` without a bias.
        w_history: (epochs, n_features) weights after each epoch's update, or ``None``
            unless the session was prepared with ``record_params=True``.
        b_history: (epochs,) intercept after each update, or ``None`` (no bias, or
            parameters not recorded).
    """

    losses: HostArray
    w: HostArray
    b: float | None
    w_history: HostArray | None = None
    b_history: HostArray | None = None


def result_error(result: object, problem: ProblemSpec, epochs: int | None = None) -> str:
    """What in ``result`` breaks the :class:`TrainResult` contract for a run of ``epochs``
    epochs (default: the problem's) on ``problem``, or ``""``: each array a NumPy array of
    the problem's dtype and shape, ``b`` a number with a bias and None without, the
    histories either absent or one row per epoch."""
    if not isinstance(result, TrainResult):
        return f"train returned a {type(result).__name__}, not a TrainResult"
    epochs = epochs or problem.epochs
    features = problem.X.shape[1]
    dtype = np.dtype(problem.dtype)
    arrays: list[tuple[str, object, tuple[int, ...]]] = [
        ("losses", result.losses, (epochs,)),
        ("w", result.w, (features,)),
    ]
    if result.w_history is not None:
        arrays.append(("w_history", result.w_history, (epochs, features)))
    if result.b_history is not None:
        if not problem.bias:
            return "b_history was returned for a problem without a bias"
        arrays.append(("b_history", result.b_history, (epochs,)))
    for name, value, shape in arrays:
        if not isinstance(value, np.ndarray):
            return f"{name} is a {type(value).__name__}, not a NumPy array"
        if value.shape != shape:
            return (
                f"{name} has shape {value.shape}, expected {shape} ({epochs} epochs, "
                f"{features} features)"
            )
        if value.dtype != dtype:
            return f"{name} is {value.dtype}, expected the problem's dtype, {dtype}"
    if problem.bias and not isinstance(result.b, float | np.floating):
        return f"b is {result.b!r}, expected a float (the problem has a bias)"
    if not problem.bias and result.b is not None:
        return f"b is {result.b!r}, expected None (the problem has no bias)"
    return ""


class Session(Protocol):
    """A problem loaded onto one backend's device, ready to be trained repeatedly.

    ``prepare`` copies the data to the device once; every ``train`` call starts again
    from the problem's initial parameters, so rounds carry no state between them.
    """

    def warmup(self) -> None:
        """Do all first-call work (tracing, compilation, allocator warm-up) untimed."""
        ...

    def sync(self) -> None:
        """Wait until the device has finished all queued work (the harness times this
        on an idle device to know its own overhead)."""
        ...

    def train(self, epochs: int | None = None) -> TrainResult:
        """Train ``problem.epochs`` epochs (or the first ``epochs`` of them: the cost
        model times two epoch counts); return only once the device is done.

        Losses stay on the device during the loop and are fetched once at the end.
        """
        ...


class Backend(Protocol):
    """One way of writing gradient descent, on one device.

    A variant from another package is built as ``Class(device)`` and raises
    :class:`BackendUnavailable` on a device it has no form for (docs/plugins.md).

    Attributes:
        variant: public variant name, e.g. ``"torch-autograd"``.
        framework: ``"numpy"``, ``"torch"`` or ``"jax"`` (a plugin may name another).
        device: ``"cpu"`` or ``"cuda"``.
    """

    variant: str
    framework: str
    device: str

    def prepare(self, problem: ProblemSpec, *, record_params: bool = False) -> Session:
        """Load ``problem`` onto the device.

        Args:
            problem: the data and hyper-parameters.
            record_params: also keep the parameters after every epoch (costs memory
                traffic; the timed runs leave it off).
        """
        ...
