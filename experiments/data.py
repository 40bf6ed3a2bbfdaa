"""Where external datasets live: a configurable data root.

Resolution order: the explicit argument (a run's ``data_root`` config key), then the
``NEUROSIM_DATA`` environment variable, then ``../shared/data`` next to the current directory or
next to the source checkout. Nothing is ever written there.
"""

from __future__ import annotations

import os
from pathlib import Path

from neurosim.backend import InputError

ENV_VAR = "NEUROSIM_DATA"


def data_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding datasets (``mnist/``, ``nerf/``, ``sdf/``, ``vpr/``)."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_dir():
            raise InputError(f"data_root {str(path)!r} is not a folder")
        return path
    env = os.environ.get(ENV_VAR)
    if env:
        path = Path(env).expanduser()
        if not path.is_dir():
            raise InputError(f"${ENV_VAR}={env!r} is not a folder")
        return path
    here = Path(__file__).resolve().parent.parent
    candidates = [Path.cwd() / ".." / "shared" / "data", here / ".." / "shared" / "data"]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    raise InputError(
        "no data root found: pass data_root=PATH, set $NEUROSIM_DATA, or place the datasets in "
        f"../shared/data (looked in: {', '.join(str(c) for c in candidates)})"
    )


def dataset_path(name: str, explicit: str | os.PathLike[str] | None = None, *, layout: str) -> Path:
    """``data_root()/name``, or an error that names the expected on-disk ``layout``."""
    path = data_root(explicit) / name
    if not path.exists():
        raise InputError(f"dataset {name!r} not found at {path}; expected layout: {layout}")
    return path
