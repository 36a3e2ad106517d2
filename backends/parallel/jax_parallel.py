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

**K processes** (``jax-sharded-procs``, ``jax-shardmap-procs``): the same two programs
on a mesh of one device in each of K processes, joined by ``jax.distributed.initialize``
(CPU collectives over gloo; NCCL on GPUs). jax runs one program on every process
(SPMD), so the K−1 peer processes (``python -m backends.parallel.peer jax``) mirror every step
of rank 0's sessions: rank 0 sends each step as a small ``broadcast_one_to_all`` (a
collective, so also a barrier), and a new session's problem as bytes the same way; the
peers then build the same arrays and call the same compiled programs. ``initialize``
runs once per process, before jax's first computation, so a process belongs to one
world of K processes for life: ``gdbench run`` gives every K of these variants a worker
of its own (``suites/run/workers.py``).
"""

from __future__ import annotations

import atexit
import itertools
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from backends.base import BackendUnavailable, ProblemSpec, TrainResult, effective_precision
from backends.jax_backend import PRECISION, device_error, traced_with
from backends.parallel import ranks as rank_tools

AXIS = "rows"


def mesh_of(device: str, k: int) -> Mesh:
    """A 1-D mesh over the first ``k`` devices of ``device``'s platform."""
    platform = {"cpu": "cpu", "cuda": "gpu"}.get(device)
    if platform is None:
        raise BackendUnavailable(f"jax has no device '{device}'")
    try:
        devices = jax.devices(platform)
    except RuntimeError as err:
        raise BackendUnavailable(device_error(platform, err)) from None
    if len(devices) < k:
        hint = (
            " (the gdbench run sets XLA_FLAGS=--xla_force_host_platform_device_count "
            "for its data-parallel ranks)"
            if platform == "cpu"
            else ""
        )
        raise BackendUnavailable(
            f"{k} ranks need {k} jax {platform} devices; {len(devices)} visible{hint}"
        )
    return Mesh(np.array(devices[:k]), (AXIS,))


def _put(array: np.ndarray, sharding: NamedSharding) -> Any:
    """``array`` laid out by ``sharding``, each device given its own part from the host
    (``device_put`` of host data onto a mesh spanning processes would first all-gather
    the whole array to check that every process holds the same: K copies of X)."""
    return jax.make_array_from_callback(array.shape, sharding, lambda index: array[index])


class _Sharded:
    """X, y and the row weights split by rows over the mesh; parameters replicated."""

    def __init__(self, problem: ProblemSpec, mesh: Mesh, record: bool, precision: str) -> None:
        self.p, self.mesh, self.record = problem, mesh, record
        self.x64 = problem.dtype == "float64"
        self.matmul = PRECISION[precision]
        traced_with.add(self.matmul)
        k = mesh.devices.size
        n, d = problem.X.shape
        pad = (-n) % k
        dt = np.dtype(problem.dtype)
        X = np.concatenate([np.asarray(problem.X, dt), np.zeros((pad, d), dt)])
        y = np.concatenate([np.asarray(problem.y, dt), np.zeros(pad, dt)])
        weight = np.concatenate([np.ones(n, dt), np.zeros(pad, dt)])
        rows, self.replicated = NamedSharding(mesh, P(AXIS)), NamedSharding(mesh, P())
        with self.precision():
            self.X = _put(X, NamedSharding(mesh, P(AXIS, None)))
            self.y = _put(y, rows)
            self.weight = _put(weight, rows)
            params = {"w": np.asarray(problem.w0, dt)}
            if problem.bias:
                params["b"] = np.asarray(problem.b0, dt)
            self.params0 = {k: _put(v, self.replicated) for k, v in params.items()}
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
        self, device: str = "cpu", matmul_precision: str = "float32", ranks: int = 1,
        threads: int | None = None, weighting: str = "global",
    ) -> None:  # fmt: skip
        rank_tools.check_weighting(weighting)
        self.device, self.ranks, self.weighting = device, ranks, weighting
        self.mesh = mesh_of(device, ranks)
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


# --- K processes: jax.distributed -------------------------------------------------------

