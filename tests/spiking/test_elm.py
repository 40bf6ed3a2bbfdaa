"""ELM / Branch-ELM: parameter counts, the paper's equations, step vs sequence, gradients, errors.

Independent references used here:
* parameter counts from issue 8 (68,048; 8,002; 54,002) and the reference repository's README
  table of its pre-trained NeuronIO models (d_m = 1: 4,601; d_m = 50: 19,252; d_m = 75: 34,127);
* a per-synapse step loop written in this file from the paper's equations (one trace per
  synapse, gathered inputs, sum per branch), not from the module under test;
* closed forms worked out by hand (pure decay, constant drive, the v2 gain).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neurosim.backend import InputError
from neurosim.functional.elm import (
    ELMState,
    elm_multi_step,
    elm_reference_sequence,
    elm_routing,
    elm_step,
    interleave_indices,
    window_indices,
)
from neurosim.monitors import Monitor, read_monitor
from neurosim.neurons import ELM

NEURONIO = {
    "num_input": 1278,
    "num_output": 2,
    "num_branch": 45,
    "num_synapse_per_branch": 100,
    "routing": "neuronio",
}


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


# ------------------------------------------------------------------ parameter counts


@pytest.mark.parametrize(
    ("num_memory", "expected"),
    [(20, 8002), (100, 54002), (1, 4601), (50, 19252), (75, 34127)],
)
def test_neuronio_parameter_counts_match_the_reference(num_memory: int, expected: int) -> None:
    assert n_params(ELM(**NEURONIO, num_memory=num_memory)) == expected


def test_plain_elm_parameter_count_from_the_issue() -> None:
    assert n_params(ELM(128, 20, num_memory=100)) == 68048
    # learned time constants add one parameter per memory unit, routing adds none
    assert n_params(ELM(128, 20, num_memory=100, learn_memory_tau=True)) == 68148


# ------------------------------------------------------------------ routing


def test_routing_by_hand() -> None:
    assert interleave_indices(6).tolist() == [0, 3, 1, 4, 2, 5]
    pos, valid = window_indices(5, 2, 4)  # stride ceil(5/2) = 3: [0..3], [3..6] -> clamp 4
    assert pos.tolist() == [0, 1, 2, 3, 3, 4, 4, 4]
    assert valid.tolist() == [True, True, True, True, True, True, False, False]
    index, mask = elm_routing(6, 2, 4, "neuronio")
    assert index is not None and mask is not None
    # interleaved order 0,3,1,4,2,5; windows at positions [0..3] and [3..6]
    assert index.tolist() == [0, 3, 1, 4, 4, 2, 5, 5]
    assert mask.tolist() == [1, 1, 1, 1, 1, 1, 1, 0]
    assert elm_routing(6, 3, 2, None) == (None, None)


def test_neuronio_routing_counts_by_hand() -> None:
    """Stride ceil(1278 / 45) = 29, windows of 100: window b covers positions 29b .. 29b + 99.
    Windows 0-40 lie inside the 1278 positions; 41, 42, 43, 44 keep 89, 60, 31 and 2 of their
    100 synapses (4,282 real synapses, 218 padding). Position 0 lies in window 0 only; from
    position 99 on, every position lies in 3 or 4 windows."""
    index, mask = elm_routing(1278, 45, 100, "neuronio")
    assert index is not None and mask is not None
    assert int(mask.sum()) == 41 * 100 + 89 + 60 + 31 + 2
    reached = torch.zeros(1278).index_add_(0, index, mask)
    assert int(reached[0]) == 1 and int(reached.max()) == 4
    assert int(reached.min()) == 1 and bool((reached >= 1).all())


# ------------------------------------------------------------------ the paper's equations


def paper_loop(model: ELM, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ELM v1/v2 from the paper's equations: one trace per synapse (``s_t = k_s s + w_s x``),
    gathered inputs, branch sums, MLP on ``[branch, k_m m]``, scaled tanh, memory update."""
    steps, batch, _ = x.shape
    syn = model.num_synapse
    index = model.routing_index if model.routing_index is not None else torch.arange(syn)
    mask = model.routing_mask if model.routing_mask is not None else torch.ones(syn)
    w_s = torch.relu(model.synapse_weight_raw)
    tau_s = model.tau_s.repeat_interleave(model.num_synapse_per_branch)  # per synapse
    k_s = torch.exp(-model.delta_t / tau_s)
    lo, hi = model.memory_tau_min, model.memory_tau_max
    tau_m = lo + (hi - lo) * torch.sigmoid(model.memory_tau_raw)
    k_m = torch.exp(-model.delta_t / tau_m)
    if model.version == "v1":
        gain = model.lambda_value * (1 - k_m)
    else:
        gain = 1 - torch.exp(-model.delta_t * model.lambda_value / tau_m)
    s = torch.zeros(batch, syn, dtype=x.dtype)
    m = torch.zeros(batch, model.num_memory, dtype=x.dtype)
    ys, ms = [], []
    for t in range(steps):
        s = k_s * s + w_s * x[t][:, index] * mask
        branch = s.view(batch, model.num_branch, -1).sum(-1)
        h = torch.cat([branch, k_m * m], dim=-1)
        for i, layer in enumerate(model.linears):
            h = layer(h)
            if i < len(model.linears) - 1:
                h = torch.relu(h) if model.mlp_activation == "relu" else h * torch.sigmoid(h)
        m = k_m * m + gain * 1.7159 * torch.tanh(h * 2 / 3)
        ys.append(model.readout(m))
        ms.append(m)
    return torch.stack(ys), torch.stack(ms)


