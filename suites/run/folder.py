"""Run folders: a new ``results/<UTC time>/`` (or ``--out``), claimed so that no two runs
share one, and what to report on in a finished or interrupted one."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path

from suites.records import RECORDS_FILE

RUN_FILE = "run.json"  # claims a run folder: written first, exclusively


class UsageError(Exception):
    """Bad input: the message is printed as one line and the exit status is 2."""


def new_run_folder(root: Path, suffix: str = "") -> Path:
    """A fresh results/<UTC timestamp>[-k]<suffix>/ folder; mkdir is atomic, so two runs
    started in the same second never share one."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"cannot create results folder {root}: {err.strerror}") from None
    for k in range(1000):
        path = root / ((stamp if k == 0 else f"{stamp}-{k}") + suffix)
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise UsageError(f"cannot find a free run folder under {root}")


def out_folder(out: Path | None) -> Path:
    if out is None:
        path = new_run_folder(Path("results"))
        latest = Path("results") / "latest"
        try:  # point results/latest at the newest run (replace atomically)
            tmp = latest.with_name(f".latest-{os.getpid()}")
            tmp.symlink_to(path.name)
            os.replace(tmp, latest)
        except OSError:
            pass
        return path
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise UsageError(
            f"--out {out}: folder is not empty; a run never overwrites an earlier "
            "run's files, so choose a new folder"
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"--out {out}: cannot create or write there ({err.strerror})") from None
    return out


def claim(out: Path) -> None:
    """Create OUT/run.json exclusively: of two runs given one folder, the second stops."""
    try:
        fd = os.open(out / RUN_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise UsageError(f"--out {out}: another gdbench run is using this folder") from None
    except OSError as err:
        raise UsageError(f"--out {out}: cannot create or write there ({err.strerror})") from None
    with os.fdopen(fd, "w") as fh:
        json.dump({"pid": os.getpid(), "argv": sys.argv, "started": now()}, fh)


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def run_source(folder: Path) -> Path:
    """What to report on in a run folder: the records its workers appended as they went
    (the one source of every output; an interrupted run's report is marked partial),
    else, for a folder of JSON alone, its benchmark.json or convergence.json."""
    records = folder / RECORDS_FILE
    if records.exists():
        return records
    for name in ("benchmark.json", "convergence.json"):
        if (folder / name).exists():
            return folder / name
    raise UsageError(
        f"{folder}: folder holds no benchmark.json, convergence.json or {RECORDS_FILE}"
    )
