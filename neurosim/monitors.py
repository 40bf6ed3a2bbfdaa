"""Monitors: record spikes and membrane potentials into an HDF5 file.

A :class:`Monitor` receives one tensor per time step (``record``) or a time-major block
(``record_sequence``), or hooks a module's forward pass (``attach``). Each recorded frame is

1. detached (the monitor never holds a tensor that requires grad, so recording does not keep
   the autograd graph of a run alive),
2. subsampled: every ``every``-th time step, and ``frame[select]`` of each frame (e.g.
   ``select=(slice(0, 4), slice(0, 100))`` keeps samples 0-3 and neurons 0-99),
3. cast to the storage dtype (``uint8`` suits spikes) and buffered on its device,
4. written incrementally to ``/arrays/<name>`` (shape ``[frames, *frame_shape]``, resizable) of
   an HDF5 file every ``flush_frames`` frames and on :meth:`Monitor.flush` / :meth:`Monitor.close`.

With ``target`` a path, each flush edits a temporary copy and replaces the file atomically
(``os.replace``), so the file stays readable whatever happens (the same rule as the run's
``results.h5``; pass ``experiment.results.path`` to record into a run's results, where the arrays
appear beside the run's other arrays). With ``target`` an open ``h5py.Group`` the monitor appends
in place; with ``target=None`` it keeps frames in memory only.

Example::

    spikes = Monitor("hidden_spikes", target=run_dir / "results.h5", dtype="uint8", every=2)
    volts = Monitor("hidden_v", target=run_dir / "results.h5", select=(0,))  # sample 0 only
    spikes.attach(net.layers[1])                      # a LIF inside a SpikingSequential
    volts.attach(net.layers[1], signal="membrane")
    out, states = net(x)                              # records T frames each
    spikes.close(); volts.close()                     # flush and detach
    fig = plot_spike_raster(read_monitor(run_dir / "results.h5", "hidden_spikes"), sample=0)

The plots live in :mod:`neurosim.plotting.spikes`; ``plot_spike_raster``,
``plot_membrane_traces`` and ``save_figure`` stay importable from here.

:meth:`Monitor.attach` taps a neurosim neuron's ``step``/``multi_step`` (so it also records
inside :class:`~neurosim.neurons.SpikingSequential`, which does not go through ``forward``) and
uses a forward hook on any other module.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeAlias

import h5py
import numpy as np
import torch
from torch import nn

from neurosim.backend import InputError
from neurosim.backend.h5io import atomic_h5_edit
from neurosim.functional.lif import NeuronSequence
from neurosim.neurons.base import SpikingNeuron
from neurosim.plotting.spikes import plot_membrane_traces, plot_spike_raster  # re-exported
from neurosim.plotting.style import save_figure  # re-exported

__all__ = [
    "Monitor",
    "MonitorHandle",
    "plot_membrane_traces",
    "plot_spike_raster",
    "read_monitor",
    "save_figure",
]

ARRAYS_GROUP = "arrays"
Target: TypeAlias = "str | os.PathLike[str] | h5py.Group | None"
Select: TypeAlias = "tuple[Any, ...] | None"


class MonitorHandle(Protocol):
    """What :meth:`Monitor.attach` returns: ``remove()`` stops the recording."""

    def remove(self) -> None:
        """Detach the monitor from the layer."""


_TAPS = "_neurosim_monitor_taps"
Tap = Callable[[torch.Tensor, Any, bool], None]


class _NeuronTap:
    """Handle of one monitor tapping one neuron; the last removal restores the neuron."""

    def __init__(self, neuron: SpikingNeuron, tap: Tap) -> None:
        self.neuron = neuron
        self.tap = tap

    def remove(self) -> None:
        taps: list[Tap] | None = self.neuron.__dict__.get(_TAPS)
        if taps is None or self.tap not in taps:
            return
        taps.remove(self.tap)
        if not taps:
            for key in ("step", "multi_step", _TAPS):
                self.neuron.__dict__.pop(key, None)


def _tap_neuron(neuron: SpikingNeuron, monitor: Monitor, signal: str) -> _NeuronTap:
    """Wrap ``neuron.step`` / ``neuron.multi_step`` (on this instance only) to feed ``monitor``."""

    def tap(output: torch.Tensor, membrane: Any, multi: bool) -> None:
        if signal == "membrane":
            if not isinstance(membrane, torch.Tensor):
                raise InputError(
                    f"monitor {monitor.name!r}: {type(neuron).__name__} exposes no membrane "
                    "(its state has no field v)"
                )
            output = membrane
        if multi:
            monitor.record_sequence(output)
        else:
            monitor.record(output)

    taps: list[Tap] | None = neuron.__dict__.get(_TAPS)
    if taps is None:
        taps = []
        step_fn = type(neuron).step
        multi_fn = type(neuron).multi_step
        active = taps

        def step(x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
            out, new_state = step_fn(neuron, x, state)
            for each in list(active):
                each(out, getattr(new_state, "v", None), False)
            return out, new_state

        def multi_step(x: torch.Tensor, state: Any = None) -> NeuronSequence:
            seq = multi_fn(neuron, x, state)
            for each in list(active):
                each(seq.spikes, seq.membrane, True)
            return seq

        neuron.__dict__["step"] = step
        neuron.__dict__["multi_step"] = multi_step
        neuron.__dict__[_TAPS] = taps
    taps.append(tap)
    return _NeuronTap(neuron, tap)


def _default_pick(output: Any) -> torch.Tensor:
    """A module's recorded tensor: the output itself, or the first element of a tuple output."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    raise InputError(
        f"monitor cannot pick a tensor from a module output of type {type(output).__name__}; "
        "pass pick=callable(output) -> tensor"
    )


