"""PyTorch data parallelism over K ranks with ``torch.distributed`` (gloo on the CPU,
NCCL on CUDA): ``torch-ddp`` and ``torch-allreduce``.

Rank 0 is the calling process; ranks 1 … K−1 are started by ``backends.parallel.ranks`` and run
:func:`serve`. Each rank holds one contiguous shard of the rows (sizes differ by at
most one). Rank 0 sends every peer the problem and its shard over the process group,
then one small broadcast per command (train, warm-up, close).

The loss and gradient are the global mean over all N rows, also when K does not divide
N: each rank's loss is its shard's *sum* of squared residuals divided by the global N,
so the ranks' gradients add up to the global gradient. Averaging the ranks' local means
instead (what ``nn.MSELoss`` under DDP does by default) weighs a row of a smaller shard
more, a different loss on uneven shards: ``weighting="local-mean"`` plants exactly that
bug, and the convergence check catches it (tests/end_to_end/test_parallel.py).

Timing: ``train`` on rank 0 starts with the command broadcast and ends with the
all-reduce of the losses, which waits for every rank: rank 0's time is the slowest
rank's. Each rank also times its own loop (and torch-allreduce its all-reduce calls);
the last round's slowest and fastest rank and the collective's share are kept in
``rank_stats``.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from backends.base import BackendUnavailable, ProblemSpec, TrainResult, effective_precision
from backends.parallel import ranks as rank_tools
from backends.torch_backend import WARMUP_EPOCHS, apply_matmul_precision

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_TRAIN, _WARMUP, _CLOSE = 1, 2, 0
_current: list[Any] = []  # the one live session of this process (one process group)


def _check_device(device: str, world: int) -> None:
    if device not in ("cpu", "cuda"):
        raise BackendUnavailable(f"torch has no device '{device}'")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise BackendUnavailable("CUDA is not available: torch.cuda.is_available() is False")
        if torch.cuda.device_count() < world:
            raise BackendUnavailable(
                f"{world} ranks need {world} GPUs; {torch.cuda.device_count()} visible"
            )
    if not dist.is_available():
        raise BackendUnavailable("this torch build has no torch.distributed")


class _Rank:
    """One rank's shard and training loop; rank 0's also talks to the peers."""

    def __init__(self, meta: dict[str, Any], X: torch.Tensor, y: torch.Tensor) -> None:
        self.meta = meta
        self.variant, self.world = meta["variant"], meta["world"]
        self.rank = dist.get_rank()
        dev = torch.device(meta["device"])
        self.dtype = _DTYPES[meta["dtype"]]
        self.X, self.y = X, y
        self.n_global, self.lr, self.bias = meta["n"], meta["lr"], meta["bias"]
        self.w0 = torch.tensor(meta["w0"], dtype=self.dtype, device=dev)
        self.b0 = torch.tensor(meta["b0"], dtype=self.dtype, device=dev)
        self.device = dev
        local_mean = meta["weighting"] == "local-mean"
        # Each rank's share of the global mean: its sum of squares over N. Under DDP,
        # which averages the ranks' gradients (divides by K), the loss is scaled by K.
        if self.variant == "torch-ddp":
            self.scale = 1.0 / X.shape[0] if local_mean else self.world / self.n_global
            self.model = nn.Linear(X.shape[1], 1, bias=self.bias, dtype=self.dtype, device=dev)
            self.ddp = DistributedDataParallel(self.model)
            self.opt = torch.optim.SGD(self.ddp.parameters(), lr=self.lr)
            self.y_col = y.reshape(-1, 1)
        else:  # torch-allreduce: the ranks' gradients are summed, so no K here
            self.scale = 1.0 / (X.shape[0] * self.world) if local_mean else 1.0 / self.n_global
        self.stats: dict[str, float] = {}

    def fit(self, epochs: int, record: bool = False) -> tuple[torch.Tensor, Any, Any, Any]:
        """Train ``epochs`` epochs; return the global losses (all-reduced), w, b and the
        parameter history (rank 0, when ``record``)."""
        start = time.perf_counter()
        if self.variant == "torch-ddp":
            losses, w, b, hist, collective = self._fit_ddp(epochs, record)
        else:
            losses, w, b, hist, collective = self._fit_allreduce(epochs, record)
        mine = time.perf_counter() - start
        # the global loss of each epoch: the ranks' shares added, in one collective
        dist.all_reduce(losses)
        spans = torch.tensor([mine, -mine, collective], dtype=torch.float64, device=self.device)
        dist.all_reduce(spans, op=dist.ReduceOp.MAX)
        slowest, fastest, coll = spans.tolist()
        self.stats = {"rank_time_max_s": slowest, "rank_time_min_s": -fastest}
        if self.variant == "torch-allreduce":
            self.stats["collective_max_s"] = coll
        return losses, w, b, hist

    def _fit_ddp(self, epochs: int, record: bool):
        model, opt, X, y = self.model, self.opt, self.X, self.y_col
        with torch.no_grad():  # every round starts from the problem's initial parameters
            model.weight.copy_(self.w0.reshape(1, -1))
            if model.bias is not None:
                model.bias.copy_(self.b0)
        losses = torch.empty(epochs, dtype=self.dtype, device=self.device)
        hist = []
        for e in range(epochs):
            opt.zero_grad()
            r = self.ddp(X) - y
            loss = (r * r).sum() * self.scale  # DDP's all-reduce runs inside backward
            loss.backward()
            opt.step()
            losses[e] = loss.detach() / self.world  # this rank's share, undoing the K
            if record:
                bias = model.bias.detach() if model.bias is not None else None
                hist.append(self._params(model.weight.detach(), bias))
        bias = model.bias.detach() if model.bias is not None else None
        return losses, model.weight.detach().reshape(-1), bias, hist, float("nan")

    def _fit_allreduce(self, epochs: int, record: bool):
        w = self.w0.clone().requires_grad_(True)
        b = self.b0.clone().requires_grad_(self.bias)
        losses = torch.empty(epochs, dtype=self.dtype, device=self.device)
        hist, collective, n_w = [], 0.0, w.numel()
        for e in range(epochs):
            r = self.X @ w - self.y
            if self.bias:
                r = r + b
            loss = (r * r).sum() * self.scale
            loss.backward()
            assert w.grad is not None and (b.grad is not None or not self.bias)
            grads = torch.cat([w.grad, b.grad.reshape(1)]) if b.grad is not None else w.grad
            t0 = time.perf_counter()
            dist.all_reduce(grads)  # the sum of the ranks' shares: the global gradient
            collective += time.perf_counter() - t0
            with torch.no_grad():
                w -= self.lr * grads[:n_w]
                if self.bias:
                    b -= self.lr * grads[n_w]
            w.grad = None
            b.grad = None
            losses[e] = loss.detach()
            if record:
                hist.append(self._params(w.detach(), b.detach() if self.bias else None))
        return losses, w.detach(), b.detach() if self.bias else None, hist, collective

    @staticmethod
    def _params(w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        flat = w.reshape(-1)
        return torch.cat([flat, b.reshape(1)]) if b is not None else flat.clone()


# The last command tensors, kept alive until their process group is gone: gloo's worker
# thread releases a finished broadcast's tensors, and if that release were the last
# reference it would need the GIL while the main thread, holding it, joins that thread
# in the group's destructor (a deadlock, seen here after a timed torch-ddp case).
_KEEP: list[torch.Tensor] = []


def _command(code: int, epochs: int = 0) -> None:
    """Rank 0 sends the peers one (command, epochs) pair."""
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    msg = torch.tensor([code, epochs], dtype=torch.int64, device=device)
    _KEEP[:] = [msg]
    dist.broadcast(msg, src=0)


def _receive_command() -> tuple[int, int]:
    device = "cuda" if dist.get_backend() == "nccl" else "cpu"
    msg = torch.empty(2, dtype=torch.int64, device=device)
    _KEEP[:] = [msg]
    dist.broadcast(msg, src=0)
    return int(msg[0].item()), int(msg[1].item())


def _destroy() -> None:
    """End this process's group, then release the tensors its threads may still hold."""
    with contextlib.suppress(Exception):  # a group whose peer died may not end cleanly
        dist.destroy_process_group()
    _KEEP.clear()


