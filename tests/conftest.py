"""Shared helpers for the unit tests."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends import BackendUnavailable, get_backend, installed_plugins
from backends import plugins as plugin_entries

ROOT = Path(__file__).parents[1]


def backend_or_skip(variant: str, device: str = "cpu"):
    """The backend, or skip with the reason it cannot run on this machine."""
    try:
        return get_backend(variant, device)
    except BackendUnavailable as err:
        pytest.skip(str(err))


def gdbench(
    *args: str, cwd: Path | None = None, timeout: float = 300, **env: str
) -> subprocess.CompletedProcess:
    """``gdbench ARGS`` from this checkout in a child process, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", "suites.run.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )


def records(out: Path) -> list[dict]:
    """The records a run wrote to OUT/records.jsonl, in order."""
    return [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]


def fake_nvidia_smi(folder: Path, script: str) -> Path:
    """An executable ``nvidia-smi`` in ``folder`` running ``script`` (sh)."""
    folder.mkdir(exist_ok=True)
    path = folder / "nvidia-smi"
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(0o755)
    return folder


def free_memory_nvidia_smi(folder: Path, free_mib_by_id: dict[str, int]) -> dict[str, str]:
    """The environment of a PATH whose nvidia-smi prints the free MiB of the GPU given by
    --id (GPU 0's for any other)."""
    cases = "".join(f"    *--id={k}*) echo {v} ;;\n" for k, v in free_mib_by_id.items())
    fake_nvidia_smi(folder, f'case "$*" in\n{cases}    *) echo {free_mib_by_id["0"]} ;;\nesac')
    return {**os.environ, "PATH": f"{folder}:{os.environ['PATH']}"}


def fake_distribution(
    folder: Path, name: str, entry_points: dict[str, str], modules: dict[str, str] | None = None
) -> Path:
    """An installed distribution NAME 0.1, the cheapest way: ``NAME-0.1.dist-info``
    (METADATA and entry_points.txt, with ``entry_points`` in the ``gdbench.variants``
    group) and ``modules`` (module name -> source) in ``folder``, which is returned; put
    it on sys.path or PYTHONPATH and ``importlib.metadata`` finds it."""
    folder.mkdir(parents=True, exist_ok=True)
    info = folder / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[gdbench.variants]\n{lines}")
    for module, source in (modules or {}).items():
        (folder / f"{module}.py").write_text(source)
    return folder


@pytest.fixture
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on sys.path for :func:`fake_distribution`; the registry reads the
    installed plugins afresh, from the folders under ``tmp_path`` on sys.path only (a
    plugin installed in this environment, the example say, stays out of the test), and
    the plugin modules imported from them are forgotten afterwards."""
    folder = tmp_path / "site"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))

    def entry_points(group: str) -> list[importlib.metadata.EntryPoint]:
        ours = [p for p in sys.path if p.startswith(str(tmp_path))]
        found = importlib.metadata.distributions(path=ours)
        return [ep for dist in found for ep in dist.entry_points.select(group=group)]

    monkeypatch.setattr(plugin_entries, "entry_points", entry_points)
    monkeypatch.setattr(plugin_entries, "_loaded", {})
    installed_plugins.cache_clear()
    yield folder
    installed_plugins.cache_clear()
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", "") or "").startswith(str(tmp_path)):
            del sys.modules[name]
