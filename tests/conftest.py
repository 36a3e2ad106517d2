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