def _init(launch: rank_tools.Launch, device: str, store: Any) -> None:
    """Join a session's process group through its prefix of rank 0's store."""
    dist.init_process_group(
        "nccl" if device == "cuda" else "gloo",
        store=store,
        rank=launch.rank,
        world_size=launch.world,
        timeout=timedelta(seconds=rank_tools.RANK_TIMEOUT_S),
    )


@dataclass
class _Peers:
    """Ranks 1 … K−1 of one K and device, kept for every session of this process.

    They wait on rank 0's TCPStore: session n announces itself with the key go-n and
    keeps its keys under the prefix session-n, so that a peer never reads a finished
    session's addresses. On one host they are children of this process, started once
    (not per session: a torch import each); on several hosts (``launch.remote``) they are
    the other hosts' ``gdbench rank``, and the protocol is the same.
    """

    launch: rank_tools.Launch
    procs: list[Any]
    store: Any
    sessions: Iterator[int]
    broken: bool = False  # a session failed: a peer may be dead or stuck

    def announce(self) -> Any:
        """The next session's store: its key go-n set, its keys under session-n."""
        n = next(self.sessions)
        self.store.set(f"go-{n}", "1")
        return dist.PrefixStore(f"session-{n}", self.store)


_PEERS: dict[tuple[int, str], _Peers] = {}


