"""Typed dataclass configs: strict loading, YAML presets and ``key=value`` overrides.

A config is a dataclass whose fields are all typed. Values come from the defaults, then a YAML
preset, then command-line overrides (``model.hidden=128``, nested keys with dots); each value is
checked against the field's type, and an unknown key or a wrong type is a :class:`ConfigError`
that names the key and lists the valid ones. Saved configs are plain YAML (no pickles).

Ranges are declared on the fields and checked when a config is built, before anything runs::

    @dataclass
    class MyConfig(RunConfig):
        hidden: int = bounded(64, ge=1)            # an integer >= 1
        dropout: float = bounded(0.1, ge=0, lt=1)  # a number in [0, 1)
        mode: str = one_of("fast", ("fast", "exact"))

        def validate(self) -> None:                # cross-field checks, after the ranges
            if self.mode == "exact" and self.hidden > 1024:
                raise ConfigRangeError("hidden", self.hidden, "<= 1024 when mode=exact")

A subclass that only changes a default (``hidden: int = 128``) keeps the range declared by its
base class. Errors name the full key (``optim.decoder.lr``) and the expected range.

>>> from experiments.base import RunConfig
>>> apply_overrides(RunConfig(), ["steps=5"]).steps
5
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import types
import typing
from collections.abc import Collection, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin

import yaml

from neurosim.backend import InputError

T = TypeVar("T")


class ConfigError(InputError):
    """A config key, value or file was wrong; the message names it and what was expected."""


RANGE = "neurosim.range"
CHOICES = "neurosim.choices"
MAX_SEED = 2**63 - 1


class ConfigRangeError(ConfigError):
    """A config value of the right type outside its declared range.

    Attributes:
        key: the (dotted) config key.
        value: the offending value.
        expected: what the range admits, in words.
    """

    def __init__(self, key: str, value: Any, expected: str) -> None:
        what = "not one of the choices" if expected.startswith("one of") else "out of range"
        super().__init__(f"config key {key!r} = {value!r} is {what}; expected {expected}")
        self.key, self.value, self.expected = key, value, expected

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.key, self.value, self.expected))

    def prefixed(self, prefix: str) -> ConfigRangeError:
        """The same error with ``prefix`` (``"optim.decoder."``) before the key."""
        return ConfigRangeError(prefix + self.key, self.value, self.expected)


def _bound_text(value: float) -> str:
    return "2**63 - 1" if value == MAX_SEED else f"{value:g}"


@dataclasses.dataclass(frozen=True)
class Range:
    """Bounds of a numeric config field (``ge``: >=, ``gt``: >, ``le``: <=, ``lt``: <).

    Floats must also be finite (NaN and infinities are never in a range).
    """

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def admits(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        return not (
            (self.ge is not None and value < self.ge)
            or (self.gt is not None and value <= self.gt)
            or (self.le is not None and value > self.le)
            or (self.lt is not None and value >= self.lt)
        )

    def describe(self, integer: bool) -> str:
        """``"an integer >= 1"``, ``"a finite number > 0"``, ``"a number in [0, 1)"``, ..."""
        kind = "an integer" if integer else "a finite number"
        low = ("[", self.ge) if self.ge is not None else ("(", self.gt)
        high = ("]", self.le) if self.le is not None else (")", self.lt)
        if low[1] is not None and high[1] is not None:
            kind = "an integer" if integer else "a number"
            return f"{kind} in {low[0]}{_bound_text(low[1])}, {_bound_text(high[1])}{high[0]}"
        if low[1] is not None:
            return f"{kind} {'>=' if low[0] == '[' else '>'} {_bound_text(low[1])}"
        if high[1] is not None:
            return f"{kind} {'<=' if high[0] == ']' else '<'} {_bound_text(high[1])}"
        return kind


def bounded(
    default: T,
    *,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
) -> T:
    """A dataclass field with ``default`` and a declared range, checked when a config is built.

    >>> import dataclasses
    >>> @dataclasses.dataclass
    ... class C(Checked):
    ...     steps: int = bounded(10, ge=1)
    >>> C(steps=0)
    Traceback (most recent call last):
    ...
    experiments.config.ConfigRangeError: config key 'steps' = 0 is out of range; expected an integer >= 1
    """
    spec = Range(ge=ge, gt=gt, le=le, lt=lt)
    if not spec.admits(default):
        raise ValueError(f"default {default!r} is outside its own range {spec}")
    return typing.cast(T, dataclasses.field(default=default, metadata={RANGE: spec}))


def one_of(default: T, choices: Collection[Any]) -> T:
    """A dataclass field with ``default`` that must be one of ``choices``.

    ``choices`` is read when a config is checked, so a live registry (a dict or set that grows as
    components register) admits what is registered by then.
    """
    return typing.cast(T, dataclasses.field(default=default, metadata={CHOICES: choices}))


def _field_metadata(cls: type, name: str, key: str) -> Any:
    """The ``key`` metadata of field ``name``, looked up along the MRO (a subclass that only
    changes a default keeps its base's range)."""
    for klass in cls.__mro__:
        found = getattr(klass, "__dataclass_fields__", {}).get(name)
        if found is not None and key in found.metadata:
            return found.metadata[key]
    return None


def _field_expectation(cls: type, name: str) -> str | None:
    spec = _field_metadata(cls, name, RANGE)
    if spec is not None:
        integer = field_types(cls).get(name) is int
        return typing.cast(str, spec.describe(integer))
    choices = _field_metadata(cls, name, CHOICES)
    if choices is not None:
        return f"one of {sorted(choices)}"
    return None


def check_config(config: Any) -> None:
    """Check the declared ranges and choices of ``config``'s fields, then its ``validate()``.

    Raises :class:`ConfigRangeError` naming the key (relative to ``config``; :func:`from_dict`
    adds the section prefix). Nested sections are checked when they are built.
    """
    cls = type(config)
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        spec = _field_metadata(cls, f.name, RANGE)
        if spec is not None and not spec.admits(value):
            raise ConfigRangeError(f.name, value, spec.describe(field_types(cls)[f.name] is int))
        choices = _field_metadata(cls, f.name, CHOICES)
        if choices is not None and value not in choices:
            raise ConfigRangeError(f.name, value, f"one of {sorted(choices)}")
    validate = getattr(config, "validate", None)
    if callable(validate):
        validate()


class Checked:
    """Mixin of config dataclasses: construction checks the declared ranges (:func:`bounded`,
    :func:`one_of`), then the cross-field :meth:`validate` hook."""

    def __post_init__(self) -> None:
        check_config(self)

    def validate(self) -> None:
        """Cross-field checks; raise :class:`ConfigRangeError` (override in a subclass)."""


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
        kwargs[key] = _coerce_field(cls, str(key), value, types_[key], f"{prefix}{key}")
    try:
        config = cls(**kwargs)
        check_config(config)  # again, in case a subclass's __post_init__ skipped Checked's
        return config
    except ConfigRangeError as exc:
        raise exc.prefixed(prefix) from None
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"config {cls.__name__}: {exc}") from exc


def _coerce_field(cls: type, name: str, value: Any, tp: Any, key: str) -> Any:
    """:func:`coerce` for field ``name`` of ``cls``; a value of the wrong type for a ranged field
    (``seed=1e23``, a float for an integer) reports the range too."""
    try:
        return coerce(value, tp, key)
    except ConfigRangeError:
        raise
    except ConfigError as exc:
        expected = _field_expectation(cls, name)
        if expected is None:
            raise
        raise ConfigError(f"{exc}; the range is {expected}") from None


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
            owner = cls if depth == 0 else _section_type(cls, parts[:depth])
            node[part] = _coerce_field(owner, part, value, tp, key)
        else:
            child = node.get(part)
            if not isinstance(child, dict):
                child = to_dict(child) if dataclasses.is_dataclass(child) else {}
                node[part] = child
            node = child


def _section_type(cls: type, parts: Sequence[str]) -> type:
    tp: Any = cls
    for part in parts:
        tp = field_types(tp)[part]
    return typing.cast(type, tp)


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
