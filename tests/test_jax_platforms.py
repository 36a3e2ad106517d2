"""backends/jax_backend.py's words for a missing device and its precision record."""

from __future__ import annotations

import pytest

jax = pytest.importorskip("jax", reason="jax is not installed")

from backends import BackendUnavailable, jax_backend  # noqa: E402
from suites.problems import toy  # noqa: E402


@pytest.mark.parametrize(
    ("platform", "message", "reason"),
    [
        (
            "gpu",
            "Backend 'gpu' failed to initialize: no platforms that are instances of gpu are "
            "present\nsecond line",
            "CUDA is not available to jax: jax.devices('gpu') found no GPU platform "
            "(install jax[cuda12] on a machine with an NVIDIA GPU)",
        ),
        (
            "gpu",
            "Unknown backend gpu",
            "CUDA is not available to jax: jax.devices('gpu') found no GPU platform "
            "(install jax[cuda12] on a machine with an NVIDIA GPU)",
        ),
        (
            "gpu",
            "  cuda plugin crashed\nstack",
            "jax's gpu platform failed to initialise: cuda plugin crashed",
        ),  # fmt: skip
        # on the CPU the same words are jax's own failure, not a missing GPU
        (
            "cpu",
            "Unknown backend cpu",
            "jax's cpu platform failed to initialise: Unknown backend cpu",
        ),  # fmt: skip
        ("gpu", "", "jax's gpu platform failed to initialise: RuntimeError"),
    ],
)
def test_device_errors_keep_jaxs_first_line(platform, message, reason) -> None:
    assert jax_backend.device_error(platform, RuntimeError(message)) == reason


def test_a_device_jax_has_no_name_for_is_unavailable() -> None:
    with pytest.raises(BackendUnavailable, match=r"^jax has no device 'tpu'$"):
        jax_backend._jax_device("tpu")
    assert jax_backend._jax_device("cpu").platform == "cpu"


def test_the_precision_record_has_jaxs_global_default(monkeypatch) -> None:
    jax_backend.JaxGrad("cpu").prepare(toy())  # a session traces at full float32
    old = jax.config.jax_default_matmul_precision
    try:
        jax.config.update("jax_default_matmul_precision", "highest")
        settings = jax_backend.precision_settings()
    finally:
        jax.config.update("jax_default_matmul_precision", old)
    assert settings["default_matmul_precision"] == "highest"
    assert "float32" in settings["session_matmul_precision"]
    assert settings["session_matmul_precision"] == sorted(settings["session_matmul_precision"])
    assert set(settings) == {"session_matmul_precision", "default_matmul_precision"}
