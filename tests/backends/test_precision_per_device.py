"""Each variant keeps the matmul precision it was asked for on CUDA and full float32 on
the CPU (README, "On a GPU"), checked by constructing the variants with a GPU faked: no
kernel runs, so no GPU is needed; and the CUDA rows of `gdbench list` are judged on
CUDA, never on the CPU."""

from __future__ import annotations

import importlib

import pytest

from backends import VARIANTS, list_backends

TORCH = ["TorchAutograd", "TorchNN", "TorchManual", "TorchBlocked", "TorchCudaGraph"]
JAX = ["JaxGrad", "JaxManual", "JaxScan", "JaxBlocked"]


@pytest.fixture
def fake_gpu(monkeypatch):
    """torch and jax both believe a GPU is there (only device lookups are faked)."""
    torch = pytest.importorskip("torch", reason="torch is not installed")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    try:
        from backends import jax_backend
    except ImportError:
        return
    cpu = jax_backend.jax.devices("cpu")
    monkeypatch.setattr(jax_backend.jax, "devices", lambda platform=None: cpu)


@pytest.mark.parametrize(("module", "name"), [("torch_backend", n) for n in TORCH]
                         + [("jax_backend", n) for n in JAX])  # fmt: skip
def test_tf32_is_kept_on_cuda_and_dropped_on_the_cpu(fake_gpu, module, name) -> None:
    pytest.importorskip(module.split("_")[0], reason=f"{module.split('_')[0]} is not installed")
    cls = getattr(importlib.import_module(f"backends.{module}"), name)
    assert cls("cuda", matmul_precision="tf32").matmul_precision == "tf32"
    assert cls("cuda").matmul_precision == "float32"
    assert cls("cuda").device == "cuda"
    if name != "TorchCudaGraph":
        assert cls("cpu", matmul_precision="tf32").matmul_precision == "float32"
        assert cls().device == "cpu"
    with pytest.raises(ValueError, match=r"unknown matmul precision 'bf16'"):
        cls("cuda", matmul_precision="bf16")


def test_the_cuda_graph_variant_refuses_the_cpu() -> None:
    torch_backend = pytest.importorskip("backends.torch_backend")
    with pytest.raises(
        torch_backend.BackendUnavailable, match=r"^torch-cudagraph runs on cuda only, not on cpu$"
    ):
        torch_backend.TorchCudaGraph("cpu")


def test_cuda_rows_are_judged_on_cuda(monkeypatch) -> None:
    try:
        import torch
    except ImportError:
        pass
    else:
        monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    variants = tuple(v for v in VARIANTS if not v.startswith("jax"))
    rows = list_backends(devices=("cuda",), variants=variants)
    assert rows and {r.device for r in rows} == {"cuda"}
    for r in rows:
        assert not r.available, r
        assert "not on cpu" not in r.reason
