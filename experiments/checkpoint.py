"""Checkpoints: atomic, checksummed, weights-only ``torch.save`` files that survive module moves.

A checkpoint is a plain nested dict of tensors and Python scalars (loaded with
``weights_only=True``: no pickled classes, so moving a module never breaks an old checkpoint).
It holds the experiment's ``state_dict``, the global RNG states and the runner's counters.

``checkpoints/step_<N>.pt`` is written to a temporary file, synced and renamed into place; beside
it ``step_<N>.pt.sha256`` holds the SHA-256 of its bytes (``sha256sum -c`` reads it). Loading
verifies the checksum, so a damaged file (bad disk, a copy cut short, garbled bytes that
``torch.load`` would happily turn into NaN weights) is refused: :func:`find_checkpoint` then falls
back to the older of the two checkpoints a run keeps and logs a warning naming the damaged file.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from experiments.faults import pause_point
from neurosim.backend import InputError

log = logging.getLogger("neurosim.experiments")

CHECKPOINT_DIR = "checkpoints"
CHECKSUM_SUFFIX = ".sha256"
FORMAT = 2
KEEP = 2
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


def checksum_path(path: Path) -> Path:
    """The checksum file beside a checkpoint (``step_<N>.pt.sha256``)."""
    return path.with_name(path.name + CHECKSUM_SUFFIX)


def _write_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def save_checkpoint(run_dir: Path, step: int, payload: dict[str, Any], keep: int = KEEP) -> Path:
    """Write ``checkpoints/step_<step>.pt`` (and its checksum) atomically; keep the newest ``keep``.

    Two are kept so that a damaged newest checkpoint still leaves one to resume from.
    """
    folder = run_dir / CHECKPOINT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob("*.tmp"):  # left by a writer killed mid-write (runs are locked)
        stale.unlink(missing_ok=True)
    path = folder / f"step_{step:09d}.pt"
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, "step": step, **payload}, buffer)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    tmp = path.with_name(path.name + ".tmp")
    sum_tmp = checksum_path(path).with_name(checksum_path(path).name + ".tmp")
    _write_synced(tmp, data)
    _write_synced(sum_tmp, f"{digest}  {path.name}\n".encode())
    pause_point("checkpoint.replace", step)
    # Checksum first: a crash between the two renames leaves a new checksum beside an old (or
    # no) checkpoint, which fails verification instead of passing a stale file.
    os.replace(sum_tmp, checksum_path(path))
    os.replace(tmp, path)
    _sync_dir(folder)
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
        checksum_path(old).unlink(missing_ok=True)
    return path


def _sync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoint files of a run, oldest first."""
    folder = run_dir / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _PATTERN.match(p.name))]
    return [p for _, p in sorted(found)]


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load one checkpoint (weights only) after verifying its SHA-256.

    A damaged, truncated or unverifiable file is a :class:`CheckpointError`.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"checkpoint {str(path)!r} is unreadable: {exc.strerror}") from exc
    expected = _expected_digest(path)
    if expected is not None and hashlib.sha256(data).hexdigest() != expected:
        raise CheckpointError(
            f"checkpoint {str(path)!r} fails its SHA-256 check (the file is damaged)"
        )
    try:
        loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"checkpoint {str(path)!r} is unreadable ({type(exc).__name__}: {exc})"
        ) from exc
    if not isinstance(loaded, dict) or "step" not in loaded:
        raise CheckpointError(f"checkpoint {str(path)!r} is not a neurosim checkpoint")
    if expected is None and int(loaded.get("format", 1)) >= 2:
        raise CheckpointError(
            f"checkpoint {str(path)!r} has lost its checksum file "
            f"{checksum_path(path).name!r}, so it cannot be verified"
        )
    return loaded


def _expected_digest(path: Path) -> str | None:
    """The stored SHA-256 of a checkpoint, ``None`` without a checksum file (format 1)."""
    try:
        text = checksum_path(path).read_text()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CheckpointError(
            f"checksum file of checkpoint {str(path)!r} is unreadable: {exc.strerror}"
        ) from exc
    digest = text.split()[0] if text.split() else ""
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise CheckpointError(f"checksum file of checkpoint {str(path)!r} is damaged")
    return digest


def find_checkpoint(run_dir: Path) -> tuple[Path, dict[str, Any]] | None:
    """The newest checkpoint that verifies and loads, with its path.

    A damaged newest checkpoint is skipped with a warning naming it, and the next older one is
    used (a run keeps two).
    """
    skipped: list[str] = []
    for path in reversed(list_checkpoints(run_dir)):
        try:
            data = load_checkpoint(path)
        except CheckpointError as exc:
            log.warning("%s; falling back to an older checkpoint", exc)
            skipped.append(path.name)
            continue
        if skipped:
            log.warning(
                "resuming %s from the older checkpoint %s (step %d) instead of the damaged %s",
                run_dir,
                path.name,
                int(data["step"]),
                ", ".join(skipped),
            )
        return path, data
    if skipped:
        log.warning("no usable checkpoint in %s: the run starts again from step 0", run_dir)
    return None


def latest_checkpoint(run_dir: Path) -> dict[str, Any] | None:
    """The newest readable checkpoint of a run (older ones are tried when the newest is damaged)."""
    found = find_checkpoint(run_dir)
    return found[1] if found is not None else None
