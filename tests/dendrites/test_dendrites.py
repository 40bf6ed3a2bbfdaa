"""Active-dendrite layers and networks: gating by hand, functional vs module, dense vs sparse
paths (values and gradients), the spiking variant against the LIF core, bad input, and a
context-dependent task that only the dendritic network can solve."""

from __future__ import annotations

import math

import pytest
import torch

from neurosim.backend import InputError, seeded
from neurosim.dendrites import (
    DendriticLayer,
    DendriticMLP,
    SpikingDendriticLayer,
    SpikingDendriticMLP,
    TaskPrototypes,
    nearest_prototype,
    task_prototype,
)
from neurosim.functional.dendrites import (
    DendriticParameters,
    dendritic_layer,
    dendritic_step,
    gate,
    kwta_lif_multi_step,
    kwta_lif_step,
)
from neurosim.functional.lif import LIFParameters, lif_multi_step
from neurosim.functional.sparse import KWTAParameters
from neurosim.sparse import update_duty_cycles


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_gating_modes_by_hand() -> None:
    y = torch.tensor([[2.0, -1.0]])
    d = torch.tensor([[0.5, -3.0], [1.0, 2.0]])  # unit 0: segments 0.5, -3; unit 1: 1, 2
    assert gate(y, d, "absmax").tolist()[0] == pytest.approx([2 * _sig(-3.0), -1 * _sig(2.0)])
    assert gate(y, d, "max").tolist()[0] == pytest.approx([2 * _sig(0.5), -1 * _sig(2.0)])
    assert gate(y, d, "additive").tolist()[0] == pytest.approx([2.5, 1.0])


def test_small_layer_by_hand_and_gradient_reaches_the_selected_segment() -> None:
    # one input feature, 2 units, 2 segments, 2 context features
    w = torch.tensor([[1.0], [2.0]], requires_grad=True)
    u = torch.tensor([[[1.0, 0.0], [0.0, -2.0]], [[0.5, 0.5], [0.0, 0.0]]], requires_grad=True)
    p = DendriticParameters(w, u, torch.tensor([0.0, 1.0]))
    x, c = torch.tensor([[3.0]]), torch.tensor([1.0, 1.0])
    # y = [3, 7]; d = [[1, -2], [1, 0]] -> absmax picks -2 and 1
    out = dendritic_layer(x, c, p)
    assert out.tolist()[0] == pytest.approx([3 * _sig(-2.0), 7 * _sig(1.0)])
    out.sum().backward()
    assert u.grad is not None
    assert u.grad[0, 0].abs().sum() == 0 and u.grad[0, 1].abs().sum() > 0  # segment 1 chosen
    assert u.grad[1, 1].abs().sum() == 0 and u.grad[1, 0].abs().sum() > 0


@pytest.mark.parametrize("gating", ["absmax", "max", "additive"])
def test_module_matches_functional_with_kwta_and_boost(gating: str) -> None:
    g = torch.Generator().manual_seed(0)
    with seeded(0):
        layer = DendriticLayer(12, 20, 3, 5, weight_density=0.5, segment_density=0.6,
                               gating=gating, k=4, boost_strength=1.0, generator=g)  # fmt: skip
    x, c = torch.randn(6, 12), torch.randn(5)
    assert layer.kwinners is not None
    state = None
    for _ in range(2):
        ref, state = dendritic_step(x, c, state, layer.parameters_now(),
                                    KWTAParameters(k=4, boost_strength=1.0))  # fmt: skip
        out = layer(x, c)
        update_duty_cycles(layer)
        assert torch.allclose(out, ref) and (out != 0).sum(1).tolist() == [4] * 6
        assert state is not None and torch.allclose(layer.kwinners.duty_cycle, state.duty_cycle)


