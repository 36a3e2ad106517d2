"""A user's data file as a problem: ``--data PATH`` (``.npz``, ``.csv``, ``.parquet``).

The manager reads and checks the file once (:func:`load`), then saves its arrays as
``.npy`` files in the run folder (:func:`save`); each worker maps those into memory
(:func:`load` on the saved folder) instead of parsing the file again. Anything wrong with
the file is a :class:`DataError`: one line naming the file, what was wrong and what is
allowed.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import numpy as np

from backends import first_line

EXTENSIONS = (".npz", ".csv", ".parquet")
SAVED_META = "data.json"  # beside X.npy and y.npy in a saved folder


class DataError(ValueError):
    """A data file that cannot be a problem; ``str(err)`` is the one line to show."""


@dataclass(frozen=True)
class Data:
    """The arrays of a data file, in float64, and what the report says about them.

    Attributes:
        name: the problem's name: the file's stem, as a name (``housing``).
        source: the file as the user gave it.
        X: (rows, features).
        y: (rows,).
        target: the target column of a table (None for ``.npz``).
        features: the feature columns of a table (``x0``, ``x1``, ... for ``.npz``).
        standardized: whether each feature was scaled to zero mean and unit variance.
    """

    name: str
    source: str
    X: np.ndarray
    y: np.ndarray
    target: str | None
    features: tuple[str, ...]
    standardized: bool

    @property
    def rows(self) -> int:
        return int(self.X.shape[0])

    @property
    def underdetermined(self) -> bool:
        """Fewer rows than parameters: the least-squares optimum is not unique."""
        return self.rows < self.X.shape[1] + 1

    def describe(self) -> dict[str, object]:
        """What a record and the report say about the file (no arrays)."""
        out = {k: v for k, v in asdict(self).items() if k not in ("X", "y")}
        return out | {"rows": self.rows, "columns": len(self.features),
                      "underdetermined": self.underdetermined}  # fmt: skip


def problem_name(path: str) -> str:
    """The problem a file becomes: its stem, with anything but letters, digits, ``.``,
    ``_`` and ``-`` made ``-``, so that it can name log files and table rows."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(path).stem).strip("-.") or "data"
    return stem


def load(path: str, target: str | None = None, standardize: bool = False) -> Data:
    """The checked arrays of ``path``: a data file, or a folder :func:`save` wrote.

    Raises:
        DataError: naming the file, the fault and what is allowed.
    """
    return _load(str(path), target, standardize)


@cache
def _load(path: str, target: str | None, standardize: bool) -> Data:
    file = Path(path)
    if (file / SAVED_META).is_file():
        return _load_saved(file)
    if not file.exists():
        raise DataError(f"--data {path}: no such file")
    if file.is_dir():
        raise DataError(f"--data {path}: a folder; give a file ({', '.join(EXTENSIONS)})")
    suffix = file.suffix.lower()
    if suffix not in EXTENSIONS:
        raise DataError(
            f"--data {path}: unknown extension '{file.suffix}'; allowed: {', '.join(EXTENSIONS)}"
        )
    if file.stat().st_size == 0:
        raise DataError(f"--data {path}: the file is empty")
    if suffix == ".npz":
        if target is not None:
            raise DataError(f"--target-column {target}: {path} is an .npz of arrays X and y, "
                            "with no columns to choose from")  # fmt: skip
        X, y, features = _npz(file)
        column = None
    else:
        X, y, features, column = _table(file, suffix, target)
    _check(path, X, y, features, table=suffix != ".npz")
    if standardize:
        X = _standardize(path, X, features)
    return Data(problem_name(path), path, X, y, column, features, standardize)


