"""Image files for the fitting experiments, through maintained readers, in their own range.

:func:`read_image` returns ``[H, W, C]`` float32 pixels and how to score them:

* integer images (8-bit and 16-bit PNG, TIFF, JPEG, ...) are scaled by their type's maximum
  (``/255``, ``/65535``) into [0, 1]; their PSNR peak is 1, the range of the type;
* floating-point images (OpenEXR ``.exr``, Radiance ``.hdr``, float TIFF) keep their linear
  values as stored; their PSNR peak is the data range of the reference, ``max - min`` over its
  pixels (the convention of scikit-image's ``data_range`` for float data), as in
  :func:`fields.metrics.psnr` ``(..., data_range=peak)``.

Readers: OpenCV (``opencv-python-headless`` < 5; its 5.x wheels are built without OpenEXR) for
PNG (16-bit RGB included), ``.exr`` (with ``OPENCV_IO_ENABLE_OPENEXR=1``, set here before the
first import) and ``.hdr``; ``tifffile`` for TIFF (any bit depth, float); scikit-image's
``imread`` (imageio) for everything else. Colour comes back as RGB(A).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurosim.backend import InputError

OPENCV_SUFFIXES = (".png", ".exr", ".hdr")
TIFF_SUFFIXES = (".tif", ".tiff")


@dataclass(frozen=True)
class ImageData:
    """Pixels ``[H, W, C]`` float32 and the peak value of their PSNR.

    Attributes:
        pixels: the image (integer formats scaled to [0, 1], float formats as stored).
        peak: 1 for integer formats, ``max - min`` of the pixels for float formats.
        linear: stored as floating point (HDR / linear light), not as integers.
    """

    pixels: np.ndarray
    peak: float
    linear: bool


def _opencv() -> Any:
    os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")
    import cv2

    return cv2


def _read_raw(path: Path) -> np.ndarray:
    suffix = path.suffix.lower()
    if suffix in OPENCV_SUFFIXES:
        cv2 = _opencv()
        array = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if array is None:
            raise InputError(f"image file {str(path)!r} could not be decoded by OpenCV")
        if array.ndim == 3 and array.shape[2] in (3, 4):  # OpenCV stores BGR(A)
            order = [2, 1, 0, 3][: array.shape[2]]
            array = array[..., order]
        return np.asarray(array)
    if suffix in TIFF_SUFFIXES:
        import tifffile

        return np.asarray(tifffile.imread(path))
    from skimage import io

    return np.asarray(io.imread(path))


def read_image(path: str | os.PathLike[str]) -> ImageData:
    """The image at ``path`` as :class:`ImageData` (see the module docstring).

    Raises:
        InputError: the file is missing or cannot be decoded, or is not ``[H, W]`` /
            ``[H, W, C]`` of integer or floating-point pixels.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"image file {str(path)!r} does not exist")
    try:
        raw = _read_raw(path)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"image file {str(path)!r} could not be decoded: {exc}") from exc
    if raw.ndim == 2:
        raw = raw[..., None]
    if raw.ndim != 3 or raw.shape[0] < 1 or raw.shape[1] < 1:
        raise InputError(f"image {str(path)!r} has shape {raw.shape}; expected [H, W] or [H, W, C]")
    if raw.dtype == np.bool_:
        raw = raw.astype(np.uint8)
    if np.issubdtype(raw.dtype, np.integer):
        info = np.iinfo(raw.dtype)
        if info.min < 0:
            raise InputError(
                f"image {str(path)!r} has signed pixels ({raw.dtype}); expected unsigned"
            )
        return ImageData((raw.astype(np.float64) / info.max).astype(np.float32), 1.0, False)
    if not np.issubdtype(raw.dtype, np.floating):
        raise InputError(f"image {str(path)!r} has pixels of type {raw.dtype}; expected numbers")
    pixels = raw.astype(np.float32)
    if not np.isfinite(pixels).all():
        raise InputError(f"image {str(path)!r} has NaN or infinite pixels")
    return ImageData(pixels, image_peak(pixels), True)


def image_peak(pixels: np.ndarray) -> float:
    """PSNR peak of linear float pixels: their data range ``max - min`` (1 if constant)."""
    span = float(pixels.max() - pixels.min()) if pixels.size else 0.0
    return span if span > 0 else 1.0


SKIMAGE_IMAGES = ("camera", "astronaut", "coffee", "chelsea", "brick", "grass", "text", "rocket")
"""Sample images scikit-image ships (usable by name, no file needed)."""


def load_image(spec: str, size: int) -> ImageData:
    """A scikit-image sample name or an image file, RGB(A) cut to 3 channels, resized to
    ``size x size`` (anti-aliased); integer-format images clipped to [0, 1], float ones kept
    linear with ``peak`` their resized range."""
    from skimage import data, transform, util

    if spec in SKIMAGE_IMAGES:
        image = ImageData(util.img_as_float32(getattr(data, spec)()), 1.0, False)
    else:
        if not Path(spec).expanduser().is_file():
            raise InputError(
                f"image {spec!r} is neither a scikit-image sample ({', '.join(SKIMAGE_IMAGES)}) "
                "nor an existing image file"
            )
        image = read_image(spec)
    pixels = image.pixels
    if pixels.ndim == 2:
        pixels = pixels[..., None]
    pixels = pixels[..., :3]
    resized = transform.resize(pixels, (size, size), anti_aliasing=True).astype(np.float32)
    if not image.linear:
        return ImageData(np.clip(resized, 0.0, 1.0), 1.0, False)
    return ImageData(resized, image_peak(resized), True)
