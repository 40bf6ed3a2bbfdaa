"""Spiking Heidelberg Digits (SHD; Cramer et al. 2020) from its HDF5 files, binned into frames.

The files ``shd_train.h5`` and ``shd_test.h5`` (download the ``.h5.gz`` archives from
https://zenkelab.org/datasets/ and unpack them) hold, for ``N`` spoken digits::

    spikes/times   N variable-length float arrays: spike times in seconds (0 .. ~1.4 s)
    spikes/units   N variable-length integer arrays: the cochlear channel of each spike (0 .. 699)
    labels         N integers 0 .. 19 (English "zero".."nine" = 0..9, German "null".."neun" = 10..19)

(``extra/`` holds speakers and keys; it is not read). Put them in ``<data_root>/shd/`` (the data
root is ``$NEUROSIM_DATA`` or ``../shared/data``) or pass a path.

:func:`bin_spikes` turns one digit into frames of ``bin_size`` seconds: a dense ``[T, 700]`` count
tensor or a sparse COO tensor of the same shape (the reference ELM code bins to 10 ms and keeps
spikes before 1 s). Spikes at or after ``max_time`` are dropped.

Example::

    data = load_shd("shd_train.h5")
    frames = bin_spikes(data.times[0], data.units[0], bin_size=0.01, max_time=1.0)  # [100, 700]
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np
import torch

from neurosim.backend import InputError

SHD_UNITS = 700
SHD_CLASSES = 20
SHD_URL = "https://zenkelab.org/datasets/"
SHD_LAYOUT = (
    "an HDF5 file with spikes/times and spikes/units (one variable-length array per digit: "
    "spike times in seconds and channel indices 0..699) and labels (one integer per digit), "
    "as the Zenke lab's shd_train.h5 / shd_test.h5"
)


class SHDSplit(NamedTuple):
    """One SHD file in memory.

    Attributes:
        times: per digit, spike times (s), float32 arrays.
        units: per digit, channel of each spike, int64 arrays (same lengths as ``times``).
        labels: ``[N]`` int64 class labels.
        num_units: input channels (700).
    """

    times: list[np.ndarray]
    units: list[np.ndarray]
    labels: np.ndarray
    num_units: int = SHD_UNITS

    def __len__(self) -> int:
        return len(self.labels)


def shd_path(root: str | os.PathLike[str], split: str = "train") -> Path:
    """``<root>/shd/shd_<split>.h5``, or an :class:`InputError` saying where to get it."""
    if split not in ("train", "test"):
        raise InputError(f"SHD split must be 'train' or 'test', got {split!r}")
    path = Path(root) / "shd" / f"shd_{split}.h5"
    if not path.is_file():
        raise InputError(missing_message(path))
    return path


def missing_message(path: str | os.PathLike[str]) -> str:
    """Where to download SHD and where to put it."""
    path = Path(path)
    return (
        f"SHD file {str(path)!r} not found. Download shd_train.h5.gz and shd_test.h5.gz from "
        f"{SHD_URL} , unpack them (gunzip) and put shd_train.h5 / shd_test.h5 in "
        f"{str(path.parent)!r} (the folder <data_root>/shd/, with the data root $NEUROSIM_DATA "
        "or ../shared/data). Expected: " + SHD_LAYOUT
    )


def load_shd(path: str | os.PathLike[str], *, limit: int | None = None) -> SHDSplit:
    """Read an SHD HDF5 file (all digits, or the first ``limit``); layout errors are clear."""
    path = Path(path)
    if not path.is_file():
        raise InputError(missing_message(path))
    if not h5py.is_hdf5(path):
        raise InputError(f"{str(path)!r} is not an HDF5 file; expected {SHD_LAYOUT}")
    with h5py.File(path, "r") as handle:
        for key in ("spikes/times", "spikes/units", "labels"):
            if key not in handle:
                raise InputError(f"{str(path)!r} has no dataset {key!r}; expected {SHD_LAYOUT}")
        n = len(handle["labels"])
        count = n if limit is None else min(n, int(limit))
        if len(handle["spikes/times"]) != n or len(handle["spikes/units"]) != n:
            raise InputError(
                f"{str(path)!r}: spikes/times ({len(handle['spikes/times'])}), spikes/units "
                f"({len(handle['spikes/units'])}) and labels ({n}) must have one entry per digit"
            )
        times = [np.asarray(t, dtype=np.float32) for t in handle["spikes/times"][:count]]
        units = [np.asarray(u, dtype=np.int64) for u in handle["spikes/units"][:count]]
        labels = np.asarray(handle["labels"][:count], dtype=np.int64)
    for i, (t, u) in enumerate(zip(times, units, strict=True)):
        if t.shape != u.shape:
            raise InputError(f"{str(path)!r} digit {i}: {t.size} spike times but {u.size} units")
        if u.size and (u.min() < 0 or u.max() >= SHD_UNITS):
            raise InputError(f"{str(path)!r} digit {i}: units outside 0..{SHD_UNITS - 1}")
    if labels.size and (labels.min() < 0 or labels.max() >= SHD_CLASSES):
        raise InputError(f"{str(path)!r}: labels outside 0..{SHD_CLASSES - 1}")
    return SHDSplit(times, units, labels)


def bin_spikes(
    times: np.ndarray,
    units: np.ndarray,
    *,
    bin_size: float = 0.01,
    max_time: float = 1.0,
    num_units: int = SHD_UNITS,
    sparse: bool = False,
    binary: bool = False,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Spike counts per ``bin_size`` seconds and channel: ``[ceil(max_time / bin_size), units]``.

    Bin ``k`` holds spikes with ``k * bin_size <= t < (k + 1) * bin_size``; spikes at or after
    ``max_time`` are dropped. ``binary`` clips counts to 1; ``sparse`` returns a coalesced COO
    tensor (same values as the dense one).

    >>> bin_spikes(np.array([0.0, 0.004, 0.012]), np.array([1, 1, 0]), bin_size=0.01,
    ...            max_time=0.02, num_units=2).tolist()
    [[0.0, 2.0], [1.0, 0.0]]
    """
    if not (bin_size > 0 and max_time > 0):
        raise InputError(f"bin_size and max_time must be > 0, got {bin_size}, {max_time}")
    t = np.asarray(times, dtype=np.float64)
    u = np.asarray(units, dtype=np.int64)
    if t.shape != u.shape or t.ndim != 1:
        raise InputError(f"times {t.shape} and units {u.shape} must be 1-D of the same length")
    if u.size and (u.min() < 0 or u.max() >= num_units):
        raise InputError(f"units must lie in 0..{num_units - 1}")
    bins = int(np.ceil(max_time / bin_size - 1e-9))
    keep = (t >= 0) & (t < max_time)
    k = np.minimum(np.floor(t[keep] / bin_size + 1e-9).astype(np.int64), bins - 1)
    index = torch.from_numpy(np.stack([k, u[keep]]))
    values = torch.ones(index.shape[1], dtype=dtype)
    frames = torch.sparse_coo_tensor(
        index, values, (bins, num_units), check_invariants=True
    ).coalesce()
    if binary:
        frames = torch.sparse_coo_tensor(
            frames.indices(), frames.values().clamp(max=1), frames.shape, check_invariants=True
        ).coalesce()
    return frames if sparse else frames.to_dense()


