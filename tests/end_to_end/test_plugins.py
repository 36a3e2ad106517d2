"""Variants from other packages, end to end (docs/plugins.md): the worked example
(examples/gdbench-einsum) installed into a fresh environment is listed with its
distribution, checked and timed like a built-in variant; a plugin that cannot be
imported is listed unavailable and breaks no run; one that claims a built-in name, or
returns results of the wrong shape or dtype, is refused with one line naming it."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import fake_distribution, records

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "examples" / "gdbench-einsum"


def gdbench_in(python: Path | str, *args: str, path: str = "", timeout: float = 60):
    """``gdbench ARGS`` run by ``python`` (an environment of its own), with ``path`` on
    PYTHONPATH after this checkout; the workers inherit both."""
    return subprocess.run(
        [str(python), "-m", "suites.run.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), path]))},
    )


@pytest.fixture(scope="module")
def einsum_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The interpreter of a fresh venv with the example installed (``pip install -e``,
    from a copy, offline): it sees this environment's packages (numpy, gdbench, pip,
    setuptools) through a .pth file, and the example is installed into it alone."""
    if importlib.util.find_spec("setuptools") is None:
        pytest.skip("setuptools is not installed here: the example cannot be built offline")
    base = tmp_path_factory.mktemp("einsum")
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    own = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    # addsitedir also runs this environment's own .pth files (gdbench's editable install)
    parent = sysconfig.get_paths()["purelib"]
    Path(own, "gdbench-parent.pth").write_text(f"import site; site.addsitedir({parent!r})\n")
    source = shutil.copytree(EXAMPLE, base / "gdbench-einsum")  # builds leave nothing here
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
         "--no-deps", "--no-build-isolation", "--no-index", "-e", str(source)],
        check=True, timeout=120,
    )  # fmt: skip
    return python


def test_the_example_is_listed_with_the_distribution_that_provides_it(
    einsum_python: Path,
) -> None:
    proc = gdbench_in(einsum_python, "list")
    assert proc.returncode == 0, proc.stderr
    assert re.search(
        r"^numpy-einsum\s+numpy\s+cpu\s+available \(plugin from gdbench-einsum 0\.1\.0\)$",
        proc.stdout,
        re.M,
    ), proc.stdout
    assert re.search(
        r"^numpy-einsum\s+numpy\s+cuda\s+unavailable \(plugin from gdbench-einsum 0\.1\.0\): "
        r"numpy-einsum runs on the CPU only, not on cuda$",
        proc.stdout,
        re.M,
    ), proc.stdout
    assert re.search(r"^numpy-manual\s+numpy\s+cpu\s+available$", proc.stdout, re.M)