_EXIT, _SESSION, _WARMUP, _TRAIN, _CLOSE = 0, 1, 2, 3, 4


@dataclass
class _World:
    """This process's place in a world of K jax processes (one per process, for life)."""

    launch: rank_tools.Launch
    device: str
    procs: list[subprocess.Popen]  # the local peers (none when the others are hosts)
    sessions: Iterator[int] = field(default_factory=itertools.count)
    broken: str = ""  # why no collective can run any more (a process died or hung)
    stuck: str = ""  # set by the watchdog when a step outlived the rank timeout

    def watchdog(self, seconds: float) -> threading.Timer:
        """A timer for one step of ``seconds``: past it a process hangs (jax's gloo
        collectives wait without end), so the local peers are killed, which ends rank
        0's wait with an error. Another host's processes cannot be killed from here:
        there the worker's own --timeout is the bound."""

        def fire() -> None:
            self.stuck = (
                f"a step of the jax world took over {seconds:.0f} s (GDBENCH_RANK_TIMEOUT "
                "plus its work): a process hangs"
                + ("; its local peers were killed" if self.procs else "")
            )
            rank_tools.stop_peers(self.procs, timeout=0)

        timer = threading.Timer(seconds, fire)
        timer.daemon = True
        return timer


# The slowest rate at which a healthy step reads X (bytes per second), for the budget of
# a step: GDBENCH_RANK_TIMEOUT plus one read of X per epoch at this rate, so that a
# long training is never taken for a hang (a 576 MB X, 1000 epochs: 19 min).
MIN_STEP_RATE = 0.5e9


_WORLD: list[_World] = []
_JOIN_ERROR: list[Exception] = []  # why this process could not form its world


def _initialize(launch: rank_tools.Launch, device: str) -> None:
    """``jax.distributed.initialize`` for ``launch`` (CPU collectives over gloo). On one
    host the coordinator listens on 127.0.0.1 only; every wait is bounded by the rank
    timeout (a missing process fails the run, it does not hang it)."""
    timeout = max(1, int(rank_tools.RANK_TIMEOUT_S))
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    address = f"{launch.addr}:{launch.port}"
    jax.distributed.initialize(
        coordinator_address=address,
        num_processes=launch.world,
        process_id=launch.rank,
        local_device_ids=_local_devices(launch, device),
        cluster_detection_method="deactivate",
        initialization_timeout=timeout,
        heartbeat_timeout_seconds=timeout,
        shutdown_timeout_seconds=timeout,
        coordinator_bind_address=None if launch.remote else address,
    )


def _local_devices(launch: rank_tools.Launch, device: str) -> list[int] | None:
    """The GPU this process takes: one per process (its rank's on one host, the first
    on each host of several), unless the user's JAX_LOCAL_DEVICE_IDS says; on the CPU,
    jax's one host device."""
    if device != "cuda" or os.environ.get("JAX_LOCAL_DEVICE_IDS"):
        return None
    return [0] if launch.remote else [launch.rank]


def world_mesh(device: str, k: int) -> Mesh:
    """A 1-D mesh over one device of each of the ``k`` processes (the first of
    each, should a process see more: the rows are split between processes)."""
    platform = {"cpu": "cpu", "cuda": "gpu"}[device]
    try:
        devices = jax.devices(platform)
    except RuntimeError as err:
        raise BackendUnavailable(device_error(platform, err)) from None
    first: dict[int, Any] = {}
    for dev in devices:
        first.setdefault(dev.process_index, dev)
    if len(first) != k:
        raise BackendUnavailable(
            f"{k} jax processes asked; the world has {len(first)} with {platform} devices"
        )
    return Mesh(np.array([first[i] for i in sorted(first)]), (AXIS,))


def _backends_started() -> bool:
    from jax._src import xla_bridge  # no public way to ask; initialize() asks the same

    return bool(xla_bridge.backends_are_initialized())


