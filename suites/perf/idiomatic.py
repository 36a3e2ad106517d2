"""The simplest correct idiomatic code for each style, written outside the harness.

These are the loops a person would write from a tutorial, with no gdbench machinery:
``suites/perf/`` times each backend against its counterpart here, side by side in one
process, so that the harness can be shown to cost nothing a user would not pay.
Each ``make_*`` does the set-up a script does once (convert the data, build the model,
jit or compile the step) and returns ``run()``, one complete training from zero.
``tests/suites/test_perf.py`` checks that every one of them agrees with the reference.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from backends import TrainResult
from suites.problems import Problem

Run = Callable[[], TrainResult]


def make_numpy_manual(p: Problem) -> Run:
    X, y, lr, n = p.X, p.y, p.lr, p.n_samples

    def run() -> TrainResult:
        w = np.zeros(p.n_features, X.dtype)
        b = X.dtype.type(0)
        losses = []
        for _ in range(p.epochs):
            err = X @ w + b - y if p.bias else X @ w - y
            losses.append(np.mean(err**2))
            w = w - lr * 2 / n * (X.T @ err)
            if p.bias:
                b = b - lr * 2 * np.mean(err)
        return TrainResult(np.array(losses), w, float(b) if p.bias else None)

    return run


def _torch_data(p: Problem):  # noqa: ANN202
    import torch

    return torch, torch.from_numpy(p.X.copy()), torch.from_numpy(p.y.copy())


def make_torch_autograd(p: Problem) -> Run:
    torch, X, y = _torch_data(p)

    def run() -> TrainResult:
        w = torch.zeros(p.n_features, dtype=X.dtype, requires_grad=True)
        b = torch.zeros((), dtype=X.dtype, requires_grad=p.bias)
        losses = []
        for _ in range(p.epochs):
            loss = ((X @ w + b - y) ** 2).mean()
            loss.backward()
            with torch.no_grad():
                w -= p.lr * w.grad
                w.grad.zero_()
                if p.bias:
                    b -= p.lr * b.grad
                    b.grad.zero_()
            losses.append(loss.detach())
        return TrainResult(torch.stack(losses).numpy(), w.detach().numpy(),
                           b.item() if p.bias else None)  # fmt: skip

    return run


def make_torch_nn(p: Problem) -> Run:
    torch, X, y = _torch_data(p)
    model = torch.nn.Linear(p.n_features, 1, bias=p.bias, dtype=X.dtype)
    loss_fn = torch.nn.MSELoss()
    opt = torch.optim.SGD(model.parameters(), lr=p.lr)
    target = y.reshape(-1, 1)

    def run() -> TrainResult:
        with torch.no_grad():
            for param in model.parameters():
                param.zero_()
        losses = []
        for _ in range(p.epochs):
            opt.zero_grad()
            loss = loss_fn(model(X), target)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        b = model.bias.item() if model.bias is not None else None
        return TrainResult(torch.stack(losses).numpy(), model.weight.detach().numpy()[0], b)

    return run


def make_torch_manual(p: Problem) -> Run:
    torch, X, y = _torch_data(p)
    n = p.n_samples

    def run() -> TrainResult:
        w = torch.zeros(p.n_features, dtype=X.dtype)
        b = torch.zeros((), dtype=X.dtype)
        losses = []
        with torch.no_grad():
            for _ in range(p.epochs):
                err = X @ w + b - y if p.bias else X @ w - y
                losses.append((err**2).mean())
                w -= p.lr * 2 / n * (X.T @ err)
                if p.bias:
                    b -= p.lr * 2 * err.mean()
        return TrainResult(torch.stack(losses).numpy(), w.numpy(), b.item() if p.bias else None)

    return run


def make_torch_compile(p: Problem) -> Run:
    torch, X, y = _torch_data(p)

    def loss_fn(w, b):  # noqa: ANN001, ANN202
        return ((X @ w + b - y) ** 2).mean() if p.bias else ((X @ w - y) ** 2).mean()

    grad_and_loss = torch.func.grad_and_value(loss_fn, argnums=(0, 1))

    @torch.compile(fullgraph=True)
    def step(w, b):  # noqa: ANN001, ANN202
        (gw, gb), loss = grad_and_loss(w, b)
        return w - p.lr * gw, b - p.lr * gb, loss

    def run() -> TrainResult:
        w = torch.zeros(p.n_features, dtype=X.dtype)
        b = torch.zeros((), dtype=X.dtype)
        losses = []
        for _ in range(p.epochs):
            w, b, loss = step(w, b)
            losses.append(loss)
        return TrainResult(torch.stack(losses).numpy(), w.numpy(), b.item() if p.bias else None)

    return run


def _jax_setup(p: Problem):  # noqa: ANN202
    """jax, jnp, the dtype context, and X, y placed on the CPU. Placed explicitly: jax's
    default device is the GPU on a GPU machine, and these loops are timed against the
    CPU backends (a script that wants the CPU says so the same way)."""
    import jax
    import jax.numpy as jnp

    x64 = jax.enable_x64(p.dtype == "float64")
    cpu = jax.devices("cpu")[0]
    with x64:
        X, y = jax.device_put(p.X, cpu), jax.device_put(p.y, cpu)
    return jax, jnp, x64, X, y


def _jax_zeros(jnp, p: Problem, X):  # noqa: ANN001, ANN202
    """Initial parameters on X's device: jit runs where its committed inputs are."""
    return {
        "w": jnp.zeros(p.n_features, X.dtype, device=X.device),
        "b": jnp.zeros((), X.dtype, device=X.device),
    }