def _peers(world: int, device: str, per_rank: int, cores: list[int]) -> _Peers:
    """This process's peers for ``world`` ranks on ``device``: started on first use, and
    again after a session failed (the old ones are killed)."""
    key = (world, device)
    old = _PEERS.get(key)
    if old is not None and (old.broken or any(p.poll() is not None for p in old.procs)):
        rank_tools.stop_peers(old.procs, timeout=0)
        del _PEERS[key]
    if key not in _PEERS:
        launch = rank_tools.launch_for(world)
        store = dist.TCPStore(launch.addr, launch.port, world, is_master=True,
                              timeout=timedelta(seconds=rank_tools.RANK_TIMEOUT_S),
                              wait_for_workers=False)  # fmt: skip
        # who this rank 0 is: a peer that reconnects after a long pause goes on from the
        # next session of the same rank 0, not from session 0 again
        store.set("owner", f"{os.getpid()}-{time.time_ns()}")
        procs = rank_tools.start_peers(launch, "torch", per_rank, cores, device)
        _PEERS[key] = _Peers(launch, procs, store, itertools.count())
    return _PEERS[key]


class _Session:
    """Rank 0 of a K-rank session: starts the peers, sends them their shards."""

    def __init__(
        self, variant: str, problem: ProblemSpec, device: str, world: int, threads: int,
        weighting: str, record: bool,
    ) -> None:  # fmt: skip
        for old in _current:  # one process group per process: the older session ends
            old.close()
        self.p, self.record, self.world, self.variant = problem, record, world, variant
        self.dev = torch.device("cuda:0" if device == "cuda" else "cpu")
        cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else [0]
        self._threads = torch.get_num_threads()
        per_rank = max(1, min(threads, len(cores)) // world)
        # rank 0 gets its share of this process's cores and threads, restored by close()
        torch.set_num_threads(per_rank)
        if hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(0, rank_tools.rank_cores(0, world, cores))
        self._finalizer = weakref.finalize(self, _restore, self._threads, cores)
        _current[:] = [self]
        try:
            self._group = _peers(world, device, per_rank, cores)
            _init(self._group.launch, device, self._group.announce())
            meta = {
                "variant": variant, "world": world, "device": device, "dtype": problem.dtype,
                "n": int(problem.X.shape[0]), "d": int(problem.X.shape[1]),
                "lr": float(problem.lr), "bias": bool(problem.bias),
                "w0": np.asarray(problem.w0).tolist(), "b0": float(problem.b0),
                "weighting": weighting,
                "bounds": rank_tools.shard_bounds(int(problem.X.shape[0]), world),
            }  # fmt: skip
            dist.broadcast_object_list([meta], src=0)
            dtype = _DTYPES[problem.dtype]
            for peer, (start, stop) in enumerate(meta["bounds"][1:], start=1):
                part = torch.from_numpy(np.array(problem.X[start:stop]))
                dist.send(part.to(self.dev, dtype), dst=peer)
                dist.send(torch.from_numpy(np.array(problem.y[start:stop])).to(self.dev, dtype),
                          dst=peer)  # fmt: skip
            start, stop = meta["bounds"][0]
            X = torch.tensor(problem.X[start:stop], dtype=dtype, device=self.dev)
            y = torch.tensor(problem.y[start:stop], dtype=dtype, device=self.dev)
            self.rank = _Rank(meta | {"device": str(self.dev)}, X, y)
        except Exception:
            self._failed()
            raise

    def _failed(self) -> None:
        """A session that failed leaves its peers suspect: the next one starts anew."""
        if getattr(self, "_group", None) is not None:
            self._group.broken = True
        self.close()

    def _live(self) -> _Rank:
        if self.rank is None:
            raise RuntimeError(
                f"this {self.variant} session was closed: a process holds one data-parallel "
                "torch session at a time (one default process group), and a newer one started"
            )
        return self.rank

    def warmup(self) -> None:
        self._live()
        try:
            _command(_WARMUP, WARMUP_EPOCHS)
            self.rank.fit(WARMUP_EPOCHS)
        except Exception:
            self._failed()
            raise

    def sync(self) -> None:
        if self.dev.type == "cuda":
            torch.cuda.synchronize(self.dev)

    def train(self, epochs: int | None = None) -> TrainResult:
        epochs = epochs or self.p.epochs
        self._live()
        try:
            _command(_TRAIN, epochs)
            losses, w, b, hist = self.rank.fit(epochs, self.record)
        except Exception:
            self._failed()
            raise
        parts = [losses, w.reshape(-1)] + ([b.reshape(-1)] if b is not None else [])
        host = torch.cat(parts).cpu().numpy()
        n_w = w.numel()
        w_hist = b_hist = None
        if self.record:
            stacked = torch.stack(hist).cpu().numpy()
            w_hist = stacked[:, :n_w].copy()
            b_hist = stacked[:, n_w].copy() if b is not None else None
        return TrainResult(
            losses=host[:epochs].copy(),
            w=host[epochs : epochs + n_w].copy(),
            b=float(host[-1]) if b is not None else None,
            w_history=w_hist,
            b_history=b_hist,
        )

    def rank_stats(self) -> dict[str, float]:
        """The last round's slowest and fastest rank (seconds of their own loop) and,
        for torch-allreduce, the longest time a rank spent in all-reduce calls."""
        return dict(self.rank.stats) if self.rank is not None else {}

    def close(self) -> None:
        """Tell the peers to leave, end the process group, restore the thread count."""
        if dist.is_initialized():
            with contextlib.suppress(Exception):  # a dead peer: the group is gone anyway
                _command(_CLOSE)
            # DDP's reducer holds the group too: released first, so that the group ends
            # in _destroy (after every tensor of its threads is safe to release)
            self.rank = None  # type: ignore[assignment]
            _destroy()
        self._finalizer()
        if self in _current:
            _current.remove(self)


@atexit.register
def _close_current() -> None:
    """At exit, the live session's peers are told to leave (not left to time out)."""
    for session in list(_current):
        session.close()


def _restore(threads: int, cores: list[int]) -> None:
    torch.set_num_threads(threads)
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, cores)


