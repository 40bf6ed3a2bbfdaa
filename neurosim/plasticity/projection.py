"""Gradient projection for continual learning: presynaptic recording, projection hooks, freezing.

The pieces shared by :class:`~neurosim.plasticity.hlop.HLOP` (Hebbian subspace) and
:class:`SVDProjection` (exact subspace from an SVD of stored activity, GPM-like):

* :class:`PresynapticRecorder`: forward pre-hooks that keep the presynaptic activity of
  protected ``Linear`` / ``Conv1d`` / ``Conv2d`` layers as rows ``[N, d]`` (patch rows for
  convolutions), in one of the signals of :mod:`neurosim.functional.hebbian`.
* :class:`GradientProjection`: makes each protected layer's weight update orthogonal to a basis
  ``B [k, d]`` of protected inputs, ``dW <- dW (I - B^T B)``, in one of three modes:

  - ``"weight"``: a gradient transform (:func:`neurosim.backend.register_grad_transform`) on the
    layer's ``weight``; it runs after backward (and after DDP's all-reduce), before the
    optimizer, when :func:`neurosim.backend.apply_grad_transforms` is called (the trainer does).
    Cost per step: ``out * d * r`` multiply-adds, ``r`` the cost of the cheapest
    :class:`Projector` form (``2k`` with ``B``, ``d`` with ``B^T B``, ``2 (d - k)`` with the
    orthonormal complement).
  - ``"input"``: the paper's form, ``dW = g (x - B^T B x)^T``, inside autograd, so the gradient
    that reaches ``weight.grad`` (and DDP's all-reduce, and the fp16 scaler) is already
    projected; nothing to call after backward. For a ``Linear`` a forward hook re-attaches the
    layer's output to a node whose backward computes the weight gradient once, from the
    projected input rows (the layer's own weight-gradient product is never run): extra cost
    ``N * d * r`` for ``N`` input rows, the projection of the rows (which HLOP's Hebbian update
    reuses). For a convolution the hook adds a weight-gradient term ``-g (B^T B x)^T`` to the
    output node: ``N * d * (r + out)`` for ``N`` patches.
  - ``"auto"`` (the default of :class:`ProjectionMethod`): the cheaper of the two, per layer and
    call. Fewer input rows than outputs (an MLP's first layer, one row per sample) favour input
    mode; many rows (conv patches, time steps) favour weight mode. With
    ``apply_grad_transforms`` called as in weight mode, the result is the same projection
    either way.

  In every mode the forward values and the gradients with respect to the layer's input are
  unchanged; only the weight gradient is projected (biases are not: see ``freeze_bias``).
* :class:`ProjectionMethod`: the task protocol (``begin_task`` / ``end_task``), the layers, and
  the option to freeze biases and normalisation layers from the second task on.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple

import torch
from torch import nn

from neurosim.backend import InputError, register_grad_transform
from neurosim.backend.grad import GradTransformHandle
from neurosim.functional.hebbian import SIGNALS, presynaptic_signal
from neurosim.functional.projection import (
    extend_basis,
    orthonormality_error,
    principal_angles,
    project_weight_grad,
    top_subspace,
    unfold_patches,
)

PROTECTABLE = (nn.Linear, nn.Conv1d, nn.Conv2d)
MODES = ("weight", "input", "auto")
NORM_TYPES = (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)

LayerSpec = Sequence[str] | Mapping[str, nn.Module]


def input_dim(module: nn.Module) -> int:
    """Presynaptic dimension ``d`` of a protected layer (patch size for convolutions)."""
    weight = module.weight
    assert isinstance(weight, torch.Tensor)
    return int(weight[0].numel())


def resolve_layers(model: nn.Module, layers: LayerSpec) -> dict[str, nn.Module]:
    """``name -> module`` for the protected layers: names of ``model``'s submodules, or a mapping.

    Raises:
        InputError: an unknown name, a module that is not ``Linear`` / ``Conv1d`` / ``Conv2d``,
            a grouped convolution, or no layers.
    """
    if isinstance(layers, str):
        raise InputError(f"layers must be a list of submodule names, got the string {layers!r}")
    if isinstance(layers, Mapping):
        resolved = dict(layers)
    else:
        resolved = {}
        for name in layers:
            try:
                resolved[name] = model.get_submodule(name)
            except AttributeError:
                names = [n for n, m in model.named_modules() if isinstance(m, PROTECTABLE)]
                raise InputError(
                    f"model has no submodule {name!r}; its Linear/Conv layers are {names}"
                ) from None
    if not resolved:
        raise InputError("no layers to protect: pass at least one Linear or Conv layer name")
    for name, module in resolved.items():
        if not isinstance(module, PROTECTABLE):
            raise InputError(
                f"layer {name!r} is a {type(module).__name__}; gradient projection supports "
                "nn.Linear, nn.Conv1d and nn.Conv2d"
            )
        if isinstance(module, (nn.Conv1d, nn.Conv2d)) and module.groups != 1:
            raise InputError(f"layer {name!r} is a grouped convolution (groups={module.groups})")
    return resolved


def presynaptic_rows(
    module: nn.Module,
    x: torch.Tensor,
    *,
    signal: str = "spikes",
    decay: float = 0.5,
    time_steps: int | None = None,
) -> torch.Tensor:
    """The presynaptic activity rows ``[N, d]`` of one call of a protected layer.

    Time structure: a ``Linear`` input of 3 or more dimensions is time-major ``[T, B, ..., d]``;
    a 2-D ``Linear`` input ``[M, d]`` or a conv input ``[M, C, ...]`` is ``T * B`` folded rows
    when ``time_steps = T`` is given, and otherwise has no time axis (a static input: every
    signal is the input itself). Convolution inputs are unfolded into patch rows.
    """
    if isinstance(module, nn.Linear):
        d = module.in_features
        if x.shape[-1] != d:
            raise InputError(f"Linear input has {x.shape[-1]} features, expected {d}")
        if signal == "spikes":
            return x.reshape(-1, d)
        if x.dim() >= 3:
            return presynaptic_signal(x, signal, decay)
        seq = _fold(x, time_steps)
        return x if seq is None else presynaptic_signal(seq, signal, decay)
    conv = module
    assert isinstance(conv, (nn.Conv1d, nn.Conv2d))
    patches = unfold_patches(
        x,
        conv.kernel_size,
        stride=conv.stride,
        padding=conv.padding,  # type: ignore[arg-type]
        dilation=conv.dilation,
        padding_mode=conv.padding_mode,
    )
    d = patches.shape[-1]
    if signal == "spikes":
        return patches.reshape(-1, d)
    seq = _fold(patches, time_steps)
    return patches.reshape(-1, d) if seq is None else presynaptic_signal(seq, signal, decay)


def _fold(x: torch.Tensor, time_steps: int | None) -> torch.Tensor | None:
    if time_steps is None:
        return None
    if x.shape[0] % time_steps:
        raise InputError(
            f"input has {x.shape[0]} rows, not a multiple of time_steps={time_steps} "
            "(expected T * B folded rows)"
        )
    return x.reshape(time_steps, x.shape[0] // time_steps, *x.shape[1:])


class PresynapticRecorder:
    """Keeps the presynaptic activity rows of layers while ``mode`` says so.

    ``mode``: ``None`` (off), ``"train"`` (record calls made with the layer in training mode,
    i.e. training forward passes) or ``"all"`` (every call, e.g. a dedicated collection pass
    under ``torch.no_grad()``). :meth:`take` returns and clears a layer's rows. At most
    ``max_pending`` calls per layer are kept (a warning names a recorder nobody empties).
    """

    def __init__(
        self,
        layers: Mapping[str, nn.Module],
        *,
        signal: str = "spikes",
        decay: float = 0.5,
        time_steps: int | None = None,
        max_pending: int = 64,
    ) -> None:
        if signal not in SIGNALS:
            raise InputError(f"presynaptic signal must be one of {SIGNALS}, got {signal!r}")
        if not 0.0 <= decay <= 1.0:
            raise InputError(f"signal decay must be in [0, 1], got {decay}")
        if time_steps is not None and time_steps < 1:
            raise InputError(f"time_steps must be >= 1 or None, got {time_steps}")
        self.layers = dict(layers)
        self.signal = signal
        self.decay = decay
        self.time_steps = time_steps
        self.max_pending = max_pending
        self.mode: str | None = None
        self.pending: dict[str, list[torch.Tensor]] = {name: [] for name in self.layers}
        self._warned = False
        self._handles = [
            module.register_forward_pre_hook(self._hook(name))
            for name, module in self.layers.items()
        ]

    def _hook(self, name: str) -> Callable[[nn.Module, tuple[Any, ...]], None]:
        def hook(module: nn.Module, args: tuple[Any, ...]) -> None:
            if self.mode is None or (self.mode == "train" and not module.training):
                return
            with torch.no_grad():
                rows = presynaptic_rows(
                    module,
                    args[0].detach(),
                    signal=self.signal,
                    decay=self.decay,
                    time_steps=self.time_steps,
                )
            queue = self.pending[name]
            queue.append(rows)
            if len(queue) > self.max_pending:
                queue.pop(0)
                if not self._warned:
                    warnings.warn(
                        f"presynaptic recorder of {name!r} holds more than {self.max_pending} "
                        "batches: call hebbian_update() (HLOP) once per training step",
                        stacklevel=2,
                    )
                    self._warned = True

        return hook

    def take(self, name: str) -> torch.Tensor | None:
        """All rows recorded for ``name`` since the last take (``None`` if none), then clear."""
        queue = self.pending[name]
        if not queue:
            return None
        rows = queue[0] if len(queue) == 1 else torch.cat(queue)
        queue.clear()
        return rows

    def clear(self) -> None:
        for queue in self.pending.values():
            queue.clear()

    def remove(self) -> None:
        """Detach the hooks."""
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.clear()


class _ExtraWeightGrad(torch.autograd.Function):
    """Identity on a layer's output whose backward adds ``g^T v`` to the weight gradient."""

    @staticmethod
    def forward(ctx: Any, out: torch.Tensor, weight: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(v)
        ctx.weight_shape = weight.shape
        ctx.weight_dtype = weight.dtype
        return out.view_as(out)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, None]:
        (v,) = ctx.saved_tensors
        shape = ctx.weight_shape
        if v.dim() == 2:  # Linear: v [M, d], grad [..., out]
            extra = grad.reshape(-1, shape[0]).to(v.dtype).T @ v
        else:  # conv: v [N, P, d], grad [N, out, *spatial]
            g = grad.reshape(grad.shape[0], shape[0], -1).to(v.dtype)
            extra = torch.einsum("nop,npd->od", g, v)
        return grad, extra.reshape(shape).to(ctx.weight_dtype), None