def test_dense_and_sparse_paths_agree_with_gradients() -> None:
    g = torch.Generator().manual_seed(1)
    kw = {"weight_density": 0.4, "segment_density": 0.5, "kw_density": None}
    with seeded(1):
        dense = DendriticLayer(10, 8, 2, 6, generator=g, **kw)  # type: ignore[arg-type]
    sparse = DendriticLayer(10, 8, 2, 6, path="sparse", **kw)  # type: ignore[arg-type]
    sparse.load_state_dict(dense.state_dict())
    x = torch.randn(4, 10, dtype=torch.float64)
    c = torch.randn(4, 6, dtype=torch.float64)
    dense, sparse = dense.double(), sparse.double()
    a, b = dense(x, c), sparse(x, c)
    assert torch.allclose(a, b)
    a.square().sum().backward()
    b.square().sum().backward()
    for name in ("weight", "segments", "bias"):
        ga, gb = getattr(dense, name).grad, getattr(sparse, name).grad
        gb = gb.to_dense() if gb.is_sparse else gb
        assert torch.allclose(ga, gb), name
    assert (dense.weight.grad[~dense.weight_mask] == 0).all()
    assert (dense.segments.grad[~dense.segment_mask] == 0).all()
    # the functional sparse path too
    f = dendritic_layer(x, c, dense.parameters_now(), path="sparse")
    assert torch.allclose(f, dendritic_layer(x, c, dense.parameters_now()))


def test_shared_context_equals_repeated_per_input_context() -> None:
    layer = DendriticLayer(7, 9, 4, 3, kw_density=0.3)
    x, c = torch.randn(5, 7), torch.randn(3)
    assert torch.allclose(layer(x, c), layer(x, c.expand(5, 3)))


def test_kwta_lif_equals_the_lif_core_when_every_unit_may_fire() -> None:
    torch.manual_seed(2)
    current = (torch.rand(6, 3, 5, dtype=torch.float64) * 1.5).requires_grad_(True)
    p = LIFParameters(beta=0.8, threshold=1.0)
    out = kwta_lif_multi_step(current, None, p, k=5)
    ref = lif_multi_step(current, None, p, backend="torch")
    assert torch.equal(out.spikes, ref.spikes)
    assert torch.allclose(out.membrane, ref.membrane)
    g1 = torch.autograd.grad((out.spikes * torch.arange(5.0)).sum(), current)[0]
    g2 = torch.autograd.grad((ref.spikes * torch.arange(5.0)).sum(), current)[0]
    assert torch.allclose(g1, g2)


def test_kwta_lif_lets_only_the_k_highest_membranes_fire() -> None:
    # membranes 1.5, 1.2, 0.5 (beta * 0 + current): all above threshold 1 but k = 1
    s, state, winners = kwta_lif_step(torch.tensor([[1.5, 1.2, 0.5]]), None, LIFParameters(), 1)
    assert s.tolist() == [[1.0, 0.0, 0.0]] and winners.tolist() == [[True, False, False]]
    assert state.v.tolist()[0] == pytest.approx([0.5, 1.2, 0.5])  # loser keeps its charge
    seq = kwta_lif_multi_step(torch.rand(10, 4, 30) * 3, None, LIFParameters(), k=3)
    assert seq.spikes.sum(-1).max() <= 3 and seq.wins.sum() == 10 * 4 * 3
    with pytest.raises(InputError, match="immediate reset only"):
        kwta_lif_step(torch.ones(1, 2), None, LIFParameters(delayed_reset=True), 1)


def test_spiking_layer_trains_with_surrogate_gradients() -> None:
    with seeded(3):
        layer = SpikingDendriticLayer(16, 24, 2, 4, kw_density=0.25, time_steps=5,
                                      generator=torch.Generator().manual_seed(3))  # fmt: skip
    x, c = torch.rand(8, 16) * 3, torch.randn(4)
    spikes, state = layer(x, c)
    assert spikes.shape == (5, 8, 24) and state.v.shape == (8, 24)
    assert spikes.sum(-1).max() <= 6 and spikes.sum() > 0
    spikes.mean(0).sum().backward()
    assert layer.weight.grad is not None and layer.segments.grad is not None
    assert layer.weight.grad.abs().sum() > 0 and layer.segments.grad.abs().sum() > 0
    assert (layer.weight.grad[~layer.weight_mask] == 0).all()
    assert layer.kwinners is not None and int(layer.kwinners.pending_samples) == 40
    # a spike sequence input [T, B, in] with per-input context
    out = layer.simulate((torch.rand(5, 8, 16) < 0.3).float(), torch.randn(8, 4))
    assert out.spikes.shape == (5, 8, 24) and out.membrane.shape == (5, 8, 24)