def shd_batch(
    data: SHDSplit,
    indices: list[int] | np.ndarray | torch.Tensor,
    *,
    bin_size: float = 0.01,
    max_time: float = 1.0,
    binary: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense time-major frames ``[T, B, 700]`` and labels ``[B]`` of the digits ``indices``."""
    idx = [int(i) for i in (indices.tolist() if hasattr(indices, "tolist") else indices)]
    if not idx:
        raise InputError("shd_batch needs at least one index")
    for i in idx:
        if not 0 <= i < len(data):
            raise InputError(f"SHD index {i} out of range for {len(data)} digits")
    frames = [
        bin_spikes(data.times[i], data.units[i], bin_size=bin_size, max_time=max_time,
                   num_units=data.num_units, binary=binary)
        for i in idx
    ]  # fmt: skip
    return torch.stack(frames, dim=1), torch.from_numpy(data.labels[idx])


class SHDFrames(torch.utils.data.Dataset[tuple[torch.Tensor, int]]):
    """``dataset[i] -> (frames [T, 700], label)`` over one SHD file (dense or sparse frames)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        bin_size: float = 0.01,
        max_time: float = 1.0,
        sparse: bool = False,
        binary: bool = False,
    ) -> None:
        self.data = load_shd(path)
        self.bin_size, self.max_time = bin_size, max_time
        self.sparse, self.binary = sparse, binary

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"SHD index {i} out of range for {len(self)} digits")
        frames = bin_spikes(
            self.data.times[i], self.data.units[i], bin_size=self.bin_size,
            max_time=self.max_time, num_units=self.data.num_units, sparse=self.sparse,
            binary=self.binary,
        )  # fmt: skip
        return frames, int(self.data.labels[i])