class _ProjectedLinear(torch.autograd.Function):
    """A ``Linear``'s output (already computed, passed detached) with the backward of
    ``y = x W^T + b`` in which the weight gradient is ``g^T x_kept``: the projection applied
    to the input rows, and the layer's own ``g^T x`` never computed."""

    @staticmethod
    def forward(
        ctx: Any,
        out: torch.Tensor,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        kept: torch.Tensor,
    ) -> torch.Tensor:
        ctx.save_for_backward(weight, kept)
        ctx.has_bias = bias is not None
        ctx.x_dtype = x.dtype
        return out.view_as(out)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        weight, kept = ctx.saved_tensors
        g = grad.reshape(-1, weight.shape[0])
        gx = gw = gb = None
        if ctx.needs_input_grad[1]:
            gx = (g.to(weight.dtype) @ weight).to(ctx.x_dtype).reshape(*grad.shape[:-1], -1)
        if ctx.needs_input_grad[2]:
            gw = (g.to(kept.dtype).T @ kept).to(weight.dtype)
        if ctx.has_bias and ctx.needs_input_grad[3]:
            gb = g.sum(0).to(weight.dtype)
        return None, gx, gw, gb, None


class Projector(NamedTuple):
    """One representation of ``I - B^T B`` (``B [k, d]``), chosen by cost ``r`` per element:

    * ``"basis"``: ``B`` itself (two products: ``r = 2k``);
    * ``"gram"``: ``Q = B^T B`` ``[d, d]`` (one product: ``r = d``);
    * ``"complement"``: for orthonormal ``B``, rows ``C [d - k, d]`` spanning the orthogonal
      complement, ``I - B^T B = C^T C`` (``r = 2 (d - k)``).
    """

    kind: str
    matrix: torch.Tensor
    cost: int

    def removed(self, rows: torch.Tensor) -> torch.Tensor:
        """``rows B^T B``: the part of ``rows [..., d]`` in ``span(B)``."""
        m = self.matrix.to(rows.dtype)
        if self.kind == "basis":
            if m.shape[0] == 0:
                return torch.zeros_like(rows)
            return (rows @ m.T) @ m
        if self.kind == "gram":
            return rows @ m
        return rows - (rows @ m.T) @ m

    def kept(self, rows: torch.Tensor) -> torch.Tensor:
        """``rows (I - B^T B)``: what the projection keeps."""
        m = self.matrix.to(rows.dtype)
        if self.kind == "complement":
            return (rows @ m.T) @ m
        return rows - self.removed(rows)


