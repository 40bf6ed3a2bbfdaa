"""MkDocs hook: pages built from sources outside ``docs/``.

* ``benchmarks.md``: the benchmark tables, which stay in ``benchmarks/README.md`` beside the
  scripts that write them;
* ``data.md``: ``data/README.md`` (the data root and where the full datasets go);
* ``experiments.md``: every registered experiment, generated from the registry at build time
  (so it cannot go stale): description, presets, the family's docs page where one exists, the
  module's summary and the default config;
* ``api/families.md``: the API reference of every registered experiment's module (its config
  dataclass with every key documented), from the same registry.

The notebooks reach the site through the link ``docs/notebooks -> ../notebooks`` (rendered by
mkdocs-jupyter without executing; the test suite executes them).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent

# Docs pages of families whose page is not named after the experiment (``docs/<name>.md`` is
# always tried first). A page is linked only when it exists, so an entry here never breaks the
# build; a family that adds a page named differently adds its name here.
FAMILY_PAGES: dict[str, tuple[str, ...]] = {
    "continual_hlop": ("hlop.md",),
    "elm_adding": ("elm.md",),
    "elm_neuron_fit": ("elm.md",),
    "active_dendrites": ("dendrites.md",),
    "sdr_theory": ("dendrites.md",),
    "place_recognition": ("vpr.md", "place_recognition.md"),
    "view_synthesis": ("views.md", "view_synthesis.md"),
    "fields_image": ("fields.md",),
    "fields_sdf": ("fields.md",),
    "snn_mnist": ("spiking.md",),
}


def _summary(module: Any) -> str:
    """The first paragraph of a module docstring, with reST roles turned into code spans."""
    doc = (getattr(module, "__doc__", None) or "").strip()
    first = doc.split("\n\n", 1)[0].replace("\n", " ")
    first = re.sub(r":\w+:`~?([^`]+)`", r"`\1`", first)
    return re.sub(r"``([^`]+)``", r"`\1`", first)


def docs_page(name: str, docs_dir: Path) -> str | None:
    """The docs page of experiment ``name`` (relative to ``docs/``), or ``None``."""
    for page in (f"{name}.md", *FAMILY_PAGES.get(name, ())):
        if (docs_dir / page).is_file():
            return page
    return None


def experiments_page(docs_dir: Path) -> str:
    """Markdown of ``experiments.md`` from the live registry."""
    import importlib

    from experiments.config import preset_names, to_dict
    from experiments.registry import experiment_names, get_experiment

    names = experiment_names()
    lines = [
        "# Experiments",
        "",
        f"The {len(names)} registered experiments (`neurosim list`), generated from the registry "
        "when this site is built. Run one with `neurosim run NAME --preset tiny|demo|default`, "
        "read it with `neurosim show RUN` (see [getting started](getting-started.md)); the "
        "full datasets some presets need are described in [data](data.md).",
        "",
        "| experiment | what it does | presets | docs page |",
        "|---|---|---|---|",
    ]
    sections: list[str] = []
    for name in names:
        cls = get_experiment(name)
        page = docs_page(name, docs_dir)
        link = f"[{page[:-3]}]({page})" if page else "-"
        presets = ", ".join(preset_names(name)) or "-"
        lines.append(f"| `{name}` | {cls.description} | {presets} | {link} |")
        module = importlib.import_module(cls.__module__)
        section = [
            f"## {name}",
            "",
            _summary(module),
            "",
            f"Module `{cls.__module__}`, config `{cls.config_class.__name__}` (every key in the "
            "[API reference](api/families.md))"
            + (f"; details on the [{page[:-3]} page]({page})." if page else "."),
            "",
            "```bash",
            f"neurosim run {name} --preset {'demo' if 'demo' in presets else 'tiny'}",
            f"neurosim config {name}          # the full config as YAML",
            "```",
        ]
        try:
            defaults = yaml.safe_dump(to_dict(cls.config_class()), sort_keys=False).strip()
        except Exception:  # a config without usable defaults: leave the block out
            defaults = ""
        if defaults:
            section += ["", "Default config (before any preset):", "", "```yaml", defaults, "```"]
        sections += ["", *section]
    return "\n".join(lines + sections) + "\n"


def families_api_page() -> str:
    """Markdown of ``api/families.md``: one mkdocstrings entry per registered family module."""
    from experiments.registry import experiment_names, get_experiment

    modules: list[str] = []
    for name in experiment_names():
        module = get_experiment(name).__module__
        if module not in modules:
            modules.append(module)
    lines = [
        "# Experiment families API",
        "",
        "The module of every registered experiment (generated from the registry): the experiment "
        "class and its config dataclass, whose attributes are the config keys. The list of "
        "experiments with their presets is on the [experiments page](../experiments.md).",
    ]
    for module in modules:
        lines += ["", f"::: {module}"]
    return "\n".join(lines) + "\n"


def on_files(files: Files, config: Any) -> Files:
    docs_dir = Path(config["docs_dir"])
    files.append(
        File.generated(config, "benchmarks.md", abs_src_path=str(ROOT / "benchmarks" / "README.md"))
    )
    files.append(File.generated(config, "data.md", abs_src_path=str(ROOT / "data" / "README.md")))
    files.append(File.generated(config, "experiments.md", content=experiments_page(docs_dir)))
    files.append(File.generated(config, "api/families.md", content=families_api_page()))
    return files
