"""Typed dataclass configs: strict loading, YAML presets and ``key=value`` overrides.

A config is a dataclass whose fields are all typed. Values come from the defaults, then a YAML
preset, then command-line overrides (``model.hidden=128``, nested keys with dots); each value is
checked against the field's type, and an unknown key or a wrong type is a :class:`ConfigError`
that names the key and lists the valid ones. Saved configs are plain YAML (no pickles).

>>> from experiments.base import RunConfig
>>> apply_overrides(RunConfig(), ["steps=5"]).steps
5
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from neurosim.backend import InputError

T = TypeVar("T")


class ConfigError(InputError):
    """A config key, value or file was wrong; the message names it and what was expected."""


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def field_types(cls: type) -> dict[str, Any]:
    """``field name -> resolved type`` of a config dataclass."""
    hints = _hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls) if f.init}


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _unknown_key(key: str, valid: Sequence[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(
        f"unknown config key {where + key!r}{hint}; valid keys: {', '.join(sorted(valid))}"
    )


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against type ``tp`` (converting int->float, list->tuple, str->number)."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin is Union or origin is types.UnionType:
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return coerce(value, option, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(f"config key {key!r}: {value!r} is not a {_type_name(tp)}")
    if origin is Literal:
        allowed = get_args(tp)
        if value in allowed:
            return value
        raise ConfigError(f"config key {key!r}: {value!r} is not one of {list(allowed)}")
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"config key {key!r} is a section ({tp.__name__}); expected a mapping, got {value!r}"
            )
        return from_dict(tp, value, prefix=f"{key}.")
    if origin in (list, Sequence) or tp is list:
        (inner,) = get_args(tp) or (Any,)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {key!r}: expected a list, got {value!r}")
        return [coerce(v, inner, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is tuple or tp is tuple:
        args = get_args(tp)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key {key!r}: expected a list/tuple, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
        if args and len(args) != len(value):
            raise ConfigError(f"config key {key!r}: expected {len(args)} items, got {list(value)}")
        types_ = args or (Any,) * len(value)
        return tuple(
            coerce(v, a, f"{key}[{i}]") for i, (a, v) in enumerate(zip(types_, value, strict=True))
        )
    if origin is dict or tp is dict:
        kt, vt = get_args(tp) or (str, Any)
        if not isinstance(value, Mapping):
            raise ConfigError(f"config key {key!r}: expected a mapping, got {value!r}")
        return {coerce(k, kt, key): coerce(v, vt, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise ConfigError(f"config key {key!r}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        raise ConfigError(f"config key {key!r}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"config key {key!r}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"config key {key!r}: expected a string, got {value!r}")
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"config key {key!r}: expected {_type_name(tp)}, got {value!r}")


def from_dict(cls: type[T], data: Mapping[str, Any], *, prefix: str = "") -> T:
    """Build ``cls`` from a mapping, strictly: unknown keys and wrong types are errors."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"config {prefix or 'root'} must be a mapping, got {type(data).__name__}")
    types_ = field_types(cls)
    defaults = _section_defaults(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in types_:
            raise _unknown_key(str(key), list(types_), prefix)
        if key in defaults and isinstance(value, Mapping):
            # a partial section overrides the family's default section, not the section class's
            value = _deep_merge(to_dict(defaults[key]), value)
        kwargs[key] = coerce(value, types_[key], f"{prefix}{key}")
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config {cls.__name__}: {exc}") from exc


def _section_defaults(cls: type) -> dict[str, Any]:
    """Default values of the fields of ``cls`` that are config sections (dataclass instances)."""
    found = {}
    for f in dataclasses.fields(cls):
        if f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        elif f.default is not dataclasses.MISSING:
            value = f.default
        else:
            continue
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            found[f.name] = value
    return found


def _deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[key] = _deep_merge(old, value)
        else:
            merged[key] = value
    return merged


def to_dict(config: Any) -> dict[str, Any]:
    """Plain-data (YAML-safe) form of a config: dataclasses -> dicts, tuples -> lists."""

    def plain(value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, Mapping):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, os.PathLike):
            return os.fspath(value)
        return value

    result = plain(config)
    assert isinstance(result, dict)
    return result


def parse_override(text: str) -> tuple[str, str]:
    """Split ``"a.b=value"`` into ``("a.b", "value")``; anything else is a :class:`ConfigError`."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"override {text!r} is not of the form key=value (e.g. steps=100)")
    return key, value


def parse_value(raw: str) -> Any:
    """Parse an override's value as YAML (``3``, ``1e-3``, ``true``, ``[1, 2]``, ``null``)."""
    try:
        return yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        return raw


def _set_nested(data: dict[str, Any], cls: type, key: str, raw: str) -> None:
    parts = key.split(".")
    node = data
    tp: Any = cls
    for depth, part in enumerate(parts):
        if not (dataclasses.is_dataclass(tp) and isinstance(tp, type)):
            raise ConfigError(
                f"config key {'.'.join(parts[:depth])!r} has no sub-keys (in {key!r})"
            )
        types_ = field_types(tp)
        prefix = ".".join(parts[:depth]) + "." if depth else ""
        if part not in types_:
            raise _unknown_key(part, list(types_), prefix)
        tp = types_[part]
        if depth == len(parts) - 1:
            value = parse_value(raw)
            if tp is str or (get_origin(tp) in (Union, types.UnionType) and str in get_args(tp)):
                value = raw if value is not None else None
            node[part] = coerce(value, tp, key)
        else:
            child = node.get(part)
            if not isinstance(child, dict):
                child = to_dict(child) if dataclasses.is_dataclass(child) else {}
                node[part] = child
            node = child


def apply_overrides(config: T, overrides: Sequence[str]) -> T:
    """Return a copy of ``config`` with ``key=value`` overrides applied and type-checked."""
    data = to_dict(config)
    for text in overrides:
        key, raw = parse_override(text)
        _set_nested(data, type(config), key, raw)
    return from_dict(type(config), data)


def load_yaml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML mapping; a missing, unreadable or non-mapping file is a :class:`ConfigError`."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {str(path)!r}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {str(path)!r} must hold a mapping, got {type(data).__name__}"
        )
    return data


def preset_names(experiment: str) -> list[str]:
    """Presets shipped for an experiment (``experiments/presets/<experiment>/<preset>.yaml``)."""
    folder = resources.files("experiments") / "presets" / experiment
    if not folder.is_dir():
        return []
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_preset(experiment: str, preset: str) -> dict[str, Any]:
    """A shipped preset by name, or any YAML file path."""
    if preset.endswith((".yaml", ".yml")) or os.sep in preset:
        return load_yaml(preset)
    resource = resources.files("experiments") / "presets" / experiment / f"{preset}.yaml"
    if not resource.is_file():
        available = preset_names(experiment)
        raise ConfigError(
            f"experiment {experiment!r} has no preset {preset!r}; "
            f"available: {', '.join(available) or 'none'} (or pass a YAML file path)"
        )
    with resources.as_file(resource) as path:
        return load_yaml(path)


def build_config(cls: type[T], preset: Mapping[str, Any] | None, overrides: Sequence[str]) -> T:
    """Defaults, then the preset mapping, then the overrides; all validated."""
    config = from_dict(cls, dict(preset or {}))
    return apply_overrides(config, overrides)