class GradientProjection:
    """Projects the weight updates of ``layers`` off ``basis(name) [k, d]`` (see module doc).

    Args:
        layers: ``name -> Linear / Conv1d / Conv2d``.
        basis: ``basis(name)`` returns the current basis of that layer (``k = 0`` rows: no
            projection); called at every projection, so it can change between tasks.
        mode: ``"weight"`` (gradient transform), ``"input"`` (inside autograd) or ``"auto"``:
            per layer and call, the cheaper of the two by multiply-adds, input mode when
            ``N (r + out) < out r`` for ``N`` input rows and ``r = min(2k, d)`` (small batches
            into wide layers), else weight mode (a step that used input mode for every call of
            a layer skips its transform). ``r`` is the cost of the cheapest :class:`Projector`
            (cached per basis).
        orthonormal: the bases have orthonormal rows (exact projectors), which allows the
            complement form when ``k > d / 2``.
        on_input_projection: called as ``fn(name, rows, projected)`` whenever input mode
            projects, with the input rows ``[N, d]`` (``[N, P, d]`` for convolutions) and their
            projection ``rows B^T B``, so a caller can reuse it (HLOP's Hebbian residual).
    """

    def __init__(
        self,
        layers: Mapping[str, nn.Module],
        basis: Callable[[str], torch.Tensor],
        mode: str = "weight",
        on_input_projection: Callable[[str, torch.Tensor, torch.Tensor], None] | None = None,
        orthonormal: bool = False,
    ) -> None:
        if mode not in MODES:
            raise InputError(f"projection mode must be one of {MODES}, got {mode!r}")
        self.layers = dict(layers)
        self.basis = basis
        self.mode = mode
        self.on_input_projection = on_input_projection
        self.orthonormal = orthonormal
        self._calls = {name: [0, 0] for name in self.layers}  # [input-projected, all] per step
        self._cache: dict[str, tuple[Any, Projector]] = {}
        self._transforms: list[GradTransformHandle] = []
        self._hooks: list[Any] = []
        for name, module in self.layers.items():
            if mode in ("weight", "auto"):
                self._transforms.append(
                    register_grad_transform(module, self._transform(name), params=["weight"])
                )
            if mode in ("input", "auto"):
                self._hooks.append(module.register_forward_hook(self._input_hook(name)))

    def operator(self, name: str) -> Projector:
        """The cheapest representation of layer ``name``'s projection (see :class:`Projector`).

        Cached, and recomputed when the basis tensor changes (another tensor, shape or in-place
        version), so a basis replaced between tasks needs no call to invalidate it.
        """
        basis = self.basis(name)
        k, d = basis.shape
        if 2 * k < d:
            return Projector("basis", basis, 2 * k)
        key = (basis.data_ptr(), k, d, basis._version, basis.dtype, basis.device)
        cached = self._cache.get(name)
        if cached is not None and cached[0] == key:
            return cached[1]
        with torch.no_grad():
            gram = basis.T @ basis
            op = Projector("gram", gram, d)
            if self.orthonormal and 2 * (d - k) < d:
                # exact projector onto span(B): its complement is spanned by the eigenvectors of
                # B^T B with eigenvalue ~0 (the others are ~1)
                values, vectors = torch.linalg.eigh(gram.to(torch.float64))
                comp = vectors[:, values < 0.5].T.to(basis.dtype)
                op = Projector("complement", comp.contiguous(), 2 * comp.shape[0])
        self._cache[name] = (key, op)
        return op

    def projected_rows(self, name: str, rows: torch.Tensor) -> torch.Tensor:
        """``rows B^T B`` for rows ``[..., d]`` of layer ``name``'s inputs (the part removed)."""
        return self.operator(name).removed(rows)

    def _transform(self, name: str) -> Callable[[nn.Module, str, torch.Tensor], torch.Tensor]:
        def project(module: nn.Module, param: str, grad: torch.Tensor) -> torch.Tensor:
            done, calls = self._calls[name]
            self._calls[name] = [0, 0]
            if calls and done == calls:
                return grad  # projected inside autograd already (auto mode chose input)
            op = self.operator(name)
            if op.kind == "basis":
                return project_weight_grad(grad, op.matrix)
            flat = grad.reshape(grad.shape[0], -1)
            return op.kept(flat).reshape(grad.shape)

        project.__name__ = f"orthogonal_projection[{name}]"
        return project

    def _input_hook(self, name: str) -> Callable[..., torch.Tensor | None]:
        def hook(module: nn.Module, args: tuple[Any, ...], output: torch.Tensor) -> Any:
            weight = module.weight
            assert isinstance(weight, torch.Tensor)
            if not (torch.is_grad_enabled() and weight.requires_grad):
                return None
            basis = self.basis(name)
            if basis.shape[0] == 0:
                return None
            counts = self._calls[name]
            counts[1] += 1
            x = args[0].detach()
            out_dim = weight.shape[0]
            linear = isinstance(module, nn.Linear)
            if self.mode == "auto":
                rows = output.numel() // out_dim  # input rows (Linear) or patches (conv)
                rank = self.operator(name).cost  # multiply-adds per projected element, / d
                # Linear: the projected rows replace the input in the weight-gradient product
                extra = rows * rank if linear else rows * (rank + out_dim)
                if extra >= out_dim * rank:
                    return None
            counts[0] += 1
            with torch.no_grad():
                if linear:
                    patches = x.reshape(-1, module.in_features).to(basis.dtype)
                    kept = self.operator(name).kept(patches)
                    if self.on_input_projection is not None:
                        self.on_input_projection(name, patches, patches - kept)
                else:
                    assert isinstance(module, (nn.Conv1d, nn.Conv2d))
                    patches = unfold_patches(
                        x.to(basis.dtype),
                        module.kernel_size,
                        stride=module.stride,
                        padding=module.padding,  # type: ignore[arg-type]
                        dilation=module.dilation,
                        padding_mode=module.padding_mode,
                    )
            if linear:
                bias = module.bias if isinstance(module.bias, torch.Tensor) else None
                return _ProjectedLinear.apply(output.detach(), args[0], weight, bias, kept)
            with torch.no_grad():
                projected = self.projected_rows(name, patches)
                if self.on_input_projection is not None:
                    self.on_input_projection(name, patches, projected)
            return _ExtraWeightGrad.apply(output, weight, -projected)

        return hook

    def remove(self) -> None:
        """Detach every transform and hook."""
        for handle in self._transforms:
            handle.remove()
        for hook in self._hooks:
            hook.remove()
        self._transforms, self._hooks = [], []


