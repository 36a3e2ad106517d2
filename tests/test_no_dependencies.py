"""`import backends, suites, reports` must not import a framework (they may be absent)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

FRAMEWORKS = ("torch", "jax", "jaxlib")


def modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport json, sys; print(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_importing_the_packages_loads_no_framework() -> None:
    loaded = modules_after(
        "import backends, suites, reports\n"
        "import suites.config, suites.convergence, suites.problems, suites.records\n"
        "import suites.machine, suites.run.cli, suites.run.limits, suites.run.export\n"
        "import reports.frame, reports.read, reports.records, reports.write, reports.plots\n"
        "import backends.parallel.ranks\n"
        "backends.VARIANTS"
    )
    assert not {m.split(".")[0] for m in loaded} & set(FRAMEWORKS)


def test_the_subprocess_probe_sees_a_framework_once_a_backend_is_built() -> None:
    # Guards the test above: the same probe must notice a framework when one is loaded.
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed in this environment")
    loaded = modules_after("import backends\nbackends.get_backend('torch-nn')")
    assert "torch" in loaded


def test_a_missing_framework_makes_its_variants_unavailable_with_the_install_command() -> None:
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"  # import torch now raises ImportError
        "sys.modules['jax'] = None\n"
        "import backends\n"
        "rows = [(r.variant, r.device, r.available, r.reason) for r in backends.list_backends()]\n"
        "print(rows)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rows = eval(out.stdout)  # a list of tuples printed by the child
    by_key = {(v, d): (ok, why) for v, d, ok, why in rows}
    assert by_key[("numpy-manual", "cpu")] == (True, "")
    ok, why = by_key[("torch-nn", "cpu")]
    assert not ok and why.startswith("torch is not installed: pip install 'gdbench[torch]'")
    ok, why = by_key[("jax-scan", "cuda")]
    assert not ok and why.startswith("jax is not installed: pip install 'gdbench[jax]'")


def test_the_worker_manager_plans_and_writes_a_run_without_a_framework(tmp_path) -> None:
    # The manager decides what runs where and merges the workers' records; only the
    # workers may load torch or jax.
    loaded = modules_after(
        "from pathlib import Path\n"
        "from suites.run import export, limits, workers\n"
        "from suites.config import RunConfig\n"
        "jobs = workers.plan(RunConfig(), 'variant', 2, timing=True)\n"
        "[workers.worker_env(j, 2) for j in jobs]\n"
        "limits.check_memory(RunConfig())\n"
        f"export.write_json(Path({str(tmp_path)!r}), timing=True)\n"
    )
    assert not {m.split(".")[0] for m in loaded} & set(FRAMEWORKS)
