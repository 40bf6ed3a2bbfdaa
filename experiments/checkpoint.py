"""Checkpoints: atomic, weights-only ``torch.save`` files that survive module moves.

A checkpoint is a plain nested dict of tensors and Python scalars (loaded with
``weights_only=True``: no pickled classes, so moving a module never breaks an old checkpoint).
It holds the experiment's ``state_dict``, the global RNG states and the runner's counters.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from neurosim.backend import InputError

CHECKPOINT_DIR = "checkpoints"
_PATTERN = re.compile(r"^step_(\d+)\.pt$")


class CheckpointError(InputError):
    """A checkpoint could not be read."""


def rng_state() -> dict[str, Any]:
    """Global RNG states (Python, NumPy, torch CPU and CUDA) as plain data and tensors."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # type: ignore[misc]  # noqa: NPY002
    state: dict[str, Any] = {
        "python": [list(x) if isinstance(x, tuple) else x for x in random.getstate()],
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached": float(cached),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy = state["numpy"]
    np.random.set_state(  # noqa: NPY002
        (
            numpy["kind"],
            numpy["keys"].numpy().astype(np.uint32),
            numpy["pos"],
            numpy["has_gauss"],
            numpy["cached"],
        )
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(run_dir: Path, step: int, payload: dict[str, Any], keep: int = 2) -> Path:
    """Write ``checkpoints/step_<step>.pt`` atomically and keep the newest ``keep`` files."""
    folder = run_dir / CHECKPOINT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step_{step:09d}.pt"
    tmp = path.with_suffix(".pt.tmp")
    torch.save({"format": 1, "step": step, **payload}, tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoint files of a run, oldest first."""
    folder = run_dir / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _PATTERN.match(p.name))]
    return [p for _, p in sorted(found)]


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load one checkpoint (weights only); a corrupt file is a :class:`CheckpointError`."""
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is unreadable ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(data, dict) or "step" not in data:
        raise CheckpointError(f"checkpoint {str(path)!r} is not a neurosim checkpoint")
    return data


def latest_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    """The newest readable checkpoint of a run (older ones are tried when the newest is corrupt)."""
    for path in reversed(list_checkpoints(run_dir)):
        try:
            return load_checkpoint(path)
        except CheckpointError:
            continue
    return None
