"""JAX: ``jax.value_and_grad`` per epoch under ``jax.jit``, and the whole loop in ``lax.scan``.

float64 needs x64 mode. It is switched on with the ``jax.enable_x64`` context around
every call of a float64 session only, so a float32 run can never turn into a float64
run behind the user's back, whatever the global setting. The matmul precision is set
the same way (``jax.default_matmul_precision`` around every trace): full float32 by
default, where jax's own default lets a GPU use TF32.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import SingleDeviceSharding

from backends.base import (
    BackendUnavailable,
    ProblemSpec,
    TrainResult,
    check_precision,
    effective_precision,
)
from backends.blocking import block_rows_for

# gdbench's names -> jax.default_matmul_precision's
PRECISION = {"float32": "float32", "tf32": "tensorfloat32"}
traced_with: set[str] = set()  # the precisions this process's sessions traced under
_PINGS: dict[Any, tuple[Any, jax.Array]] = {}  # device -> (tiny executable, its input)


def precision_settings() -> dict[str, object]:
    """The matmul precision jax sessions traced under, and jax's global default."""
    return {
        "session_matmul_precision": sorted(traced_with),
        "default_matmul_precision": getattr(jax.config, "jax_default_matmul_precision", None),
    }


# {"w": (n_features,), "b": ()}: "b" is present only when the problem has a bias.
Params = dict[str, jax.Array]


def _jax_device(device: str) -> Any:
    platform = {"cpu": "cpu", "cuda": "gpu"}.get(device)
    if platform is None:
        raise BackendUnavailable(f"jax has no device '{device}'")
    try:
        return jax.devices(platform)[0]
    except RuntimeError as err:
        raise BackendUnavailable(device_error(platform, err)) from None


def device_error(platform: str, err: RuntimeError) -> str:
    """Why jax cannot give a ``platform`` device, keeping jax's own words: no such
    platform at all is not the same as a CUDA plugin that is installed and failed."""
    text = (str(err).strip().splitlines() or [type(err).__name__])[0]
    if platform == "gpu" and ("no platforms that are instances of gpu" in text
                              or text.startswith("Unknown backend")):  # fmt: skip
        return (
            "CUDA is not available to jax: jax.devices('gpu') found no GPU platform "
            "(install jax[cuda12] on a machine with an NVIDIA GPU)"
        )
    return f"jax's {platform} platform failed to initialise: {text}"


def mse_loss(params: Params, X: jax.Array, y: jax.Array) -> jax.Array:
    """``mean((X @ w + b - y)**2)``. X: (n_samples, n_features), y: (n_samples,)."""
    yhat = X @ params["w"]
    if "b" in params:
        yhat = yhat + params["b"]
    r = yhat - y
    return jnp.mean(r * r)


# (params, X, y) -> (params after the update, the loss before it)
Step = Callable[[Params, jax.Array, jax.Array], tuple[Params, jax.Array]]


def _sgd_step(lr: float) -> Step:
    """One epoch with the gradient from ``jax.value_and_grad``."""

    def step(params: Params, X: jax.Array, y: jax.Array) -> tuple[Params, jax.Array]:
        loss, grads = jax.value_and_grad(mse_loss)(params, X, y)
        return jax.tree.map(lambda p, g: p - lr * g, params, grads), loss

    return step


def _manual_step(lr: float) -> Step:
    """One epoch with the hand-written gradient: (2/N) Xᵀr and (2/N) Σr."""

    def step(params: Params, X: jax.Array, y: jax.Array) -> tuple[Params, jax.Array]:
        n = X.shape[0]
        r = X @ params["w"] - y
        if "b" in params:
            r = r + params["b"]
        new = {"w": params["w"] - (2 * lr / n) * (r @ X)}
        if "b" in params:
            new["b"] = params["b"] - (2 * lr / n) * jnp.sum(r)
        return new, jnp.mean(r * r)

    return step


