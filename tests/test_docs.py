"""The documentation site builds in strict mode: a broken link or reference fails the suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

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


def test_strict_build_fails_on_a_broken_link(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "index.md").write_text("see [the missing page](missing.md)\n")
    (tmp_path / "mkdocs.yml").write_text("site_name: t\n")
    out = _mkdocs("-d", str(tmp_path / "site"), cwd=tmp_path)
    assert out.returncode != 0 and "missing.md" in out.stderr
