"""Packaging truths: one version, pyproject and environment.yml agree, CI and README commands."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

import neurosim

ROOT = Path(__file__).resolve().parent.parent


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_environment_yml_names_the_same_dependencies_as_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = [], []
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            pip += dep["pip"]
        else:
            conda.append(dep)
    conda_names = {_name(d) for d in conda} - {"python", "pip"}
    pip_names = {_name(d) for d in pip if not d.startswith("-e")}
    assert conda_names | pip_names == {_name(d) for d in project["dependencies"]}
    editable = [d for d in pip if d.startswith("-e")]
    assert len(editable) == 1
    extras = set(re.search(r"\[(.*)\]", editable[0]).group(1).split(","))  # type: ignore[union-attr]
    assert extras <= set(project["optional-dependencies"])
    makefile = (ROOT / "Makefile").read_text()
    make_extras = set(re.search(r"EXTRAS \?= (\S+)", makefile).group(1).split(","))  # type: ignore[union-attr]
    assert extras == make_extras, "conda users and `make` must install the same extras"


def test_version_has_one_source() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'dynamic = ["version"]' in pyproject
    assert 'attr = "neurosim._version.__version__"' in pyproject
    assert re.fullmatch(r"\d+\.\d+\.\d+", neurosim.__version__)
    from importlib.metadata import version

    assert version("neurosim") == neurosim.__version__


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
    assert "make test" in readme and "make demo" in readme


def test_import_does_not_pull_optional_backends() -> None:
    import subprocess
    import sys

    code = "import sys, neurosim, fields, experiments.runner; print('triton' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