def serve() -> int:
    """A peer: for every session rank 0 announces, join its group, receive the problem
    and a shard, obey its commands. A local peer dies with its rank 0; another host's
    serves one rank 0 after another and leaves once none has announced a session for
    ``GDBENCH_RANK_IDLE`` seconds."""
    launch = rank_tools.Launch(
        os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), int(os.environ["RANK"]),
        int(os.environ["WORLD_SIZE"]), True,
    )  # fmt: skip
    device = os.environ.get("GDBENCH_RANK_DEVICE", "cpu")
    timeout = timedelta(seconds=rank_tools.RANK_TIMEOUT_S)
    next_session: dict[str, int] = {}  # per rank 0 (its store's owner key)
    active = time.monotonic()
    while True:
        try:  # a rank-0 process (one gdbench worker) and its store
            store = dist.TCPStore(launch.addr, launch.port, launch.world, is_master=False,
                                  timeout=timeout)  # fmt: skip
            owner = store.get("owner").decode()
        except Exception:  # noqa: BLE001  # no rank 0 there now
            if time.monotonic() - active > rank_tools.IDLE_TIMEOUT_S:
                print(f"gdbench rank {launch.rank}: no rank 0 for "
                      f"{rank_tools.IDLE_TIMEOUT_S:g} s; leaving")  # fmt: skip
                return 0
            time.sleep(1.0)
            continue
        for n in itertools.count(next_session.get(owner, 0)):
            try:
                store.wait([f"go-{n}"])
                _init(launch, device, dist.PrefixStore(f"session-{n}", store))
            except Exception:  # noqa: BLE001  # that rank 0 is gone or idle: look again
                break
            _serve_session(launch)
            next_session[owner] = n + 1
            active = time.monotonic()


