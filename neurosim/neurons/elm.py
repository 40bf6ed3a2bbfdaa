"""The :class:`ELM` module: Expressive Leaky Memory neuron and Branch-ELM.

A thin wrapper over :mod:`neurosim.functional.elm` holding the parameters. Defaults follow the
reference implementation (AaronSpieler/elmneuron): ``d_m = 100`` memory units, an MLP with one
hidden layer of ``2 d_m`` ReLU units, ``lambda = 5``, ``tau_m`` log-spaced in ``[1, 1000]``,
``tau_s = 5``, ``w_s = 0.5``, ``dt = 1``. With the NeuronIO settings (1278 inputs routed to
45 branches x 100 synapses, ``routing="neuronio"``, 2 outputs) it has 8,002 trainable parameters
for ``d_m = 20`` and 54,002 for ``d_m = 100``, as the reference's pre-trained models.

>>> elm = ELM(128, 20, num_memory=100)
>>> sum(p.numel() for p in elm.parameters())
68048
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import torch
from torch import nn

from neurosim.backend import InputError, check_tensor
from neurosim.functional.elm import (
    ACTIVATIONS,
    ROUTINGS,
    VERSIONS,
    ELMParameters,
    ELMSequence,
    ELMState,
    check_sizes,
    elm_multi_step,
    elm_routing,
    elm_step,
    memory_time_constants,
)
from neurosim.functional.lif import NeuronSequence, check_option, compute_dtype
from neurosim.neurons.base import SpikingNeuron


def _logit_between(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Inverse of ``low + (high - low) * sigmoid(raw)`` (values clamped just inside the bounds)."""
    eps = 1e-6
    x = x.double().clamp(low + eps, high - eps)
    return torch.log((x - low) / (high - x))


