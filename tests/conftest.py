"""Shared test set-up: CPU Triton interpreter, the one `gpu` marker, and data paths."""

from __future__ import annotations

import os

# Triton kernels run on the CPU through the interpreter in tests (must be set before import).
try:
    import torch

    _HAS_CUDA = torch.cuda.is_available()
except ImportError:  # pragma: no cover
    _HAS_CUDA = False
if not _HAS_CUDA:
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``gpu`` when no CUDA device is visible (the only allowed skip)."""
    if _HAS_CUDA:
        return
    skip = pytest.mark.skip(reason="needs a CUDA device (gpu marker)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def cpu() -> torch.device:
    return torch.device("cpu")


@pytest.fixture
def png_check():  # type: ignore[no-untyped-def]
    """``png_check(path, min_size=(w, h))``: the file is a non-blank PNG at least that large."""
    from tests._png import check_png

    return check_png
