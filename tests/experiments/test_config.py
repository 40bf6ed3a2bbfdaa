"""Typed configs, presets and key=value overrides."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest
import yaml

from experiments.base import RunConfig
from experiments.config import (
    ConfigError,
    apply_overrides,
    build_config,
    from_dict,
    load_preset,
    load_yaml,
    preset_names,
    to_dict,
)
from experiments.registry import experiment_names


@dataclass
class Model:
    hidden: int = 8
    activation: Literal["relu", "tanh"] = "relu"
    widths: list[int] = field(default_factory=lambda: [1, 2])


@dataclass
class Cfg(RunConfig):
    model: Model = field(default_factory=Model)
    lr: float = 1e-3
    name: str = "x"
    scale: tuple[float, float] = (1.0, 2.0)
    note: str | None = None


def test_overrides_nested_and_typed() -> None:
    cfg = apply_overrides(
        Cfg(),
        [
            "model.hidden=32",
            "lr=3e-4",
            "name=42",
            "model.widths=[4, 5]",
            "scale=[3, 4]",
            "note=null",
            "deterministic=true",
            "model.activation=tanh",
        ],
    )
    assert cfg.model.hidden == 32 and cfg.lr == pytest.approx(3e-4)
    assert cfg.name == "42"  # a str field keeps the text
    assert cfg.model.widths == [4, 5] and cfg.scale == (3.0, 4.0)
    assert cfg.note is None and cfg.deterministic is True and cfg.model.activation == "tanh"
    assert Cfg().model.hidden == 8  # the original is untouched


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("stepz=3", "unknown config key 'stepz' \\(did you mean 'steps'\\?\\); valid keys: .*lr"),
        ("model.hiden=3", "unknown config key 'model.hiden'.*valid keys: activation, hidden"),
        ("steps=ten", "config key 'steps': expected an integer"),
        ("lr=fast", "config key 'lr': expected a number"),
        ("deterministic=maybe", "expected true or false"),
        ("model=3", "section"),
        ("model.activation=sigmoid", "not one of \\['relu', 'tanh'\\]"),
        ("scale=[1]", "expected 2 items"),
        ("steps", "key=value"),
        ("lr.x=1", "has no sub-keys"),
    ],
)
def test_bad_overrides_name_the_key(override: str, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        apply_overrides(Cfg(), [override])


def test_round_trip_through_plain_yaml() -> None:
    cfg = apply_overrides(Cfg(), ["model.hidden=3", "scale=[5, 6]"])
    text = yaml.safe_dump(to_dict(cfg))
    assert "!!python" not in text
    assert from_dict(Cfg, yaml.safe_load(text)) == cfg


def test_from_dict_rejects_unknown_and_wrong_types() -> None:
    with pytest.raises(ConfigError, match="unknown config key 'model.depth'"):
        from_dict(Cfg, {"model": {"depth": 2}})
    with pytest.raises(ConfigError, match="expected an integer"):
        from_dict(Cfg, {"steps": 1.5})


def test_preset_then_overrides(tmp_path: Path) -> None:
    preset = tmp_path / "p.yaml"
    preset.write_text("lr: 0.5\nmodel:\n  hidden: 4\n")
    cfg = build_config(Cfg, load_yaml(preset), ["model.hidden=6"])
    assert cfg.lr == 0.5 and cfg.model.hidden == 6


def test_bad_yaml_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_yaml(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_yaml(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        load_yaml(tmp_path / "list.yaml")


def test_unknown_preset_lists_available() -> None:
    with pytest.raises(ConfigError, match="available: .*tiny"):
        load_preset("image_fit", "huge")


def test_every_experiment_ships_a_valid_tiny_preset() -> None:
    from experiments.registry import get_experiment

    for name in experiment_names():
        assert "tiny" in preset_names(name), f"{name} has no tiny preset"
        for preset in preset_names(name):
            build_config(get_experiment(name).config_class, load_preset(name, preset), [])
