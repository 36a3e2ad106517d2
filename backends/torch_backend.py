"""PyTorch, six ways: autograd on raw tensors, nn.Linear + nn.MSELoss + optim.SGD, the
hand-written gradient, the epoch step under torch.compile, (CUDA) a CUDA graph, and the
hand-written gradient in one pass over X by blocks of rows (``torch-blocked``)."""

from __future__ import annotations

import ctypes.util
import importlib.util
import itertools
import os
import shutil
import sysconfig
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from backends.base import (
    BackendUnavailable,
    ProblemSpec,
    TrainResult,
    check_precision,
    effective_precision,
)
from backends.blocking import ThreadSplit, block_rows_for, thread_blocks

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_NUMPY = {torch.float32: np.float32, torch.float64: np.float64}
WARMUP_EPOCHS = 3  # enough to run every code path of an epoch once


def _device(device: str) -> torch.device:
    if device == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailable("CUDA is not available: torch.cuda.is_available() is False")
    if device not in ("cpu", "cuda"):
        raise BackendUnavailable(f"torch has no device '{device}'")
    return torch.device(device)


def apply_matmul_precision(precision: str) -> None:
    """Set torch's float32 matmul precision: full float32, or TF32 on tensor cores
    (``"tf32"``, Ampere and later GPUs; the CPU computes full float32 either way).

    torch has only process-wide switches for this, so every session sets them before
    it runs: a user's ``TORCH_ALLOW_TF32_CUBLAS_OVERRIDE`` cannot change a run silently.
    """
    tf32 = check_precision(precision) == "tf32"
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")


def precision_settings() -> dict[str, object]:
    """torch's matmul-precision switches as they are now (recorded with every run)."""
    return {
        "float32_matmul_precision": torch.get_float32_matmul_precision(),
        "cuda_matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
    }


