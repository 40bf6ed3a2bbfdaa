"""HLOP: Hebbian-learning-based orthogonal projection (Xiao et al., ICLR 2024).

Each protected layer (``Linear`` / ``Conv``) gets a set of lateral subspace neurons ``H [k, d]``
that learn the principal subspace of the layer's presynaptic activity with Oja's subspace rule
(:mod:`neurosim.functional.hebbian`), alongside ordinary training and without gradients. At the
start of each task new rows are added; during the task only they learn (the rows of earlier
tasks are frozen) and the weight updates are projected off the frozen rows,
``dW <- dW (I - H_f^T H_f)`` (:class:`~neurosim.plasticity.projection.GradientProjection`); at
the end of the task the new rows are frozen too (merged; by default re-orthonormalised, so the
projection is exact onto their span). So the layer's response to the activity of earlier tasks
is kept, to the accuracy with which ``H_f`` spans it.

From plain PyTorch::

    hlop = HLOP(model, ["fc1", "fc2", "fc3"], hebbian=HebbianParameters(eta=0.5, iterations=2))
    for task in tasks:
        hlop.begin_task(rows=[80, 60, 60])  # new subspace neurons per layer (or one int)
        for x, y in batches(task):
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad(); loss.backward()
            apply_grad_transforms(model)      # the weight-mode projections
            optimizer.step()
            hlop.hebbian_update()             # Oja's rule on this batch's activity
        hlop.end_task()

With :class:`experiments.trainer.Trainer` the projection runs inside ``train_step``; register
``hlop.hebbian_update`` as an ``AFTER_STEP`` callback and call ``begin_task`` / ``end_task`` at
task boundaries (``experiments/families/continual_hlop.py`` does).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from neurosim.backend import InputError
from neurosim.functional.hebbian import (
    DEFAULT_HEBBIAN,
    HebbianParameters,
    HebbianState,
    add_rows,
    check_hebbian_parameters,
    freeze,
    init_state,
    subspace_update,
)
from neurosim.plasticity.projection import (
    LayerSpec,
    ProjectionMethod,
    freeze_biases_and_norms,
    input_dim,
)


class HLOP(ProjectionMethod):
    """Hebbian subspace neurons and orthogonal projection on ``layers`` of ``model``.

    Args:
        model: the network (its hooks and transforms are attached to the protected layers).
        layers: names of ``Linear`` / ``Conv1d`` / ``Conv2d`` submodules, or ``name -> module``.
            Multi-head: list the shared layers only; shared head: include the classifier.
        hebbian: rate, iterations per batch, momentum, normalisation of Oja's rule.
        signal: presynaptic signal the neurons learn from: ``"spikes"``, ``"rate"``
            (exponentially weighted firing rate) or ``"trace"`` (eligibility trace).
        decay: ``lambda`` of the rate and the trace.
        mode: ``"weight"`` (gradient transform), ``"input"`` (projected inputs in autograd) or
            ``"auto"`` (the cheaper per layer and call; see
            :class:`~neurosim.plasticity.projection.GradientProjection`).
        time_steps: ``T`` when layers see time folded into the batch (``[T * B, ...]``).
        freeze_bias: freeze the protected layers' biases and all normalisation layers from the
            second task on (their updates are not projected).
        max_rows: learn from at most this many activity rows per update (an evenly strided
            subset whose offset rotates from update to update), e.g. to bound the cost when a
            layer sees ``T * B`` rows; ``None`` = all rows.
        orthonormalize: at each merge, replace the rows by an orthonormal basis of their span
            (QR), so the projection is the exact orthogonal projector onto ``span(H)``; with
            ``False``, ``I - H^T H`` with the learned rows as they are (the reference code).
        generator: draws the initial new rows (orthonormal, orthogonal to the existing ones).
    """

    def __init__(
        self,
        model: nn.Module,
        layers: LayerSpec,
        *,
        hebbian: HebbianParameters = DEFAULT_HEBBIAN,
        signal: str = "spikes",
        decay: float = 0.5,
        mode: str = "auto",
        time_steps: int | None = None,
        freeze_bias: bool = True,
        max_rows: int | None = None,
        orthonormalize: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        check_hebbian_parameters(hebbian)
        self.orthonormalize = orthonormalize
        self.orthonormal_bases = orthonormalize
        if max_rows is not None and max_rows < 1:
            raise InputError(f"max_rows must be >= 1 or None, got {max_rows}")
        self.max_rows = max_rows
        self.updates = 0
        self.states: dict[str, HebbianState] = {}
        self._projected: dict[str, list[tuple[torch.Tensor, torch.Tensor]]] = {}
        self.frozen: dict[str, torch.Tensor] = {}
        super().__init__(
            model,
            layers,
            signal=signal,
            decay=decay,
            mode=mode,
            time_steps=time_steps,
            freeze_bias=freeze_bias,
        )
        self.hebbian = hebbian
        self.generator = generator
        for name, module in self.layers.items():
            weight = module.weight
            assert isinstance(weight, torch.Tensor)
            self.states[name] = init_state(input_dim(module), device=weight.device)
            self.frozen[name] = self.states[name].weight
            self._projected[name] = []

    def basis(self, name: str) -> torch.Tensor:
        """The frozen rows of layer ``name`` (the subspace of earlier tasks): projected off.

        One tensor for the whole task (so the projection can cache ``B^T B``)."""
        return self.frozen[name]

    def subspace(self, name: str) -> torch.Tensor:
        """Every row of layer ``name``, frozen and still learning."""
        return self.states[name].weight

    def _per_layer(self, rows: int | Sequence[int] | Mapping[str, int]) -> dict[str, int]:
        names = list(self.layers)
        if isinstance(rows, int):
            values = {n: rows for n in names}
        elif isinstance(rows, Mapping):
            unknown = sorted(set(rows) - set(names))
            if unknown or set(rows) != set(names):
                raise InputError(f"rows must name every protected layer {names}, got {list(rows)}")
            values = {n: int(rows[n]) for n in names}
        else:
            seq = list(rows)
            if len(seq) != len(names):
                raise InputError(f"rows needs one count per protected layer {names}, got {seq}")
            values = dict(zip(names, (int(r) for r in seq), strict=True))
        bad = {n: v for n, v in values.items() if v < 0}
        if bad:
            raise InputError(f"rows must be >= 0, got {bad}")
        return values

    def begin_task(self, rows: int | Sequence[int] | Mapping[str, int] = 0) -> None:  # type: ignore[override]
        """Start a task: add ``rows`` new subspace neurons per layer (capped at ``d``) and
        start learning them from the training forward passes."""
        counts = self._per_layer(rows)
        super().begin_task()
        for name, count in counts.items():
            self.states[name] = add_rows(self.states[name], count, self.generator)
        self.recorder.mode = "train"

    def _on_input_projection(self, name: str, rows: torch.Tensor, projected: torch.Tensor) -> None:
        if self.recorder.mode is not None and self.recorder.signal == "spikes":
            cache = self._projected[name]
            cache.append((rows, projected))
            if len(cache) > self.recorder.max_pending:
                cache.pop(0)

    def _residual(self, name: str) -> torch.Tensor | None:
        """``rows - H_f^T H_f rows`` of the recorded calls, if input-mode projection computed
        it for exactly those rows (same tensors, same order); else ``None``."""
        cached, self._projected[name] = self._projected[name], []
        queue = self.recorder.pending[name]
        if not cached or len(cached) != len(queue):
            return None
        parts = []
        for recorded, (rows, projected) in zip(queue, cached, strict=True):
            if recorded.data_ptr() != rows.data_ptr() or recorded.numel() != rows.numel():
                return None
            parts.append((rows - projected).reshape(recorded.shape))
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def hebbian_update(self, step: int | None = None) -> None:
        """Oja's subspace rule on the activity recorded since the last call (one call per step;
        ``step`` is ignored, so this can be a trainer callback)."""
        for name in self.layers:
            state = self.states[name]
            residual = self._residual(name)
            rows = self.recorder.take(name)
            if rows is None or state.weight.shape[0] == state.n_frozen:
                continue
            if self.max_rows and rows.shape[0] > self.max_rows:
                stride = -(-rows.shape[0] // self.max_rows)
                offset = self.updates % stride
                rows = rows[offset::stride]
                residual = None if residual is None else residual[offset::stride]
            if residual is None and state.n_frozen:
                residual = rows - self.projection.projected_rows(name, rows.to(state.weight.dtype))
            self.states[name] = subspace_update(
                state, rows, self.hebbian, residual=residual, inplace=True
            )
        self.updates += 1

    def end_task(self) -> None:
        """Freeze (merge) every row: the next tasks' updates are projected off them."""
        self.hebbian_update()
        for name in self.layers:
            state = freeze(self.states[name])
            if self.orthonormalize and state.weight.shape[0]:
                q, _ = torch.linalg.qr(state.weight.to(torch.float64).T)
                state = state._replace(weight=q.T.to(state.weight.dtype).contiguous())
            self.states[name] = state
            self.frozen[name] = state.weight.clone()
        super().end_task()

    def state_dict(self) -> dict[str, Any]:
        """Task counter and every layer's ``H``, frozen-row count and momentum."""
        return {
            "task": self.task,
            "in_task": self.in_task,
            "updates": self.updates,
            "states": {
                name: {"weight": s.weight, "n_frozen": s.n_frozen, "velocity": s.velocity}
                for name, s in self.states.items()
            },
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (the same layers)."""
        missing = sorted(set(self.layers) - set(state["states"]))
        if missing:
            raise InputError(f"HLOP state lacks layers {missing}")
        self.task = int(state["task"])
        self.in_task = bool(state["in_task"])
        for name in self.layers:
            s = state["states"][name]
            device = self.states[name].weight.device
            self.states[name] = HebbianState(
                s["weight"].to(device), int(s["n_frozen"]), s["velocity"].to(device)
            )
            self.frozen[name] = self.states[name].weight[: int(s["n_frozen"])].clone()
        self.updates = int(state.get("updates", 0))
        self.recorder.mode = "train" if self.in_task else None
        if self.task >= 1 and self.freeze_bias:
            freeze_biases_and_norms(self.model, self.layers)
