"""JAX data parallelism over K devices: ``jax-sharded`` (the compiler inserts the
collective) and ``jax-shardmap`` (an explicit ``lax.psum`` of the local gradients).

On the CPU the K devices are host devices of one process
(``--xla_force_host_platform_device_count``, set by the run's worker before jax starts);
on CUDA, K GPUs. X and y are split by rows over a 1-D mesh (``NamedSharding``). jax
needs every shard the same size, so when K does not divide N the last rows are padded
with zeros *and a weight of zero*: each row's squared residual is multiplied by its
weight (1 for a real row), and the sum is divided by the real N. The padding therefore
adds nothing to the loss or the gradient: the global mean is exact.

The whole training loop is one ``lax.scan`` under ``jax.jit``, as in ``jax-scan``: the
per-epoch cost then compares the collective and the sharded arithmetic, not Python
dispatch, and K = 1 is the same program on a mesh of one device.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from backends import ranks
from backends.base import BackendUnavailable, ProblemSpec, TrainResult, effective_precision
from backends.jax_backend import _PRECISION, _device_error, _traced_with

AXIS = "rows"


def mesh_of(device: str, workers: int) -> Mesh:
    """A 1-D mesh over the first ``workers`` devices of ``device``'s platform."""
    platform = {"cpu": "cpu", "cuda": "gpu"}.get(device)
    if platform is None:
        raise BackendUnavailable(f"jax has no device '{device}'")
    try:
        devices = jax.devices(platform)
    except RuntimeError as err:
        raise BackendUnavailable(_device_error(platform, err)) from None
    if len(devices) < workers:
        hint = (
            " (the gdbench run sets XLA_FLAGS=--xla_force_host_platform_device_count "
            "for its data-parallel workers)"
            if platform == "cpu"
            else ""
        )
        raise BackendUnavailable(
            f"{workers} workers need {workers} jax {platform} devices; {len(devices)} visible{hint}"
        )
    return Mesh(np.array(devices[:workers]), (AXIS,))


class _Sharded:
    """X, y and the row weights split by rows over the mesh; parameters replicated."""

    def __init__(self, problem: ProblemSpec, mesh: Mesh, record: bool, precision: str) -> None:
        self.p, self.mesh, self.record = problem, mesh, record
        self.x64 = problem.dtype == "float64"
        self.matmul = _PRECISION[precision]
        _traced_with.add(self.matmul)
        k = mesh.devices.size
        n, d = problem.X.shape
        pad = (-n) % k
        dt = np.dtype(problem.dtype)
        X = np.concatenate([np.asarray(problem.X, dt), np.zeros((pad, d), dt)])
        y = np.concatenate([np.asarray(problem.y, dt), np.zeros(pad, dt)])
        weight = np.concatenate([np.ones(n, dt), np.zeros(pad, dt)])
        rows, self.replicated = NamedSharding(mesh, P(AXIS)), NamedSharding(mesh, P())
        with self.precision():
            self.X = jax.device_put(X, NamedSharding(mesh, P(AXIS, None)))
            self.y = jax.device_put(y, rows)
            self.weight = jax.device_put(weight, rows)
            params = {"w": np.asarray(problem.w0, dt)}
            if problem.bias:
                params["b"] = np.asarray(problem.b0, dt)
            self.params0 = jax.device_put(params, self.replicated)
        self.n = n

    def precision(self) -> Any:
        return _Context(self.x64, self.matmul)

    def sync(self) -> None:
        jax.block_until_ready(jax.device_put(np.float32(0), self.replicated) + 1)


class _Context:
    """x64 mode and the matmul precision around every trace and call of a session."""

    def __init__(self, x64: bool, matmul: str) -> None:
        self.x64, self.matmul = x64, matmul
        self.stack: list[Any] = []

    def __enter__(self) -> None:
        for ctx in (jax.enable_x64(self.x64), jax.default_matmul_precision(self.matmul)):
            ctx.__enter__()
            self.stack.append(ctx)

    def __exit__(self, *exc: object) -> None:
        while self.stack:
            self.stack.pop().__exit__(*exc)


def _global_loss(n: int):
    """Σ weight·r² / N: the mean over the N real rows (padding rows weigh nothing)."""

    def loss(params, X, y, weight):
        r = X @ params["w"] - y
        if "b" in params:
            r = r + params["b"]
        return jnp.sum(weight * r * r) / n

    return loss


def _sharded_step(n: int, lr: float, mesh: Mesh, weighting: str):
    """jax-sharded: ``jax.value_and_grad`` of the global loss on sharded arrays; XLA
    partitions the sums and inserts the all-reduce."""
    loss_fn = _global_loss(n)
    if weighting == "local-mean":
        loss_fn = _local_mean_loss(mesh)

    def step(params, X, y, weight):
        loss, grads = jax.value_and_grad(loss_fn)(params, X, y, weight)
        return jax.tree.map(lambda p, g: p - lr * g, params, grads), loss

    return step