def _jax_loss(jnp, bias: bool):  # noqa: ANN001, ANN202
    def loss(params, X, y):  # noqa: ANN001, ANN202
        yhat = X @ params["w"] + params["b"] if bias else X @ params["w"]
        return jnp.mean((yhat - y) ** 2)

    return loss


def _jax_result(jax, losses, params, bias: bool) -> TrainResult:  # noqa: ANN001
    # np.asarray of each array: what a script writes, and far cheaper on the CPU than
    # jax.device_get of the pytree
    return TrainResult(np.asarray(losses), np.asarray(params["w"]),
                       float(params["b"]) if bias else None)  # fmt: skip


def _jax_loop(p: Problem, step_of: Callable) -> Run:
    jax, jnp, x64, X, y = _jax_setup(p)
    step = jax.jit(step_of(jax, jnp))

    def run() -> TrainResult:
        with x64:
            params = _jax_zeros(jnp, p, X)
            losses = []
            for _ in range(p.epochs):
                params, loss = step(params, X, y)
                losses.append(loss)
            return _jax_result(jax, jnp.stack(losses), params, p.bias)

    return run


def make_jax_grad(p: Problem) -> Run:
    def step_of(jax, jnp):  # noqa: ANN001, ANN202
        value_and_grad = jax.value_and_grad(_jax_loss(jnp, p.bias))

        def step(params, X, y):  # noqa: ANN001, ANN202
            loss, grads = value_and_grad(params, X, y)
            return jax.tree.map(lambda a, g: a - p.lr * g, params, grads), loss

        return step

    return _jax_loop(p, step_of)


def make_jax_manual(p: Problem) -> Run:
    def step_of(jax, jnp):  # noqa: ANN001, ANN202
        def step(params, X, y):  # noqa: ANN001, ANN202
            err = X @ params["w"] + params["b"] - y if p.bias else X @ params["w"] - y
            grads = {"w": 2 / p.n_samples * (X.T @ err), "b": 2 * jnp.mean(err) * p.bias}
            return jax.tree.map(lambda a, g: a - p.lr * g, params, grads), jnp.mean(err**2)

        return step

    return _jax_loop(p, step_of)


def make_jax_scan(p: Problem) -> Run:
    jax, jnp, x64, X, y = _jax_setup(p)
    value_and_grad = jax.value_and_grad(_jax_loss(jnp, p.bias))

    @jax.jit
    def fit(params, X, y):  # noqa: ANN001, ANN202
        def body(params, _):  # noqa: ANN001, ANN202
            loss, grads = value_and_grad(params, X, y)
            return jax.tree.map(lambda a, g: a - p.lr * g, params, grads), loss

        return jax.lax.scan(body, params, None, length=p.epochs)

    def run() -> TrainResult:
        with x64:
            params = _jax_zeros(jnp, p, X)
            params, losses = fit(params, X, y)
            return _jax_result(jax, losses, params, p.bias)

    return run


# variant -> its tutorial-style counterpart (CPU; the CUDA graph variant has none).
IDIOMATIC: dict[str, Callable[[Problem], Run]] = {
    "numpy-manual": make_numpy_manual,
    "torch-autograd": make_torch_autograd,
    "torch-nn": make_torch_nn,
    "torch-manual": make_torch_manual,
    "torch-compile": make_torch_compile,
    "jax-grad": make_jax_grad,
    "jax-manual": make_jax_manual,
    "jax-scan": make_jax_scan,
}
