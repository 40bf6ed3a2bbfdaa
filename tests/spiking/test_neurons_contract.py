"""One contract over every registered neuron (``neurosim.neurons.neuron_specs()``) and its
variants: step modes agree, sequences continue, dtypes and layouts are kept, gradients flow,
``state_dict`` round-trips, bad input is a clear error, ``T = 0`` returns empty outputs and the
unchanged state on every backend, and the forward never reads a value back to the host.

A new neuron is covered by registering it (see ``docs/extending_neurons.md``)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from neurosim.backend import InputError, debug_checks, kernels
from neurosim.neurons import NeuronSpec, SpikingNeuron, neuron_spec, neuron_specs

F = 6
CASES = [
    pytest.param(spec.name, variant, id=spec.name if variant is None else f"{spec.name}-{variant}")
    for spec in neuron_specs()
    for variant in (None, *spec.variants)
]
NAMES = [pytest.param(spec.name, id=spec.name) for spec in neuron_specs()]


def _build(name: str, variant: str | None = None, **kwargs: Any) -> SpikingNeuron:
    spec = neuron_spec(name)
    options = dict(spec.variants[variant]) if variant else {}
    return spec.example(F, **{**options, **kwargs})


def _input(spec: NeuronSpec, steps: int = 12, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return spec.example_input(steps, 3, F, dtype, torch.Generator().manual_seed(len(spec.name)))


def _stepped(module: SpikingNeuron, x: torch.Tensor, state: Any = None) -> tuple[torch.Tensor, Any]:
    outs = []
    for t in range(x.shape[0]):
        out, state = module.step(x[t], state)
        outs.append(out)
    return torch.stack(outs), state


def _assert_state_close(a: Any, b: Any) -> None:
    assert type(a) is type(b)
    for u, v in zip(a, b, strict=True):
        torch.testing.assert_close(u, v)


def test_registry_lists_every_neuron_module() -> None:
    names = {spec.name for spec in neuron_specs()}
    assert {"lif", "synaptic", "alif", "li", "conductance"} <= names
    with pytest.raises(InputError, match="already registered"):
        from neurosim.neurons import register_neuron

        register_neuron(neuron_spec("lif"))


@pytest.mark.parametrize(("name", "variant"), CASES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_step_modes_agree_and_keep_dtype(
    name: str, variant: str | None, dtype: torch.dtype
) -> None:
    spec = neuron_spec(name)
    module = _build(name, variant).to(dtype)
    x = _input(spec, dtype=dtype)
    multi, state_multi = module(x)
    single, state_single = _stepped(module, x)
    assert multi.dtype == dtype and multi.shape == x.shape
    assert isinstance(state_multi, spec.state)
    torch.testing.assert_close(multi, single)
    _assert_state_close(state_multi, state_single)
    if spec.spiking:
        assert 0 < float(multi.detach().float().mean()) < 1  # spikes happen, not always
    single_module = _build(name, variant, step_mode="single").to(dtype)
    out, _ = single_module(x[0])
    torch.testing.assert_close(out, single[0])


@pytest.mark.parametrize("name", NAMES)
def test_functional_api_with_default_parameters(name: str) -> None:
    spec = neuron_spec(name)
    x = _input(spec)
    out = spec.multi_step(x, None, spec.parameters())
    assert out.spikes.shape == x.shape and isinstance(out.state, spec.state)
    s, state = spec.step(x[0], None, spec.parameters())
    assert s.shape == x[0].shape and isinstance(state, spec.state)
    torch.testing.assert_close(s, out.spikes[0])


@pytest.mark.parametrize(("name", "variant"), CASES)
def test_sequences_continue_from_the_returned_state(name: str, variant: str | None) -> None:
    module = _build(name, variant)
    x = _input(neuron_spec(name), steps=14)
    whole, state = module(x)
    first, mid = module(x[:5])
    second, end = module(x[5:], mid)
    torch.testing.assert_close(torch.cat([first, second]), whole)
    _assert_state_close(end, state)


@pytest.mark.parametrize("name", NAMES)
def test_batch_major_layout(name: str) -> None:
    x = _input(neuron_spec(name))
    want = _build(name).simulate(x)
    got = _build(name, time_major=False).simulate(x.transpose(0, 1))
    torch.testing.assert_close(got.spikes.transpose(0, 1), want.spikes)
    torch.testing.assert_close(got.membrane.transpose(0, 1), want.membrane)


@pytest.mark.parametrize(("name", "variant"), CASES)
def test_gradients_flow_and_state_dict_round_trips(name: str, variant: str | None) -> None:
    module = _build(name, variant)
    x = _input(neuron_spec(name)).requires_grad_(True)
    out = module.simulate(x)
    (out.spikes.sum() + out.membrane.sum()).backward()
    assert x.grad is not None and bool(torch.isfinite(x.grad).all()) and x.grad.abs().sum() > 0
    for p in module.parameters():
        assert p.grad is not None and bool(torch.isfinite(p.grad).all())
    clone = _build(name, variant)
    with torch.no_grad():
        for p in clone.parameters():
            p.add_(0.05)
    clone.load_state_dict(module.state_dict())
    torch.testing.assert_close(clone(x.detach())[0], module(x.detach())[0])


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_a_clear_error(name: str) -> None:
    module = _build(name)
    x = _input(neuron_spec(name))
    nan = x.clone().index_fill_(0, torch.tensor([3]), float("nan"))
    with debug_checks(), pytest.raises(InputError, match="non-finite"):
        module(nan)
    _, state = module(x)
    batch_major = x.transpose(0, 1).contiguous()  # [B, T, F] with a [B, F] state
    with pytest.raises(InputError, match="batch-major"):
        module(batch_major, state)
    with pytest.raises(InputError, match="state"):
        module(x, tuple(state))  # a plain tuple is not the neuron's state type
    with pytest.raises(InputError):
        module(torch.zeros(5))  # multi-step needs [T, B, ...]
    with pytest.raises(InputError, match="floating-point"):
        module(torch.zeros(4, 3, F, dtype=torch.long))


@pytest.mark.parametrize("name", NAMES)
def test_non_finite_input_outside_debug_mode_is_not_read_back(name: str) -> None:
    """Without debug checks NaN propagates like in any torch layer (no check, no sync)."""
    x = _input(neuron_spec(name)).index_fill_(0, torch.tensor([3]), float("nan"))
    out = _build(name).simulate(x)
    assert out.spikes.shape == x.shape


def _backends(spec: NeuronSpec) -> list[str]:
    """The backends of the neuron's first scan operation that run on the CPU here."""
    if not spec.scan_ops:
        return ["auto"]
    status = kernels.availability(spec.scan_ops[0], torch.device("cpu"))
    return [name for name, reason in status.items() if reason is None]