def _sync(device: torch.device) -> None:
    # CUDA kernels run asynchronously: work is only done once synchronize returns.
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _copy(array: np.ndarray, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A device copy of ``array``. On the CPU the copy is made by NumPy and shared with
    torch: NumPy asks the kernel for transparent huge pages on large arrays and torch's
    allocator does not, and with THP in `madvise` mode that makes every pass over X
    faster (measured in docs/audit.md); it is also the usual `torch.from_numpy` route."""
    if device.type == "cpu":
        return torch.from_numpy(np.array(array, dtype=_NUMPY[dtype], copy=True))
    return torch.tensor(array, dtype=dtype, device=device)


class _Loaded:
    """The problem's data on the device, once, for every round of every session."""

    def __init__(
        self, problem: ProblemSpec, device: torch.device, record: bool, precision: str
    ) -> None:
        apply_matmul_precision(precision)
        self.p = problem
        self.device = device
        self.dtype = _DTYPES[problem.dtype]
        # Copies: the problem's arrays are read-only and shared with the other backends.
        self.X = _copy(problem.X, self.dtype, device)
        self.y = _copy(problem.y, self.dtype, device)
        self.w0 = _copy(problem.w0, self.dtype, device)
        # Made once: a torch.tensor(value) per round would be a blocking host-to-device
        # copy inside every timed round on a GPU; a round clones it on the device.
        self.b0 = torch.tensor(problem.b0, dtype=self.dtype, device=device)
        self.record = record

    def initial(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Fresh copies of the initial (w, b), made on the device without a host copy."""
        return self.w0.clone(), self.b0.clone()

    def history(self) -> _History:
        return _History(self.record, self.p.bias)

    def result(
        self,
        losses: list[torch.Tensor] | torch.Tensor,
        w: torch.Tensor,
        b: torch.Tensor | None,
        hist: _History | _StaticHistory | None = None,
    ) -> TrainResult:
        """Stack the per-epoch losses (still on the device) and fetch them with the
        parameters in one transfer (on a GPU each transfer is a blocking copy)."""
        stacked = torch.stack(losses) if isinstance(losses, list) else losses
        parts = [stacked.detach().reshape(-1), w.detach().reshape(-1)]
        if b is not None:
            parts.append(b.detach().reshape(-1))
        host = torch.cat(parts).cpu().numpy()  # waits for the device to finish
        n_epochs, n_features = stacked.numel(), w.numel()
        w_hist, b_hist = hist.stacked() if hist is not None else (None, None)
        return TrainResult(
            losses=host[:n_epochs].copy(),
            w=host[n_epochs : n_epochs + n_features].copy(),
            b=float(host[-1]) if b is not None else None,
            w_history=w_hist,
            b_history=b_hist,
        )


class _History:
    """Parameters after every epoch, kept on the device when recording (else nothing)."""

    def __init__(self, record: bool, bias: bool) -> None:
        self.record, self.bias = record, bias
        self.w: list[torch.Tensor] = []
        self.b: list[torch.Tensor] = []

    def keep(self, w: torch.Tensor, b: torch.Tensor | None) -> None:
        if self.record:
            self.w.append(w.detach().reshape(-1).clone())
            if self.bias and b is not None:
                self.b.append(b.detach().reshape(()).clone())

    def stacked(self):  # noqa: ANN201
        if not self.record:
            return None, None
        w = torch.stack(self.w).cpu().numpy()
        b = torch.stack(self.b).cpu().numpy() if self.b else None
        return w, b


class _StaticHistory:
    """Preallocated parameter history for a CUDA graph (``None`` when not recording)."""

    def __init__(self, w: torch.Tensor | None, b: torch.Tensor | None) -> None:
        self.w, self.b = w, b

    def stacked(self):  # noqa: ANN201
        return (
            self.w.cpu().numpy() if self.w is not None else None,
            self.b.cpu().numpy() if self.b is not None else None,
        )


class _Session:
    """Warm-up runs the first epochs; ``train`` runs them all; both through ``_fit``."""

    d: _Loaded

    def warmup(self) -> None:
        self._fit(min(WARMUP_EPOCHS, self.d.p.epochs))

    def train(self, epochs: int | None = None) -> TrainResult:
        return self._fit(epochs or self.d.p.epochs)

    def sync(self) -> None:
        _sync(self.d.device)

    def _fit(self, epochs: int) -> TrainResult:
        raise NotImplementedError


class _AutogradSession(_Session):
    def __init__(self, data: _Loaded) -> None:
        self.d = data

    def _fit(self, epochs: int) -> TrainResult:
        d, p = self.d, self.d.p
        w, b = d.initial()
        w.requires_grad_(True)
        b.requires_grad_(p.bias)
        lr, losses, hist = p.lr, [], d.history()
        for _ in range(epochs):
            yhat = d.X @ w + b if p.bias else d.X @ w
            loss = ((yhat - d.y) ** 2).mean()
            loss.backward()
            with torch.no_grad():
                # In place with alpha: no temporary for lr * grad (faster on toy).
                w.sub_(w.grad, alpha=lr)  # type: ignore[arg-type]  # set by backward()
                w.grad = None
                if p.bias:
                    b.sub_(b.grad, alpha=lr)  # type: ignore[arg-type]
                    b.grad = None
            losses.append(loss.detach())  # stays on the device: no host sync per epoch
            hist.keep(w, b)
        return d.result(losses, w, b if p.bias else None, hist)


class _NNSession(_Session):
    def __init__(self, data: _Loaded) -> None:
        self.d = data
        p = data.p
        self.model = nn.Linear(p.X.shape[1], 1, bias=p.bias, dtype=data.dtype, device=data.device)
        self.loss_fn = nn.MSELoss()
        # Plain SGD keeps no state, so one optimizer serves every round.
        self.opt = torch.optim.SGD(self.model.parameters(), lr=p.lr)
        # (N, 1) like the model's output: an (N,) target would broadcast to (N, N).
        self.y_col = data.y.reshape(-1, 1)

    def _fit(self, epochs: int) -> TrainResult:
        d, p, model, opt = self.d, self.d.p, self.model, self.opt
        with torch.no_grad():  # every round starts from the problem's initial parameters
            model.weight.copy_(d.w0.reshape(1, -1))
            if model.bias is not None:
                model.bias.fill_(p.b0)
        losses, hist = [], d.history()
        for _ in range(epochs):
            opt.zero_grad()
            loss = self.loss_fn(model(d.X), self.y_col)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
            hist.keep(model.weight, model.bias)
        return d.result(losses, model.weight, model.bias, hist)


class _ManualSession(_Session):
    """The NumPy recurrence in torch: no autograd, in-place updates into reused buffers."""

    def __init__(self, data: _Loaded) -> None:
        self.d = data
        n, dim = data.X.shape
        self.r = torch.empty(n, dtype=data.dtype, device=data.device)
        self.g = torch.empty(dim, dtype=data.dtype, device=data.device)
        self.Xt = data.X.T  # a view: X is read in place by both products

    def _fit(self, epochs: int) -> TrainResult:
        d, p, r, g = self.d, self.d.p, self.r, self.g
        n = d.X.shape[0]
        step = 2.0 * p.lr / n  # lr · dL/dθ = (2 lr / N) · (Xᵀr, Σr)
        w, b = d.initial()
        losses, hist = [], d.history()
        with torch.no_grad():
            for _ in range(epochs):
                torch.mv(d.X, w, out=r)  # r = Xw + b − y
                if p.bias:
                    r.add_(b)
                r.sub_(d.y)
                losses.append(torch.dot(r, r) / n)
                torch.mv(self.Xt, r, out=g)
                w.sub_(g, alpha=step)
                if p.bias:
                    b.sub_(r.sum(), alpha=step)
                hist.keep(w, b)
        return d.result(losses, w, b if p.bias else None, hist)


def _one_intra_op_thread() -> None:
    """Make this thread's torch intra-op threads 1, for good: torch's count is per
    thread (the OpenMP and MKL settings of the calling thread), except that a thread
    takes the last count set anywhere at its first parallel call, so that first call
    is made here (``get_num_threads``), before the count is set."""
    torch.get_num_threads()
    torch.set_num_threads(1)


class _BlockedSession(_Session):
    """torch-manual's arithmetic in one pass over X, the rows split between threads.

    The rows are split into one contiguous range per thread (``blocking.thread_blocks``),
    each walked by a Python thread of its own (the calling thread walks the first; a
    :class:`~backends.blocking.ThreadSplit` made once per session runs the others),
    with torch's intra-op threads at 1 in each: torch releases the GIL inside an
    operator, so the threads compute side by side, each on its own core's block.
    For each block of rows (full blocks, then the range's ragged remainder as its own
    block; views, nothing padded), while the block is in cache, r_blk = X_blk·w + b −
    y_blk, then X_blkᵀ·r_blk and (Σ r_blk², Σ r_blk), each written into the block's own
    slot of a buffer (``out=``: no accumulate call per block), summed once per epoch
    and scaled by 2/N (1/N for the loss); the sums do not depend on which thread
    finishes first.

    Eager torch pays its dispatch per call, so a block is four calls (three without a
    bias): both sums come from one matrix–vector product, [r_blk; 1]·r_blk, whose first
    row is the residual buffer itself and whose second is ones (made once).

    On CUDA the rows are not split: one thread issues the kernels of every block.
    """

    def __init__(self, data: _Loaded, block_rows: int, threads: int) -> None:
        self.d = data
        self.block_rows = block_rows
        n, dim = data.X.shape
        dev, dt = data.device, data.dtype
        per_thread = thread_blocks(n, block_rows, threads if dev.type == "cpu" else 1)
        self.threads = len(per_thread)
        n_blocks = sum(map(len, per_thread))
        self.partial_g = torch.empty(n_blocks, dim, dtype=dt, device=dev)
        # per block: (Σ r², Σ r)
        self.partial_sums = torch.empty(n_blocks, 2, dtype=dt, device=dev)
        self.blocks: list[list[tuple[torch.Tensor, ...]]] = []  # per thread, per block
        k = 0
        for bounds in per_thread:
            views: list[tuple[torch.Tensor, ...]] = []
            for s, e in bounds:
                r_and_ones = torch.ones(2, e - s, dtype=dt, device=dev)  # row 0: r_blk
                # every view made once: slicing per block per epoch would be more dispatch
                views.append((data.X[s:e], data.X[s:e].T, data.y[s:e], r_and_ones[0],
                              r_and_ones, self.partial_g[k], self.partial_sums[k]))  # fmt: skip
                k += 1
            self.blocks.append(views)
        self.split = ThreadSplit(self.threads, initializer=_one_intra_op_thread)

    def _walk(self, thread: int, w: torch.Tensor, b: torch.Tensor, bias: bool) -> None:
        """One thread's range, block by block, into the blocks' slots."""
        with torch.no_grad():  # grad mode is per thread
            for x_blk, xt_blk, y_blk, r_blk, r_and_ones, g_blk, sums_blk in self.blocks[thread]:
                torch.addmv(y_blk, x_blk, w, beta=-1, out=r_blk)  # X_blk·w − y_blk
                if bias:
                    r_blk.add_(b)
                torch.mv(xt_blk, r_blk, out=g_blk)  # the same rows, still in cache
                torch.mv(r_and_ones, r_blk, out=sums_blk)  # (Σ r², Σ r)

    def _fit(self, epochs: int) -> TrainResult:
        d, p = self.d, self.d.p
        n = d.X.shape[0]
        step = 2.0 * p.lr / n  # lr · dL/dθ = (2 lr / N) · (Xᵀr, Σr)
        w, b = d.initial()
        losses, hist = [], d.history()
        # The calling thread walks a range too: its intra-op threads at 1 for the
        # training, restored after (the workers' are 1 for good, _one_intra_op_thread).
        threads = torch.get_num_threads()
        if self.threads > 1:
            torch.set_num_threads(1)
        try:
            with torch.no_grad():
                for _ in range(epochs):
                    self.split.map(lambda k: self._walk(k, w, b, p.bias))
                    sums = self.partial_sums.sum(0)
                    losses.append(sums[0] / n)
                    w.sub_(self.partial_g.sum(0), alpha=step)
                    if p.bias:
                        b.sub_(sums[1], alpha=step)
                    hist.keep(w, b)
        finally:
            if self.threads > 1:
                torch.set_num_threads(threads)
        return d.result(losses, w, b if p.bias else None, hist)


def _functional_step(
    data: _Loaded,
) -> Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """(w, b) -> (w', b', loss): one epoch as a pure function of the parameters.

    X and y are closed over, as a script would: dynamo then guards two tensor inputs per
    call instead of four, which is faster per epoch (measured in docs/audit.md).
    """
    X, y, lr, bias = data.X, data.y, data.p.lr, data.p.bias

    def loss_fn(w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        yhat = X @ w + b if bias else X @ w
        return ((yhat - y) ** 2).mean()

    grad_and_loss = torch.func.grad_and_value(loss_fn, argnums=(0, 1))

    def step(w: torch.Tensor, b: torch.Tensor):  # noqa: ANN202
        (grad_w, grad_b), loss = grad_and_loss(w, b)
        return w - lr * grad_w, b - lr * grad_b, loss

    return step


def _compiler_missing() -> str | None:
    # Inductor turns the CPU graph into C++ and builds it with the system compiler.
    if not any(shutil.which(cc) for cc in ("g++", "c++", "clang++")):
        return "torch.compile on the CPU needs a C++ compiler (g++ or clang++) on PATH"
    return None


def _triton_missing() -> str | None:
    """What Triton, which Inductor generates CUDA kernels with, lacks here, or None.

    Checked the way Triton looks: a GPU of compute capability 7.0 or later; the
    ``triton`` package; a C compiler to build its launcher (``$CC``, else ``gcc``, else
    ``clang``); Python's headers (the default install scheme's, with Debian's
    ``posix_local`` read as ``posix_prefix``); and the driver's ``libcuda.so.1`` in
    ``TRITON_LIBCUDA_PATH``, ldconfig's cache or ``LD_LIBRARY_PATH``.
    """
    need = "torch.compile on CUDA needs"
    major, minor = torch.cuda.get_device_capability()
    if major < 7:
        return f"{need} a GPU of compute capability 7.0 or later; this one is {major}.{minor}"
    if importlib.util.find_spec("triton") is None:
        return f"{need} Triton: pip install the triton version your torch wheel pins"
    compilers = (os.environ.get("CC", ""), "gcc", "clang")
    if not any(shutil.which(cc) for cc in compilers if cc):
        return f"{need} a C compiler ($CC, gcc or clang) on PATH to build Triton's launcher"
    scheme = sysconfig.get_default_scheme()
    scheme = "posix_prefix" if scheme == "posix_local" else scheme
    headers = Path(sysconfig.get_paths(scheme=scheme)["include"], "Python.h")
    if not headers.is_file():
        return f"{need} Python's headers ({headers} is missing: install python3-dev)"
    dirs = [os.environ.get(k, "") for k in ("TRITON_LIBCUDA_PATH", "LD_LIBRARY_PATH")]
    listed = [d for d in ":".join(dirs).split(":") if d]
    if ctypes.util.find_library("cuda") is None and not any(
        Path(d, "libcuda.so.1").exists() for d in listed
    ):
        return (
            f"{need} the NVIDIA driver's libcuda.so.1, found neither by ldconfig nor in "
            "TRITON_LIBCUDA_PATH or LD_LIBRARY_PATH"
        )
    return None


_SESSIONS = itertools.count()


def _own_code(fn: Callable) -> Callable:
    """A copy of ``fn`` with a code object, and a code name, of its own.

    Dynamo keeps compiled graphs per code object: without a copy, every session (each
    problem, dtype, learning rate) would add an entry to one shared cache, calls would
    check the guards of all of them, and the ninth would hit the recompile limit. It
    also remembers the shapes it has seen per (file, line, name) and, once they differ,
    compiles dynamic-shape kernels, measured slower after a sweep (docs/audit.md). A
    unique name keeps each session's graph static.
    """
    code = fn.__code__.replace(co_name=f"{fn.__name__}_session{next(_SESSIONS)}")
    return types.FunctionType(code, fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)


class _CompileSession(_Session):
    """The epoch step (``torch.func`` gradient + update) compiled once by ``torch.compile``."""

    def __init__(self, data: _Loaded) -> None:
        self.d = data
        step = _own_code(_functional_step(data))
        # fullgraph: a graph break would silently fall back to eager code. Rounds reuse
        # the one graph (tests/backends/test_torch_backend.py checks nothing recompiles);
        # torch.compiler.set_stance("fail_on_recompile") would enforce it at a cost per
        # call, and dynamic=False costs more per call than the default (docs/audit.md).
        self.step = torch.compile(step, fullgraph=True)

    def _fit(self, epochs: int) -> TrainResult:
        d, p, step = self.d, self.d.p, self.step
        w, b = d.initial()
        losses, hist = [], d.history()
        for _ in range(epochs):
            w, b, loss = step(w, b)
            losses.append(loss)
            hist.keep(w, b)
        return d.result(losses, w, b if p.bias else None, hist)


def capture_graph(fn: Callable[[], None]) -> torch.cuda.CUDAGraph:
    """``fn`` captured as a CUDA graph. The capture checks only this thread for
    forbidden calls ("thread_local"): jax, or a profiler, may run threads of its own in
    the process, and the default "global" mode would fail the capture for their work."""
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, capture_error_mode="thread_local"):
        fn()
    return graph


class _CudaGraphSession(_Session):
    """One epoch (forward, autograd, update, loss stored at a device-side index) captured
    once as a CUDA graph; a round replays it ``epochs`` times, one launch per epoch."""

    def __init__(self, data: _Loaded) -> None:
        self.d = data
        p = data.p
        w, b = data.initial()
        self.w, self.b = w.requires_grad_(True), b.requires_grad_(p.bias)
        self.index = torch.zeros(1, dtype=torch.long, device=data.device)
        self.graph: torch.cuda.CUDAGraph | None = None
        # A graph replays fixed addresses: every epoch writes into these at self.index.
        n_epochs, n_features, dev, dt = p.epochs, p.X.shape[1], data.device, data.dtype
        self.losses = torch.empty(n_epochs, dtype=dt, device=dev)
        self.hist = _StaticHistory(
            torch.empty(n_epochs, n_features, dtype=dt, device=dev) if data.record else None,
            torch.empty(n_epochs, dtype=dt, device=dev) if data.record and p.bias else None,
        )

    def _epoch(self) -> None:
        d, p, w, b = self.d, self.d.p, self.w, self.b
        yhat = d.X @ w + b if p.bias else d.X @ w
        loss = ((yhat - d.y) ** 2).mean()
        params = (w, b) if p.bias else (w,)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for param, grad in zip(params, grads, strict=True):
                param.sub_(grad, alpha=p.lr)
            self.losses.index_copy_(0, self.index, loss.reshape(1))
            if self.hist.w is not None:
                self.hist.w.index_copy_(0, self.index, w.detach().reshape(1, -1))
            if self.hist.b is not None:
                self.hist.b.index_copy_(0, self.index, b.detach().reshape(1))
            self.index.add_(1)

    def _reset(self) -> None:
        with torch.no_grad():
            self.w.copy_(self.d.w0)
            self.b.fill_(self.d.p.b0)
            self.index.zero_()

    def warmup(self) -> None:
        # Capture needs a few eager runs on a side stream first (CUDA graph docs).
        side = torch.cuda.Stream(self.d.device)
        side.wait_stream(torch.cuda.current_stream(self.d.device))
        with torch.cuda.stream(side):
            self._reset()
            for _ in range(min(WARMUP_EPOCHS, self.d.p.epochs)):
                self._epoch()
        torch.cuda.current_stream(self.d.device).wait_stream(side)
        self._reset()
        # Kept only once captured: a failed capture leaves a half-made graph behind.
        self.graph = capture_graph(self._epoch)
        # One replay: the graph's first launch (its upload to the device) is warm-up
        # work, as every other variant's first execution is.
        self.graph.replay()
        torch.cuda.synchronize(self.d.device)

    def _fit(self, epochs: int) -> TrainResult:
        if self.graph is None:
            self.warmup()
        assert self.graph is not None
        self._reset()
        for _ in range(epochs):
            self.graph.replay()
        b = self.b if self.d.p.bias else None
        return self.d.result(self.losses[:epochs], self.w, b, self.hist)


class TorchAutograd:
    """``torch-autograd``: tensors with requires_grad, ``loss.backward()``, update in no_grad."""

    variant = "torch-autograd"
    framework = "torch"

    def __init__(self, device: str = "cpu", matmul_precision: str = "float32") -> None:
        self.device, self._device = device, _device(device)
        self.matmul_precision = effective_precision(matmul_precision, device)

    def prepare(self, problem: ProblemSpec, *, record_params: bool = False) -> _AutogradSession:
        return _AutogradSession(
            _Loaded(problem, self._device, record_params, self.matmul_precision)
        )


class TorchNN:
    """``torch-nn``: ``nn.Linear`` + ``nn.MSELoss`` + ``optim.SGD``, zero_grad/backward/step."""

    variant = "torch-nn"
    framework = "torch"

    def __init__(self, device: str = "cpu", matmul_precision: str = "float32") -> None:
        self.device, self._device = device, _device(device)
        self.matmul_precision = effective_precision(matmul_precision, device)

    def prepare(self, problem: ProblemSpec, *, record_params: bool = False) -> _NNSession:
        return _NNSession(_Loaded(problem, self._device, record_params, self.matmul_precision))


class TorchManual:
    """``torch-manual``: the hand-written gradient on torch tensors, no autograd."""

    variant = "torch-manual"
    framework = "torch"

    def __init__(self, device: str = "cpu", matmul_precision: str = "float32") -> None:
        self.device, self._device = device, _device(device)
        self.matmul_precision = effective_precision(matmul_precision, device)

    def prepare(self, problem: ProblemSpec, *, record_params: bool = False) -> _ManualSession:
        return _ManualSession(_Loaded(problem, self._device, record_params, self.matmul_precision))


class TorchCompile:
    """``torch-compile``: the epoch step under ``torch.compile`` (compile time apart)."""

    variant = "torch-compile"
    framework = "torch"

    def __init__(self, device: str = "cpu", matmul_precision: str = "float32") -> None:
        self.device, self._device = device, _device(device)
        self.matmul_precision = effective_precision(matmul_precision, device)
        missing = _compiler_missing() if device == "cpu" else _triton_missing()
        if missing:
            raise BackendUnavailable(missing)

    def prepare(self, problem: ProblemSpec, *, record_params: bool = False) -> _CompileSession:
        return _CompileSession(_Loaded(problem, self._device, record_params, self.matmul_precision))


class TorchCudaGraph:
    """``torch-cudagraph`` (CUDA only): the epoch captured once as a CUDA graph, replayed."""

    variant = "torch-cudagraph"
    framework = "torch"

    def __init__(self, device: str = "cuda", matmul_precision: str = "float32") -> None:
        if device != "cuda":
            raise BackendUnavailable(f"torch-cudagraph runs on cuda only, not on {device}")
        self.device, self._device = device, _device(device)
        self.matmul_precision = effective_precision(matmul_precision, device)

    def prepare(self, problem: ProblemSpec, *, record_params: bool = False) -> _CudaGraphSession:
        return _CudaGraphSession(
            _Loaded(problem, self._device, record_params, self.matmul_precision)
        )


class TorchBlocked:
    """``torch-blocked``: the hand-written gradient in one pass over X, by blocks of rows
    that stay in cache, the rows split between threads, one range per core (eager
    torch, no autograd)."""

    variant = "torch-blocked"
    framework = "torch"

    def __init__(
        self,
        device: str = "cpu",
        matmul_precision: str = "float32",
        block_rows: int | None = None,
        threads: int | None = None,
    ) -> None:
        """Args:
        device: ``"cpu"`` or ``"cuda"``.
        matmul_precision: ``"float32"`` or ``"tf32"`` (CUDA only).
        block_rows: rows per block; None chooses from the L2 cache (backends/blocking.py).
        threads: Python threads to split the rows between on the CPU; None: torch's
            intra-op thread count (``torch.get_num_threads()``) when a problem is
            prepared.
        """
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be a positive integer, got {threads}")
        self.device, self._device = device, _device(device)
        self.matmul_precision = effective_precision(matmul_precision, device)
        self.block_rows = block_rows
        self.threads = threads

    def prepare(self, problem: ProblemSpec, *, record_params: bool = False) -> _BlockedSession:
        rows = block_rows_for(problem.X.shape[1], problem.dtype, self.block_rows)
        data = _Loaded(problem, self._device, record_params, self.matmul_precision)
        threads = torch.get_num_threads() if self.threads is None else self.threads
        return _BlockedSession(data, rows, threads)