def freeze_biases_and_norms(model: nn.Module, layers: Mapping[str, nn.Module]) -> list[str]:
    """Stop training the biases of ``layers`` and every normalisation layer of ``model``.

    Biases: ``requires_grad = False``. Normalisation layers (BatchNorm, GroupNorm, LayerNorm):
    affine parameters ``requires_grad = False``, and batch norms are held in eval mode (running
    statistics fixed) by a forward pre-hook, even inside ``model.train()``. Returns the names of
    the frozen parameters.
    """
    frozen: list[str] = []
    for name, module in layers.items():
        bias = getattr(module, "bias", None)
        if isinstance(bias, torch.Tensor) and bias.requires_grad:
            bias.requires_grad_(False)
            frozen.append(f"{name}.bias")
    for name, module in model.named_modules():
        if isinstance(module, NORM_TYPES):
            for pname, param in module.named_parameters(recurse=False):
                if param.requires_grad:
                    param.requires_grad_(False)
                    frozen.append(f"{name}.{pname}")
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and not getattr(
                module, "_neurosim_frozen", False
            ):
                module.register_forward_pre_hook(_hold_eval)
                object.__setattr__(module, "_neurosim_frozen", True)
    return frozen


def _hold_eval(module: nn.Module, args: tuple[Any, ...]) -> None:
    """Forward pre-hook of a frozen batch norm: always use (and keep) the running statistics."""
    module.train(False)