def test_bad_input_is_named() -> None:
    layer = DendriticLayer(6, 4, 2, 3, kw_density=0.5)
    with pytest.raises(InputError, match="context has 5 features; the segments expect C = 3"):
        layer(torch.zeros(2, 6), torch.zeros(5))
    with pytest.raises(InputError, match="input has 7 features"):
        layer(torch.zeros(2, 7), torch.zeros(3))
    with pytest.raises(InputError, match="per-input context"):
        layer(torch.zeros(2, 6), torch.zeros(3, 3))
    with pytest.raises(InputError, match="non-finite"):
        layer(torch.full((2, 6), math.nan), torch.zeros(3))
    with pytest.raises(InputError, match="gating must be one of"):
        DendriticLayer(6, 4, 2, 3, gating="mean")
    with pytest.raises(InputError, match="num_segments must be an int >= 1"):
        DendriticLayer(6, 4, 0, 3)
    with pytest.raises(InputError, match="k-WTA k must be an int >= 1"):
        kwta_lif_multi_step(torch.zeros(2, 1, 3), None, LIFParameters(), k=0)


def test_prototypes_and_nearest_by_hand() -> None:
    x = torch.tensor([[0.0, 0.0], [2.0, 4.0]])
    assert task_prototype(x).tolist() == [1.0, 2.0]
    protos = TaskPrototypes(2, max_tasks=3)
    assert protos.add(x) == 0 and protos.add(torch.tensor([10.0, 10.0])) == 1
    queries = torch.tensor([[1.0, 1.0], [9.0, 12.0]])
    assert nearest_prototype(queries, protos.prototypes).tolist() == [0, 1]
    assert protos.infer(queries).tolist() == [[1.0, 2.0], [10.0, 10.0]]
    with pytest.raises(InputError, match="prototype has 3 features"):
        protos.add(torch.zeros(3))


def _conflicting_tasks(n: int = 256) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Two tasks on the same inputs with opposite labels (x_0 > 0 or x_0 < 0)."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(n, 8, generator=g)
    y0 = (x[:, 0] > 0).long()
    return x, y0, 1 - y0


@pytest.mark.parametrize("dendrites", [True, False])
def test_only_dendrites_solve_opposite_labels_in_two_contexts(dendrites: bool) -> None:
    x, y0, y1 = _conflicting_tasks()
    contexts = torch.eye(2)
    with seeded(6):
        net = DendriticMLP(8, [64], 2, num_segments=2, context_size=2, dendrites=dendrites,
                           kw_density=0.25, weight_density=1.0,
                           generator=torch.Generator().manual_seed(6))  # fmt: skip
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(150):
        opt.zero_grad()
        loss = sum(
            torch.nn.functional.cross_entropy(net(x, contexts[t]), y)
            for t, y in enumerate((y0, y1))
        )
        loss.backward()  # type: ignore[union-attr]
        opt.step()
    with torch.no_grad():
        acc = [float((net(x, contexts[t]).argmax(1) == y).float().mean())
               for t, y in enumerate((y0, y1))]  # fmt: skip
    mean = sum(acc) / 2
    if dendrites:
        assert min(acc) > 0.9
    else:  # without the context both tasks share one function: their accuracies sum to 1
        assert mean == pytest.approx(0.5, abs=1e-6)


def test_baseline_switches_and_spiking_network_shapes() -> None:
    mlp = DendriticMLP(10, [12, 12], 3, num_segments=2, context_size=10, dendrites=False,
                       kw_density=None, weight_density=1.0)  # fmt: skip
    assert not any("segments" in n for n, _ in mlp.named_parameters())
    assert all(bool(m.all()) for n, m in mlp.named_buffers() if n.endswith("mask"))
    assert mlp(torch.randn(4, 10), torch.zeros(10)).shape == (4, 3)
    snn = SpikingDendriticMLP(10, [16], 3, num_segments=2, context_size=10, kw_density=0.25,
                              time_steps=4)  # fmt: skip
    logits = snn(torch.rand(5, 10) * 3, torch.randn(10))
    assert logits.shape == (5, 3)
    logits.sum().backward()
    assert snn.layers[0].segments.grad is not None