@pytest.mark.parametrize("name", NAMES)
def test_empty_sequence_returns_empty_outputs_and_the_unchanged_state(name: str) -> None:
    spec = neuron_spec(name)
    x = _input(spec)
    backends = _backends(spec)
    assert len(backends) >= (3 if spec.scan_ops else 1)
    _, state = _build(name)(x[:4])
    for backend in backends:
        kw = {"backend": backend} if spec.scan_ops else {}
        module = _build(name, **kw)
        empty = x[:0].clone().requires_grad_(True)
        out = module.simulate(empty, state)
        assert out.spikes.shape == (0, 3, F) and out.membrane.shape == (0, 3, F), backend
        _assert_state_close(out.state, state)
        (out.spikes.sum() + out.membrane.sum()).backward()  # a loss over nothing: zero gradient
        assert empty.grad is None or empty.grad.shape == empty.shape
        fresh = module.simulate(x[:0])
        assert isinstance(fresh.state, spec.state)
        for value in fresh.state:
            assert value.shape == (3, F)
        batch_major = _build(name, time_major=False, **kw).simulate(x[:0].transpose(0, 1))
        assert batch_major.spikes.shape == (3, 0, F)


def _refuse(*_: Any, **__: Any) -> Any:
    raise AssertionError("a value was read back to the host in the forward/backward path")


@pytest.mark.parametrize(("name", "variant"), CASES)
def test_forward_and_backward_never_read_values_back(
    name: str, variant: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``bool(t)``, ``t.item()``, ``float(t)``, ``int(t)`` are how a host-device sync is written;
    none happens in a training step (on CUDA the gpu test checks with torch's sync debug mode)."""
    module = _build(name, variant)
    x = _input(neuron_spec(name)).requires_grad_(True)
    module(x)  # resolve and load the backends first (not the hot path)
    for attr in ("__bool__", "item", "__float__", "__int__", "tolist"):
        monkeypatch.setattr(torch.Tensor, attr, _refuse)
    out = module.simulate(x)
    (out.spikes.sum() + out.membrane.sum()).backward()
    monkeypatch.undo()
    assert x.grad is not None


@pytest.mark.gpu
def test_lif_layer_training_step_has_no_sync_on_cuda() -> None:
    from neurosim.neurons import LIF, SpikingSequential

    device = torch.device("cuda")
    net = SpikingSequential(torch.nn.Linear(32, 64), LIF(64, learn_beta=True)).to(device)
    x = torch.rand(20, 8, 32, device=device)
    net(x)[0].sum().backward()  # warm-up: compile/load kernels
    torch.cuda.set_sync_debug_mode("error")
    try:
        net(x)[0].sum().backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
