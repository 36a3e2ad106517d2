"""PyTorch: autograd on raw tensors, and the nn.Linear + nn.MSELoss + optim.SGD idiom."""

from __future__ import annotations

import torch
from torch import nn

from backends.base import BackendUnavailable, ProblemSpec, TrainResult

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
WARMUP_EPOCHS = 3  # enough to run every code path of an epoch once


def _device(device: str) -> torch.device:
    if device == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailable("CUDA is not available: torch.cuda.is_available() is False")
    if device not in ("cpu", "cuda"):
        raise BackendUnavailable(f"torch has no device '{device}'")
    return torch.device(device)


def _sync(device: torch.device) -> None:
    # CUDA kernels run asynchronously: work is only done once synchronize returns.
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class _Loaded:
    """The problem's data on the device, plus the buffers every round writes into."""

    def __init__(self, problem: ProblemSpec, device: torch.device, record: bool) -> None:
        self.p = problem
        self.device = device
        self.dtype = _DTYPES[problem.dtype]
        # Copies: the problem's arrays are read-only and shared with the other backends.
        self.X = torch.tensor(problem.X, dtype=self.dtype, device=device)
        self.y = torch.tensor(problem.y, dtype=self.dtype, device=device)
        self.w0 = torch.tensor(problem.w0, dtype=self.dtype, device=device)
        self.record = record
        n_epochs, n_features = problem.epochs, problem.X.shape[1]
        self.losses = torch.empty(n_epochs, dtype=self.dtype, device=device)
        self.w_hist = (
            torch.empty(n_epochs, n_features, dtype=self.dtype, device=device) if record else None
        )
        self.b_hist = (
            torch.empty(n_epochs, dtype=self.dtype, device=device)
            if record and problem.bias
            else None
        )

    def result(self, w: torch.Tensor, b: torch.Tensor | None) -> TrainResult:
        """Fetch everything to the host in one go at the end of a round."""
        _sync(self.device)
        return TrainResult(
            losses=self.losses.cpu().numpy().copy(),
            w=w.detach().cpu().numpy().reshape(-1).copy(),
            b=float(b.detach().cpu()) if b is not None else None,
            w_history=self.w_hist.cpu().numpy().copy() if self.w_hist is not None else None,
            b_history=self.b_hist.cpu().numpy().copy() if self.b_hist is not None else None,
        )


class TorchAutograd:
    """``torch-autograd``: tensors with requires_grad, ``loss.backward()``, update in no_grad."""

    variant = "torch-autograd"
    framework = "torch"

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self._device = _device(device)

    def prepare(self, problem: ProblemSpec, *, record_params: bool = False) -> _AutogradSession:
        return _AutogradSession(_Loaded(problem, self._device, record_params))


class _AutogradSession:
    def __init__(self, data: _Loaded) -> None:
        self.d = data

    def warmup(self) -> None:
        # First-call work (autograd graph set-up, allocator) happens in the first epochs.
        self._fit(min(WARMUP_EPOCHS, self.d.p.epochs))

    def train(self) -> TrainResult:
        return self._fit(self.d.p.epochs)

    def _fit(self, epochs: int) -> TrainResult:
        d, p = self.d, self.d.p
        w = d.w0.clone().requires_grad_(True)
        b = torch.tensor(p.b0, dtype=d.dtype, device=d.device, requires_grad=True)
        lr = p.lr
        for e in range(epochs):
            yhat = d.X @ w + b if p.bias else d.X @ w
            loss = ((yhat - d.y) ** 2).mean()
            loss.backward()
            with torch.no_grad():
                d.losses[e] = loss  # stays on the device: no host sync per epoch
                w -= lr * w.grad  # type: ignore[operator]  # set by backward()
                w.grad = None
                if p.bias:
                    b -= lr * b.grad  # type: ignore[operator]
                    b.grad = None
                if d.w_hist is not None:
                    d.w_hist[e] = w
                if d.b_hist is not None:
                    d.b_hist[e] = b
        return d.result(w, b if p.bias else None)


class TorchNN:
    """``torch-nn``: ``nn.Linear`` + ``nn.MSELoss`` + ``optim.SGD``, zero_grad/backward/step."""

    variant = "torch-nn"
    framework = "torch"

    def __init__(self, device: str = "cpu") -> None:
        self.device = device
        self._device = _device(device)

    def prepare(self, problem: ProblemSpec, *, record_params: bool = False) -> _NNSession:
        return _NNSession(_Loaded(problem, self._device, record_params))


class _NNSession:
    def __init__(self, data: _Loaded) -> None:
        self.d = data
        p = data.p
        self.model = nn.Linear(p.X.shape[1], 1, bias=p.bias, dtype=data.dtype, device=data.device)
        self.loss_fn = nn.MSELoss()
        # Plain SGD keeps no state, so one optimizer serves every round.
        self.opt = torch.optim.SGD(self.model.parameters(), lr=p.lr)
        # (N, 1) like the model's output: an (N,) target would broadcast to (N, N).
        self.y_col = data.y.reshape(-1, 1)

    def warmup(self) -> None:
        self._fit(min(WARMUP_EPOCHS, self.d.p.epochs))

    def train(self) -> TrainResult:
        return self._fit(self.d.p.epochs)

    def _fit(self, epochs: int) -> TrainResult:
        d, p, model, opt = self.d, self.d.p, self.model, self.opt
        with torch.no_grad():  # every round starts from the problem's initial parameters
            model.weight.copy_(d.w0.reshape(1, -1))
            if model.bias is not None:
                model.bias.fill_(p.b0)
        for e in range(epochs):
            opt.zero_grad()
            loss = self.loss_fn(model(d.X), self.y_col)
            loss.backward()
            opt.step()
            with torch.no_grad():
                d.losses[e] = loss
                if d.w_hist is not None:
                    d.w_hist[e] = model.weight[0]
                if d.b_hist is not None:
                    d.b_hist[e] = model.bias[0]
        return d.result(model.weight, model.bias)
