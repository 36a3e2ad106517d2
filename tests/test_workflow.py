"""The GitHub Actions workflow parses, and runs the same matrix as tox.ini."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="pyyaml is not installed")

ROOT = Path(__file__).parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


@pytest.fixture(scope="module")
def workflow() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def tox_env_list() -> list[str]:
    parser = configparser.ConfigParser()
    parser.read(ROOT / "tox.ini")
    return parser["tox"]["env_list"].split()


def test_the_test_matrix_is_the_tox_matrix(workflow) -> None:
    matrix = workflow["jobs"]["test"]["strategy"]["matrix"]
    minors = ",".join(v.removeprefix("3.") for v in matrix["python"])
    frameworks = ",".join(matrix["frameworks"])
    assert f"py3{{{minors}}}-{{{frameworks}}}" in tox_env_list()


def test_lint_and_type_environments_run_in_ci(workflow) -> None:
    commands = " ".join(step.get("run", "") for step in workflow["jobs"]["lint-type"]["steps"])
    assert "-e lint,type" in commands
    assert {"lint", "type"} <= set(tox_env_list())


def test_the_bench_job_uploads_its_results_folder(workflow) -> None:
    steps = workflow["jobs"]["bench"]["steps"]
    assert any("tox run -e bench" in s.get("run", "") for s in steps)
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["with"]["path"] == "results/"


def test_the_gpu_job_targets_a_self_hosted_cuda_runner(workflow) -> None:
    gpu = workflow["jobs"]["gpu"]
    assert {"self-hosted", "cuda"} <= set(gpu["runs-on"])
    assert any("--devices cpu,cuda" in s.get("run", "") for s in gpu["steps"])


def test_every_workflow_is_validated_against_the_github_schema_by_lint() -> None:
    # The schema check itself runs in tox's lint environment (check-jsonschema's bundled
    # GitHub schema, no network), which `make test` and CI run: a workflow it does not
    # name would go unchecked.
    parser = configparser.ConfigParser()
    parser.read(ROOT / "tox.ini")
    commands = parser["testenv:lint"]["commands"].splitlines()
    check = next(c.split() for c in commands if c.strip().startswith("check-jsonschema"))
    assert check[1:3] == ["--builtin-schema", "vendor.github-workflows"]
    named = {ROOT / path for path in check[3:]}
    assert named == set((ROOT / ".github" / "workflows").glob("*.y*ml"))