def _serve_session(launch: rank_tools.Launch) -> int:
    """One session of a peer: its shard, then commands until close (0) or failure (1)."""
    box: list[Any] = [None]
    dist.broadcast_object_list(box, src=0)
    meta = box[0]
    device = torch.device(f"cuda:{launch.rank}" if meta["device"] == "cuda" else "cpu")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    start, stop = meta["bounds"][launch.rank]
    dtype = _DTYPES[meta["dtype"]]
    X = torch.empty((stop - start, meta["d"]), dtype=dtype, device=device)
    y = torch.empty(stop - start, dtype=dtype, device=device)
    dist.recv(X, src=0)
    dist.recv(y, src=0)
    rank = _Rank(meta | {"device": str(device)}, X, y)
    status = 0
    try:
        while True:
            code, epochs = _receive_command()
            if code == _CLOSE:
                break
            rank.fit(epochs)
    except Exception as err:  # noqa: BLE001  # rank 0 went away mid-session
        print(f"gdbench rank {launch.rank}: session ended: {err}".splitlines()[0])
        status = 1
    del rank  # DDP's reducer holds the group: released before the group ends
    _destroy()
    return status


class _TorchParallel:
    variant = ""
    framework = "torch"

    def __init__(
        self, device: str = "cpu", matmul_precision: str = "float32", ranks: int = 1,
        threads: int | None = None, weighting: str = "global",
    ) -> None:  # fmt: skip
        rank_tools.check_weighting(weighting)
        _check_device(device, ranks)
        self.device, self.ranks, self.weighting = device, ranks, weighting
        self.threads = threads or torch.get_num_threads()
        self.matmul_precision = effective_precision(matmul_precision, device)

    def prepare(self, problem: ProblemSpec, *, record_params: bool = False) -> _Session:
        apply_matmul_precision(self.matmul_precision)
        return _Session(self.variant, problem, self.device, self.ranks, self.threads,
                        self.weighting, record_params)  # fmt: skip


class TorchDDP(_TorchParallel):
    """``torch-ddp``: K ranks, ``DistributedDataParallel(nn.Linear)`` + ``optim.SGD``, the
    loss each rank's share of the global mean."""

    variant = "torch-ddp"


class TorchAllreduce(_TorchParallel):
    """``torch-allreduce``: K ranks, autograd on the local shard, ``dist.all_reduce`` of
    the gradients, the update by hand."""

    variant = "torch-allreduce"
