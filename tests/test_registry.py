from __future__ import annotations

import pytest

from backends import DEVICES, VARIANTS, BackendUnavailable, get_backend, list_backends


def test_the_public_variants_are_registered_in_order() -> None:
    assert VARIANTS == (
        "numpy-manual", "numpy-blocked", "torch-autograd", "torch-nn", "torch-manual",
        "torch-compile", "torch-cudagraph", "torch-blocked", "jax-grad", "jax-manual",
        "jax-scan", "jax-blocked", "torch-ddp", "torch-allreduce", "jax-sharded",
        "jax-shardmap", "jax-sharded-procs", "jax-shardmap-procs",
    )  # fmt: skip


def test_listing_covers_every_variant_and_device_with_a_reason_when_unavailable() -> None:
    rows = list_backends()
    keys = {(r.variant, r.device) for r in rows}
    cpu_only = ("numpy-manual", "numpy-blocked")
    cpu_and_cuda = {v for v in VARIANTS if v not in (*cpu_only, "torch-cudagraph")}
    expected = (
        {(v, "cpu") for v in cpu_only}
        | {("torch-cudagraph", "cuda")}
        | {(v, d) for v in cpu_and_cuda for d in DEVICES}
    )
    assert keys == expected
    for row in rows:
        assert row.available == (row.reason == "")


def test_an_unknown_variant_names_the_closest_valid_one() -> None:
    with pytest.raises(
        ValueError,
        match=r"unknown backend variant 'torch-autgrad' \(did you mean 'torch-autograd'\?\)",
    ):
        get_backend("torch-autgrad")


def test_an_unknown_device_is_a_value_error_listing_the_choices() -> None:
    with pytest.raises(ValueError, match="unknown device 'tpu'.*choose from: cpu, cuda"):
        get_backend("jax-scan", "tpu")


def test_numpy_has_no_cuda_variant() -> None:
    with pytest.raises(BackendUnavailable, match="numpy-manual runs on cpu only"):
        get_backend("numpy-manual", "cuda")


def test_the_cuda_graph_variant_has_no_cpu_form() -> None:
    with pytest.raises(BackendUnavailable, match="torch-cudagraph runs on cuda only"):
        get_backend("torch-cudagraph", "cpu")


@pytest.mark.parametrize("variant", [v for v in VARIANTS if not v.startswith("numpy-")])
def test_a_missing_gpu_makes_the_cuda_variant_unavailable_not_an_error(variant: str) -> None:
    try:
        backend = get_backend(variant, "cuda")
    except BackendUnavailable as err:
        assert "CUDA is not available" in str(err) or "not installed" in str(err)
    else:
        assert backend.device == "cuda"


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            "Unknown backend: 'gpu' requested, but no platforms that are instances of gpu are "
            "present. Platforms present are: cpu",
            "CUDA is not available to jax: jax.devices('gpu') found no GPU platform",
        ),
        (
            "Unable to initialize backend 'cuda': FAILED_PRECONDITION: No visible GPU devices.\n"
            "(you may need to uninstall the failing plugin package)",
            "jax's gpu platform failed to initialise: Unable to initialize backend 'cuda': "
            "FAILED_PRECONDITION: No visible GPU devices.",
        ),
    ],
)
def test_jax_says_whether_there_is_no_gpu_or_a_gpu_plugin_that_failed(
    monkeypatch, error, reason
) -> None:
    jax = pytest.importorskip("jax", reason="jax is not installed")
    import backends.jax_backend as jax_backend

    def devices(platform=None):
        if platform == "gpu":
            raise RuntimeError(error)
        return jax.local_devices(backend="cpu")

    monkeypatch.setattr(jax_backend.jax, "devices", devices)
    with pytest.raises(BackendUnavailable) as info:
        get_backend("jax-scan", "cuda")
    assert str(info.value).startswith(reason)
    assert "\n" not in str(info.value)
    get_backend("jax-scan", "cpu")  # the CPU variant is unaffected
