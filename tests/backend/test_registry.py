"""Kernel registry semantics on a private registry with fake backends."""

from __future__ import annotations

import os
from typing import Any

import pytest
import torch

from neurosim.backend import (
    Backend,
    BackendUnavailableError,
    InputError,
    KernelRegistry,
    Operation,
    check_tensor,
    module_missing,
    triton_available,
)


def _double(x: torch.Tensor) -> torch.Tensor:
    return 2 * x


def _validate(x: torch.Tensor) -> None:
    check_tensor(x, "double input x")


def _make_registry() -> KernelRegistry:
    registry = KernelRegistry()
    registry.register(
        Operation(
            name="double",
            reference=_double,
            validate=_validate,
            example=lambda d, t, g: ((torch.randn(3, generator=g).to(d, t),), {}),
            bad_inputs=lambda d: [],
        )
    )
    return registry


def test_reference_backend_is_added_and_auto_picks_fastest_available() -> None:
    registry = _make_registry()
    registry.register_backend("double", Backend("fast", lambda: lambda x: x + x, priority=5))
    registry.register_backend(
        "double",
        Backend("missing", lambda: _double, priority=9, available=lambda d: "not installed"),
    )
    assert registry.backends("double") == ["missing", "fast", "torch"]
    picked = registry.resolve("double", "auto", torch.device("cpu"))
    assert picked.backend == "fast"
    assert "missing" in picked.reason and "not installed" in picked.reason
    out = registry.call("double", torch.ones(2), backend="auto")
    assert torch.equal(out, torch.full((2,), 2.0))


def test_auto_respects_auto_devices() -> None:
    registry = _make_registry()
    registry.register_backend(
        "double",
        Backend("gpu_only_auto", lambda: _double, priority=5, auto_devices=frozenset({"cuda"})),
    )
    assert registry.resolve("double", "auto", torch.device("cpu")).backend == "torch"
    assert (
        registry.resolve("double", "gpu_only_auto", torch.device("cpu")).backend == "gpu_only_auto"
    )


def test_unavailable_backend_raises_with_reason_and_chained_import_error() -> None:
    registry = _make_registry()
    registry.register_backend(
        "double",
        Backend(
            "ghost", lambda: _double, available=module_missing("no_such_pkg_xyz", "pip install x")
        ),
    )
    with pytest.raises(BackendUnavailableError, match="no_such_pkg_xyz"):
        registry.resolve("double", "ghost", torch.device("cpu"))

    def broken_loader() -> Any:
        import no_such_pkg_xyz  # type: ignore[import-not-found]  # noqa: F401

    registry.register_backend("double", Backend("broken", broken_loader))
    with pytest.raises(BackendUnavailableError, match="failed to load") as info:
        registry.resolve("double", "broken", torch.device("cpu"))
    assert isinstance(info.value.__cause__, ImportError)


def test_auto_skips_a_backend_whose_loader_fails() -> None:
    registry = _make_registry()

    def broken() -> Any:
        raise ImportError("boom")

    registry.register_backend("double", Backend("broken", broken, priority=5))
    assert registry.resolve("double", "auto", torch.device("cpu")).backend == "torch"


def test_unknown_names_are_clear_errors() -> None:
    registry = _make_registry()
    with pytest.raises(InputError, match="unknown operation 'triple'"):
        registry.resolve("triple", "auto", torch.device("cpu"))
    with pytest.raises(InputError, match="no backend 'cuda_magic'.*torch"):
        registry.resolve("double", "cuda_magic", torch.device("cpu"))
    with pytest.raises(InputError, match="already registered"):
        registry.register(registry.operation("double"))


def test_call_validates_before_running() -> None:
    registry = _make_registry()
    with pytest.raises(InputError, match="non-finite"):
        registry.call("double", torch.tensor([float("nan")]))


def test_triton_on_cpu_needs_the_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    reason = triton_available(torch.device("cpu"))
    assert reason is not None and "TRITON_INTERPRET" in reason
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    assert triton_available(torch.device("cpu")) is None
    assert os.environ["TRITON_INTERPRET"] == "1"
