"""``--data``: a user's file run as a user would, and every bad file refused before
anything is written."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from suites import data
from suites.run import cli
from tests.conftest import gdbench

HERE = [v for v, f in (("torch-manual", "torch"), ("jax-grad", "jax"))
        if importlib.util.find_spec(f) is not None]  # fmt: skip


def houses(rows: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Columns on different scales and an intercept far from zero, as real data has."""
    rng = np.random.default_rng(7)
    X = rng.normal(size=(rows, 4)) * [1.0, 10.0, 0.1, 3.0] + [0.0, 50.0, 2.0, -20.0]
    return X, X @ [1.0, -0.2, 4.0, 0.5] + 300.0 + 0.1 * rng.normal(size=rows)


def test_check_on_an_npz_follows_the_reference_and_names_the_file(tmp_path: Path) -> None:
    X, y = houses()
    np.savez(tmp_path / "houses.npz", X=X, y=y)
    out = tmp_path / "run"
    proc = gdbench("check", "--data", str(tmp_path / "houses.npz"), "--backends",
                   ",".join(["numpy-manual", *HERE]), "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = (out / "report.md").read_text()
    assert f"problem `houses` is `{tmp_path / 'houses.npz'}`: 300 rows × 4 features" in report
    traj = pd.read_csv(out / "trajectories.csv")
    assert set(traj["problem"]) == {"houses"}
    assert set(traj["variant"]) == {"numpy-manual", *HERE}
    # the workers trained on the file's values: the saved arrays are the file's
    np.testing.assert_array_equal(np.load(out / "data" / "X.npy"), X)


def test_a_quick_run_on_a_csv_times_the_file_standardized(tmp_path: Path) -> None:
    X, y = houses()
    frame = pd.DataFrame(X, columns=["rooms", "age", "tax", "dist"]).assign(price=y)
    frame.to_csv(tmp_path / "prices.csv", index=False)
    out = tmp_path / "run"
    proc = gdbench("run", "--quick", "--data", str(tmp_path / "prices.csv"),
                   "--target-column", "price", "--standardize", "--backends", "numpy-manual",
                   "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = pd.read_csv(out / "results.csv")
    assert list(results["problem"]) == ["prices"] and results["status"].eq("agree").all()
    assert (results["n_samples"].iloc[0], results["n_features"].iloc[0]) == (300, 4)
    report = (out / "report.md").read_text()
    assert "target column `price`; features standardized (zero mean, unit variance)" in report
    saved = np.load(out / "data" / "X.npy")
    np.testing.assert_allclose(saved, (X - X.mean(axis=0)) / X.std(axis=0))
    assert "prices (300×4)" in proc.stdout  # the terminal's summary names it too
    header = json.loads((out / "records.jsonl").read_text().splitlines()[0])
    assert header["data"]["standardized"]
    assert header["config"]["data"] == str(tmp_path / "prices.csv")


def bad(tmp_path: Path) -> dict[str, tuple[list[str], str]]:
    """Each way a --data file can be wrong: its arguments and what the one line says."""
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "fake.npz").write_text("not a zip")
    (tmp_path / "notes.txt").write_text("1,2\n")
    np.savez(tmp_path / "noy.npz", X=np.ones((3, 2)))
    np.savez(tmp_path / "uneven.npz", X=np.ones((3, 2)), y=np.ones(4))
    pd.DataFrame({"a": [1.0, 2], "town": ["x", "y"], "y": [1.0, 2]}).to_csv(
        tmp_path / "text.csv", index=False)  # fmt: skip
    pd.DataFrame({"a": [1.0, np.nan], "y": [1.0, 2]}).to_csv(tmp_path / "nan.csv", index=False)
    pd.DataFrame({"a": [1.0, 2], "y": [1.0, 2]}).to_csv(tmp_path / "ok.csv", index=False)
    t = str(tmp_path)
    return {
        "missing": ([f"{t}/nosuch.npz"], "no such file"),
        "extension": ([f"{t}/notes.txt"], "unknown extension '.txt'"),
        "not what it says": ([f"{t}/fake.npz"], "not an .npz file"),
        "no y": ([f"{t}/noy.npz"], "no array y"),
        "no target column": ([f"{t}/ok.csv"], "needs --target-column"),
        "unknown target": ([f"{t}/ok.csv", "--target-column", "z"], "no such column"),
        "text feature": ([f"{t}/text.csv", "--target-column", "y"], "column 'town' is not numeric"),
        "nan": ([f"{t}/nan.csv", "--target-column", "y"], "nan in row 2 (column 'a'"),
        "lengths": ([f"{t}/uneven.npz"], "X has 3 rows and y 4"),
        "empty": ([f"{t}/empty.csv", "--target-column", "y"], "the file is empty"),
    }


CASES = ["missing", "extension", "not what it says", "no y", "no target column",
         "unknown target", "text feature", "nan", "lengths", "empty"]  # fmt: skip


@pytest.mark.parametrize("case", CASES)
def test_bad_data_is_one_line_exit_2_and_nothing_written(tmp_path, monkeypatch, capsys, case):
    data._load.cache_clear()
    args, message = bad(tmp_path)[case]
    monkeypatch.chdir(tmp_path)  # where a default results/ folder would appear
    out = tmp_path / "run"
    code = cli.main(["run", "--backends", "numpy-manual", "--data", *args, "--out", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert not out.exists() and not (tmp_path / "results").exists()


def test_data_too_large_for_the_memory_check_is_refused(tmp_path, monkeypatch, capsys) -> None:
    data._load.cache_clear()
    np.savez(tmp_path / "big.npz", X=np.ones((1000, 8)), y=np.ones(1000))
    monkeypatch.setattr("suites.run.limits.available_memory", lambda: 100_000)
    out = tmp_path / "run"
    code = cli.main(["check", "--backends", "numpy-manual", "--data", str(tmp_path / "big.npz"),
                     "--out", str(out)])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert f"--data {tmp_path / 'big.npz'} (1,000 rows × 8 features) needs about" in err[0]
    assert "use a smaller file" in err[0] and not out.exists()


def test_fewer_rows_than_features_runs_and_the_report_says_the_optimum_is_not_unique(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "wide.npz", X=rng.normal(size=(6, 10)), y=rng.normal(size=6))
    out = tmp_path / "run"
    proc = gdbench("check", "--data", str(tmp_path / "wide.npz"), "--backends", "numpy-manual",
                   "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = (out / "report.md").read_text()
    assert "the least-squares optimum is not unique" in report and "least norm" in report