CASES = {
    "plain": {"num_input": 7},
    "branch_contiguous": {"num_input": 12, "num_branch": 3, "num_synapse_per_branch": 4},
    "branch_neuronio": {
        "num_input": 14,
        "num_branch": 4,
        "num_synapse_per_branch": 6,
        "routing": "neuronio",
    },
    "branch_random_v2": {
        "num_input": 9,
        "num_branch": 3,
        "num_synapse_per_branch": 5,
        "routing": "random",
        "version": "v2",
    },
    "two_layers_silu": {
        "num_input": 5,
        "mlp_num_layers": 2,
        "mlp_activation": "silu",
        "learn_memory_tau": True,
    },
}


def make(case: str, **kw: object) -> ELM:
    torch.manual_seed(3)
    args = dict(CASES[case])
    args.update(kw)
    model = ELM(
        num_output=3,
        num_memory=6,
        memory_tau_max=60.0,
        routing_generator=torch.Generator().manual_seed(1),
        **args,  # type: ignore[arg-type]
    ).double()
    with torch.no_grad():  # spread the synaptic weights so that a routing mix-up shows
        model.synapse_weight_raw.uniform_(0.1, 1.0)
    return model


def spikes(steps: int, batch: int, width: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(steps, batch, width, generator=g) < 0.3).double()


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("backend", ["loop", "numba", "torch"])
def test_sequence_equals_the_paper_loop(case: str, backend: str) -> None:
    model = make(case, backend=backend)
    x = spikes(25, 3, model.num_input)
    expected_y, expected_m = paper_loop(model, x)
    seq = model.run(x, record_branch=True)
    torch.testing.assert_close(seq.output, expected_y, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(seq.memory, expected_m, rtol=1e-10, atol=1e-10)
    plain = model.run(x)  # the plain-ELM shortcut (raw-input traces) where it applies
    torch.testing.assert_close(plain.output, expected_y, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", ["plain", "branch_neuronio"])
def test_single_steps_equal_the_sequence_and_states_continue(case: str) -> None:
    model = make(case)
    x = spikes(30, 2, model.num_input, seed=1)
    full = model.run(x, record_branch=True)
    state = None
    outs = []
    for t in range(x.shape[0]):
        y, state = model.step(x[t], state)
        outs.append(y)
    assert isinstance(state, ELMState)
    torch.testing.assert_close(torch.stack(outs), full.output, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(state.m, full.state.m, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(state.b, full.state.b, rtol=1e-10, atol=1e-12)
    first = model.run(x[:11])
    second = model.run(x[11:], first.state)
    torch.testing.assert_close(torch.cat([first.output, second.output]), full.output)
    assert full.branch is not None
    torch.testing.assert_close(second.branch, full.branch[11:])


def test_batch_major_layout_matches_time_major() -> None:
    model = make("branch_neuronio")
    x = spikes(20, 4, model.num_input, seed=2)
    y_t, state_t = model(x)
    model.time_major = False
    y_b, state_b = model(x.transpose(0, 1).contiguous())
    torch.testing.assert_close(y_b, y_t.transpose(0, 1))
    torch.testing.assert_close(state_b.m, state_t.m)


def test_memory_decays_by_hand_without_input() -> None:
    """Zero MLP weights and biases: Delta m = tanh_c(0) = 0, so m_t = exp(-t dt / tau_m) m_0."""
    model = ELM(3, 1, num_memory=4, memory_tau_min=2.0, memory_tau_max=200.0, delta_t=0.5)
    model = model.double()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
    m0 = torch.tensor([[1.0, -2.0, 0.5, 3.0]], dtype=torch.float64)
    state = ELMState(torch.zeros(1, 3, dtype=torch.float64), m0)
    seq = model.run(torch.zeros(6, 1, 3, dtype=torch.float64), state)
    taus = torch.tensor(
        [2.0, 2.0 * 100 ** (1 / 3), 2.0 * 100 ** (2 / 3), 200.0], dtype=torch.float64
    )
    t = torch.arange(1, 7, dtype=torch.float64)[:, None]
    expected = m0 * torch.exp(-t * 0.5 / taus)
    torch.testing.assert_close(seq.memory[:, 0], expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_memory_gain_by_hand(version: str) -> None:
    """Constant Delta m = c (only the output bias set): m_t = g c (1 - k^t) / (1 - k) with the
    paper's gain g = lambda (1 - k) (v1: m -> lambda c) or the reference's v2 gain
    g = 1 - exp(-dt lambda / tau) (v2: m -> c (1 - exp(-lambda / tau)) / (1 - exp(-1 / tau)))."""
    tau, lam, c_raw = 10.0, 5.0, 0.3
    model = ELM(
        2,
        1,
        num_memory=1,
        memory_tau_min=tau,
        memory_tau_max=tau,
        lambda_value=lam,
        version=version,
    ).double()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.linears[-1].bias.fill_(c_raw)
    c = 1.7159 * math.tanh(2 * c_raw / 3)
    k = math.exp(-1 / tau)
    g = lam * (1 - k) if version == "v1" else 1 - math.exp(-lam / tau)
    seq = model.run(torch.zeros(40, 1, 2, dtype=torch.float64))
    steps = np.arange(1, 41)
    expected = g * c * (1 - k**steps) / (1 - k)
    np.testing.assert_allclose(seq.memory[:, 0, 0].detach().numpy(), expected, rtol=1e-5)


def test_time_constants_log_spaced_and_learned_within_bounds() -> None:
    model = ELM(4, 2, num_memory=5, memory_tau_min=1.0, memory_tau_max=1e4, learn_memory_tau=True)
    tau = model.tau_m.detach().double()
    np.testing.assert_allclose(tau.numpy(), [1.0, 10.0, 100.0, 1000.0, 1e4], rtol=1e-3)
    opt = torch.optim.SGD([model.memory_tau_raw], lr=1e4)
    for _ in range(5):  # huge steps push the raw values far out; tau stays inside the bounds
        opt.zero_grad()
        (model.tau_m * torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0])).sum().backward()
        opt.step()
    tau = model.tau_m.detach()
    assert bool((tau >= 1.0).all()) and bool((tau <= 1e4).all())
    assert not ELM(4, 2, num_memory=5).memory_tau_raw.requires_grad


# ------------------------------------------------------------------ gradients


def test_gradcheck_float64_tiny_model() -> None:
    model = make("branch_neuronio", learn_memory_tau=True, mlp_num_layers=2, mlp_activation="silu")
    x = spikes(6, 2, model.num_input, seed=4)
    names = [n for n, p in model.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for p in model.parameters())

    def f(*values: torch.Tensor) -> torch.Tensor:
        out = torch.func.functional_call(model, dict(zip(names, values, strict=True)), (x,))
        return out[0]

    assert torch.autograd.gradcheck(f, params, eps=1e-6, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("backend", ["loop", "numba"])
@pytest.mark.parametrize("case", ["plain", "branch_random_v2", "two_layers_silu"])
def test_loop_gradients_equal_the_autograd_step_loop(case: str, backend: str) -> None:
    model = make(case, learn_memory_tau=True, backend=backend)
    x = spikes(20, 3, model.num_input, seed=5).requires_grad_(True)
    w = torch.randn(20, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def grads(run: object) -> list[torch.Tensor]:
        model.zero_grad()
        x.grad = None
        seq = run()  # type: ignore[operator]
        ((seq.output * w).sum() + seq.state.m.pow(2).sum()).backward()
        return [p.grad.clone() for p in model.parameters()] + [x.grad.clone()]

    expected = grads(lambda: elm_reference_sequence(x, None, model.parameters_now()))
    got = grads(lambda: model.run(x))
    for e, g in zip(expected, got, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("layout", ["time_major", "batch_major"])
def test_sparse_spike_input_path_equals_the_paper_loop_with_gradients(layout: str) -> None:
    """Plain ELM on sparse spikes (5% < ``SPARSE_INPUT_DENSITY``) multiplies through the
    non-zeros and traces the first layer's drive instead of the input: outputs, memories, the
    final state and every gradient against the paper loop / the autograd step loop."""
    from neurosim.functional import elm as elm_functional

    model = make("plain", learn_memory_tau=True)
    g = torch.Generator().manual_seed(4)
    x = (torch.rand(40, 3, model.num_input, generator=g) < 0.05).double()
    assert 0 < float(x.mean()) <= elm_functional.SPARSE_INPUT_DENSITY
    params = model.parameters_now()
    xin = x if layout == "time_major" else x.transpose(0, 1).contiguous().transpose(0, 1)
    assert elm_functional._sparse_input_kernels(xin, params) is not None  # the path is taken
    expected_y, expected_m = paper_loop(model, x)
    seq = model.run(xin)
    torch.testing.assert_close(seq.output, expected_y, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(seq.memory, expected_m, rtol=1e-10, atol=1e-10)
    reference = elm_reference_sequence(x, None, params)
    torch.testing.assert_close(seq.state.b, reference.state.b, rtol=1e-10, atol=1e-12)
    w = torch.randn(40, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))

    def grads(run: object) -> list[torch.Tensor]:
        model.zero_grad()
        seq = run()  # type: ignore[operator]
        ((seq.output * w).sum() + seq.state.m.pow(2).sum() + seq.state.b.sum()).backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    expected = grads(lambda: elm_reference_sequence(x, None, model.parameters_now()))
    got = grads(lambda: model.run(xin))
    assert len(got) == len(expected) >= 4
    for e, gg in zip(expected, got, strict=True):
        torch.testing.assert_close(gg, e, rtol=1e-9, atol=1e-10)


# ------------------------------------------------------------------ recording


def test_monitor_records_the_memory_trajectory(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = make("plain").float()
    x = spikes(15, 2, model.num_input).float()
    path = tmp_path / "results.h5"
    monitor = Monitor("elm_memory", target=path)
    monitor.attach(model, signal="membrane")
    seq = model.run(x)
    model(x)  # forward goes through multi_step, which the monitor taps
    monitor.close()
    stored = read_monitor(path, "elm_memory")
    assert stored.shape == (15, 2, 6)
    np.testing.assert_allclose(stored, seq.memory.detach().numpy(), rtol=1e-6)


# ------------------------------------------------------------------ bad input


def test_bad_input_is_a_clear_error() -> None:
    model = make("branch_neuronio")
    x = spikes(5, 2, model.num_input)
    with pytest.raises(InputError, match="features"):
        model(spikes(5, 2, model.num_input + 1))
    with pytest.raises(InputError, match="3 dimensions"):
        model(x[0])
    with pytest.raises(InputError, match="non-finite"):
        model(x.clone().fill_(float("nan")))
    with pytest.raises(InputError, match="floating-point"):
        model(x.long())
    with pytest.raises(InputError, match=r"state m has shape"):
        model(x, ELMState(torch.zeros(2, 4, dtype=torch.float64), torch.zeros(3, 6)))
    with pytest.raises(InputError, match="ELMState"):
        model(x, (torch.zeros(2, 4), torch.zeros(2, 6)))
    with pytest.raises(InputError, match="elm_multi_step"):
        elm_step(x, None, model.parameters_now())
    with pytest.raises(InputError, match="dimensions"):
        elm_multi_step(x[0], None, model.parameters_now())


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"routing": "nearest"}, "routing must be one of"),
        ({"version": "v3"}, "version must be one of"),
        ({"mlp_activation": "tanh"}, "mlp_activation must be one of"),
        ({"num_branch": 4, "num_synapse_per_branch": 3}, "branches x synapses_per_branch"),
        (
            {"num_branch": 2, "num_synapse_per_branch": 3, "routing": "neuronio"},
            "synapses_per_branch >= ceil",
        ),
        ({"num_memory": 0}, "num_memory must be a positive int"),
        ({"memory_tau_min": 5.0, "memory_tau_max": 1.0}, "memory_tau_min <= memory_tau_max"),
        ({"tau_s": -1.0}, "tau_s must be > 0"),
        ({"delta_t": 0.0}, "must be > 0"),
    ],
)
def test_bad_configuration_is_a_clear_error(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(InputError, match=fragment):
        ELM(10, 2, **kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------ CUDA-graph runner


def test_graph_runner_logic_on_cpu() -> None:
    """The cuda_graph backend's static-buffer bookkeeping, with the capture replaced by a plain
    call: repeated calls with new inputs give the loop backend's results and gradients, and the
    shape cache is bounded."""
    from neurosim.functional._elm_graph import GraphLoops
    from neurosim.functional.elm import elm_memory_scan_loop, run_memory_scan

    runner = GraphLoops(capture=lambda body: body, max_entries=2)
    gen = torch.Generator().manual_seed(0)
    for steps in (9, 9, 5, 7):
        args = [
            torch.randn(steps, 3, 6, generator=gen, dtype=torch.float64),
            torch.randn(3, 4, generator=gen, dtype=torch.float64),
            torch.randn(6, 4, generator=gen, dtype=torch.float64) * 0.5,
            torch.randn(1, 6, 6, generator=gen, dtype=torch.float64) * 0.4,
            torch.randn(1, 6, generator=gen, dtype=torch.float64) * 0.1,
            torch.randn(4, 6, generator=gen, dtype=torch.float64) * 0.5,
            torch.randn(4, generator=gen, dtype=torch.float64) * 0.1,
            torch.rand(4, generator=gen, dtype=torch.float64) * 0.5 + 0.4,
            torch.rand(4, generator=gen, dtype=torch.float64) + 0.1,
        ]
        ref = [a.clone().requires_grad_(True) for a in args]
        new = [a.clone().requires_grad_(True) for a in args]
        expected = elm_memory_scan_loop(*ref, activation="silu")
        got = run_memory_scan(runner, *new, activation="silu")
        torch.testing.assert_close(got, expected, rtol=0, atol=0)
        w = torch.randn(expected.shape, generator=gen, dtype=torch.float64)
        (expected * w).sum().backward()
        (got * w).sum().backward()
        for r, n in zip(ref, new, strict=True):
            torch.testing.assert_close(n.grad, r.grad, rtol=0, atol=0)
    assert len(runner._entries) == 2  # forward + backward of the last shape only


@pytest.mark.gpu
def test_cuda_graph_backend_matches_loop_on_gpu() -> None:
    model = make("branch_neuronio").float().cuda()
    x = spikes(40, 5, model.num_input).float().cuda()
    expected = model.run(x)
    model.backend = "cuda_graph"
    for _ in range(2):  # capture, then replay
        got = model.run(x)
        torch.testing.assert_close(got.output, expected.output, rtol=1e-4, atol=1e-5)
