"""CUDA-graph replays of the ELM memory scan's time loops (the ``cuda_graph`` backend).

On a GPU the memory recurrence is ``T`` steps of ~6 tiny kernels each, so its time is mostly
launch overhead. This backend captures :func:`~neurosim.functional.elm.forward_loop` and
:func:`~neurosim.functional.elm.backward_loop` once per shape (batch, steps, sizes, dtype,
device, activation) into a ``torch.cuda.CUDAGraph`` over static buffers; each call copies its
inputs into the static buffers, replays the graph and clones the outputs (so results saved for
backward are never overwritten by a later call). The last ``max_entries`` shapes are kept.

Not chosen by ``backend="auto"``: name it (``ELM(..., backend="cuda_graph")``). The maths and
the autograd function are those of the ``loop`` backend.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch

from neurosim.functional.elm import (
    BackwardWeights,
    ForwardWeights,
    backward_loop,
    forward_loop,
    run_memory_scan,
)

Capture = Callable[[Callable[[], None]], Callable[[], None]]


def cuda_capture(body: Callable[[], None]) -> Callable[[], None]:
    """Warm ``body`` up on a side stream, capture it into a CUDA graph, return its replay."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        body()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        body()
    return graph.replay


def _clone_like(x: Any) -> Any:
    if isinstance(x, tuple):
        return tuple(t.clone() for t in x)
    return x.clone()


def _copy_into(static: Any, value: Any) -> None:
    if isinstance(static, tuple):
        for s, v in zip(static, value, strict=True):
            s.copy_(v)
    else:
        static.copy_(value)


class GraphLoops:
    """Time-loop runner replaying captured graphs (``capture`` is injectable for tests)."""

    def __init__(self, capture: Capture = cuda_capture, max_entries: int = 4) -> None:
        self.capture = capture
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[Any, ...], tuple[Any, ...]] = OrderedDict()

    def _entry(self, key: tuple[Any, ...], build: Callable[[], tuple[Any, ...]]) -> tuple[Any, ...]:
        entry = self._entries.get(key)
        if entry is None:
            entry = build()
            self._entries[key] = entry
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        else:
            self._entries.move_to_end(key)
        return entry

    def forward(
        self, p: torch.Tensor, m0: torch.Tensor, w: ForwardWeights, relu: bool
    ) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        steps, batch, hidden = p.shape
        dm = m0.shape[1]
        key = ("forward", steps, batch, hidden, dm, len(w.wh_t), relu, p.dtype, p.device)

        def build() -> tuple[Any, ...]:
            inputs = (p.clone(), m0.clone(), ForwardWeights(*(_clone_like(x) for x in w)))
            new = p.new_empty
            hs = [new(steps, batch, hidden) for _ in range(len(w.wh_t) + 1)]
            sig, mem = new(steps, batch, dm), new(steps, batch, dm)
            scratch, zo = new(batch, hidden), new(batch, dm)

            def body() -> None:
                forward_loop(inputs[0], inputs[1], inputs[2], hs, sig, mem, scratch, zo, relu)

            return inputs, (hs, sig, mem), self.capture(body)

        inputs, (hs, sig, mem), replay = self._entry(key, build)
        inputs[0].copy_(p)
        inputs[1].copy_(m0)
        for static, value in zip(inputs[2], w, strict=True):
            _copy_into(static, value)
        replay()
        return [h.clone() for h in hs], sig.clone(), mem.clone()

    def backward(
        self,
        gext: torch.Tensor,
        w: BackwardWeights,
        dtanh: torch.Tensor,
        dact: list[torch.Tensor],
        keep_all: bool,
    ) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        steps, batch, dm = dtanh.shape
        hidden = dact[0].shape[2]
        key = (
            "backward", steps, batch, hidden, dm, len(w.wh), keep_all, dact[0].dtype,
            dtanh.dtype, dtanh.device,
        )  # fmt: skip

        def build() -> tuple[Any, ...]:
            inputs = (
                gext.clone(), BackwardWeights(*(_clone_like(x) for x in w)), dtanh.clone(),
                [d.clone() for d in dact],
            )  # fmt: skip
            gm = dtanh.new_empty(steps if keep_all else 2, batch, dm)
            gzo = torch.empty_like(dtanh)
            gz = [dtanh.new_empty(d.shape) for d in dact]
            ga = dtanh.new_empty(batch, hidden)

            def body() -> None:
                backward_loop(inputs[0], inputs[1], inputs[2], inputs[3], gm, gzo, gz, ga)

            return inputs, (gm, gzo, gz), self.capture(body)

        inputs, (gm, gzo, gz), replay = self._entry(key, build)
        inputs[0].copy_(gext)
        for static, value in zip(inputs[1], w, strict=True):
            _copy_into(static, value)
        inputs[2].copy_(dtanh)
        for static, value in zip(inputs[3], dact, strict=True):
            static.copy_(value)
        replay()
        return gm.clone(), gzo.clone(), [g.clone() for g in gz]


elm_memory_scan_cuda_graph = functools.partial(run_memory_scan, GraphLoops())
"""The ``cuda_graph`` backend of ``elm_memory_scan``."""