def join_world(k: int, device: str, threads: int | None) -> _World:
    """Make this process rank 0 of a world of ``k`` jax processes: start the local
    peers (each pinned to its share of the cores) and initialize. Once per process;
    later calls for the same K return the same world, and after a failure raise it
    again."""
    if _JOIN_ERROR:
        raise _JOIN_ERROR[0]
    if _WORLD:
        world = _WORLD[0]
        if (world.launch.world, world.device) != (k, device):
            raise BackendUnavailable(
                f"this process is rank 0 of a jax world of {world.launch.world} processes on "
                f"{world.device}; {k} on {device} need a process of their own (gdbench "
                "run gives each K and device a worker)"
            )
        return world
    if jax.distributed.is_initialized() or _backends_started():
        raise BackendUnavailable(
            f"{k} jax processes need jax.distributed.initialize before jax's first "
            "computation, and jax already ran in this process: run it in a worker of its "
            "own (gdbench run does, except with --isolate none)"
        )
    launch = rank_tools.launch_for(k, "jax")
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
    per_rank = max(1, min(threads or len(cores), len(cores)) // k)
    if not launch.remote and hasattr(os, "sched_setaffinity"):
        # XLA sizes its thread pool from the affinity when its client starts (below)
        os.sched_setaffinity(0, rank_tools.rank_cores(0, k, cores))
    procs = rank_tools.start_peers(launch, "jax", per_rank, cores, device)
    try:
        _initialize(launch, device)
    except Exception as err:
        rank_tools.stop_peers(procs, timeout=0)
        _JOIN_ERROR.append(err)
        raise
    world = _World(launch, device, procs)
    _WORLD.append(world)
    atexit.register(_leave, world)
    return world


def _leave(world: _World) -> None:
    """At exit: tell the peers to leave and shut the world down together; a broken world
    cannot shut down (its barrier would wait for a dead process, then abort), so the
    process ends here instead, its records long written."""
    if not world.broken:
        try:
            _command(_EXIT)
            jax.distributed.shutdown()
        except Exception as err:  # noqa: BLE001
            world.broken = f"at exit: {err}".splitlines()[0]
    if world.broken:
        rank_tools.stop_peers(world.procs, timeout=0)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)
    rank_tools.stop_peers(world.procs)


def _command(code: int, session: int = 0, value: int = 0) -> tuple[int, int, int]:
    """Rank 0 sends (and a peer receives) one step: a collective every process joins."""
    from jax.experimental import multihost_utils

    msg = np.array([code, session, value], dtype=np.int32)
    out = multihost_utils.broadcast_one_to_all(msg)
    return int(out[0]), int(out[1]), int(out[2])


