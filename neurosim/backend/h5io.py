"""Crash-safe HDF5 edits shared by the runner's results files and the spike monitors."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py


@contextmanager
def atomic_h5_edit(path: str | os.PathLike[str], suffix: str = ".tmp") -> Iterator[h5py.File]:
    """Edit a copy of ``path`` (or a new file); on success it replaces ``path`` atomically.

    A process killed inside the block leaves the previous complete file (and at most a stale
    ``<name><suffix>`` copy, removed on the next edit), never a half-written one.
    """
    path = Path(path)
    tmp = path.with_name(path.name + suffix)
    mode = "w"
    if path.exists():
        shutil.copyfile(path, tmp)
        mode = "r+"
    try:
        with h5py.File(tmp, mode) as handle:
            yield handle
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