class Monitor:
    """Records a stream of tensor frames, detached and subsampled, into ``/arrays/<name>``.

    Args:
        name: the dataset name (a single HDF5 name: no ``/``).
        target: a file path (atomic edits), an open ``h5py.Group`` (appended in place; the
            dataset goes into its ``arrays`` subgroup) or ``None`` (memory only).
        every: keep time steps ``t`` with ``t % every == 0`` (``t`` counts every recorded step).
        select: an index applied to each frame ``[*S]`` (``frame[select]``), or ``None``.
        dtype: storage dtype (``"uint8"`` for spikes, ``"float32"``, ``"float16"``); ``None``
            keeps float tensors as float32 and others as they are.
        flush_frames: write to the file after this many kept frames are buffered.
        compression: HDF5 filter for the dataset (``"gzip"``, ``"lzf"`` or ``None``).

    Attributes:
        frames: number of frames kept so far (written plus buffered).
        steps_seen: number of time steps offered (before ``every`` subsampling).
    """

    def __init__(
        self,
        name: str,
        *,
        target: Target = None,
        every: int = 1,
        select: Select = None,
        dtype: str | np.dtype[Any] | None = None,
        flush_frames: int = 1024,
        compression: str | None = "gzip",
    ) -> None:
        if not isinstance(name, str) or not name or "/" in name:
            raise InputError(f"monitor name must be a non-empty string without '/', got {name!r}")
        if not isinstance(every, int) or every < 1:
            raise InputError(f"monitor {name!r}: every must be a positive int, got {every!r}")
        if not isinstance(flush_frames, int) or flush_frames < 1:
            raise InputError(f"monitor {name!r}: flush_frames must be a positive int")
        if select is not None and not isinstance(select, tuple):
            select = (select,)
        if target is not None and not isinstance(target, (str, os.PathLike, h5py.Group)):
            raise InputError(
                f"monitor {name!r}: target must be a path, an h5py.Group or None, "
                f"got {type(target).__name__}"
            )
        self.name = name
        self.target = Path(target) if isinstance(target, (str, os.PathLike)) else target
        self.every = every
        self.select = select
        self.dtype = None if dtype is None else np.dtype(dtype)
        self.flush_frames = flush_frames
        self.compression = compression
        self.frames = 0
        self.steps_seen = 0
        self._written = 0
        self._frame_shape: tuple[int, ...] | None = None
        self._buffer: list[torch.Tensor] = []
        self._memory: list[np.ndarray] = []
        self._handles: list[MonitorHandle] = []

    # ------------------------------------------------------------------ recording
    def record(self, x: torch.Tensor) -> None:
        """Offer one time step ``x [*S]``; kept when ``steps_seen % every == 0``."""
        if not isinstance(x, torch.Tensor):
            raise InputError(f"monitor {self.name!r} records tensors, got {type(x).__name__}")
        self.record_sequence(x.unsqueeze(0))

    def record_sequence(self, xs: torch.Tensor) -> None:
        """Offer a time-major block ``xs [T, *S]`` (``T`` consecutive steps)."""
        if not isinstance(xs, torch.Tensor) or xs.dim() < 1:
            raise InputError(
                f"monitor {self.name!r} record_sequence expects a time-major tensor [T, *S], "
                f"got {type(xs).__name__} {tuple(getattr(xs, 'shape', ()))}"
            )
        steps = xs.shape[0]
        with torch.no_grad():
            start = (-self.steps_seen) % self.every
            kept = xs.detach()[start :: self.every]
            self.steps_seen += steps
            if kept.shape[0] == 0:
                return
            if self.select is not None:
                try:
                    kept = kept[(slice(None), *self.select)]
                except (IndexError, TypeError) as exc:
                    raise InputError(
                        f"monitor {self.name!r}: select {self.select!r} does not index a frame "
                        f"of shape {tuple(xs.shape[1:])} ({exc})"
                    ) from None
            shape = tuple(kept.shape[1:])
            if self._frame_shape is None:
                self._frame_shape = shape
            elif shape != self._frame_shape:
                raise InputError(
                    f"monitor {self.name!r} got a frame of shape {shape} after frames of shape "
                    f"{self._frame_shape}; every recorded step must have the same shape"
                )
            dtype = self._torch_storage_dtype(kept)
            self._buffer.append(kept.to(dtype=dtype, copy=True))
            self.frames += int(kept.shape[0])
        if self.frames - self._written >= self.flush_frames:
            self.flush()

    def _torch_storage_dtype(self, x: torch.Tensor) -> torch.dtype:
        if self.dtype is None:
            return torch.float32 if x.is_floating_point() else x.dtype
        return torch.from_numpy(np.zeros(0, dtype=self.dtype)).dtype

    def attach(
        self,
        module: nn.Module,
        *,
        signal: str = "spikes",
        pick: Callable[[Any], torch.Tensor] | None = None,
        sequence: bool = False,
    ) -> MonitorHandle:
        """Record a layer's output every time it runs.

        For a neurosim neuron (:class:`~neurosim.neurons.SpikingNeuron`, without ``pick``) the
        monitor taps its ``step`` and ``multi_step``, so it records however the neuron is run:
        called directly, stepped, or inside a :class:`~neurosim.neurons.SpikingSequential`
        (which calls ``multi_step``/``step``, not ``forward``). One step records one frame; a
        multi-step call records ``T`` frames (always time-major).

        For any other module it registers a forward hook recording ``pick(output)``.

        Args:
            module: the layer to watch.
            signal: for neurons, ``"spikes"`` (the output) or ``"membrane"`` (the membrane
                trace in multi-step mode, ``state.v`` in single-step mode).
            pick: for other modules, maps the output to the tensor to record; default the
                output, or its first element when it is a tuple.
            sequence: for other modules, the picked tensor is time-major ``[T, *S]`` rather
                than one step ``[*S]``.

        Returns:
            a handle; ``handle.remove()`` stops recording (:meth:`close` removes it too). The
            neuron tap lives on that neuron instance only; remove it before pickling the whole
            module with ``torch.save(module)`` (``state_dict`` is unaffected).
        """
        if signal not in ("spikes", "membrane"):
            raise InputError(f"monitor signal must be 'spikes' or 'membrane', got {signal!r}")
        if isinstance(module, SpikingNeuron) and pick is None:
            handle: MonitorHandle = _tap_neuron(module, self, signal)
        else:
            chooser = pick if pick is not None else _default_pick

            def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
                tensor = chooser(output)
                if sequence:
                    self.record_sequence(tensor)
                else:
                    self.record(tensor)

            handle = module.register_forward_hook(hook)
        self._handles.append(handle)
        return handle

    # ------------------------------------------------------------------ storage
    def _take_buffer(self) -> np.ndarray | None:
        if not self._buffer:
            return None
        block = torch.cat(self._buffer).cpu().numpy()
        self._buffer = []
        if self.dtype is not None:
            block = block.astype(self.dtype, copy=False)
        return block

    def _append(self, group: h5py.Group, block: np.ndarray) -> None:
        arrays = group.require_group(ARRAYS_GROUP)
        if self.name in arrays and self._written == 0:
            del arrays[self.name]  # a new recording replaces an old dataset of the same name
        if self.name in arrays:
            ds = arrays[self.name]
            if ds.shape[1:] != block.shape[1:] or ds.shape[0] != self._written:
                raise InputError(
                    f"monitor {self.name!r}: dataset {ds.name} in the file has shape {ds.shape}, "
                    f"which does not continue this recording ({self._written} frames of "
                    f"{block.shape[1:]}); another writer changed it"
                )
            ds.resize(self._written + block.shape[0], axis=0)
            ds[self._written :] = block
        else:
            chunk_t = max(1, min(self.flush_frames, (1 << 20) // max(1, block[0].nbytes)))
            ds = arrays.create_dataset(
                self.name,
                data=block,
                maxshape=(None, *block.shape[1:]),
                chunks=(chunk_t, *block.shape[1:]) if block.shape[1:] else (chunk_t,),
                compression=self.compression,
            )
            ds.attrs["every"] = self.every
            ds.attrs["select"] = repr(self.select)
            ds.attrs["kind"] = "neurosim-monitor"

    def flush(self) -> None:
        """Write buffered frames to the target now (no-op for memory-only monitors)."""
        block = self._take_buffer()
        if block is None:
            return
        if self.target is None:
            self._memory.append(block)
        elif isinstance(self.target, h5py.Group):
            self._append(self.target, block)
            self.target.file.flush()
        else:
            with atomic_h5_edit(self.target, ".monitor.tmp") as handle:
                self._append(handle, block)
        self._written += block.shape[0]

    def to_numpy(self) -> np.ndarray:
        """Every kept frame, ``[frames, *frame_shape]`` (flushes first; reads back the file)."""
        self.flush()
        if self._frame_shape is None:
            return np.zeros((0,), dtype=self.dtype or np.float32)
        if self.target is None:
            return np.concatenate(self._memory)
        if isinstance(self.target, h5py.Group):
            return np.asarray(self.target[ARRAYS_GROUP][self.name][()])
        return read_monitor(self.target, self.name)

    def state_dict(self) -> dict[str, int]:
        """Counters for resume; flushes first so the file holds exactly ``frames`` frames."""
        self.flush()
        return {"frames": self.frames, "steps_seen": self.steps_seen}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Continue a recording: truncate the stored dataset to ``state["frames"]`` frames.

        Frames recorded after the checkpoint by an interrupted run are dropped, so a resumed run
        ends with the same array as an uninterrupted one.
        """
        frames, seen = int(state["frames"]), int(state["steps_seen"])
        self._buffer = []
        if self.target is None:
            data = np.concatenate(self._memory) if self._memory else None
            self._memory = [] if data is None else [data[:frames]]
        elif frames > 0:
            if isinstance(self.target, h5py.Group):
                self._truncate(self.target, frames)
            else:
                with atomic_h5_edit(self.target, ".monitor.tmp") as handle:
                    self._truncate(handle, frames)
        self.frames = self._written = frames
        self.steps_seen = seen

    def _truncate(self, group: h5py.Group, frames: int) -> None:
        arrays = group.get(ARRAYS_GROUP)
        if arrays is None or self.name not in arrays or arrays[self.name].shape[0] < frames:
            raise InputError(
                f"monitor {self.name!r} cannot resume at {frames} frames: the file holds "
                f"{0 if arrays is None or self.name not in arrays else arrays[self.name].shape[0]}"
            )
        ds = arrays[self.name]
        ds.resize(frames, axis=0)
        self._frame_shape = tuple(ds.shape[1:])

    def close(self) -> None:
        """Flush and remove every hook this monitor attached."""
        self.flush()
        for handle in self._handles:
            handle.remove()
        self._handles = []


def read_monitor(path: str | os.PathLike[str], name: str) -> np.ndarray:
    """Read ``/arrays/<name>`` written by a :class:`Monitor` (a clear error if it is missing)."""
    path = Path(path)
    if not path.is_file() or not h5py.is_hdf5(path):
        raise InputError(f"{str(path)!r} is not a readable HDF5 file; expected monitor output")
    with h5py.File(path, "r") as handle:
        arrays = handle.get(ARRAYS_GROUP)
        if arrays is None or name not in arrays:
            have = sorted(arrays) if arrays is not None else []
            raise InputError(f"{str(path)!r} has no monitor array {name!r}; it has: {have}")
        return np.asarray(arrays[name][()])
