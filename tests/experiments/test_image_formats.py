"""Image files in the formats users bring: 16-bit PNG and TIFF, float TIFF, OpenEXR and Radiance
HDR are written into tmp_path by their own writers (tifffile, OpenCV) and read back through
``experiments.images``: values, channel order and the PSNR peak; a fields_image run on an EXR
scores PSNR in the image's own range."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import tifffile

from experiments.images import load_image, read_image
from experiments.results import open_results
from experiments.runner import run_experiment
from neurosim.backend import InputError

os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
import cv2


def _rgb(height: int = 6, width: int = 5) -> np.ndarray:
    """A colour ramp with a distinct value in each channel (red rises along x, blue along y)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    return np.stack([x / (width - 1), 0.25 + 0 * x, y / (height - 1)], -1)


def test_sixteen_bit_png_keeps_its_depth_and_rgb_order(tmp_path: Path) -> None:
    rgb16 = np.round(_rgb() * 65535).astype(np.uint16)
    rgb16[0, 0] = [1, 2, 3]  # values an 8-bit path would lose
    path = tmp_path / "ramp16.png"
    assert cv2.imwrite(str(path), rgb16[..., ::-1])  # OpenCV writes BGR
    image = read_image(path)
    assert image.pixels.dtype == np.float32 and image.pixels.shape == (6, 5, 3)
    np.testing.assert_allclose(image.pixels, rgb16 / 65535.0, rtol=0, atol=1e-7)
    assert image.peak == 1.0 and not image.linear
    gray = tmp_path / "gray16.png"
    assert cv2.imwrite(str(gray), rgb16[..., 0])
    np.testing.assert_allclose(read_image(gray).pixels[..., 0], rgb16[..., 0] / 65535.0, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.uint16, np.float32])
def test_tiff_sixteen_bit_and_float(tmp_path: Path, dtype: type) -> None:
    values = _rgb() * (65535 if dtype is np.uint16 else 7.5)
    stored = np.round(values).astype(dtype) if dtype is np.uint16 else values.astype(dtype)
    path = tmp_path / "image.tif"
    tifffile.imwrite(path, stored, photometric="rgb")
    image = read_image(path)
    if dtype is np.uint16:
        np.testing.assert_allclose(image.pixels, stored / 65535.0, atol=1e-7)
        assert image.peak == 1.0 and not image.linear
    else:
        np.testing.assert_array_equal(image.pixels, stored)  # linear values as stored
        assert image.linear and image.peak == pytest.approx(7.5)


def test_openexr_and_radiance_hdr_are_linear_floats(tmp_path: Path) -> None:
    hdr = (_rgb() * 12.0 + 0.5).astype(np.float32)  # beyond [0, 1]: linear light
    exr = tmp_path / "scene.exr"
    rgbe = tmp_path / "scene.hdr"
    assert cv2.imwrite(str(exr), hdr[..., ::-1])
    assert cv2.imwrite(str(rgbe), hdr[..., ::-1])
    got = read_image(exr)
    np.testing.assert_array_equal(got.pixels, hdr)  # EXR float32 round-trips exactly
    assert got.linear and got.peak == pytest.approx(12.0)  # max - min of the data
    near = read_image(rgbe)
    # RGBE keeps 8 mantissa bits per channel beside a shared exponent: ~1% of the largest
    assert bool((np.abs(near.pixels - hdr) <= 0.01 * hdr.max(axis=-1, keepdims=True)).all())
    resized = load_image(str(exr), 4)
    assert resized.linear and resized.pixels.shape == (4, 4, 3) and resized.pixels.max() > 1.0


def test_bad_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_image(tmp_path / "missing.exr")
    broken = tmp_path / "broken.exr"
    broken.write_bytes(b"not an image")
    with pytest.raises(InputError, match="could not be decoded"):
        read_image(broken)
    nan = tmp_path / "nan.tif"
    tifffile.imwrite(nan, np.full((4, 4), np.nan, dtype=np.float32))
    with pytest.raises(InputError, match="NaN"):
        read_image(nan)


def test_fields_image_scores_an_exr_in_its_own_range(tmp_path: Path) -> None:
    """PSNR of a float image uses peak = max - min of the reference (here 12), recomputed from
    the stored prediction and target by its definition."""
    size = 12
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    scene = np.stack([12 * x, 6 * y, 3 + 0 * x], -1).astype(np.float32)
    path = tmp_path / "scene.exr"
    assert cv2.imwrite(str(path), scene[..., ::-1])
    result = run_experiment(
        "fields_image", [f"image={path}", f"size={size}", "model=ffn", "steps=6"], tmp_path, "tiny"
    )
    stored = open_results(result.run_dir)
    pred, target = np.asarray(stored.arrays["prediction"]), np.asarray(stored.arrays["target"])
    assert target.max() > 1.0  # not clipped to [0, 1]
    peak = float(target.max() - target.min())
    mse = float(np.mean((pred.astype(np.float64) - target) ** 2))
    assert result.metrics["psnr"] == pytest.approx(10 * math.log10(peak**2 / mse), abs=1e-4)
