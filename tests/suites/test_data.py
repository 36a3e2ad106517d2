"""A user's data file as a problem (suites/data.py): what is read, and every way a file
can be wrong, each one line naming the file and the fault."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from suites import data
from suites.config import parse
from suites.problems import least_squares


@pytest.fixture(autouse=True)
def fresh_cache():
    data._load.cache_clear()
    yield
    data._load.cache_clear()


def table(tmp_path: Path, name: str = "house.csv", **columns) -> Path:
    path = tmp_path / name
    pd.DataFrame(columns).to_csv(path, index=False)
    return path


def test_a_csv_is_its_feature_columns_and_its_target(tmp_path) -> None:
    path = table(tmp_path, rooms=[1.0, 2, 3, 5], age=[10, 20, 5, 1], price=[3.0, 5, 7, 11])
    d = data.load(str(path), "price")
    assert d.name == "house" and d.features == ("rooms", "age") and d.target == "price"
    np.testing.assert_array_equal(d.X, [[1, 10], [2, 20], [3, 5], [5, 1]])
    np.testing.assert_array_equal(d.y, [3, 5, 7, 11])
    assert d.describe()["rows"] == 4 and not d.describe()["underdetermined"]


def test_an_npz_is_its_arrays_x_and_y(tmp_path) -> None:
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(50, 3)), rng.normal(size=50)
    np.savez(tmp_path / "my data.npz", X=X, y=y)
    d = data.load(str(tmp_path / "my data.npz"))
    assert d.name == "my-data" and d.features == ("x0", "x1", "x2") and d.target is None
    np.testing.assert_array_equal(d.X, X)
    np.testing.assert_array_equal(d.y, y)


def test_standardize_scales_each_feature_and_says_so(tmp_path) -> None:
    path = table(tmp_path, a=[1.0, 2, 3, 4], b=[100.0, 300, 200, 400], y=[1.0, 2, 3, 4])
    d = data.load(str(path), "y", standardize=True)
    np.testing.assert_allclose(d.X.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(d.X.std(axis=0), 1)
    assert d.standardized and not data.load(str(path), "y").standardized


def test_the_saved_arrays_are_mapped_not_read_and_equal_the_file(tmp_path) -> None:
    path = table(tmp_path, a=[1.0, 2, 3], b=[4.0, 6, 5], y=[1.0, 0, 2])
    d = data.load(str(path), "y")
    folder = data.save(d, tmp_path / "run" / "data")
    again = data.load(str(folder))
    assert isinstance(again.X, np.memmap) and isinstance(again.y, np.memmap)
    np.testing.assert_array_equal(again.X, d.X)
    assert (again.name, again.source, again.target, again.features) == (
        "house", str(path), "y", ("a", "b"))  # fmt: skip


def test_the_file_is_a_problem_with_its_own_lr_and_the_least_squares_optimum(tmp_path) -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 4)) * [1, 10, 0.1, 3] + [0, 5, 2, 100]
    y = X @ [1.0, -0.5, 2.0, 0.01] + 7
    np.savez(tmp_path / "scaled.npz", X=X, y=y)
    run = parse(data=str(tmp_path / "scaled.npz"), dtype="float64")
    assert run.problems == () and [s[0] for s in run.problem_shapes()] == ["scaled"]
    problem = run.build_problem("scaled")
    assert problem.epochs == 100 and problem.bias
    # lr: half the stability limit 2/λ_max of the Hessian (2/N)·AᵀA, A = [X, 1]
    A = np.hstack([X, np.ones((200, 1))])
    assert problem.lr == pytest.approx(1 / np.linalg.eigvalsh(2 / 200 * A.T @ A)[-1])
    w, b = least_squares(problem)
    np.testing.assert_allclose(w, [1.0, -0.5, 2.0, 0.01], atol=1e-8)
    assert b == pytest.approx(7)


def test_problems_are_added_to_the_file_only_when_asked(tmp_path) -> None:
    path = table(tmp_path, a=[1.0, 2], y=[1.0, 2])
    run = parse(data=str(path), target_column="y", problems="toy")
    assert [s[0] for s in run.problem_shapes()] == ["toy", "house"]
    with pytest.raises(ValueError, match="would be called 'toy', as one of --problems"):
        parse(data=str(table(tmp_path, "toy.csv", a=[1.0], y=[1.0])), target_column="y",
              problems="toy")  # fmt: skip


def test_data_options_without_a_file_are_refused() -> None:
    with pytest.raises(ValueError, match="--target-column is for a data file"):
        parse(target_column="y")
    with pytest.raises(ValueError, match="--standardize is for a data file"):
        parse(standardize=True)


def bad_files(tmp_path: Path) -> dict[str, tuple[Path, str | None, str]]:
    """name: (file, target column, what the one line must say)."""
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("a,y\n")
    (tmp_path / "fake.npz").write_text("a,b\n1,2\n")
    (tmp_path / "notes.txt").write_text("1,2\n")
    (tmp_path / "fake.parquet").write_text("a,b\n1,2\n")
    np.savez(tmp_path / "noy.npz", X=np.ones((3, 2)))
    np.savez(tmp_path / "uneven.npz", X=np.ones((3, 2)), y=np.ones(4))
    np.savez(tmp_path / "nan.npz", X=np.array([[1.0, 2], [3, np.nan]]), y=np.ones(2))
    return {
        "missing": (tmp_path / "nosuch.csv", "y", "no such file"),
        "extension": (tmp_path / "notes.txt", None, "unknown extension '.txt'; allowed: .npz"),
        "empty": (tmp_path / "empty.csv", "y", "the file is empty"),
        "no rows": (tmp_path / "header.csv", "y", "the table has no rows"),
        "not an npz": (tmp_path / "fake.npz", None, "not an .npz file"),
        "no y": (tmp_path / "noy.npz", None, "no array y in the .npz (it has: X)"),
        "no target given": (table(tmp_path, "t1.csv", a=[1.0], y=[2.0]), None,
                            "needs --target-column, the column to predict; its columns: a, y"),
        "no such target": (table(tmp_path, "t2.csv", a=[1.0], y=[2.0]), "price",
                           "--target-column price: no such column"),
        "text column": (table(tmp_path, "t3.csv", a=[1.0, 2], city=["x", "z"], y=[2.0, 1]),
                        "y", "column 'city' is not numeric"),
        "nan in csv": (table(tmp_path, "t4.csv", a=[1.0, 2, 3], b=[1.0, None, 3], y=[1.0, 2, 3]),
                       "y", "nan in row 2 (column 'b', line 3 of the file)"),
        "inf target": (table(tmp_path, "t5.csv", a=[1.0, 2], y=[1.0, np.inf]), "y",
                       "inf in row 2 (the target, line 3 of the file)"),
        "nan in npz": (tmp_path / "nan.npz", None, "nan in row 2 (column 'x1')"),
        "lengths": (tmp_path / "uneven.npz", None, "X has 3 rows and y 4"),
        "only a target": (table(tmp_path, "t6.csv", y=[1.0, 2]), "y", "no feature column"),
    } | ({} if importlib.util.find_spec("pyarrow") is None else {
        "not a parquet": (tmp_path / "fake.parquet", "y", "not a parquet file"),
    })  # fmt: skip


@pytest.mark.parametrize(
    "case", ["missing", "extension", "empty", "no rows", "not an npz", "no y", "no target given",
             "no such target", "text column", "nan in csv", "inf target", "nan in npz",
             "lengths", "only a target", "not a parquet"],
)  # fmt: skip
def test_a_bad_file_is_one_line_naming_the_fault(tmp_path, case: str) -> None:
    files = bad_files(tmp_path)
    if case not in files:
        pytest.skip("pyarrow is not installed")
    path, target, message = files[case]
    with pytest.raises(data.DataError) as err:
        data.load(str(path), target)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert str(path.name) in str(err.value) or target in str(err.value)


def test_fewer_rows_than_features_is_allowed_and_said(tmp_path) -> None:
    np.savez(tmp_path / "wide.npz", X=np.arange(12.0).reshape(3, 4) ** 2, y=np.ones(3))
    assert data.load(str(tmp_path / "wide.npz")).describe()["underdetermined"]


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="pyarrow not installed")
def test_a_parquet_file_is_read_like_a_csv(tmp_path) -> None:
    frame = pd.DataFrame({"a": [1.0, 2, 3], "y": [2.0, 4, 6]})
    frame.to_parquet(tmp_path / "p.parquet")
    d = data.load(str(tmp_path / "p.parquet"), "y")
    np.testing.assert_array_equal(d.X[:, 0], [1, 2, 3])


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is not None, reason="pyarrow installed")
def test_without_pyarrow_a_parquet_file_names_the_install(tmp_path) -> None:
    (tmp_path / "p.parquet").write_bytes(b"PAR1")
    with pytest.raises(data.DataError, match=r"needs pyarrow: pip install 'gdbench\[parquet\]'"):
        data.load(str(tmp_path / "p.parquet"), "y")
