"""Experiment registry (built-ins and entry-point plugins) and the data root."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import experiments.registry as registry
from experiments.base import Experiment, RunConfig
from experiments.data import data_root, dataset_path
from neurosim.backend import InputError


@dataclass
class _PluginConfig(RunConfig):
    steps: int = 2


class _Plugin(Experiment[_PluginConfig]):
    name = "plugin_demo"
    config_class = _PluginConfig
    description = "an experiment from another package"

    def setup(self) -> None:
        self.count = 0

    def step(self, step: int) -> dict[str, float]:
        self.count += 1
        return {"count": float(self.count)}

    def evaluate(self) -> dict[str, float]:
        return {"count": float(self.count)}

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count = state["count"]


class _EntryPoint:
    name = "plugin_demo"

    def load(self) -> Any:
        return registry.register(_Plugin)


class _BrokenEntryPoint:
    name = "broken"

    def load(self) -> Any:
        raise ImportError("plugin is broken")


def test_entry_point_plugins_register_and_broken_ones_do_not_hide_others(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    registry.load_all()  # built-ins first: their modules register once, on import
    monkeypatch.setattr(registry, "_loaded", False)
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(
        registry, "entry_points", lambda group: [_BrokenEntryPoint(), _EntryPoint()]
    )
    assert "plugin_demo" in registry.experiment_names()
    assert "image_fit" in registry.experiment_names()
    from experiments.runner import run_experiment

    result = run_experiment("plugin_demo", ["device=cpu"], runs_dir=tmp_path)
    assert result.metrics == {"count": 2.0}


def test_unknown_experiment_suggests_close_names() -> None:
    with pytest.raises(InputError, match="did you mean image_fit"):
        registry.get_experiment("image_fitt")


def test_name_clash_is_refused() -> None:
    class Other(_Plugin):
        name = "image_fit"

    with pytest.raises(InputError, match="taken"):
        registry.register(Other)


def test_data_root_resolution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mnist").mkdir()
    assert data_root(str(tmp_path)) == tmp_path
    monkeypatch.setenv("NEUROSIM_DATA", str(tmp_path))
    assert data_root() == tmp_path
    assert dataset_path("mnist", layout="IDX files") == tmp_path / "mnist"
    with pytest.raises(InputError, match="expected layout: IDX files"):
        dataset_path("nope", layout="IDX files")
    monkeypatch.setenv("NEUROSIM_DATA", str(tmp_path / "missing"))
    with pytest.raises(InputError, match="NEUROSIM_DATA"):
        data_root()
    with pytest.raises(InputError, match="is not a folder"):
        data_root(str(tmp_path / "missing"))
