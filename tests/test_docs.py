"""The documentation site builds in strict mode: a broken link or reference fails the suite."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def _mkdocs(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )


def test_site_builds_strict_with_api_notebooks_and_benchmarks(tmp_path: Path) -> None:
    out = _mkdocs("-d", str(tmp_path / "site"), cwd=ROOT)
    assert out.returncode == 0, out.stderr[-3000:]
    site = tmp_path / "site"
    api = (site / "api" / "neurosim" / "index.html").read_text()
    assert "seeded" in api and "register_grad_transform" in api  # docstrings rendered
    notebooks = sorted(p.name for p in (site / "notebooks").iterdir())
    assert notebooks == sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert "neurosim" in (site / "benchmarks" / "index.html").read_text()
    assert "NEUROSIM_DATA" in (site / "data" / "index.html").read_text()
    assert "make demo" in (site / "getting-started" / "index.html").read_text()
    for page, names in {
        "neurosim": ["plot_spike_raster", "plot_firing_rates", "plot_training_curves",
                     "plot_field_slice", "plot_reconstruction", "load_mnist"],
        "experiments": ["plot_run_curves", "plot_sweep", "get_experiment"],
    }.items():  # fmt: skip
        html = (site / "api" / page / "index.html").read_text()
        assert all(f'id="{page}.' in html and name in html for name in names), page
    from experiments.registry import experiment_names, get_experiment

    families = (site / "api" / "families" / "index.html").read_text()
    for name in experiment_names():  # every registered family's module and config documented
        cls = get_experiment(name)
        assert f'id="{cls.__module__}"' in families and cls.config_class.__name__ in families


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "_hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_experiments_page_lists_the_registry_with_existing_docs_pages(tmp_path: Path) -> None:
    from experiments.registry import experiment_names, get_experiment

    hooks = _hooks()
    text = hooks.experiments_page(ROOT / "docs")
    names = experiment_names()
    assert names and f"The {len(names)} registered experiments" in text
    for name in names:  # a row and a section per registered experiment
        assert f"| `{name}` | {get_experiment(name).description} |" in text
        assert f"\n## {name}\n" in text
    # a family page is linked when it exists, and never when it does not
    (tmp_path / "elm.md").write_text("# ELM\n")
    assert hooks.docs_page("elm_adding", tmp_path) == "elm.md"
    assert hooks.docs_page("elm_adding", tmp_path / "nowhere") is None
    (tmp_path / "elm_adding.md").write_text("# its own page\n")
    assert hooks.docs_page("elm_adding", tmp_path) == "elm_adding.md"


def test_strict_build_fails_on_a_broken_link(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("see [the missing page](missing.md)\n")
    (tmp_path / "mkdocs.yml").write_text("site_name: t\n")
    out = _mkdocs("-d", str(tmp_path / "site"), cwd=tmp_path)
    assert out.returncode != 0 and "missing.md" in out.stderr