class ELM(SpikingNeuron):
    """Expressive Leaky Memory neuron (see :mod:`neurosim.functional.elm` for the equations).

    Args:
        num_input: input features ``D``.
        num_output: readout width.
        num_memory: memory units ``d_m``.
        lambda_value: memory update scale ``lambda``.
        mlp_num_layers: hidden layers of the integration MLP.
        mlp_hidden_size: their width (default ``2 * num_memory``).
        mlp_activation: ``"relu"`` or ``"silu"``.
        tau_s: synaptic trace time constant (a float, or one value per branch); fixed.
        memory_tau_min, memory_tau_max: bounds of the memory time constants (log-spaced init).
        learn_memory_tau: learn ``tau_m`` (kept inside the bounds by a scaled sigmoid).
        w_s_value: initial synaptic weight (``w_s = relu(raw)``, so it stays >= 0).
        num_branch: branches (default: one per input, i.e. plain ELM).
        num_synapse_per_branch: synapses per branch.
        routing: ``None`` (synapse ``j`` reads input ``j``), ``"random"`` or ``"neuronio"``
            (:func:`neurosim.functional.elm.elm_routing`).
        version: ``"v1"`` (paper: ``m += lambda (1 - kappa_m) dm``) or ``"v2"`` (reference v2:
            ``m += (1 - exp(-dt lambda / tau_m)) dm``).
        delta_t: time step ``dt`` (same unit as the taus).
        routing_generator: generator of the random routing.
        step_mode, time_major, backend: as :class:`~neurosim.neurons.base.SpikingNeuron`
            (``backend`` picks the ``elm_memory_scan`` kernel: ``auto``, ``torch``, ``loop``,
            ``cuda_graph``).
        trace_backend: backend of the branch traces (:func:`~neurosim.functional.elm.trace_scan`).

    ``forward(x, state) -> (y, ELMState)``; :meth:`run` returns the full :class:`ELMSequence`
    (output, memory trajectory, branch traces, final state). Monitors attached with
    ``signal="membrane"`` record the memory trajectory.
    """

    tau_s: torch.Tensor
    memory_tau_raw: torch.Tensor
    routing_index: torch.Tensor | None
    routing_mask: torch.Tensor | None

    def __init__(
        self,
        num_input: int,
        num_output: int,
        num_memory: int = 100,
        *,
        lambda_value: float = 5.0,
        mlp_num_layers: int = 1,
        mlp_hidden_size: int | None = None,
        mlp_activation: str = "relu",
        tau_s: float | torch.Tensor = 5.0,
        memory_tau_min: float = 1.0,
        memory_tau_max: float = 1000.0,
        learn_memory_tau: bool = False,
        w_s_value: float = 0.5,
        num_branch: int | None = None,
        num_synapse_per_branch: int = 1,
        routing: str | None = None,
        version: str = "v1",
        delta_t: float = 1.0,
        routing_generator: torch.Generator | None = None,
        step_mode: str = "multi",
        time_major: bool = True,
        backend: str = "auto",
        trace_backend: str = "loop",
    ) -> None:
        super().__init__(step_mode, time_major, backend)
        hidden = 2 * num_memory if mlp_hidden_size is None else mlp_hidden_size
        branches = num_input if num_branch is None else num_branch
        check_sizes(
            [("num_input", num_input), ("num_output", num_output), ("num_memory", num_memory),
             ("mlp_num_layers", mlp_num_layers), ("mlp_hidden_size", hidden),
             ("num_branch", branches), ("num_synapse_per_branch", num_synapse_per_branch)]
        )  # fmt: skip
        check_option(mlp_activation, "ELM mlp_activation", ACTIVATIONS)
        if routing not in ROUTINGS:
            raise InputError(f"ELM routing must be one of {ROUTINGS}, got {routing!r}")
        check_option(version, "ELM version", VERSIONS)
        for name, value in (("lambda_value", lambda_value), ("delta_t", delta_t),
                            ("w_s_value", w_s_value)):  # fmt: skip
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InputError(f"ELM {name} must be a finite number, got {value!r}")
        if delta_t <= 0 or lambda_value <= 0:
            raise InputError(
                f"ELM delta_t and lambda_value must be > 0, got {delta_t}, {lambda_value}"
            )
        if not (0 < memory_tau_min <= memory_tau_max and math.isfinite(memory_tau_max)):
            raise InputError(
                f"ELM needs 0 < memory_tau_min <= memory_tau_max < inf, got {memory_tau_min}, "
                f"{memory_tau_max}"
            )
        self.num_input, self.num_output, self.num_memory = num_input, num_output, num_memory
        self.num_branch, self.num_synapse_per_branch = branches, num_synapse_per_branch
        self.num_synapse = branches * num_synapse_per_branch
        self.mlp_hidden_size, self.mlp_num_layers = hidden, mlp_num_layers
        self.mlp_activation, self.routing, self.version = mlp_activation, routing, version
        self.lambda_value, self.delta_t = float(lambda_value), float(delta_t)
        self.memory_tau_min = float(memory_tau_min)
        self.memory_tau_max = max(float(memory_tau_min) + 3e-6, float(memory_tau_max))
        self.learn_memory_tau = bool(learn_memory_tau)
        self.trace_backend = trace_backend

        index, mask = elm_routing(
            num_input, branches, num_synapse_per_branch, routing, routing_generator
        )
        self.register_buffer("routing_index", index)
        self.register_buffer("routing_mask", mask)

        self.synapse_weight_raw = nn.Parameter(torch.full((self.num_synapse,), float(w_s_value)))
        if isinstance(tau_s, torch.Tensor):
            check_tensor(tau_s, "ELM tau_s", ndim=(0, 1))
            tau = tau_s.detach().to(torch.get_default_dtype()).expand(branches).clone()
        elif isinstance(tau_s, (int, float)) and math.isfinite(tau_s):
            tau = torch.full((branches,), float(tau_s))
        else:
            raise InputError(f"ELM tau_s must be a finite float or a tensor, got {tau_s!r}")
        if bool((tau <= 0).any()):
            raise InputError("ELM tau_s must be > 0")
        self.register_buffer("tau_s", tau)

        taus = memory_time_constants(
            num_memory, self.memory_tau_min + 1e-6, self.memory_tau_max - 1e-6, torch.float64
        )
        raw = _logit_between(taus, self.memory_tau_min, self.memory_tau_max)
        raw = raw.to(torch.get_default_dtype())
        if self.learn_memory_tau:
            self.memory_tau_raw = nn.Parameter(raw)
        else:
            self.register_buffer("memory_tau_raw", raw)

        sizes = [branches + num_memory] + [hidden] * mlp_num_layers + [num_memory]
        self.mlp = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))
        self.readout = nn.Linear(num_memory, num_output)

    # ------------------------------------------------------------------ derived quantities
    @property
    def linears(self) -> list[nn.Linear]:
        """The MLP's layers, first to last."""
        return [layer for layer in self.mlp if isinstance(layer, nn.Linear)]

    @property
    def synapse_weight(self) -> torch.Tensor:
        """``w_s = relu(raw) >= 0``, one per synapse."""
        return torch.relu(self.synapse_weight_raw)

    @property
    def tau_m(self) -> torch.Tensor:
        """Memory time constants, ``tau_min + (tau_max - tau_min) sigmoid(raw)``."""
        span = self.memory_tau_max - self.memory_tau_min
        return self.memory_tau_min + span * torch.sigmoid(self.memory_tau_raw)

    @property
    def memory_decay(self) -> torch.Tensor:
        """``kappa_m = exp(-dt / tau_m)``."""
        return torch.exp(-self.delta_t / self.tau_m.clamp(min=1e-6))

    @property
    def memory_gain(self) -> torch.Tensor:
        """``v1``: ``lambda (1 - kappa_m)``; ``v2``: ``1 - exp(-dt lambda / tau_m)``."""
        if self.version == "v1":
            return self.lambda_value * (1 - self.memory_decay)
        return 1 - torch.exp(-self.delta_t * self.lambda_value / self.tau_m.clamp(min=1e-6))

    @property
    def synapse_decay(self) -> torch.Tensor:
        """``kappa_s = exp(-dt / tau_s)`` per branch."""
        return torch.exp(-self.delta_t / self.tau_s.clamp(min=1e-6))

    def parameters_now(self, dtype: torch.dtype | None = None) -> ELMParameters:
        """The functional :class:`ELMParameters` of the current weights (differentiable)."""

        def cast(t: torch.Tensor) -> torch.Tensor:
            return t if dtype is None else t.to(dtype)

        return ELMParameters(
            synapse_weight=cast(self.synapse_weight),
            synapse_decay=cast(self.synapse_decay),
            memory_decay=cast(self.memory_decay),
            memory_gain=cast(self.memory_gain),
            mlp_weights=tuple(cast(layer.weight) for layer in self.linears),
            mlp_biases=tuple(cast(layer.bias) for layer in self.linears),
            readout_weight=cast(self.readout.weight),
            readout_bias=cast(self.readout.bias),
            num_branch=self.num_branch,
            num_input=self.num_input,
            routing_index=self.routing_index,
            routing_mask=None if self.routing_mask is None else cast(self.routing_mask),
            activation=self.mlp_activation,
        )

    def initial_state(
        self, batch: int, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> ELMState:
        """Resting state (zeros) for ``batch`` sequences."""
        dev = self.readout.weight.device if device is None else device
        dt = torch.float32 if dtype is None else compute_dtype(dtype)
        return ELMState(
            torch.zeros(batch, self.num_branch, device=dev, dtype=dt),
            torch.zeros(batch, self.num_memory, device=dev, dtype=dt),
        )

    # ------------------------------------------------------------------ running
    def step(self, x: torch.Tensor, state: ELMState | None = None) -> tuple[torch.Tensor, ELMState]:
        """One step: ``x [B, D] -> (y [B, d_out], ELMState)``."""
        check_tensor(x, "ELM input x [B, D]", ndim=2)
        return elm_step(x, state, self.parameters_now(compute_dtype(x.dtype)))

    def multi_step(self, x: torch.Tensor, state: ELMState | None = None) -> NeuronSequence:
        """A time-major sequence ``x [T, B, D]``: ``NeuronSequence(output, memory, state)``."""
        seq = self._run(x, state)
        return NeuronSequence(seq.output, seq.memory, seq.state)

    def _run(
        self, x: torch.Tensor, state: ELMState | None, record_branch: bool = False
    ) -> ELMSequence:
        check_tensor(x, "ELM input x [T, B, D]", ndim=3)
        return elm_multi_step(
            x,
            state,
            self.parameters_now(compute_dtype(x.dtype)),
            backend=self.backend,
            trace_backend=self.trace_backend,
            record_branch=record_branch,
        )

    def run(
        self, x: torch.Tensor, state: ELMState | None = None, *, record_branch: bool = False
    ) -> ELMSequence:
        """The full :class:`ELMSequence` (output, memory, final state and, with
        ``record_branch``, the branch traces) in the module's layout (``time_major=False``:
        ``[B, T, ...]`` in and out)."""
        check_tensor(x, "ELM input", ndim=3)
        if self.time_major:
            return self._run(x, state, record_branch)
        seq = self._run(x.transpose(0, 1), state, record_branch)
        return ELMSequence(
            seq.output.transpose(0, 1),
            seq.memory.transpose(0, 1),
            seq.state,
            None if seq.branch is None else seq.branch.transpose(0, 1),
        )

    def extra_repr(self) -> str:
        return (
            f"num_input={self.num_input}, num_output={self.num_output}, "
            f"num_memory={self.num_memory}, num_branch={self.num_branch}, "
            f"synapses_per_branch={self.num_synapse_per_branch}, routing={self.routing!r}, "
            f"version={self.version!r}, " + super().extra_repr()
        )

    def memory_summary(self) -> dict[str, Any]:
        """Time constants and gains as plain lists (for logs and plots)."""
        with torch.no_grad():
            return {
                "tau_m": self.tau_m.tolist(),
                "memory_gain": self.memory_gain.tolist(),
                "tau_s": self.tau_s.tolist(),
            }