def blocked_sums(
    params: Params, X: jax.Array, y: jax.Array, block_rows: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(Xᵀr, Σr, Σr²) with r = Xw + b − y, from one pass over X by blocks of rows.

    A ``lax.fori_loop`` runs over the full blocks, each taken from X in place with a
    ``lax.dynamic_slice`` of static shape (block_rows, n_features) at k·block_rows; the
    ragged remainder, rows full·block_rows … N−1, is a static slice traced once more,
    after the loop. Nothing is padded: every row enters every sum exactly once. (A
    reshaped view of the full blocks would be a slice of X, which XLA copies when N is
    not a multiple of the block size; the dynamic slice reads X where it is.)
    """
    n, d = X.shape
    full = n // block_rows
    w, b = params["w"], params.get("b")

    def sums(x_blk: jax.Array, y_blk: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        r = x_blk @ w - y_blk
        if b is not None:
            r = r + b
        # r @ X, not X.T @ r: XLA on the CPU runs the latter several times slower
        return r @ x_blk, jnp.sum(r), jnp.sum(r * r)

    def add(a, c):  # noqa: ANN001, ANN202
        return tuple(u + v for u, v in zip(a, c, strict=True))

    def body(k: jax.Array, acc):  # noqa: ANN001, ANN202
        start = k * block_rows
        x_blk = lax.dynamic_slice_in_dim(X, start, block_rows)
        y_blk = lax.dynamic_slice_in_dim(y, start, block_rows)
        return add(acc, sums(x_blk, y_blk))

    acc = (jnp.zeros(d, X.dtype), jnp.zeros((), X.dtype), jnp.zeros((), X.dtype))
    if full:
        acc = lax.fori_loop(0, full, body, acc)
    if full * block_rows < n:  # the ragged last block, its own static shape
        acc = add(acc, sums(X[full * block_rows :], y[full * block_rows :]))
    return acc


def _blocked_step(lr: float, block_rows: int) -> Step:
    """One epoch with the hand-written gradient from :func:`blocked_sums`."""

    def step(params: Params, X: jax.Array, y: jax.Array) -> tuple[Params, jax.Array]:
        n = X.shape[0]
        g, sum_r, sum_sq = blocked_sums(params, X, y, block_rows)
        new = {"w": params["w"] - (2 * lr / n) * g}
        if "b" in params:
            new["b"] = params["b"] - (2 * lr / n) * sum_r
        return new, sum_sq / n

    return step


class _Loaded:
    """Data and initial parameters committed to one jax device, in the problem's dtype."""

    def __init__(self, problem: ProblemSpec, device: Any, record: bool, precision: str) -> None:
        self.p = problem
        self.device = device
        self.record = record
        self.x64 = problem.dtype == "float64"
        self.matmul = PRECISION[check_precision(precision)]
        traced_with.add(self.matmul)
        with self.precision():
            dt = jnp.dtype(problem.dtype)
            self.X = jax.device_put(np.asarray(problem.X, dtype=dt), device)
            self.y = jax.device_put(np.asarray(problem.y, dtype=dt), device)
            params = {"w": np.asarray(problem.w0, dtype=dt)}
            if problem.bias:
                params["b"] = np.asarray(problem.b0, dtype=dt)
            self.params0: Params = jax.device_put(params, device)

    @contextlib.contextmanager
    def precision(self) -> Iterator[None]:
        """The dtype mode and matmul precision every trace and call of this session runs
        under."""
        with jax.enable_x64(self.x64), jax.default_matmul_precision(self.matmul):
            yield

    def sync(self) -> None:
        """A device round-trip: a tiny computation dispatched and waited for. On a GPU it
        is queued behind whatever the stream is doing, so it waits for that work too
        (waiting on an array that is already ready would wait for nothing); on the CPU
        it costs a dispatch. The harness times it as its own per-round overhead."""
        if self.device not in _PINGS:  # compiled once per device and process
            token = jax.device_put(np.float32(0), self.device)
            _PINGS[self.device] = jax.jit(lambda x: x + 1).lower(token).compile(), token
        ping, token = _PINGS[self.device]
        ping(token).block_until_ready()

    def result(
        self, params: Params, losses: jax.Array, hist: Params | None, epochs: int | None = None
    ) -> TrainResult:
        """Wait for the device, then fetch the losses and parameters (the first ``epochs``
        losses and recorded parameters: a shorter run leaves the rest of its buffers).

        Each array is fetched with ``np.asarray``, which waits for it: on the CPU that
        costs about 1 µs an array, where ``jax.device_get`` of the same pytree costs about
        45 µs (measured on the project's VM, docs/audit.md), four times jax-scan's whole
        run on ``toy``. On a GPU every array's copy is started first, so that the copies
        overlap instead of each waiting for the one before."""
        b = params.get("b")
        w_hist = hist["w"] if hist is not None else None
        b_hist = hist.get("b") if hist is not None else None
        if self.device.platform != "cpu":
            for array in (losses, params["w"], b, w_hist, b_hist):
                if array is not None:
                    array.copy_to_host_async()
        return TrainResult(
            losses=np.asarray(losses)[:epochs],
            w=np.asarray(params["w"]),
            b=float(b) if b is not None else None,
            w_history=np.asarray(w_hist)[:epochs] if w_hist is not None else None,
            b_history=np.asarray(b_hist)[:epochs] if b_hist is not None else None,
        )


class JaxGrad:
    """``jax-grad``: the epoch step jitted once, a Python loop over epochs."""

    variant = "jax-grad"
    framework = "jax"

    def __init__(self, device: str = "cpu", matmul_precision: str = "float32") -> None:
        self.device = device
        self._device = _jax_device(device)
        self.matmul_precision = effective_precision(matmul_precision, device)

    def prepare(self, problem: ProblemSpec, *, record_params: bool = False) -> _LoopSession:
        data = _Loaded(problem, self._device, record_params, self.matmul_precision)
        return _LoopSession(data, _sgd_step(problem.lr))


class JaxManual:
    """``jax-manual``: like jax-grad, with the hand-written gradient instead of autodiff."""

    variant = "jax-manual"
    framework = "jax"

    def __init__(self, device: str = "cpu", matmul_precision: str = "float32") -> None:
        self.device = device
        self._device = _jax_device(device)
        self.matmul_precision = effective_precision(matmul_precision, device)

    def prepare(self, problem: ProblemSpec, *, record_params: bool = False) -> _LoopSession:
        data = _Loaded(problem, self._device, record_params, self.matmul_precision)
        return _LoopSession(data, _manual_step(problem.lr))


class _LoopSession:
    """A jitted epoch step called from a Python loop (one dispatch per epoch)."""

    def __init__(self, data: _Loaded, step: Step) -> None:
        self.d = data
        p, record = data.p, data.record

        # X and y are arguments: a closed-over array would be baked into the executable
        # as a constant, which multiplies the compile time at large N (docs/audit.md).
        # The epoch index lives on the device and is advanced there: an index sent from
        # Python would be a host-to-device copy per epoch.
        def epoch(params, X, y, losses, hist, e):
            new, loss = step(params, X, y)
            losses = losses.at[e].set(loss)  # in place: the buffer is donated
            if record:
                hist = jax.tree.map(lambda h, v: h.at[e].set(v), hist, new)
            return new, losses, hist, e + 1

        def fresh():
            """A round's loss (and parameter) buffers and index, made on the device."""
            dt = data.X.dtype
            losses = jnp.zeros(p.epochs, dtype=dt)
            hist = None
            if record:
                hist = {k: jnp.zeros((p.epochs, *v.shape), dt) for k, v in data.params0.items()}
            return losses, hist, jnp.zeros((), jnp.int32)

        # Buffers are donated so XLA writes each epoch's loss in place, not into a copy.
        self._epoch = jax.jit(epoch, donate_argnums=(3, 4, 5))
        self._fresh = jax.jit(fresh, out_shardings=SingleDeviceSharding(data.device))
        self._compiled: Any = None
        self._make: Any = None

    def warmup(self) -> None:
        """Compile, then run one epoch and a sync, so first-execution work (loading the
        kernels onto the device) is paid here, as torch's warm-up epochs pay it."""
        d = self.d
        with d.precision():
            self._make = self._fresh.lower().compile()
            losses, hist, e = self._make()
            self._compiled = self._epoch.lower(d.params0, d.X, d.y, losses, hist, e).compile()
            jax.block_until_ready(self._compiled(d.params0, d.X, d.y, losses, hist, e))
        d.sync()

    def sync(self) -> None:
        self.d.sync()

    def train(self, epochs: int | None = None) -> TrainResult:
        if self._compiled is None:
            self.warmup()
        epochs = epochs or self.d.p.epochs
        with self.d.precision():
            params = self.d.params0
            losses, hist, e = self._make()
            epoch, X, y = self._compiled, self.d.X, self.d.y
            for _ in range(epochs):
                params, losses, hist, e = epoch(params, X, y, losses, hist, e)
            return self.d.result(params, losses, hist, epochs)


class JaxScan:
    """``jax-scan``: the whole training loop compiled once with ``lax.scan`` under ``jax.jit``."""

    variant = "jax-scan"
    framework = "jax"

    def __init__(self, device: str = "cpu", matmul_precision: str = "float32") -> None:
        self.device = device
        self._device = _jax_device(device)
        self.matmul_precision = effective_precision(matmul_precision, device)

    def prepare(self, problem: ProblemSpec, *, record_params: bool = False) -> _ScanSession:
        data = _Loaded(problem, self._device, record_params, self.matmul_precision)
        return _ScanSession(data, _sgd_step(problem.lr))


class JaxBlocked:
    """``jax-blocked``: the whole training loop compiled once (``lax.scan`` over epochs,
    as jax-scan), each epoch one pass over X by blocks of rows (:func:`blocked_sums`)."""

    variant = "jax-blocked"
    framework = "jax"

    def __init__(
        self, device: str = "cpu", matmul_precision: str = "float32", block_rows: int | None = None
    ) -> None:
        self.device = device
        self._device = _jax_device(device)
        self.matmul_precision = effective_precision(matmul_precision, device)
        self.block_rows = block_rows

    def prepare(self, problem: ProblemSpec, *, record_params: bool = False) -> _ScanSession:
        rows = block_rows_for(problem.X.shape[1], problem.dtype, self.block_rows)
        data = _Loaded(problem, self._device, record_params, self.matmul_precision)
        session = _ScanSession(data, _blocked_step(problem.lr, rows))
        session.block_rows = rows
        return session


class _ScanSession:
    block_rows: int | None = None  # rows per block of a blocked session

    def __init__(self, data: _Loaded, step: Step) -> None:
        self.d = data
        record = data.record

        def fit(params, X, y, epochs):
            def body(params, _):
                new, loss = step(params, X, y)
                return new, (loss, new if record else None)

            final, (losses, hist) = lax.scan(body, params, None, length=epochs)
            return final, losses, hist

        # X and y are arguments, not closed-over constants, so XLA cannot fold them. The
        # loop's length is part of the program: one executable per epoch count.
        self._fit = jax.jit(fit, static_argnames="epochs")
        self._compiled: dict[int, Any] = {}

    def _executable(self, epochs: int) -> Any:
        """The loop compiled for ``epochs`` (the first call for a count compiles: the
        harness makes it untimed)."""
        if epochs not in self._compiled:
            d = self.d
            with d.precision():
                lowered = self._fit.lower(d.params0, d.X, d.y, epochs=epochs)
                self._compiled[epochs] = lowered.compile()
        return self._compiled[epochs]

    def warmup(self) -> None:
        """Compile, then run the loop once (first-execution work is part of compile_s,
        as for every framework) and a sync."""
        d = self.d
        run = self._executable(d.p.epochs)
        with d.precision():
            jax.block_until_ready(run(d.params0, d.X, d.y))
        d.sync()

    def sync(self) -> None:
        self.d.sync()

    def train(self, epochs: int | None = None) -> TrainResult:
        # A compiled executable has its dtypes and matmul precision fixed when it was
        # lowered (under d.precision()); its call needs neither context, whose entry and
        # exit cost 3 µs, a fifth of jax-scan's whole run on toy.
        run = self._executable(epochs or self.d.p.epochs)
        final, losses, hist = run(self.d.params0, self.d.X, self.d.y)
        return self.d.result(final, losses, hist)
