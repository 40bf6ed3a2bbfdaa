"""NIR (Neuromorphic Intermediate Representation) export and import.

Feed-forward chains of ``Linear``/``Conv2d``/``Flatten`` layers and ``LIF``/``SynapticLIF``/``LI``
neurons (a :class:`~neurosim.neurons.SpikingSequential` or an ``nn.Sequential``) map to NIR
graphs ``Input -> Affine|Linear|Conv2d|Flatten|Scale -> LIF|CubaLIF|LI -> ... -> Output``
(``nir`` 1.0 node types) and back.

Discretisation
--------------
NIR describes neurons as ODEs in continuous time; neurosim steps them with a step ``dt``
(forward Euler, the convention of snnTorch's NIR exporter):

=============  =======================================  =====================================
neurosim       NIR                                      import (general NIR values)
=============  =======================================  =====================================
LIF ``beta``   ``LIF.tau = dt / (1 - beta)``            ``beta = 1 - dt / tau``
unit input     ``LIF.r = tau / dt``                     input gain ``r dt / tau`` (a Scale)
``threshold``  ``v_threshold``; ``v_leak = v_reset = 0``  ``v_leak``, ``v_reset`` must be 0
SynapticLIF    ``CubaLIF.tau_syn = dt / (1 - alpha)``,  ``alpha = 1 - dt / tau_syn``; gain
``alpha``,     ``tau_mem = dt / (1 - beta)``,           ``(w_in dt / tau_syn)(r dt / tau_mem)``
``beta``       ``w_in = tau_syn / dt``, ``r = tau_mem / dt``
LI ``beta``    ``LI.tau = dt / (1 - beta)``, ``r = tau / dt``, ``v_leak = 0``
=============  =======================================  =====================================

The Euler step of ``tau dv/dt = v_leak - v + r I`` is ``v <- (1 - dt/tau) v + (dt/tau) r I``, so
with the values above ``v <- beta v + I``: neurosim's update exactly. A general NIR neuron
whose input gain ``r dt / tau`` is not 1 imports with a :class:`Scale` layer in front of it.

Resets: NIR's LIF/CubaLIF reset to ``v_reset`` at once when ``v > v_threshold``, which is
neurosim's ``reset="zero", delayed_reset=False``. Other resets (``"subtract"``, ``"none"``,
delayed) have no NIR equivalent: :func:`export_nir` refuses them unless ``strict=False``, in
which case the node is written as a NIR LIF (other tools will reset to zero) and the exact
neurosim settings, with the surrogate gradient, go into the node's ``metadata``
(``neurosim_reset``, ...); :func:`import_nir` restores them. ``dt`` is stored in the graph's
``metadata["neurosim_dt"]`` and used by default on import.

Example::

    graph = export_nir(net, input_shape=(784,), dt=1e-4)   # a nir.NIRGraph
    nir.write("net.nir", graph)
    net2 = import_nir("net.nir")                           # a SpikingSequential
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from neurosim._version import __version__
from neurosim.backend import BackendUnavailableError, InputError
from neurosim.functional.surrogate import DEFAULT_SURROGATE, SURROGATES, Surrogate
from neurosim.interop.snntorch import SnnTorchNeuron, lif_from_snntorch, synaptic_from_snntorch
from neurosim.neurons.li import LI
from neurosim.neurons.lif import LIF
from neurosim.neurons.sequential import MultiStep, SpikingSequential
from neurosim.neurons.synaptic import SynapticLIF

__all__ = ["DEFAULT_DT", "Scale", "export_nir", "import_nir"]

DEFAULT_DT = 1e-4
"""Default time step (seconds) of the NIR conversion; snnTorch's exporter uses the same."""


def _nir() -> Any:
    try:
        import nir
    except Exception as exc:  # any import failure: not usable here
        raise BackendUnavailableError(
            f"NIR export/import needs the nir package (pip install 'nir>=1.0'); importing it "
            f"failed: {type(exc).__name__}: {exc}"
        ) from exc
    return nir


