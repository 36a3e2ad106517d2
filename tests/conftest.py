"""Shared helpers for the unit tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backends import BackendUnavailable, get_backend

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