def _npz(file: Path) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    try:
        with np.load(file, allow_pickle=False) as arrays:
            names = set(arrays.files)
            missing = [a for a in ("X", "y") if a not in names]
            if missing:
                found = ", ".join(sorted(names)) or "none"
                raise DataError(f"--data {file}: no array {' or '.join(missing)} in the "
                                f".npz (it has: {found}); save X (rows × features) and y "
                                "(rows)")  # fmt: skip
            X, y = arrays["X"], arrays["y"]
    except DataError:
        raise
    except Exception as err:  # noqa: BLE001  # a zip that is not numpy's, or no zip at all
        raise DataError(f"--data {file}: not an .npz file ({first_line(err)})") from None
    for label, arr in (("X", X), ("y", y)):
        if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
            raise DataError(f"--data {file}: {label} holds {arr.dtype}, not real numbers")
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise DataError(f"--data {file}: X must be 2-D (rows × features), it has shape {X.shape}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"--data {file}: y must be 1-D (one value a row), it has shape {y.shape}")
    if X.shape[0] != y.shape[0]:
        raise DataError(f"--data {file}: X has {X.shape[0]:,} rows and y {y.shape[0]:,}; "
                        "they must have as many")  # fmt: skip
    features = tuple(f"x{i}" for i in range(X.shape[1]))
    return X.astype(np.float64), y.astype(np.float64), features


def _table(
    file: Path, suffix: str, target: str | None
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...], str]:
    import pandas as pd

    try:
        if suffix == ".csv":
            table = pd.read_csv(file)
        else:
            table = pd.read_parquet(file)
    except ImportError as err:
        raise DataError(f"--data {file}: reading .parquet needs pyarrow: pip install "
                        f"'gdbench[parquet]' ({first_line(err)})") from None  # fmt: skip
    except pd.errors.EmptyDataError:
        raise DataError(f"--data {file}: the file has no columns") from None
    except Exception as err:  # noqa: BLE001  # not a table in the format its name says
        kind = suffix.lstrip(".")
        raise DataError(f"--data {file}: not a {kind} file ({first_line(err)})") from None
    columns = [str(c) for c in table.columns]
    table.columns = columns
    if target is None:
        raise DataError(f"--data {file}: a table needs --target-column, the column to "
                        f"predict; its columns: {_names(columns)}")  # fmt: skip
    if target not in columns:
        raise DataError(f"--target-column {target}: no such column in {file}; its columns: "
                        f"{_names(columns)}")  # fmt: skip
    if table.empty:
        raise DataError(f"--data {file}: the table has no rows")
    for column in columns:
        if not pd.api.types.is_numeric_dtype(table[column]) or pd.api.types.is_bool_dtype(
            table[column]
        ):
            role = "the target column" if column == target else "column"
            raise DataError(f"--data {file}: {role} '{column}' is not numeric "
                            f"({table[column].dtype}); every column must be a number")  # fmt: skip
    features = tuple(c for c in columns if c != target)
    if not features:
        raise DataError(f"--data {file}: no feature column besides the target '{target}'")
    X = table[list(features)].to_numpy(dtype=np.float64)
    y = table[target].to_numpy(dtype=np.float64)
    return X, y, features, target


def _check(path: str, X: np.ndarray, y: np.ndarray, features: tuple[str, ...], table: bool) -> None:
    if X.shape[0] == 0:
        raise DataError(f"--data {path}: no rows")
    if X.shape[1] == 0:
        raise DataError(f"--data {path}: no feature columns")
    for arr in (X, y):
        bad = ~np.isfinite(arr)
        if bad.any():
            first = np.argwhere(bad)[0]
            row = int(first[0]) + 1  # counted from 1, as a person reads the file
            where = f"column '{features[int(first[1])]}'" if arr.ndim == 2 else "the target"
            line = f", line {row + 1} of the file" if table else ""  # after the header
            raise DataError(f"--data {path}: {arr[tuple(first)]} in row {row} ({where}{line}); "
                            "every value must be a finite number")  # fmt: skip


def _standardize(path: str, X: np.ndarray, features: tuple[str, ...]) -> np.ndarray:
    std = X.std(axis=0)
    constant = [features[i] for i in np.flatnonzero(std == 0)]
    if constant:
        raise DataError(f"--standardize: column '{constant[0]}' of {path} is constant and "
                        "cannot be scaled to unit variance")  # fmt: skip
    return (X - X.mean(axis=0)) / std


def save(data: Data, folder: Path) -> Path:
    """Write ``data``'s arrays (``X.npy``, ``y.npy``) and description into ``folder``,
    for workers to map into memory; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "X.npy", np.ascontiguousarray(data.X))
    np.save(folder / "y.npy", np.ascontiguousarray(data.y))
    (folder / SAVED_META).write_text(json.dumps(data.describe(), indent=2), encoding="utf-8")
    return folder


def _load_saved(folder: Path) -> Data:
    meta = json.loads((folder / SAVED_META).read_text(encoding="utf-8"))
    X = np.load(folder / "X.npy", mmap_mode="r")
    y = np.load(folder / "y.npy", mmap_mode="r")
    return Data(meta["name"], meta["source"], X, y, meta["target"], tuple(meta["features"]),
                meta["standardized"])  # fmt: skip


def _names(columns: list[str]) -> str:
    shown = ", ".join(columns[:12])
    return shown + (f", … ({len(columns)} in all)" if len(columns) > 12 else "")