class ProjectionMethod:
    """Task protocol shared by HLOP and :class:`SVDProjection`.

    Subclasses set ``orthonormal_bases`` (class attribute) when their bases always have
    orthonormal rows.

    ``begin_task()`` before training a task (from the second task on, freezes biases and
    normalisation when ``freeze_bias``), ``end_task()`` after it. Subclasses give
    :meth:`basis` (the protected subspace of a layer, rows ``[k, d]``).
    """

    def __init__(
        self,
        model: nn.Module,
        layers: LayerSpec,
        *,
        signal: str = "spikes",
        decay: float = 0.5,
        mode: str = "auto",
        time_steps: int | None = None,
        freeze_bias: bool = True,
    ) -> None:
        self.model = model
        self.layers = resolve_layers(model, layers)
        self.freeze_bias = freeze_bias
        self.task = -1
        self.in_task = False
        self.recorder = PresynapticRecorder(
            self.layers, signal=signal, decay=decay, time_steps=time_steps
        )
        self.projection = GradientProjection(
            self.layers,
            self.basis,
            mode,
            on_input_projection=self._on_input_projection,
            orthonormal=self.orthonormal_bases,
        )

    def _on_input_projection(self, name: str, rows: torch.Tensor, projected: torch.Tensor) -> None:
        """Hook for subclasses that reuse input-mode projections (default: nothing)."""

    orthonormal_bases = False

    def basis(self, name: str) -> torch.Tensor:
        """The protected subspace of layer ``name``: rows ``[k, d]``."""
        raise NotImplementedError

    def begin_task(self) -> None:
        """Start the next task (index ``self.task`` after the call)."""
        if self.in_task:
            raise InputError(f"begin_task called twice: task {self.task} was not ended")
        self.task += 1
        self.in_task = True
        if self.task >= 1 and self.freeze_bias:
            freeze_biases_and_norms(self.model, self.layers)

    def end_task(self) -> None:
        if not self.in_task:
            raise InputError("end_task called without begin_task")
        self.in_task = False
        self.recorder.mode = None
        self.recorder.clear()

    def diagnostics(self, activity: Mapping[str, torch.Tensor] | None = None) -> dict[str, float]:
        """Per layer: subspace size ``rows``, ``orthonormality`` error ``||B B^T - I||_2``, and,
        given activity rows, ``max_angle_deg`` / ``mean_angle_deg``: principal angles between
        the basis and the top principal subspace of the same size of that activity (SVD)."""
        out: dict[str, float] = {}
        for name in self.layers:
            b = self.subspace(name)
            out[f"{name}/rows"] = float(b.shape[0])
            out[f"{name}/orthonormality"] = float(orthonormality_error(b))
            if activity is not None and name in activity and b.shape[0]:
                rows = activity[name].reshape(-1, b.shape[1])
                k = min(b.shape[0], *rows.shape)
                angles = principal_angles(top_subspace(rows, k), b.to(rows.dtype))
                deg = torch.rad2deg(angles)
                out[f"{name}/max_angle_deg"] = float(deg.max())
                out[f"{name}/mean_angle_deg"] = float(deg.mean())
        return out

    def subspace(self, name: str) -> torch.Tensor:
        """Every learned row of layer ``name`` (for diagnostics; default: :meth:`basis`)."""
        return self.basis(name)

    def remove(self) -> None:
        """Detach every hook and transform from the model."""
        self.recorder.remove()
        self.projection.remove()