def _local_mean_loss(mesh: Mesh):
    """The planted bug: the mean of each shard's own mean (wrong on uneven shards)."""
    k = mesh.devices.size

    def loss(params, X, y, weight):
        r = X @ params["w"] - y
        if "b" in params:
            r = r + params["b"]
        sq = (weight * r * r).reshape(k, -1)
        return jnp.mean(jnp.sum(sq, axis=1) / jnp.sum(weight.reshape(k, -1), axis=1))

    return loss


def _shardmap_step(n: int, lr: float, mesh: Mesh, weighting: str):
    """jax-shardmap: each device differentiates its own rows' share of the loss and the
    local gradients are added with an explicit ``lax.psum``.

    The parameters are cast to *varying* over the mesh axis before differentiating: with
    jax's replication checking on, the gradient of a replicated input is psum'd by jax
    itself, and a psum on top would count every shard K times (the trap a user meets)."""
    local_mean = weighting == "local-mean"
    k = mesh.devices.size

    def local(params, X, y, weight):
        def share(p):
            r = X @ p["w"] - y
            if "b" in p:
                r = r + p["b"]
            if local_mean:  # the planted bug: this shard's own mean, then averaged
                return jnp.sum(weight * r * r) / (jnp.sum(weight) * k)
            return jnp.sum(weight * r * r) / n

        varying = jax.tree.map(lambda v: lax.pcast(v, AXIS, to="varying"), params)
        loss, grads = jax.value_and_grad(share)(varying)
        return lax.psum(loss, AXIS), jax.tree.map(lambda g: lax.psum(g, AXIS), grads)

    sharded = jax.shard_map(
        local, mesh=mesh, in_specs=(P(), P(AXIS, None), P(AXIS), P(AXIS)), out_specs=(P(), P())
    )

    def step(params, X, y, weight):
        loss, grads = sharded(params, X, y, weight)
        return jax.tree.map(lambda p, g: p - lr * g, params, grads), loss

    return step


class _Session:
    def __init__(self, data: _Sharded, step) -> None:  # noqa: ANN001
        self.d = data
        record = data.record

        def fit(params, X, y, weight, epochs):
            def body(params, _):
                new, loss = step(params, X, y, weight)
                return new, (loss, new if record else None)

            final, (losses, hist) = lax.scan(body, params, None, length=epochs)
            return final, losses, hist

        self._fit = jax.jit(fit, static_argnames="epochs", out_shardings=data.replicated)
        self._compiled: dict[int, Any] = {}

    def _executable(self, epochs: int) -> Any:
        if epochs not in self._compiled:
            d = self.d
            with d.precision():
                lowered = self._fit.lower(d.params0, d.X, d.y, d.weight, epochs=epochs)
                self._compiled[epochs] = lowered.compile()
        return self._compiled[epochs]

    def warmup(self) -> None:
        d = self.d
        run = self._executable(d.p.epochs)
        with d.precision():
            jax.block_until_ready(run(d.params0, d.X, d.y, d.weight))
        d.sync()

    def sync(self) -> None:
        self.d.sync()

    def train(self, epochs: int | None = None) -> TrainResult:
        d = self.d
        run = self._executable(epochs or d.p.epochs)
        with d.precision():
            final, losses, hist = run(d.params0, d.X, d.y, d.weight)
            host = jax.device_get(jax.block_until_ready((final, losses, hist)))
        params, losses_h, hist_h = host
        return TrainResult(
            losses=np.asarray(losses_h),
            w=np.asarray(params["w"]),
            b=float(params["b"]) if "b" in params else None,
            w_history=np.asarray(hist_h["w"]) if hist_h is not None else None,
            b_history=np.asarray(hist_h["b"]) if hist_h is not None and "b" in hist_h else None,
        )

    def rank_stats(self) -> dict[str, float]:
        """Nothing per device can be timed apart inside one compiled program."""
        return {}

    def close(self) -> None:
        """Nothing to stop: the devices belong to this process."""


class _JaxParallel:
    variant = ""
    framework = "jax"
    _step = staticmethod(_sharded_step)

    def __init__(
        self, device: str = "cpu", matmul_precision: str = "float32", workers: int = 1,
        threads: int | None = None, weighting: str = "global",
    ) -> None:  # fmt: skip
        ranks.check_weighting(weighting)
        self.device, self.workers, self.weighting = device, workers, weighting
        self.mesh = mesh_of(device, workers)
        self.matmul_precision = effective_precision(matmul_precision, device)

    def prepare(self, problem: ProblemSpec, *, record_params: bool = False) -> _Session:
        data = _Sharded(problem, self.mesh, record_params, self.matmul_precision)
        step = type(self)._step(data.n, problem.lr, self.mesh, self.weighting)
        return _Session(data, step)


class JaxSharded(_JaxParallel):
    """``jax-sharded``: arrays sharded by rows (``NamedSharding``), the loop under
    ``jax.jit``; XLA inserts the all-reduce."""

    variant = "jax-sharded"
    _step = staticmethod(_sharded_step)


class JaxShardmap(_JaxParallel):
    """``jax-shardmap``: ``jax.shard_map`` with an explicit ``lax.psum`` of the local
    gradients."""

    variant = "jax-shardmap"
    _step = staticmethod(_shardmap_step)