class Scale(nn.Module):
    """Element-wise input gain ``y = scale * x`` (NIR's ``Scale`` node).

    Args:
        scale: per-feature gains, shape ``F`` (broadcast against ``[N, *F]``).
    """

    def __init__(self, scale: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale.detach().clone().to(torch.get_default_dtype()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x [N, *F] -> scale * x``."""
        return x * self.scale.to(x.dtype)  # type: ignore[operator]


# ---------------------------------------------------------------------------- export
def _layers(net: nn.Module) -> list[nn.Module]:
    if isinstance(net, SpikingSequential):
        layers = list(net.layers)
    elif isinstance(net, nn.Sequential):
        layers = list(net)
    else:
        raise InputError(
            f"export_nir takes a SpikingSequential or nn.Sequential, got {type(net).__name__}"
        )
    return [layer.layer if isinstance(layer, MultiStep) else layer for layer in layers]


def _per_neuron(value: torch.Tensor, shape: tuple[int, ...], what: str) -> np.ndarray:
    v = value.detach().to(torch.float64).cpu()
    try:
        return np.ascontiguousarray(torch.broadcast_to(v, shape).numpy())
    except RuntimeError:
        raise InputError(
            f"{what} of shape {tuple(v.shape)} does not fit the layer's neuron shape {shape}"
        ) from None


def _tau(decay: np.ndarray, dt: float, what: str) -> np.ndarray:
    if np.any(decay >= 1.0):
        raise InputError(
            f"{what} = 1 (no leak) has an infinite NIR time constant; use a decay below 1"
        )
    return dt / (1.0 - decay)


def _neuron_metadata(neuron: nn.Module, strict: bool, name: str) -> dict[str, Any]:
    reset, delayed = neuron.reset, neuron.delayed_reset
    if (reset != "zero" or delayed) and strict:
        raise InputError(
            f"layer {name} ({type(neuron).__name__}) uses reset={reset!r}, "
            f"delayed_reset={delayed}; NIR neurons reset to zero at once (reset='zero', "
            "delayed_reset=False). Pass strict=False to export anyway: the node is written as "
            "a NIR reset-to-zero neuron and the neurosim reset is kept in its metadata"
        )
    surrogate: Surrogate = neuron.surrogate  # type: ignore[assignment]
    return {
        "neurosim_reset": str(reset),
        "neurosim_delayed_reset": int(bool(delayed)),
        "neurosim_detach_reset": int(bool(neuron.detach_reset)),
        "neurosim_surrogate": surrogate.name,
        "neurosim_surrogate_slope": float(surrogate.slope),
    }


def export_nir(
    net: nn.Module,
    input_shape: Sequence[int],
    *,
    dt: float = DEFAULT_DT,
    strict: bool = True,
) -> Any:
    """Export a feed-forward spiking network to a ``nir.NIRGraph`` (see the module docstring).

    Args:
        net: a :class:`~neurosim.neurons.SpikingSequential` or ``nn.Sequential`` of
            ``nn.Linear``, ``nn.Conv2d``, ``nn.Flatten``, :class:`Scale` (optionally inside
            :class:`~neurosim.neurons.MultiStep`) and :class:`~neurosim.neurons.LIF`,
            :class:`~neurosim.neurons.SynapticLIF`, :class:`~neurosim.neurons.LI`, or snnTorch
            neurons wrapped in :class:`~neurosim.interop.snntorch.SnnTorchNeuron` (exported as
            the equal neurosim neuron).
        input_shape: the shape of one sample at one time step (no batch, no time), e.g.
            ``(784,)`` or ``(1, 28, 28)``.
        dt: the time step in seconds that the neuron decays refer to.
        strict: refuse neurons whose reset NIR cannot express (see the module docstring).

    Returns:
        ``nir.NIRGraph`` with nodes ``input``, ``0_affine``, ``1_lif``, ..., ``output`` in a
        chain, and ``metadata`` holding ``neurosim_dt``.
    """
    nir = _nir()
    if not (isinstance(dt, (int, float)) and dt > 0 and np.isfinite(dt)):
        raise InputError(f"export_nir dt must be a positive finite number, got {dt!r}")
    shape = tuple(int(s) for s in input_shape)
    if not shape or any(s < 1 for s in shape):
        raise InputError(f"export_nir input_shape must be positive sizes, got {input_shape!r}")
    nodes: dict[str, Any] = {"input": nir.Input(input_type=np.array(shape))}
    order = ["input"]
    for index, layer in enumerate(_layers(net)):
        name, node, shape = _export_layer(nir, index, layer, shape, dt, strict)
        nodes[name] = node
        order.append(name)
    nodes["output"] = nir.Output(output_type=np.array(shape))
    order.append("output")
    edges = list(itertools.pairwise(order))
    metadata = {"neurosim_dt": float(dt), "neurosim_version": __version__}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata)


def _export_layer(
    nir: Any, index: int, layer: nn.Module, shape: tuple[int, ...], dt: float, strict: bool
) -> tuple[str, Any, tuple[int, ...]]:
    """One layer -> ``(node name, NIR node, output shape)``."""

    def arr(t: torch.Tensor) -> np.ndarray:
        return np.ascontiguousarray(t.detach().cpu().to(torch.float32).numpy())

    def out_shape() -> tuple[int, ...]:
        try:
            with torch.no_grad():
                probe = torch.zeros((1, *shape), dtype=next(layer.parameters()).dtype)
                return tuple(layer(probe).shape[1:])
        except (RuntimeError, ValueError) as exc:
            raise InputError(
                f"layer {index} ({type(layer).__name__}) does not accept the input shape {shape} "
                f"({exc})"
            ) from None

    kind = type(layer).__name__
    if isinstance(layer, SnnTorchNeuron):
        return _export_layer(nir, index, _from_snntorch(layer, index), shape, dt, strict)
    if isinstance(layer, nn.Linear):
        if shape != (layer.in_features,):
            raise InputError(f"layer {index} (Linear) expects ({layer.in_features},), got {shape}")
        out: tuple[int, ...] = (layer.out_features,)
        if layer.bias is None:
            return f"{index}_linear", nir.Linear(weight=arr(layer.weight)), out
        node = nir.Affine(weight=arr(layer.weight), bias=arr(layer.bias))
        return f"{index}_affine", node, out
    if isinstance(layer, nn.Conv2d):
        if len(shape) != 3:
            raise InputError(f"layer {index} (Conv2d) expects a [C, H, W] sample, got {shape}")
        if layer.padding_mode != "zeros":
            raise InputError(
                f"layer {index} (Conv2d) padding_mode {layer.padding_mode!r}: NIR has zeros"
            )
        out = out_shape()
        bias = layer.bias if layer.bias is not None else torch.zeros(layer.out_channels)
        padding = layer.padding if isinstance(layer.padding, str) else tuple(layer.padding)
        node = nir.Conv2d(
            input_shape=tuple(shape[1:]),
            weight=arr(layer.weight),
            stride=tuple(layer.stride),
            padding=padding,
            dilation=tuple(layer.dilation),
            groups=int(layer.groups),
            bias=arr(bias),
        )
        return f"{index}_conv2d", node, out
    if isinstance(layer, nn.Flatten):
        start = layer.start_dim - 1 if layer.start_dim > 0 else layer.start_dim
        end = layer.end_dim - 1 if layer.end_dim > 0 else layer.end_dim
        node = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=start, end_dim=end)
        return f"{index}_flatten", node, tuple(int(s) for s in node.output_type["output"])
    if isinstance(layer, Scale):
        scale = _per_neuron(layer.scale, shape, f"layer {index} Scale")  # type: ignore[arg-type]
        return f"{index}_scale", nir.Scale(scale=scale), shape
    if isinstance(layer, LIF):
        meta = _neuron_metadata(layer, strict, f"{index}")
        beta = _per_neuron(layer.beta.clamp(0, 1), shape, f"layer {index} LIF beta")  # type: ignore[operator]
        tau = _tau(beta, dt, f"layer {index} LIF beta")
        node = nir.LIF(
            tau=tau,
            r=tau / dt,
            v_leak=np.zeros(shape),
            v_threshold=_per_neuron(layer.threshold, shape, f"layer {index} LIF threshold"),  # type: ignore[arg-type]
            v_reset=np.zeros(shape),
            metadata=meta,
        )
        return f"{index}_lif", node, shape
    if isinstance(layer, SynapticLIF):
        meta = _neuron_metadata(layer, strict, f"{index}")
        alpha = _per_neuron(layer.alpha.clamp(0, 1), shape, f"layer {index} alpha")  # type: ignore[operator]
        beta = _per_neuron(layer.beta.clamp(0, 1), shape, f"layer {index} beta")  # type: ignore[operator]
        tau_syn = _tau(alpha, dt, f"layer {index} SynapticLIF alpha")
        tau_mem = _tau(beta, dt, f"layer {index} SynapticLIF beta")
        node = nir.CubaLIF(
            tau_syn=tau_syn,
            tau_mem=tau_mem,
            r=tau_mem / dt,
            v_leak=np.zeros(shape),
            v_threshold=_per_neuron(layer.threshold, shape, f"layer {index} threshold"),  # type: ignore[arg-type]
            v_reset=np.zeros(shape),
            w_in=tau_syn / dt,
            metadata=meta,
        )
        return f"{index}_cubalif", node, shape
    if isinstance(layer, LI):
        beta = _per_neuron(layer.beta.clamp(0, 1), shape, f"layer {index} LI beta")  # type: ignore[operator]
        tau = _tau(beta, dt, f"layer {index} LI beta")
        return f"{index}_li", nir.LI(tau=tau, r=tau / dt, v_leak=np.zeros(shape)), shape
    raise InputError(
        f"export_nir cannot export layer {index} ({kind}); supported: Linear, Conv2d, Flatten, "
        "Scale, LIF, SynapticLIF, LI (optionally inside MultiStep), and snnTorch Leaky/Synaptic "
        "wrapped in SnnTorchNeuron"
    )


def _from_snntorch(layer: SnnTorchNeuron, index: int) -> nn.Module:
    """The neurosim neuron equal to a wrapped snnTorch neuron (exported in its place)."""
    if layer.output == "spikes":
        if layer.kind == "Leaky":
            return lif_from_snntorch(layer.neuron)
        return synaptic_from_snntorch(layer.neuron)
    if layer.kind == "Leaky" and layer.neuron.reset_mechanism == "none":
        return LI(beta=lif_from_snntorch(layer.neuron).beta.detach())  # type: ignore[operator]
    raise InputError(
        f"layer {index}: an snnTorch {layer.kind} read out as a membrane exports only as an LI "
        "(a Leaky with reset_mechanism='none')"
    )


# ---------------------------------------------------------------------------- import
def _chain(graph: Any) -> list[str]:
    """Node names from the single Input to the single Output of a feed-forward chain."""
    nir = _nir()
    inputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Input)]
    outputs = [k for k, n in graph.nodes.items() if isinstance(n, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1:
        raise InputError(
            f"import_nir needs one Input and one Output node, got inputs {inputs}, outputs {outputs}"
        )
    succ: dict[str, list[str]] = {k: [] for k in graph.nodes}
    pred: dict[str, list[str]] = {k: [] for k in graph.nodes}
    for src, dst in graph.edges:
        if src not in succ or dst not in succ:
            raise InputError(f"NIR edge ({src!r}, {dst!r}) names a node that is not in the graph")
        succ[src].append(dst)
        pred[dst].append(src)
    order = [inputs[0]]
    while order[-1] != outputs[0]:
        here = order[-1]
        if len(succ[here]) != 1:
            raise InputError(
                f"import_nir supports feed-forward chains; node {here!r} has {len(succ[here])} "
                f"outgoing edges ({succ[here]})"
            )
        nxt = succ[here][0]
        if len(pred[nxt]) != 1 or nxt in order:
            raise InputError(
                f"import_nir supports feed-forward chains; node {nxt!r} has inputs {pred[nxt]} "
                "(a merge or a recurrent loop)"
            )
        order.append(nxt)
    if len(order) != len(graph.nodes):
        extra = sorted(set(graph.nodes) - set(order))
        raise InputError(f"import_nir: nodes {extra} are not on the Input -> Output chain")
    return order[1:-1]


def _param(values: Any, name: str) -> float | torch.Tensor:
    """A NIR parameter array -> one float when all equal, else a float32 tensor."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0 or not np.all(np.isfinite(arr)):
        raise InputError(f"NIR parameter {name} must be finite and non-empty, got {arr!r}")
    if np.all(arr == arr.flat[0]):
        return float(arr.flat[0])
    return torch.from_numpy(arr).to(torch.float32)


def _as_tensor(value: float | torch.Tensor) -> torch.Tensor:
    return value if isinstance(value, torch.Tensor) else torch.tensor(value)


def _is_one(value: float | torch.Tensor) -> bool:
    return bool(torch.allclose(_as_tensor(value).double(), torch.ones(()).double(), rtol=1e-6))


def _zero(values: Any, what: str, node: str) -> None:
    arr = np.asarray(values, dtype=np.float64)
    if np.any(arr != 0):
        raise InputError(
            f"NIR node {node!r} has a nonzero {what}; neurosim neurons rest and reset at 0"
        )


def _decay(tau: Any, dt: float, what: str, node: str) -> float | torch.Tensor:
    tau_arr = np.asarray(tau, dtype=np.float64)
    if np.any(tau_arr <= 0) or np.any(tau_arr < dt * (1 - 1e-9)):
        raise InputError(
            f"NIR node {node!r}: {what} {tau_arr.min():g} must be positive and at least dt={dt:g} "
            "(beta = 1 - dt / tau would leave [0, 1]); pass a smaller dt"
        )
    return _param(np.clip(1.0 - dt / tau_arr, 0.0, 1.0), f"{node} {what}")


def _reset_settings(meta: dict[str, Any] | None) -> dict[str, Any]:
    meta = meta or {}
    reset = str(meta.get("neurosim_reset", "zero"))
    name = str(meta.get("neurosim_surrogate", DEFAULT_SURROGATE.name))
    slope = float(meta.get("neurosim_surrogate_slope", DEFAULT_SURROGATE.slope))
    surrogate = Surrogate(name, slope) if name in SURROGATES else DEFAULT_SURROGATE
    return {
        "reset": reset if reset in ("subtract", "zero", "none") else "zero",
        "delayed_reset": bool(int(meta.get("neurosim_delayed_reset", 0))),
        "detach_reset": bool(int(meta.get("neurosim_detach_reset", 0))),
        "surrogate": surrogate,
    }


def import_nir(
    graph: Any,
    *,
    dt: float | None = None,
    step_mode: str = "multi",
    backend: str = "auto",
) -> SpikingSequential:
    """Build a :class:`~neurosim.neurons.SpikingSequential` from a NIR graph (or a ``.nir`` file).

    Args:
        graph: a ``nir.NIRGraph``, or a path to a file written by ``nir.write``.
        dt: time step in seconds; default the graph's ``metadata["neurosim_dt"]``, else
            :data:`DEFAULT_DT`.
        step_mode: ``"multi"`` (``[T, B, *F]`` input) or ``"single"``.
        backend: kernel backend of the neurons' multi-step scans.

    Supported nodes: ``Affine``, ``Linear``, ``Conv2d``, ``Flatten``, ``Scale``, ``LIF``,
    ``CubaLIF``, ``LI`` in one Input -> Output chain, with ``v_leak = v_reset = 0``. A neuron
    whose input gain ``r dt / tau`` (``CubaLIF``: ``(w_in dt / tau_syn)(r dt / tau_mem)``) is
    not 1 gets a :class:`Scale` layer in front. Anything else raises :class:`InputError`.
    """
    nir = _nir()
    if isinstance(graph, (str, os.PathLike)):
        try:
            graph = nir.read(graph)
        except Exception as exc:  # h5py / nir raise many kinds of errors on a bad file
            raise InputError(
                f"could not read NIR file {str(graph)!r} ({type(exc).__name__}: {exc})"
            ) from exc
    if not isinstance(graph, nir.NIRGraph):
        raise InputError(f"import_nir takes a nir.NIRGraph or a path, got {type(graph).__name__}")
    meta = graph.metadata if isinstance(graph.metadata, dict) else {}
    step = float(dt if dt is not None else meta.get("neurosim_dt", DEFAULT_DT))
    if not (step > 0 and np.isfinite(step)):
        raise InputError(f"import_nir dt must be positive and finite, got {step!r}")
    layers: list[nn.Module] = []
    for name in _chain(graph):
        layers.extend(_import_node(nir, name, graph.nodes[name], step, backend))
    return SpikingSequential(*layers, step_mode=step_mode)


def _pair(value: Any) -> tuple[int, int]:
    """An int or a 1-/2-sequence -> ``(a, b)`` (NIR stores conv settings either way)."""
    flat = [int(v) for v in np.atleast_1d(np.asarray(value))]
    if len(flat) == 1:
        return (flat[0], flat[0])
    if len(flat) != 2:
        raise InputError(f"expected an int or a pair for a Conv2d setting, got {value!r}")
    return (flat[0], flat[1])


def _import_node(nir: Any, name: str, node: Any, dt: float, backend: str) -> list[nn.Module]:
    def tensor(values: Any) -> torch.Tensor:
        return torch.from_numpy(np.array(values, dtype=np.float32))

    if isinstance(node, nir.Affine) or isinstance(node, nir.Linear):
        weight = tensor(node.weight)
        if weight.dim() != 2:
            raise InputError(f"NIR node {name!r}: weight must be 2-D, got {tuple(weight.shape)}")
        has_bias = isinstance(node, nir.Affine)
        linear = nn.Linear(weight.shape[1], weight.shape[0], bias=has_bias)
        with torch.no_grad():
            linear.weight.copy_(weight)
            if has_bias and linear.bias is not None:
                linear.bias.copy_(tensor(node.bias).reshape(-1))
        return [linear]
    if isinstance(node, nir.Conv2d):
        weight = tensor(node.weight)
        padding = node.padding if isinstance(node.padding, str) else _pair(node.padding)
        conv = nn.Conv2d(
            weight.shape[1] * int(node.groups),
            weight.shape[0],
            kernel_size=_pair(tuple(weight.shape[2:])),
            stride=_pair(node.stride),
            padding=padding,
            dilation=_pair(node.dilation),
            groups=int(node.groups),
            bias=True,
        )
        with torch.no_grad():
            conv.weight.copy_(weight)
            assert conv.bias is not None
            conv.bias.copy_(tensor(node.bias).reshape(-1))
        return [conv]
    if isinstance(node, nir.Flatten):
        start = int(node.start_dim)
        end = int(node.end_dim)
        return [nn.Flatten(start + 1 if start >= 0 else start, end + 1 if end >= 0 else end)]
    if isinstance(node, nir.Scale):
        return [Scale(tensor(node.scale))]
    if isinstance(node, nir.LIF):
        _zero(node.v_leak, "v_leak", name)
        _zero(node.v_reset, "v_reset", name)
        beta = _decay(node.tau, dt, "tau", name)
        gain = _param(np.asarray(node.r) * dt / np.asarray(node.tau), f"{name} input gain")
        lif = LIF(
            beta=beta,
            threshold=_param(node.v_threshold, f"{name} v_threshold"),
            backend=backend,
            **_reset_settings(node.metadata),
        )
        return ([] if _is_one(gain) else [Scale(_as_tensor(gain))]) + [lif]
    if isinstance(node, nir.CubaLIF):
        _zero(node.v_leak, "v_leak", name)
        _zero(node.v_reset, "v_reset", name)
        alpha = _decay(node.tau_syn, dt, "tau_syn", name)
        beta = _decay(node.tau_mem, dt, "tau_mem", name)
        gain = _param(
            (np.asarray(node.w_in) * dt / np.asarray(node.tau_syn))
            * (np.asarray(node.r) * dt / np.asarray(node.tau_mem)),
            f"{name} input gain",
        )
        neuron = SynapticLIF(
            alpha=alpha,
            beta=beta,
            threshold=_param(node.v_threshold, f"{name} v_threshold"),
            backend=backend,
            **_reset_settings(node.metadata),
        )
        return ([] if _is_one(gain) else [Scale(_as_tensor(gain))]) + [neuron]
    if isinstance(node, nir.LI):
        _zero(node.v_leak, "v_leak", name)
        beta = _decay(node.tau, dt, "tau", name)
        gain = _param(np.asarray(node.r) * dt / np.asarray(node.tau), f"{name} input gain")
        li = LI(beta=beta, backend=backend)
        return ([] if _is_one(gain) else [Scale(_as_tensor(gain))]) + [li]
    raise InputError(
        f"import_nir cannot import node {name!r} of type {type(node).__name__}; supported: "
        "Affine, Linear, Conv2d, Flatten, Scale, LIF, CubaLIF, LI"
    )