def _send_bytes(data: bytes | None, size: int) -> bytes:
    """Rank 0's ``data`` (``size`` bytes) on every process, as int32 words (exact)."""
    from jax.experimental import multihost_utils

    words = -(-size // 4)
    buf = np.zeros(words * 4, dtype=np.uint8)
    if data is not None:
        buf[:size] = np.frombuffer(data, dtype=np.uint8)
    out = multihost_utils.broadcast_one_to_all(buf.view(np.int32))
    return np.asarray(out, dtype=np.int32).tobytes()[:size]


@dataclass(frozen=True)
class _Spec:
    """A problem as a peer rebuilds it from rank 0's bytes (a ProblemSpec)."""

    name: str
    X: np.ndarray
    y: np.ndarray
    bias: bool
    lr: float
    epochs: int
    dtype: str
    w0: np.ndarray
    b0: float


def _share_problem(blob: bytes | None, size: int, problem: ProblemSpec | None) -> tuple:
    """A session's settings (``size`` pickled bytes) and data, sent by rank 0 (``blob``
    and ``problem`` given) after its _SESSION step; every process returns (meta, the
    problem as a ``_Spec``)."""
    meta = pickle.loads(_send_bytes(blob, size))
    n, d, dt = meta["n"], meta["d"], np.dtype(meta["dtype"])

    def data(name: str) -> bytes | None:
        return (
            None if problem is None else np.ascontiguousarray(getattr(problem, name), dt).tobytes()
        )

    X = np.frombuffer(_send_bytes(data("X"), n * d * dt.itemsize), dt)
    y = np.frombuffer(_send_bytes(data("y"), n * dt.itemsize), dt)
    spec = _Spec(meta["name"], X.reshape(n, d), y, meta["bias"], meta["lr"], meta["epochs"],
                 meta["dtype"], np.asarray(meta["w0"], dt), meta["b0"])  # fmt: skip
    return meta, spec


def _build(meta: dict[str, Any], spec: ProblemSpec, mesh: Mesh) -> _Session:
    """The same session on every process: data, program and executables."""
    data = _Sharded(spec, mesh, meta["record"], meta["precision"])
    steps = {"jax-sharded-procs": _sharded_step, "jax-shardmap-procs": _shardmap_step}
    step = steps[meta["variant"]](data.n, spec.lr, mesh, meta["weighting"])
    return _Session(data, step)


def _timed_train(session: _Session, epochs: int) -> tuple[TrainResult, dict[str, float]]:
    """Every process trains and times its own call; the slowest and fastest are shared
    (one small all-gather after the program, outside nothing: rank 0's round includes
    it, as it includes the step's broadcast)."""
    from jax.experimental import multihost_utils

    start = time.perf_counter()
    result = session.train(epochs)
    mine = time.perf_counter() - start
    spans = np.asarray(multihost_utils.process_allgather(np.array([mine], np.float32)))
    return result, {"rank_time_max_s": float(spans.max()), "rank_time_min_s": float(spans.min())}


class _WorldSession:
    """Rank 0 of a session over K processes: every step is sent to the peers first."""

    def __init__(self, world: _World, meta: dict[str, Any], problem: ProblemSpec) -> None:
        self.world, self.p = world, problem
        self.sid = -1
        self.stats: dict[str, float] = {}
        self._run(lambda: None)  # a broken world refuses at once
        self.sid = next(world.sessions)
        meta = meta | {"sid": self.sid}

        def start() -> None:
            blob = pickle.dumps(meta)
            _command(_SESSION, self.sid, len(blob))
            _, spec = _share_problem(blob, len(blob), problem)
            self.inner = _build(meta, spec, world_mesh(meta["device"], world.launch.world))

        self._run(start)

    def _run(self, step: Any, epochs: int = 0) -> Any:
        """Run one step of the session (``epochs`` of training, if it trains); a step
        that fails or is interrupted breaks the world (a process may be gone, stuck or
        in another collective: no later one can be trusted)."""
        world = self.world
        if world.broken:
            raise RuntimeError(f"the jax world of this worker broke earlier: {world.broken}")
        reads = max(epochs, 1) * self.p.X.nbytes / MIN_STEP_RATE
        timer = world.watchdog(rank_tools.RANK_TIMEOUT_S + reads)
        timer.start()
        try:
            return step()
        except BaseException as err:
            world.broken = world.stuck or (f"{type(err).__name__}: {err}".splitlines() or [""])[0]
            if world.stuck:
                raise RuntimeError(world.stuck) from err
            raise
        finally:
            timer.cancel()

    def warmup(self) -> None:
        def step() -> None:
            _command(_WARMUP, self.sid)
            self.inner.warmup()

        self._run(step, self.p.epochs)

    def sync(self) -> None:
        """Nothing is left running: train returns with the results on the host (a sync
        on the global mesh would be a program every process must run)."""

    def train(self, epochs: int | None = None) -> TrainResult:
        epochs = epochs or self.p.epochs

        def step() -> TrainResult:
            _command(_TRAIN, self.sid, epochs)
            result, self.stats = _timed_train(self.inner, epochs)
            return result

        return self._run(step, epochs)

    def rank_stats(self) -> dict[str, float]:
        """The last round's slowest and fastest process (seconds of its own call)."""
        return dict(self.stats)

    def close(self) -> None:
        if self.sid >= 0 and not self.world.broken:
            self._run(lambda: _command(_CLOSE, self.sid))
            self.sid = -1


def serve() -> int:
    """A peer of one jax world (``python -m backends.parallel.peer jax``): join rank 0's
    coordinator, then mirror its sessions until it says exit. Returns
    ``ranks.NO_RANK0`` when no rank 0 came in time (GDBENCH_RANK_IDLE on another host)."""
    address = os.environ["JAX_COORDINATOR_ADDRESS"]
    host, _, port = address.rpartition(":")
    local = bool(os.environ.get("GDBENCH_RANK_LOCAL"))
    launch = rank_tools.Launch(host, int(port), int(os.environ["JAX_PROCESS_ID"]),
                          int(os.environ["JAX_NUM_PROCESSES"]), not local)  # fmt: skip
    device = os.environ.get("GDBENCH_RANK_DEVICE", "cpu")
    # jax's client ends the process (not an exception) when no coordinator answers, so
    # the coordinator's port is awaited first: a local peer's rank 0 is there already;
    # another host's may come after a long gap (GDBENCH_RANK_IDLE)
    wait = rank_tools.RANK_TIMEOUT_S if local else rank_tools.IDLE_TIMEOUT_S
    if not rank_tools.wait_for_listener(host, int(port), wait):
        print(f"gdbench rank {launch.rank}: no jax rank 0 at {address} for {wait:g} s; "
              "leaving", flush=True)  # fmt: skip
        return rank_tools.NO_RANK0
    _initialize(launch, device)
    mesh = world_mesh(device, launch.world)
    sessions: dict[int, _Session] = {}
    try:
        while True:
            code, sid, value = _command(_EXIT)
            if code == _EXIT:
                break
            if code == _SESSION:
                meta, spec = _share_problem(None, value, None)
                if meta["device"] != device:  # a different program: leave, and say why
                    raise RuntimeError(f"rank 0 runs on {meta['device']}; this process was "
                                       f"started for {device} (gdbench rank --device)")  # fmt: skip
                sessions[sid] = _build(meta, spec, mesh)
            elif code == _WARMUP:
                sessions[sid].warmup()
            elif code == _TRAIN:
                _timed_train(sessions[sid], value)
            elif code == _CLOSE:
                sessions.pop(sid, None)
        jax.distributed.shutdown()
    except Exception as err:  # noqa: BLE001  # rank 0 went away: this world is over
        print(f"gdbench rank {launch.rank}: world ended: {err}".splitlines()[0], flush=True)
        os._exit(1)  # a broken world cannot shut down cleanly (jax would abort)
    return 0


class _JaxProcesses:
    """A data-parallel jax variant over K processes (K = 1: one process, no world)."""

    variant = ""
    framework = "jax"

    def __init__(
        self, device: str = "cpu", matmul_precision: str = "float32", ranks: int = 1,
        threads: int | None = None, weighting: str = "global",
    ) -> None:  # fmt: skip
        rank_tools.check_weighting(weighting)
        if device not in ("cpu", "cuda"):
            raise BackendUnavailable(f"jax has no device '{device}'")
        self.device, self.ranks, self.weighting = device, ranks, weighting
        self.world = join_world(ranks, device, threads) if ranks > 1 else None
        self.mesh = world_mesh(device, ranks) if self.world else mesh_of(device, 1)
        self.matmul_precision = effective_precision(matmul_precision, device)

    def prepare(self, problem: ProblemSpec, *, record_params: bool = False) -> Any:
        meta = {
            "variant": self.variant, "device": self.device, "weighting": self.weighting,
            "record": record_params, "precision": self.matmul_precision,
            "name": problem.name, "n": int(problem.X.shape[0]), "d": int(problem.X.shape[1]),
            "dtype": problem.dtype, "bias": bool(problem.bias), "lr": float(problem.lr),
            "epochs": int(problem.epochs), "w0": np.asarray(problem.w0).tolist(),
            "b0": float(problem.b0),
        }  # fmt: skip
        if self.world is None:
            return _build(meta, problem, self.mesh)
        return _WorldSession(self.world, meta, problem)


class JaxShardedProcs(_JaxProcesses):
    """``jax-sharded-procs``: jax-sharded's program over K processes
    (``jax.distributed``), one device each."""

    variant = "jax-sharded-procs"


class JaxShardmapProcs(_JaxProcesses):
    """``jax-shardmap-procs``: jax-shardmap's program over K processes
    (``jax.distributed``), one device each."""

    variant = "jax-shardmap-procs"
