"""The GPU is named without importing a framework (``nvidia-smi``), completed by a
framework already loaded: a fake ``nvidia-smi`` on PATH stands in for a GPU machine."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from suites import machine
from tests.conftest import fake_nvidia_smi

H100 = "NVIDIA H100 80GB HBM3, 9.0, 81559, 550.54.15"


@pytest.fixture
def no_framework(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process as if neither torch nor jax were loaded (restored afterwards)."""
    for name in ("torch", "jax"):
        monkeypatch.delitem(sys.modules, name, raising=False)


@pytest.fixture
def only_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):  # noqa: ANN201
    """PATH is this one folder (plus /bin for sh), with what the test puts there."""

    def use(script: str | None) -> None:
        folder = tmp_path / "bin"
        folder.mkdir(exist_ok=True)
        if script is not None:
            fake_nvidia_smi(folder, script)
        monkeypatch.setenv("PATH", f"{folder}{os.pathsep}/bin")
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    return use


def test_nvidia_smi_names_the_gpu_without_a_framework(no_framework, only_path, monkeypatch) -> None:
    only_path(f"echo '{H100}'")
    plugins = {"jax-cuda12-plugin": "0.10.2"}  # as if installed: read from its metadata
    monkeypatch.setattr(machine, "_version", plugins.get)
    assert machine.gpu_info() == {
        "name": "NVIDIA H100 80GB HBM3",
        "compute_capability": "9.0",
        "memory_gib": 79.6,  # 81559 MiB
        "driver": "550.54.15",
        "cuda": None,
        "cudnn": None,
        "jax_cuda_plugin": "jax-cuda12-plugin 0.10.2",
    }


A100 = "NVIDIA A100-SXM4-40GB, 8.0, 40960, 550.54.15"


# Answers for the GPU asked with --id (by index or UUID), as nvidia-smi does.
BY_ID = f"""case "$*" in
  *--id=1*|*--id=GPU-a100*) echo '{A100}' ;;
  *--id=0*) echo '{H100}' ;;
  *) echo '{H100}'; echo '{A100}' ;;
esac"""


@pytest.mark.parametrize("visible", ["1,0", "GPU-a100,GPU-h100"])
def test_the_first_visible_gpu_is_the_one_described(
    no_framework, only_path, monkeypatch, visible
) -> None:
    only_path(BY_ID)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    info = machine.gpu_info()
    assert info is not None
    assert (info["name"], info["memory_gib"]) == ("NVIDIA A100-SXM4-40GB", 40.0)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    assert machine.gpu_info()["name"] == "NVIDIA H100 80GB HBM3"  # GPU 0


def test_a_driver_without_compute_cap_still_names_the_gpu(no_framework, only_path) -> None:
    # Drivers before R510 refuse the whole query for a field they do not know.
    only_path(
        """case "$*" in
  *compute_cap*) echo 'Field "compute_cap" is not a valid field to query.'; exit 2 ;;
  *) echo 'Tesla V100-SXM2-16GB, 16160, 470.82.01' ;;
esac"""
    )
    info = machine.gpu_info()
    assert info is not None
    assert (info["name"], info["compute_capability"], info["driver"]) == (
        "Tesla V100-SXM2-16GB", None, "470.82.01",
    )  # fmt: skip


@pytest.mark.parametrize(
    "script",
    [
        None,  # no nvidia-smi at all
        "echo 'NVIDIA-SMI has failed: no driver' >&2; exit 9",
        "echo 'No devices were found'; exit 6",
        "echo 'not, what, we asked, for, at all'",
        "exec sleep 30",  # hangs: stopped at the time limit
    ],
    ids=["absent", "no-driver", "no-device", "garbage", "hangs"],
)
def test_no_usable_nvidia_smi_and_no_framework_means_no_gpu(
    no_framework, only_path, monkeypatch, script
) -> None:
    monkeypatch.setattr(machine, "NVIDIA_SMI_TIMEOUT_S", 0.5)
    only_path(script)
    assert machine.gpu_info() is None


def fake_torch() -> SimpleNamespace:
    props = SimpleNamespace(name="NVIDIA H100 80GB HBM3", total_memory=85_520_809_984)
    cuda = SimpleNamespace(
        is_available=lambda: True,
        get_device_properties=lambda i: props,
        get_device_capability=lambda i: (9, 0),
    )
    return SimpleNamespace(
        cuda=cuda,
        version=SimpleNamespace(cuda="12.8"),
        backends=SimpleNamespace(cudnn=SimpleNamespace(version=lambda: 91002)),
    )


def test_a_loaded_torch_adds_cuda_and_cudnn_to_what_nvidia_smi_says(
    no_framework, only_path, monkeypatch
) -> None:
    only_path(f"echo '{H100}'")
    monkeypatch.setitem(sys.modules, "torch", fake_torch())
    info = machine.gpu_info()
    assert info is not None
    assert (info["cuda"], info["cudnn"]) == ("12.8", 91002)
    assert (info["driver"], info["memory_gib"]) == ("550.54.15", 79.6)  # nvidia-smi's


def test_without_nvidia_smi_torch_then_jax_describe_the_gpu(
    no_framework, only_path, monkeypatch
) -> None:
    only_path(None)
    monkeypatch.setitem(sys.modules, "torch", fake_torch())
    info = machine.gpu_info()
    assert info is not None
    assert (info["name"], info["compute_capability"], info["memory_gib"]) == (
        "NVIDIA H100 80GB HBM3", "9.0", 79.6,
    )  # fmt: skip
    assert info["driver"] is None
    # torch not installed: jax, if loaded, names the GPU by its device kind
    monkeypatch.delitem(sys.modules, "torch")
    gpu = SimpleNamespace(device_kind="NVIDIA H100 80GB HBM3")
    monkeypatch.setitem(sys.modules, "jax", SimpleNamespace(devices=lambda platform: [gpu]))
    assert machine.gpu_info()["name"] == "NVIDIA H100 80GB HBM3"


def test_jax_without_a_gpu_platform_means_no_gpu(no_framework, only_path, monkeypatch) -> None:
    only_path(None)

    def devices(platform: str) -> list:
        raise RuntimeError("Unknown backend: 'gpu' requested, but no platforms that are "
                           "instances of gpu are present. Platforms present are: cpu")  # fmt: skip

    monkeypatch.setitem(sys.modules, "jax", SimpleNamespace(devices=devices))
    assert machine.gpu_info() is None
