"""The registry of experiments: built-in families plus ``neurosim.experiments`` entry points."""

from __future__ import annotations

import difflib
import importlib
import logging
import pkgutil
from importlib.metadata import entry_points
from typing import Any

from experiments.base import Experiment
from neurosim.backend import InputError

log = logging.getLogger("neurosim.experiments")

_REGISTRY: dict[str, type[Experiment[Any]]] = {}

# Every module in this package registers one built-in experiment family when imported.
FAMILIES_PACKAGE = "experiments.families"

_loaded = False


def register(cls: type[Experiment[Any]]) -> type[Experiment[Any]]:
    """Class decorator: add an experiment to the registry under ``cls.name``."""
    name = getattr(cls, "name", None)
    if not isinstance(name, str) or not name:
        raise InputError(f"experiment class {cls.__qualname__} needs a non-empty `name`")
    existing = _REGISTRY.get(name)
    if existing is not None and existing is not cls:
        if (existing.__module__, existing.__qualname__) != (cls.__module__, cls.__qualname__):
            raise InputError(
                f"experiment name {name!r} is taken by {existing.__module__}.{existing.__qualname__}"
            )
    _REGISTRY[name] = cls
    return cls


def load_all() -> None:
    """Import the built-in families and every installed ``neurosim.experiments`` entry point."""
    global _loaded
    if _loaded:
        return
    package = importlib.import_module(FAMILIES_PACKAGE)
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{FAMILIES_PACKAGE}.{info.name}")
    for ep in entry_points(group="neurosim.experiments"):
        try:
            ep.load()
        except Exception as exc:
            log.warning("experiment plugin %r failed to load: %s", ep.name, exc)
    _loaded = True


def experiment_names() -> list[str]:
    """Names of every registered experiment."""
    load_all()
    return sorted(_REGISTRY)


def get_experiment(name: str) -> type[Experiment[Any]]:
    """The experiment class called ``name``; an unknown name lists the registered ones."""
    load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise InputError(
            f"unknown experiment {name!r}{hint}; registered: {', '.join(sorted(_REGISTRY))}"
        ) from None
