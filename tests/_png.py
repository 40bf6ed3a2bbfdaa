"""Shared check for plot tests: a rendered file is a non-empty image of the expected size
(the ``png_check`` fixture of ``tests/conftest.py``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def check_png(path: Path, min_size: tuple[int, int] = (200, 150)) -> np.ndarray:
    """Read a PNG and assert it is at least ``min_size`` (width, height) and not blank."""
    import matplotlib.image as mpimg

    assert path.is_file() and path.stat().st_size > 0, f"{path} was not written"
    image = mpimg.imread(path)
    height, width = image.shape[:2]
    assert width >= min_size[0] and height >= min_size[1], f"{path} is only {width}x{height}"
    rgb = image[..., :3]
    assert float(rgb.std()) > 0.01, f"{path} is a blank image"
    return image
