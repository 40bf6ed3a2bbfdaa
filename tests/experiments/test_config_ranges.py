"""Declared config ranges: checked when a config is built, before anything runs, with errors
that name the full key and the expected range."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from experiments.base import RunConfig
from experiments.cli import main
from experiments.config import (
    Checked,
    ConfigError,
    ConfigRangeError,
    Range,
    apply_overrides,
    bounded,
    build_config,
    one_of,
)
from experiments.trainer import OptimConfig


@dataclass
class Groups(Checked):
    encoding: OptimConfig = field(default_factory=lambda: OptimConfig(lr=1e-2))
    decoder: OptimConfig = field(default_factory=OptimConfig)


@dataclass
class TwoGroupConfig(RunConfig):
    width: int = bounded(4, ge=1, le=64)
    mode: str = one_of("a", ("a", "b"))
    optim: Groups = field(default_factory=Groups)
    steps: int = 7  # a new default; the range (>= 1) declared by RunConfig still holds

    def validate(self) -> None:
        if self.mode == "b" and self.width > 8:
            raise ConfigRangeError("width", self.width, "<= 8 when mode=b")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["optim.decoder.lr=-1"],
            r"'optim.decoder.lr' = -1.0 is out of range; expected a finite number > 0",
        ),
        (["optim.encoding.lr=nan"], r"'optim.encoding.lr' = nan is out of range"),
        (["optim.decoder.betas=[0.9, 1.0]"], r"'optim.decoder.betas' .* two numbers in \[0, 1\)"),
        (["steps=0"], r"'steps' = 0 is out of range; expected an integer >= 1"),
        (["width=65"], r"'width' = 65 is out of range; expected an integer in \[1, 64\]"),
        (["mode=c"], r"'mode' = 'c' is not one of the choices; expected one of \['a', 'b'\]"),
        (["mode=b", "width=9"], r"'width' = 9 is out of range; expected <= 8 when mode=b"),
        (
            ["seed=2.5"],
            r"'seed': expected an integer, got 2.5; the range is an integer in \[0, 2\*\*63 - 1\]",
        ),
    ],
)
def test_overrides_out_of_range_name_the_full_key(overrides: list[str], message: str) -> None:
    with pytest.raises(
        ConfigRangeError if "range is" not in message else ConfigError, match=message
    ):
        build_config(TwoGroupConfig, None, overrides)


def test_preset_sections_are_checked_and_merged_onto_the_family_defaults() -> None:
    with pytest.raises(ConfigRangeError, match=r"'optim.encoding.lr' = 0.0"):
        build_config(TwoGroupConfig, {"optim": {"encoding": {"lr": 0.0}}}, [])
    config = build_config(TwoGroupConfig, {"optim": {"decoder": {"warmup_steps": 3}}}, [])
    assert config.optim.encoding.lr == 1e-2  # the family's default section, not OptimConfig()'s
    assert config.optim.decoder.warmup_steps == 3 and config.optim.decoder.lr == 1e-3
    assert apply_overrides(config, ["width=64"]).width == 64  # the bounds are inclusive


def test_direct_construction_is_checked_and_subclass_defaults_keep_the_range() -> None:
    with pytest.raises(ConfigRangeError, match=r"'lr' = inf"):
        OptimConfig(lr=float("inf"))
    assert TwoGroupConfig().steps == 7
    with pytest.raises(ConfigRangeError, match=r"'steps' = -5"):
        TwoGroupConfig(steps=-5)
    with pytest.raises(ConfigRangeError, match=r"'seed' = 1e\+23"):
        TwoGroupConfig(seed=1e23)  # type: ignore[arg-type]  # a float, from Python code


def test_range_descriptions_and_membership() -> None:
    assert Range(ge=1).describe(integer=True) == "an integer >= 1"
    assert Range(gt=0).describe(integer=False) == "a finite number > 0"
    assert Range(ge=0, lt=1).describe(integer=False) == "a number in [0, 1)"
    assert Range(gt=0, le=1).admits(1.0) and not Range(gt=0, le=1).admits(0.0)
    assert not Range().admits(float("inf")) and not Range().admits(float("nan"))
    assert not Range(ge=0).admits(True)  # a bool is not a number here
    with pytest.raises(ValueError, match="outside its own range"):
        bounded(0, ge=1)


@pytest.mark.parametrize("experiment", ["image_fit", "snn_mnist"])
@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("optim.lr=inf", "optim.lr"),
        ("optim.lr=-1", "optim.lr"),
        ("optim.lr=nan", "optim.lr"),
        ("steps=-5", "steps"),
        ("seed=1e23", "seed"),
    ],
)
def test_cli_refuses_impossible_values_in_one_line_before_running(
    experiment: str, override: str, key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    code = main(["run", experiment, "--preset", "tiny", "--runs-dir", str(runs), override])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("neurosim: error: config key")
    assert f"'{key}'" in err and "expected" in err and "Traceback" not in err
    assert not runs.exists()  # refused before a run directory was made


@dataclass
class OwnPostInit(RunConfig):
    label: str = "x"

    def __post_init__(self) -> None:  # forgets super().__post_init__()
        self.label = self.label.strip()


def test_ranges_hold_when_a_subclass_overrides_post_init() -> None:
    assert OwnPostInit(steps=-1).steps == -1  # direct construction skipped the check ...
    with pytest.raises(ConfigRangeError, match=r"'steps' = -1"):
        build_config(OwnPostInit, {"steps": -1}, [])  # ... building a config does not
