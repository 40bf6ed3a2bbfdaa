"""Plain-data specs: ``{"type": name, **options}`` mappings turned into calls with checked options.

Shared by the encoding registry (:mod:`fields.encodings`) and the model composition
(:mod:`fields.models`), so an unknown option name is the same clear error everywhere.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from neurosim.backend import InputError

Spec = Mapping[str, Any]
"""A mapping with a ``type`` key and that type's keyword options."""


def accepted_options(factory: Callable[..., Any]) -> set[str]:
    """Keyword names ``factory`` accepts (``self`` excluded)."""
    params = inspect.signature(factory).parameters
    return {
        n
        for n, p in params.items()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and n != "self"
    }


def call_with(
    kind: str, factory: Callable[..., Any], options: Mapping[str, Any], **fixed: Any
) -> Any:
    """``factory(**fixed, **options)``, with unknown option names turned into an :class:`InputError`.

    >>> call_with("pair", lambda a, b=1: (a, b), {"b": 2}, a=0)
    (0, 2)
    """
    accepted = accepted_options(factory)
    unknown = sorted(set(options) - accepted)
    if unknown:
        allowed = sorted(accepted - set(fixed) - {"generator"})
        raise InputError(f"unknown option(s) {unknown} for {kind}; expected some of {allowed}")
    clash = sorted(set(options) & set(fixed))
    if clash:
        raise InputError(f"option(s) {clash} of {kind} are set by the caller, not by the spec")
    return factory(**fixed, **options)


def split_spec(spec: Spec | None, what: str, default: str) -> tuple[str, dict[str, Any]]:
    """``(type, options)`` of a spec; ``None`` is ``(default, {})``."""
    if spec is None:
        return default, {}
    if not isinstance(spec, Mapping):
        raise InputError(f"{what} spec must be a mapping with a 'type', got {type(spec).__name__}")
    options = dict(spec)
    kind = str(options.pop("type", default))
    return kind, options
