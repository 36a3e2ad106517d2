"""The tutorial-style loops that the harness is timed against compute the same thing."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backends import framework_of
from suites.convergence import compare
from suites.perf.idiomatic import IDIOMATIC
from suites.problems import preset, synthetic


@pytest.mark.parametrize("variant", list(IDIOMATIC))
@pytest.mark.parametrize(
    "problem",
    [
        preset("toy"),
        preset("toy-bias").replace(epochs=300),
        synthetic(200, 4, seed=2, epochs=60, dtype="float64"),
    ],
)
def test_idiomatic_loop_agrees_with_the_float64_reference(variant, problem) -> None:
    framework = framework_of(variant)
    if importlib.util.find_spec(framework) is None:
        pytest.skip(f"{framework} is not installed")
    run = IDIOMATIC[variant](problem)
    first, second = run(), run()
    verdict = compare(problem, first)
    assert verdict.ok, verdict.message
    np.testing.assert_array_equal(first.losses, second.losses)  # each run starts from zero
    assert first.losses.dtype == np.dtype(problem.dtype)


def test_idiomatic_jax_loops_run_on_the_cpu_when_the_default_device_is_another() -> None:
    # On a GPU machine jax's default device is the GPU; the loops are compared with the
    # CPU backends, so they must place their arrays on the CPU. Here the stand-in for
    # "another default device" is a second host device.
    pytest.importorskip("jax", reason="jax is not installed")
    script = """
import jax
from suites.perf.idiomatic import IDIOMATIC
from suites.problems import preset
jax.config.update("jax_default_device", jax.devices("cpu")[1])
runs = [IDIOMATIC[v](preset("toy-bias")) for v in ("jax-grad", "jax-manual", "jax-scan")]
results = [run() for run in runs]
print(sorted({str(d) for a in jax.live_arrays() for d in a.devices()}), jax.devices()[:2])
"""
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(Path(__file__).parents[1])}  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    used, devices = proc.stdout.strip().split(" ", 1)
    assert used == "['cpu:0']" and devices == "[CpuDevice(id=0), CpuDevice(id=1)]", proc.stdout
