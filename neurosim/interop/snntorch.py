"""snnTorch 1.0 interoperability: parameter mapping, conversion both ways, mixed networks.

Parameter mapping (for these settings spikes and membranes are equal and gradients agree to
floating-point rounding, for any input; see :mod:`neurosim.neurons` for the equations and
``tests/spiking/test_snntorch_equivalence.py``, which runs snnTorch itself beside neurosim):

=================================================  ============================================
snnTorch                                           neurosim
=================================================  ============================================
``Leaky(beta, threshold)``                         ``LIF(beta=, threshold=)``
``Synaptic(alpha, beta, threshold)``               ``SynapticLIF(alpha=, beta=, threshold=)``
``reset_mechanism="subtract"|"zero"|"none"``       ``reset="subtract"|"zero"|"none"``
``reset_delay=True`` (snnTorch default)            ``delayed_reset=True``
``reset_delay=False``, ``"subtract"``              ``delayed_reset=False, pending_reset=True``
``reset_delay=False``, ``"zero"`` / ``"none"``     ``delayed_reset=False`` (``"zero"``: from an
                                                   initial membrane at or below the threshold)
``spike_grad=None`` / ``surrogate.atan(alpha=a)``  ``Surrogate.arctan(a)`` (``a = 2`` default)
``surrogate.fast_sigmoid(slope=k)``                ``Surrogate.fast_sigmoid(k)``
``surrogate.sigmoid(slope=k)``                     ``Surrogate.sigmoid(k)``
``surrogate.straight_through_estimator()``         ``Surrogate.straight_through()``
``learn_beta`` / ``learn_alpha`` /                 the same flags (``nn.Parameter`` vs buffer)
``learn_threshold``
``spk, mem = leaky(x, mem)``                       ``spk, LIFState(v=mem) = lif.step(x, state)``
``spk, syn, mem = synaptic(x, syn, mem)``          ``spk, SynapticState(i=syn, v=mem)``
=================================================  ============================================

Where equality holds exactly: every ``Leaky``/``Synaptic`` setting above, from any initial
membrane, except snnTorch's ``reset_delay=False`` with ``"zero"`` from an initial membrane above
the threshold (snnTorch then doubles the membrane; from rest this cannot happen). neurosim's
plain immediate subtract reset (``pending_reset=False``) equals snnTorch's ``reset_delay=False``
only while every membrane stays at or below the threshold after its reset (e.g. inputs below
the threshold per step); :func:`snntorch_from_lif` warns when it converts one.

Not representable (conversion raises :class:`~neurosim.backend.InputError`): snnTorch's
``inhibition``, ``state_quant``, ``graded_spikes_factor != 1``, ``surrogate_disable``, other
surrogates (triangular, SSO, ...), ``init_hidden=True`` when converting to a state-explicit
neuron; neurosim's ``detach_reset=True`` with an immediate reset (snnTorch keeps that gradient);
``Synaptic`` with ``reset_mechanism="zero"`` (snnTorch zeroes ``beta v + i``, neurosim ``v``).

Mixing the two libraries in one network:

* :class:`SnnTorchNeuron` wraps an snnTorch ``Leaky``/``Synaptic`` (``init_hidden=False``) as a
  neurosim :class:`~neurosim.neurons.SpikingNeuron` with explicit state, so it runs inside
  :class:`~neurosim.neurons.SpikingSequential` in single- or multi-step mode.
* :class:`Stateful` wraps a neurosim neuron so that it keeps its state between calls and returns
  only its output, like an snnTorch neuron with ``init_hidden=True``; such a layer fits a plain
  ``nn.Sequential`` stepped one time step at a time next to snnTorch neurons.
  :func:`reset_states` clears both kinds by walking the network's own submodules.

snnTorch is imported only when a function here needs it; a missing install raises
:class:`~neurosim.backend.BackendUnavailableError` with the import error chained.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from neurosim.backend import BackendUnavailableError, InputError
from neurosim.functional.lif import LIFState, NeuronSequence
from neurosim.functional.surrogate import Surrogate
from neurosim.functional.synaptic import SynapticState
from neurosim.neurons.base import SpikingNeuron
from neurosim.neurons.lif import LIF
from neurosim.neurons.synaptic import SynapticLIF

__all__ = [
    "SnnTorchNeuron",
    "Stateful",
    "lif_from_snntorch",
    "reset_states",
    "snntorch_from_lif",
    "snntorch_from_synaptic",
    "surrogate_from_snntorch",
    "surrogate_to_snntorch",
    "synaptic_from_snntorch",
]


def _snn() -> Any:
    """The ``snntorch`` module, or :class:`BackendUnavailableError` naming the install."""
    try:
        import snntorch
    except Exception as exc:  # any import failure: not usable here
        raise BackendUnavailableError(
            f"snnTorch interop needs the snntorch package (pip install 'snntorch>=1.0'); "
            f"importing it failed: {type(exc).__name__}: {exc}"
        ) from exc
    return snntorch


# ---------------------------------------------------------------------------- surrogates
_SURROGATE_FACTORIES = {
    "atan": ("arctan", "alpha"),
    "fast_sigmoid": ("fast_sigmoid", "slope"),
    "sigmoid": ("sigmoid", "slope"),
    "straight_through_estimator": ("straight_through", None),
}


def surrogate_from_snntorch(spike_grad: Callable[..., Any] | None) -> Surrogate:
    """The :class:`Surrogate` equal to an snnTorch ``spike_grad`` (``None``: snnTorch's atan(2)).

    Recognises the closures returned by ``snntorch.surrogate.atan(alpha)``,
    ``fast_sigmoid(slope)``, ``sigmoid(slope)`` and ``straight_through_estimator()``.
    """
    if spike_grad is None:
        return Surrogate.arctan(2.0)
    qualname = getattr(spike_grad, "__qualname__", "")
    factory = qualname.split(".<locals>.")[0] if ".<locals>." in qualname else ""
    module = getattr(spike_grad, "__module__", "")
    if module == "snntorch.surrogate" and factory in _SURROGATE_FACTORIES:
        name, arg = _SURROGATE_FACTORIES[factory]
        if arg is None:
            return Surrogate.straight_through()
        value = inspect.getclosurevars(spike_grad).nonlocals.get(arg)
        if isinstance(value, (int, float)):
            return Surrogate(name, float(value))
    raise InputError(
        f"snnTorch spike_grad {qualname or spike_grad!r} has no neurosim equivalent; supported: "
        "surrogate.atan(alpha), fast_sigmoid(slope), sigmoid(slope), straight_through_estimator()"
    )


def surrogate_to_snntorch(surrogate: Surrogate) -> Callable[[torch.Tensor], torch.Tensor]:
    """The snnTorch ``spike_grad`` closure with the same derivative as ``surrogate``."""
    sur = _snn().surrogate
    if not isinstance(surrogate, Surrogate):
        raise InputError(f"expected a neurosim Surrogate, got {type(surrogate).__name__}")
    if surrogate.name == "arctan":
        return sur.atan(alpha=surrogate.slope)  # type: ignore[no-any-return]
    if surrogate.name == "fast_sigmoid":
        return sur.fast_sigmoid(slope=surrogate.slope)  # type: ignore[no-any-return]
    if surrogate.name == "sigmoid":
        return sur.sigmoid(slope=surrogate.slope)  # type: ignore[no-any-return]
    if surrogate.name == "straight_through":
        return sur.straight_through_estimator()  # type: ignore[no-any-return]
    raise InputError(f"surrogate {surrogate.name!r} has no snnTorch equivalent")


# ---------------------------------------------------------------------------- conversions
def _check_snn_neuron(neuron: nn.Module, kind: str, explicit_state: bool) -> None:
    snn = _snn()
    cls = getattr(snn, kind)
    if not isinstance(neuron, cls):
        raise InputError(f"expected an snntorch.{kind}, got {type(neuron).__name__}")
    problems = []
    if getattr(neuron, "inhibition", False):
        problems.append("inhibition=True")
    if getattr(neuron, "state_quant", False):
        problems.append("state_quant")
    if getattr(neuron, "surrogate_disable", False):
        problems.append("surrogate_disable=True")
    factor = getattr(neuron, "graded_spikes_factor", 1.0)
    if isinstance(factor, nn.Parameter) or not torch.all(torch.as_tensor(factor) == 1.0):
        problems.append("graded_spikes_factor != 1 (or learnable)")
    if explicit_state and getattr(neuron, "init_hidden", False):
        problems.append("init_hidden=True (build it with init_hidden=False: state is explicit)")
    if problems:
        raise InputError(f"snntorch.{kind} with {', '.join(problems)} has no neurosim equivalent")


def _value(tensor: torch.Tensor) -> float | torch.Tensor:
    """A 0-d tensor becomes a float (one shared value); others a detached copy."""
    t = tensor.detach()
    return float(t) if t.dim() == 0 else t.clone()


def _learn(module: nn.Module, name: str) -> bool:
    return isinstance(getattr(module, name), nn.Parameter)


def _spike_grad(neuron: nn.Module) -> Callable[..., Any] | None:
    grad = getattr(neuron, "spike_grad", None)
    # snnTorch stores atan() when spike_grad=None; a bound method means "surrogate disabled"
    return grad if inspect.isfunction(grad) else None


def lif_from_snntorch(leaky: nn.Module, **kwargs: Any) -> LIF:
    """A neurosim :class:`LIF` equal to an ``snntorch.Leaky`` (same spikes, membranes, gradients;
    ``reset_delay=False`` with ``"subtract"`` becomes ``pending_reset=True``).

    Per-neuron ``beta``/``threshold`` tensors are copied; ``learn_*`` follow snnTorch's choice
    (``nn.Parameter`` or buffer). ``kwargs`` (e.g. ``step_mode="single"``) go to :class:`LIF`.
    """
    _check_snn_neuron(leaky, "Leaky", explicit_state=False)
    return LIF(
        pending_reset=_pending(leaky),
        beta=_value(leaky.beta),  # type: ignore[arg-type]
        threshold=_value(leaky.threshold),  # type: ignore[arg-type]
        reset=str(leaky.reset_mechanism),
        delayed_reset=bool(leaky.reset_delay),
        surrogate=surrogate_from_snntorch(_spike_grad(leaky)),
        learn_beta=_learn(leaky, "beta"),
        learn_threshold=_learn(leaky, "threshold"),
        **kwargs,
    )


def _pending(neuron: nn.Module) -> bool:
    """snnTorch's ``reset_delay=False`` subtract reset is neurosim's ``pending_reset``."""
    return (not bool(neuron.reset_delay)) and str(neuron.reset_mechanism) == "subtract"


def _check_our_reset(module: nn.Module) -> None:
    if getattr(module, "detach_reset", False) and not getattr(module, "delayed_reset", False):
        raise InputError(
            f"{type(module).__name__} with detach_reset=True and an immediate reset has no "
            "snnTorch equivalent (snnTorch's reset_delay=False keeps the reset's gradient)"
        )
    plain_subtract = (
        module.reset == "subtract"
        and not module.delayed_reset
        and not getattr(module, "pending_reset", False)
    )
    if plain_subtract:
        warnings.warn(
            f"{type(module).__name__} with the immediate subtract reset and pending_reset=False "
            "becomes snnTorch reset_delay=False, which differs once a membrane exceeds twice the "
            "threshold (snnTorch then skips a spike); build it with pending_reset=True for an "
            "exact conversion",
            UserWarning,
            stacklevel=3,
        )


def snntorch_from_lif(lif: LIF, *, init_hidden: bool = False) -> nn.Module:
    """An ``snntorch.Leaky`` equal to a neurosim :class:`LIF` (copies of its parameters)."""
    if not isinstance(lif, LIF):
        raise InputError(f"expected a neurosim LIF, got {type(lif).__name__}")
    _check_our_reset(lif)
    snn = _snn()
    return snn.Leaky(
        beta=lif.beta.detach().clone(),  # type: ignore[operator]
        threshold=lif.threshold.detach().clone(),  # type: ignore[operator]
        spike_grad=surrogate_to_snntorch(lif.surrogate),
        init_hidden=init_hidden,
        learn_beta=_learn(lif, "beta"),
        learn_threshold=_learn(lif, "threshold"),
        reset_mechanism=lif.reset,
        reset_delay=lif.delayed_reset,
    )


def synaptic_from_snntorch(synaptic: nn.Module, **kwargs: Any) -> SynapticLIF:
    """A neurosim :class:`SynapticLIF` equal to an ``snntorch.Synaptic``."""
    _check_snn_neuron(synaptic, "Synaptic", explicit_state=False)
    if synaptic.reset_mechanism == "zero":
        raise InputError(
            "snntorch.Synaptic with reset_mechanism='zero' zeroes beta*v + i, which neurosim's "
            "SynapticLIF (it zeroes v) does not reproduce; use 'subtract' or 'none'"
        )
    return SynapticLIF(
        pending_reset=_pending(synaptic),
        alpha=_value(synaptic.alpha),  # type: ignore[arg-type]
        beta=_value(synaptic.beta),  # type: ignore[arg-type]
        threshold=_value(synaptic.threshold),  # type: ignore[arg-type]
        reset=str(synaptic.reset_mechanism),
        delayed_reset=bool(synaptic.reset_delay),
        surrogate=surrogate_from_snntorch(_spike_grad(synaptic)),
        learn_alpha=_learn(synaptic, "alpha"),
        learn_beta=_learn(synaptic, "beta"),
        learn_threshold=_learn(synaptic, "threshold"),
        **kwargs,
    )


def snntorch_from_synaptic(neuron: SynapticLIF, *, init_hidden: bool = False) -> nn.Module:
    """An ``snntorch.Synaptic`` equal to a neurosim :class:`SynapticLIF`."""
    if not isinstance(neuron, SynapticLIF):
        raise InputError(f"expected a neurosim SynapticLIF, got {type(neuron).__name__}")
    _check_our_reset(neuron)
    if neuron.reset == "zero":
        raise InputError(
            "SynapticLIF with reset='zero' has no snntorch.Synaptic equivalent (snnTorch zeroes "
            "beta*v + i); use 'subtract' or 'none'"
        )
    snn = _snn()
    return snn.Synaptic(
        alpha=neuron.alpha.detach().clone(),  # type: ignore[operator]
        beta=neuron.beta.detach().clone(),  # type: ignore[operator]
        threshold=neuron.threshold.detach().clone(),  # type: ignore[operator]
        spike_grad=surrogate_to_snntorch(neuron.surrogate),
        init_hidden=init_hidden,
        learn_alpha=_learn(neuron, "alpha"),
        learn_beta=_learn(neuron, "beta"),
        learn_threshold=_learn(neuron, "threshold"),
        reset_mechanism=neuron.reset,
        reset_delay=neuron.delayed_reset,
    )


# ---------------------------------------------------------------------------- mixing
class SnnTorchNeuron(SpikingNeuron):
    """An snnTorch ``Leaky`` or ``Synaptic`` as a neurosim neuron with explicit state.

    ``forward(x, state) -> (output, new_state)`` in ``step_mode`` ``"single"`` (``x [B, *F]``) or
    ``"multi"`` (``x [T, B, *F]``, stepped in a Python loop: snnTorch has no fused scan). The
    state is a :class:`~neurosim.functional.lif.LIFState` ``(v=mem)`` for ``Leaky`` and a
    :class:`~neurosim.functional.synaptic.SynapticState` ``(i=syn, v=mem)`` for ``Synaptic``:
    the same types as the equivalent neurosim neurons, so states can be handed across.

    Args:
        neuron: an ``snntorch.Leaky`` or ``snntorch.Synaptic`` built with ``init_hidden=False``.
        output: ``"spikes"`` (default) or ``"membrane"`` (for a readout layer).
        step_mode, time_major: see :class:`~neurosim.neurons.base.SpikingNeuron`.

    snnTorch keeps the last membrane on the module; this wrapper clears it after every call so
    that nothing of the autograd graph outlives the returned state.
    """

    def __init__(
        self,
        neuron: nn.Module,
        *,
        output: str = "spikes",
        step_mode: str = "multi",
        time_major: bool = True,
    ) -> None:
        super().__init__(step_mode, time_major, backend="torch")
        snn = _snn()
        if isinstance(neuron, snn.Synaptic):
            _check_snn_neuron(neuron, "Synaptic", explicit_state=True)
            self.kind = "Synaptic"
        else:
            _check_snn_neuron(neuron, "Leaky", explicit_state=True)
            self.kind = "Leaky"
        if output not in ("spikes", "membrane"):
            raise InputError(
                f"SnnTorchNeuron output must be 'spikes' or 'membrane', got {output!r}"
            )
        self.neuron = neuron
        self.output = output

    def _forget(self) -> None:
        mem: torch.Tensor = self.neuron.mem  # type: ignore[assignment]
        empty = torch.zeros(0, device=mem.device)
        self.neuron.mem = empty
        if self.kind == "Synaptic":
            self.neuron.syn = empty

    def step(self, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
        """One step ``x [B, *F] -> (output [B, *F], state)``."""
        if self.kind == "Leaky":
            if state is not None and not isinstance(state, LIFState):
                raise InputError(f"snnTorch Leaky state must be a LIFState, got {type(state)}")
            mem = torch.zeros_like(x) if state is None else state.v
            spk, mem = self.neuron(x, mem)
            new_state: Any = LIFState(mem)
        else:
            if state is not None and not isinstance(state, SynapticState):
                raise InputError(
                    f"snnTorch Synaptic state must be a SynapticState, got {type(state)}"
                )
            syn = torch.zeros_like(x) if state is None else state.i
            mem = torch.zeros_like(x) if state is None else state.v
            spk, syn, mem = self.neuron(x, syn, mem)
            new_state = SynapticState(syn, mem)
        self._forget()
        return (spk if self.output == "spikes" else mem), new_state

    def multi_step(self, x: torch.Tensor, state: Any = None) -> NeuronSequence:
        """Step through ``x [T, B, *F]``; returns outputs, membrane trace and final state
        (``T = 0``: empty outputs and the initial state)."""
        if x.shape[0] == 0:
            if state is None:
                zeros = x.new_zeros(x.shape[1:])
                state = LIFState(zeros) if self.kind == "Leaky" else SynapticState(zeros, zeros)
            return NeuronSequence(x * 0, x * 0, state)
        outs, mems = [], []
        for t in range(x.shape[0]):
            out, state = self.step(x[t], state)
            outs.append(out)
            mems.append(state.v)
        return NeuronSequence(torch.stack(outs), torch.stack(mems), state)

    def extra_repr(self) -> str:
        return f"output={self.output!r}, " + super().extra_repr()


class Stateful(nn.Module):
    """Keeps a neurosim neuron's state between calls: ``forward(x) -> output`` only.

    The snnTorch ``init_hidden=True`` style, for stepping a plain ``nn.Sequential`` one time
    step at a time (``neuron.step`` in single-step mode) or chunk by chunk (multi-step mode).
    The state lives on this wrapper, not in a global list; clear it with :meth:`reset` or
    :func:`reset_states`, and cut the graph for truncated BPTT with :meth:`detach`.

    Args:
        neuron: a :class:`~neurosim.neurons.SpikingNeuron`; its ``step_mode`` decides whether a
            call is one step ``[B, *F]`` or a chunk ``[T, B, *F]``.
    """

    def __init__(self, neuron: SpikingNeuron) -> None:
        super().__init__()
        if not isinstance(neuron, SpikingNeuron):
            raise InputError(
                f"Stateful wraps a neurosim SpikingNeuron, got {type(neuron).__name__}"
            )
        self.neuron = neuron
        self.state: Any = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Advance by ``x`` from the kept state; keep the new state; return the output."""
        out, self.state = self.neuron(x, self.state)
        return out

    def reset(self) -> None:
        """Back to rest (the next call starts from ``state = None``)."""
        self.state = None

    def detach(self) -> None:
        """Keep the state's values but cut its autograd history (truncated BPTT)."""
        if self.state is not None:
            self.state = type(self.state)(*(t.detach() for t in self.state))


def reset_states(model: nn.Module) -> int:
    """Reset every :class:`Stateful` wrapper and every snnTorch neuron inside ``model``.

    Walks ``model.modules()`` (no global registry): :class:`Stateful` layers go back to rest and
    snnTorch neurons have their hidden membranes (and synaptic currents) zeroed and detached via
    their own ``reset_mem()``. Returns how many modules were reset.
    """
    count = 0
    for module in model.modules():
        if isinstance(module, Stateful):
            module.reset()
            count += 1
        elif type(module).__module__.startswith("snntorch") and hasattr(module, "reset_mem"):
            module.reset_mem()  # type: ignore[operator]
            count += 1
    return count