class SVDProjection(ProjectionMethod):
    """Exact orthogonal projection from an SVD of stored activity (GPM, Saha et al. 2021).

    At the end of each task, the presynaptic activity recorded inside :meth:`collect` (forward
    passes over some of the task's training inputs) extends each layer's orthonormal basis by
    :func:`~neurosim.functional.projection.extend_basis` with the energy ``threshold`` (plus
    ``threshold_increment`` per task, capped at 1). Weight updates of later tasks are projected
    off that basis.

    ::

        gpm = SVDProjection(model, ["fc1", "fc2"], threshold=0.97)
        for task in tasks:
            gpm.begin_task()
            train(...)                        # with apply_grad_transforms before each step
            with gpm.collect(), torch.no_grad():
                model(task_inputs[:300])
            gpm.end_task()
    """

    orthonormal_bases = True

    def __init__(
        self,
        model: nn.Module,
        layers: LayerSpec,
        *,
        threshold: float = 0.97,
        threshold_increment: float = 0.0,
        max_rows: int | None = None,
        **kwargs: Any,
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise InputError(f"SVD projection threshold must be in (0, 1], got {threshold}")
        super().__init__(model, layers, **kwargs)
        self.threshold = threshold
        self.threshold_increment = threshold_increment
        self.max_rows = max_rows
        self.bases: dict[str, torch.Tensor] = {}
        for name, module in self.layers.items():
            weight = module.weight
            assert isinstance(weight, torch.Tensor)
            self.bases[name] = weight.new_zeros(0, input_dim(module)).detach()

    def basis(self, name: str) -> torch.Tensor:
        return self.bases[name]

    @contextmanager
    def collect(self) -> Iterator[None]:
        """Record the presynaptic activity of every forward pass inside the block."""
        previous = self.recorder.mode
        self.recorder.mode = "all"
        try:
            yield
        finally:
            self.recorder.mode = previous

    def end_task(self) -> None:
        """Extend the bases with the activity collected during this task, then end it."""
        if not self.in_task:
            raise InputError("end_task called without begin_task")
        threshold = min(1.0, self.threshold + self.threshold_increment * self.task)
        for name in self.layers:
            rows = self.recorder.take(name)
            if rows is None:
                raise InputError(
                    f"no activity collected for layer {name!r}: run forward passes on the "
                    "task's inputs inside `with method.collect():` before end_task()"
                )
            b = self.bases[name]
            self.bases[name] = extend_basis(b, rows.to(b.dtype), threshold, self.max_rows)
        super().end_task()

    def state_dict(self) -> dict[str, Any]:
        return {"task": self.task, "in_task": self.in_task, "bases": dict(self.bases)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.task = int(state["task"])
        self.in_task = bool(state["in_task"])
        for name in self.layers:
            self.bases[name] = state["bases"][name].to(self.bases[name].device)
        if self.task >= 1 and self.freeze_bias:
            freeze_biases_and_norms(self.model, self.layers)