def test_the_example_agrees_with_numpy_manual_in_a_worker_of_its_own(
    einsum_python: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    proc = gdbench_in(einsum_python, "check", "--backends", "numpy-einsum,numpy-manual",
                      "--problems", "toy", "--out", str(out))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    done = {r["variant"]: r for r in records(out) if r["kind"] == "convergence"}
    assert done["numpy-einsum"]["status"] == "agree"
    assert done["numpy-einsum"]["framework"] == "numpy"  # read from its class
    assert done["numpy-einsum"]["worker"] == "numpy-einsum@cpu"
    assert done["numpy-manual"]["worker"] == "numpy-manual@cpu"


def test_the_example_is_timed_and_reported_like_a_built_in_variant(
    einsum_python: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    proc = gdbench_in(einsum_python, "run", "--quick", "--backends", "numpy-einsum,numpy-manual",
                      "--problems", "toy", "--out", str(out), timeout=120)  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = pd.read_csv(out / "results.csv")
    mine = results[results["variant"] == "numpy-einsum"]
    assert len(mine) == 1 and mine["status"].tolist() == ["agree"]
    assert mine["framework"].tolist() == ["numpy"] and mine["per_epoch_median_s"].gt(0).all()
    assert "numpy-einsum" in (out / "report.md").read_text()


BROKEN = {"numpy-broken": "broken_plugin:Broken"}


def test_a_plugin_that_cannot_be_imported_is_listed_unavailable_and_breaks_no_run(
    tmp_path: Path,
) -> None:
    site = fake_distribution(tmp_path / "site", "broken-plugin", BROKEN,
                             {"broken_plugin": "import gdbench_no_such_framework\n"})  # fmt: skip
    error = (
        "plugin 'numpy-broken' of broken-plugin 0.1 (broken_plugin:Broken) cannot be "
        "imported: ModuleNotFoundError: No module named 'gdbench_no_such_framework'"
    )
    listed = gdbench_in(sys.executable, "list", path=str(site))
    assert listed.returncode == 0, listed.stderr
    assert re.search(
        rf"^numpy-broken\s+\?\s+cpu\s+unavailable \(plugin from broken-plugin 0\.1\): "
        rf"{re.escape(error)}$",
        listed.stdout,
        re.M,
    ), listed.stdout
    out = tmp_path / "run"
    proc = gdbench_in(sys.executable, "check", "--backends", "numpy-broken,numpy-manual",
                      "--problems", "toy", "--out", str(out), path=str(site))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    unavailable = [u for r in records(out) if r["kind"] == "worker" for u in r["unavailable"]]
    assert {"variant": "numpy-broken", "framework": "?", "device": "cpu", "reason": error} in (
        unavailable
    )
    report = (out / "report.md").read_text()
    assert "numpy-broken" in report and "gdbench_no_such_framework" in report
    agreed = [r["variant"] for r in records(out) if r.get("status") == "agree"]
    assert agreed == ["numpy-manual"]


def test_a_plugin_claiming_a_built_in_name_is_refused_with_one_line_naming_it(
    tmp_path: Path,
) -> None:
    # its module raises if imported: a refused plugin is never imported
    site = fake_distribution(tmp_path / "site", "claims-builtin",
                             {"numpy-manual": "impostor:Impostor"},
                             {"impostor": 'raise RuntimeError("imported")\n'})  # fmt: skip
    named = (
        "plugin 'numpy-manual' of claims-builtin 0.1 (impostor:Impostor) is refused: "
        "'numpy-manual' is the name of a built-in variant, which no plugin may take"
    )
    listed = gdbench_in(sys.executable, "list", path=str(site))
    assert listed.returncode == 0, listed.stderr
    assert re.search(r"^numpy-manual\s+numpy\s+cpu\s+available$", listed.stdout, re.M)
    assert re.search(
        r"^numpy-manual\s+\?\s+-\s+refused \(plugin from claims-builtin 0\.1, impostor:Impostor\): "
        r"'numpy-manual' is the name of a built-in variant",
        listed.stdout,
        re.M,
    ), listed.stdout
    for selection in ("plugins", "all"):
        out = tmp_path / selection
        proc = gdbench_in(sys.executable, "check", "--backends", selection, "--problems", "toy",
                          "--out", str(out), path=str(site))  # fmt: skip
        assert proc.returncode == 2
        (line,) = proc.stderr.splitlines()
        assert line.startswith(f"gdbench: error: --backends {selection}: {named}")
        assert not out.exists()  # nothing written
    # the name itself still means the built-in variant
    out = tmp_path / "built-in"
    proc = gdbench_in(sys.executable, "check", "--backends", "numpy-manual", "--problems", "toy",
                      "--out", str(out), path=str(site))  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "imported" not in proc.stdout + proc.stderr


# Two plugins that train as numpy-manual does and then return a result that breaks the
# TrainResult contract: one loss too few, or float64 arrays for a float32 problem.
WRONG = """
import dataclasses

from backends import get_backend


class _Wrong:
    framework = "numpy"

    def __init__(self, device):
        self.device = device
        self.inner = get_backend("numpy-manual", device)

    def prepare(self, problem, *, record_params=False):
        session = self.inner.prepare(problem, record_params=record_params)
        train = session.train
        session.train = lambda epochs=None: self.spoil(train(epochs))
        return session


class Short(_Wrong):
    variant = "numpy-short"

    def spoil(self, result):
        return dataclasses.replace(result, losses=result.losses[:-1])


class Double(_Wrong):
    variant = "numpy-double"

    def spoil(self, result):
        return dataclasses.replace(result, losses=result.losses.astype("float64"))
"""


def test_a_plugin_returning_results_of_the_wrong_shape_or_dtype_is_refused_naming_it(
    tmp_path: Path,
) -> None:
    site = fake_distribution(tmp_path / "site", "wrong-results",
                             {"numpy-short": "wrong:Short", "numpy-double": "wrong:Double"},
                             {"wrong": WRONG})  # fmt: skip
    refused = {
        "numpy-short": "plugin 'numpy-short' of wrong-results 0.1 (wrong:Short) refused: "
        "losses has shape (99,), expected (100,) (100 epochs, 1 features)",
        "numpy-double": "plugin 'numpy-double' of wrong-results 0.1 (wrong:Double) refused: "
        "losses is float64, expected the problem's dtype, float32",
    }
    out = tmp_path / "run"
    proc = gdbench_in(sys.executable, "run", "--quick", "--backends", "numpy-short,numpy-double",
                      "--problems", "toy", "--out", str(out), path=str(site),
                      timeout=120)  # fmt: skip
    assert proc.returncode == 1, proc.stdout + proc.stderr
    cases = [r for r in records(out) if r["kind"] in ("convergence", "benchmark")]
    assert {(r["kind"], r["variant"]) for r in cases} == {
        (kind, variant) for kind in ("convergence", "benchmark") for variant in refused
    }
    for r in cases:  # each case failed with the one line, and said it as it finished
        assert (r["status"], r["message"]) == ("failed", refused[r["variant"]])
    for variant, line in refused.items():
        for suite in ("test_convergence", "test_epoch_cost"):
            assert re.search(
                rf"failed\s+{suite}\s+{variant}@cpu-toy\s+-- Failed: {re.escape(line)}",
                proc.stdout,
            ), proc.stdout
    logs = "".join(p.read_text() for p in (out / "workers").glob("*.log"))
    assert "Traceback" not in logs and "During handling" not in logs and "wrong.py" not in logs
