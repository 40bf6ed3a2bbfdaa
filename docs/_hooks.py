"""MkDocs hook: publish the benchmark tables that live outside ``docs/``.

The benchmark page stays in ``benchmarks/README.md`` (beside the scripts that write it); this hook
adds it to the site as ``benchmarks.md``. The notebooks reach the site through the link
``docs/notebooks -> ../notebooks`` (rendered by mkdocs-jupyter without executing; the test suite
executes them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent


def on_files(files: Files, config: Any) -> Files:
    bench = ROOT / "benchmarks" / "README.md"
    files.append(File.generated(config, "benchmarks.md", abs_src_path=str(bench)))
    return files
