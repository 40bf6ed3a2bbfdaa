"""MNIST from the original IDX files (LeCun et al.), gzipped or not.

The IDX format is a big-endian header followed by raw bytes:

* images: magic ``0x00000803`` (2051), ``n``, ``rows``, ``cols``, then ``n * rows * cols`` uint8;
* labels: magic ``0x00000801`` (2049), ``n``, then ``n`` uint8 in ``0..9``.

:func:`load_mnist` checks both headers, the payload sizes, that the two files agree on ``n`` and
that every label is a digit; any mismatch is an :class:`~neurosim.backend.InputError` that names
the file and the expected layout (:data:`MNIST_LAYOUT`). Nothing is downloaded or written.

Example::

    split = load_mnist("../shared/data/mnist", "t10k")
    split.images.shape, split.labels.shape   # (10000, 28, 28) uint8, (10000,) int64
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from neurosim.backend import InputError

IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
SPLITS = ("t10k", "train")

MNIST_LAYOUT = (
    "a folder holding the original IDX files, gzipped or not: "
    "<root>/t10k-images-idx3-ubyte.gz and <root>/t10k-labels-idx1-ubyte.gz "
    "(10,000 test digits); optionally train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz"
)


class MnistSplit(NamedTuple):
    """One MNIST split.

    Attributes:
        images: ``[N, 28, 28]`` uint8 grey levels ``0..255`` (white digit on black).
        labels: ``[N]`` int64 digits ``0..9``.
    """

    images: torch.Tensor
    labels: torch.Tensor


def _find(root: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        path = root / name
        if path.is_file():
            return path
    raise InputError(f"MNIST file {stem}(.gz) not found in {root}; expected layout: {MNIST_LAYOUT}")


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                return handle.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(
            f"MNIST file {path} is unreadable or corrupt ({exc}); expected layout: {MNIST_LAYOUT}"
        ) from exc


def _parse_idx(path: Path, magic: int, ndim: int) -> np.ndarray:
    data = _read_bytes(path)
    header = 4 + 4 * ndim
    if len(data) < header:
        raise InputError(
            f"MNIST file {path} is {len(data)} bytes, shorter than its {header}-byte IDX header"
        )
    found = struct.unpack(">i", data[:4])[0]
    if found != magic:
        raise InputError(
            f"MNIST file {path} has IDX magic number {found}, expected {magic}; "
            f"expected layout: {MNIST_LAYOUT}"
        )
    dims = struct.unpack(f">{ndim}i", data[4:header])
    expected = int(np.prod(dims)) + header
    if len(data) != expected:
        raise InputError(
            f"MNIST file {path} is {len(data)} bytes but its header {dims} needs {expected} "
            "(truncated or corrupt)"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def load_mnist(root: str | os.PathLike[str], split: str = "t10k") -> MnistSplit:
    """Read one MNIST split from ``root`` (see :data:`MNIST_LAYOUT`).

    Args:
        root: the folder with the IDX files (e.g. ``experiments.data.dataset_path("mnist")``).
        split: ``"t10k"`` (the 10,000 test digits) or ``"train"`` (60,000).

    Returns:
        :class:`MnistSplit` with ``images [N, 28, 28]`` uint8 and ``labels [N]`` int64 (CPU).

    Raises:
        InputError: missing folder or file, wrong magic number, truncated payload, image and label
            counts that disagree, or a label outside ``0..9``.
    """
    if split not in SPLITS:
        raise InputError(f"MNIST split must be one of {SPLITS}, got {split!r}")
    folder = Path(root)
    if not folder.is_dir():
        raise InputError(f"MNIST folder {folder} not found; expected layout: {MNIST_LAYOUT}")
    images = _parse_idx(_find(folder, f"{split}-images-idx3-ubyte"), IMAGES_MAGIC, 3)
    labels = _parse_idx(_find(folder, f"{split}-labels-idx1-ubyte"), LABELS_MAGIC, 1)
    if images.shape[0] != labels.shape[0]:
        raise InputError(
            f"MNIST {split}: {images.shape[0]} images but {labels.shape[0]} labels; expected equal"
        )
    if labels.size and int(labels.max()) > 9:
        raise InputError(f"MNIST {split} labels contain {int(labels.max())}; expected 0..9")
    return MnistSplit(torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64)))


def split_indices(n: int, n_holdout: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random split of ``range(n)`` into ``(train, holdout)`` index tensors.

    ``holdout`` has ``n_holdout`` indices, ``train`` the other ``n - n_holdout``; both sorted, and
    the same for the same ``(n, n_holdout, seed)`` on every machine (a CPU generator).
    """
    if not 0 < n_holdout < n:
        raise InputError(f"n_holdout must be in 1..{n - 1} for {n} samples, got {n_holdout}")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_holdout:].sort().values, perm[:n_holdout].sort().values


def load_sklearn_digits() -> MnistSplit:
    """The 1,797 handwritten digits that scikit-learn ships, laid out like MNIST.

    scikit-learn's ``load_digits`` images are 8x8 with grey levels 0..16. Each is resized
    bilinearly to 20x20 and centred in a 28x28 frame (MNIST puts its digits in a 20x20 box),
    and scaled to uint8 0..255, so MNIST models and pipelines run on them unchanged. Used as the
    embedded default of the demo: no download, no data root.

    Returns:
        :class:`MnistSplit` with ``images [1797, 28, 28]`` uint8 and ``labels [1797]`` int64.
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    small = torch.from_numpy(digits.images.astype(np.float32) / 16.0).unsqueeze(1)
    box = torch.nn.functional.interpolate(
        small, size=(20, 20), mode="bilinear", align_corners=False
    )
    frame = torch.nn.functional.pad(box, [4, 4, 4, 4])[:, 0]
    images = (frame.clamp(0, 1) * 255).round().to(torch.uint8)
    return MnistSplit(images, torch.from_numpy(digits.target.astype(np.int64)))
