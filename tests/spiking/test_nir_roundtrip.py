"""NIR export/import: node types and parameter values, file round trips with identical outputs,
foreign NIR graphs against a direct simulation of NIR's equations, and clear errors."""

from __future__ import annotations

import itertools
from pathlib import Path

import nir
import numpy as np
import pytest
import torch
from torch import nn

from neurosim.backend import InputError
from neurosim.functional import Surrogate
from neurosim.interop.nir_io import DEFAULT_DT, Scale, export_nir, import_nir
from neurosim.neurons import LI, LIF, SpikingSequential
from neurosim.neurons.synaptic import SynapticLIF


def _mlp() -> SpikingSequential:
    torch.manual_seed(0)
    return SpikingSequential(
        nn.Linear(6, 10),
        LIF(beta=0.8, threshold=0.7, reset="zero"),
        nn.Linear(10, 5, bias=False),
        SynapticLIF(alpha=0.6, beta=0.9, threshold=0.5, reset="zero"),
        nn.Linear(5, 3),
        LI(beta=0.7),
    )


def _same_outputs(a: SpikingSequential, b: SpikingSequential, x: torch.Tensor) -> None:
    ya, sa = a(x)
    yb, sb = b(x)
    assert torch.allclose(ya, yb, atol=1e-5), (ya - yb).abs().max()
    for state_a, state_b in zip(sa, sb, strict=True):
        assert torch.allclose(state_a.v, state_b.v, atol=1e-5)


def test_export_node_types_and_parameter_values() -> None:
    net = _mlp()
    dt = 1e-3
    graph = export_nir(net, (6,), dt=dt)
    assert isinstance(graph, nir.NIRGraph)
    types = {name: type(node).__name__ for name, node in graph.nodes.items()}
    assert types == {
        "input": "Input",
        "0_affine": "Affine",
        "1_lif": "LIF",
        "2_linear": "Linear",
        "3_cubalif": "CubaLIF",
        "4_affine": "Affine",
        "5_li": "LI",
        "output": "Output",
    }
    names = list(types)
    assert graph.edges == list(itertools.pairwise(names))
    assert graph.metadata["neurosim_dt"] == dt
    np.testing.assert_array_equal(graph.nodes["0_affine"].weight, net.layers[0].weight.detach())
    np.testing.assert_array_equal(graph.nodes["0_affine"].bias, net.layers[0].bias.detach())
    lif = graph.nodes["1_lif"]
    assert lif.tau.shape == (10,)
    np.testing.assert_allclose(lif.tau, dt / (1 - 0.8), rtol=1e-6)
    np.testing.assert_allclose(lif.r * dt / lif.tau, 1.0)  # unit input gain
    np.testing.assert_allclose(lif.v_threshold, 0.7, rtol=1e-6)
    assert np.all(lif.v_leak == 0) and np.all(lif.v_reset == 0)
    cuba = graph.nodes["3_cubalif"]
    np.testing.assert_allclose(cuba.tau_syn, dt / (1 - 0.6), rtol=1e-6)
    np.testing.assert_allclose(cuba.tau_mem, dt / (1 - 0.9), rtol=1e-6)
    np.testing.assert_allclose(cuba.w_in * dt / cuba.tau_syn, 1.0)
    li = graph.nodes["5_li"]
    np.testing.assert_allclose(li.tau, dt / (1 - 0.7), rtol=1e-6)
    assert tuple(graph.nodes["output"].output_type["output"]) == (3,)


def test_mlp_round_trip_through_a_file(tmp_path: Path) -> None:
    net = _mlp()
    path = tmp_path / "net.nir"
    nir.write(path, export_nir(net, (6,), dt=5e-4))
    back = import_nir(path)
    x = torch.rand(30, 4, 6) * 2
    _same_outputs(net, back, x)
    assert net(x)[1][0].v.abs().sum() > 0
    assert isinstance(back.layers[1], LIF) and back.layers[1].reset == "zero"
    assert isinstance(back.layers[3], SynapticLIF)


def test_conv_network_with_per_neuron_parameters_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(1)
    g = torch.Generator().manual_seed(2)
    net = SpikingSequential(
        nn.Conv2d(2, 4, 3, padding=1, stride=1),
        LIF(
            beta=torch.rand(4, 6, 6, generator=g) * 0.5 + 0.3,
            threshold=torch.rand(4, 6, 6, generator=g) + 0.5,
            reset="zero",
        ),
        nn.Conv2d(4, 3, 3, stride=2, bias=False),
        LIF(beta=0.9, reset="zero"),
        nn.Flatten(),
        nn.Linear(12, 5),
        LI(beta=torch.rand(5, generator=g)),
    )
    graph = export_nir(net, (2, 6, 6))
    assert type(graph.nodes["0_conv2d"]).__name__ == "Conv2d"
    assert type(graph.nodes["4_flatten"]).__name__ == "Flatten"
    np.testing.assert_allclose(graph.nodes["2_conv2d"].bias, 0.0)
    np.testing.assert_allclose(
        graph.nodes["1_lif"].v_threshold, net.layers[1].threshold.numpy(), rtol=1e-6
    )
    nir.write(tmp_path / "conv.nir", graph)
    back = import_nir(tmp_path / "conv.nir")
    assert back.layers[1].beta.shape == (4, 6, 6)
    _same_outputs(net, back, torch.rand(12, 3, 2, 6, 6) * 2)


def test_non_nir_resets_need_strict_false_and_survive_in_metadata(tmp_path: Path) -> None:
    torch.manual_seed(3)
    net = SpikingSequential(
        nn.Linear(4, 6),
        LIF(beta=0.85, delayed_reset=True, surrogate=Surrogate.fast_sigmoid(12.0)),
        nn.Linear(6, 2),
        SynapticLIF(alpha=0.5, beta=0.8, reset="none"),
    )
    with pytest.raises(InputError, match="strict=False"):
        export_nir(net, (4,))
    graph = export_nir(net, (4,), strict=False)
    assert graph.nodes["1_lif"].metadata["neurosim_reset"] == "subtract"
    nir.write(tmp_path / "x.nir", graph)
    back = import_nir(tmp_path / "x.nir")
    lif = back.layers[1]
    assert (lif.reset, lif.delayed_reset, lif.surrogate) == (
        "subtract",
        True,
        Surrogate.fast_sigmoid(12.0),
    )
    assert back.layers[3].reset == "none"
    x = torch.rand(25, 3, 4) * 2
    _same_outputs(net, back, x)
    # gradients agree too: the imported network is the same maths
    xa = x.clone().requires_grad_(True)
    xb = x.clone().requires_grad_(True)
    net(xa)[0].sum().backward()
    back(xb)[0].sum().backward()
    assert torch.allclose(xa.grad, xb.grad, atol=1e-5)


def _simulate_nir_lif(graph: nir.NIRGraph, x: np.ndarray, dt: float) -> np.ndarray:
    """NIR's equations stepped directly (forward Euler): Affine -> LIF, output spikes."""
    aff, lif = graph.nodes["fc"], graph.nodes["lif"]
    v = np.zeros((x.shape[1], aff.weight.shape[0]))
    out = []
    for t in range(x.shape[0]):
        current = x[t] @ aff.weight.T + aff.bias
        v = v + dt / lif.tau * (lif.v_leak - v + lif.r * current)
        z = v > lif.v_threshold
        v = np.where(z, lif.v_reset, v)
        out.append(z.astype(np.float64))
    return np.stack(out)


def test_foreign_graph_with_general_time_constants_matches_nir_equations() -> None:
    rng = np.random.default_rng(0)
    dt = 1e-3
    tau = rng.uniform(2e-3, 2e-2, size=7)
    graph = nir.NIRGraph(
        nodes={
            "in": nir.Input(input_type=np.array([3])),
            "fc": nir.Affine(weight=rng.normal(size=(7, 3)), bias=rng.normal(size=7) * 0.1),
            "lif": nir.LIF(
                tau=tau,
                r=rng.uniform(0.5, 3.0, size=7),  # input gain r*dt/tau != 1 -> a Scale layer
                v_leak=np.zeros(7),
                v_threshold=np.full(7, 0.3),
            ),
            "out": nir.Output(output_type=np.array([7])),
        },
        edges=[("in", "fc"), ("fc", "lif"), ("lif", "out")],
    )
    net = import_nir(graph, dt=dt)
    assert any(isinstance(layer, Scale) for layer in net.layers)
    x = rng.uniform(0, 2, size=(40, 2, 3))
    ours = net.double()(torch.from_numpy(x))[0].detach().numpy()
    expected = _simulate_nir_lif(graph, x, dt)
    assert expected.sum() > 10
    np.testing.assert_array_equal(ours, expected)


def test_import_errors_are_clear() -> None:
    lif = nir.LIF(
        tau=np.full(2, 1e-3), r=np.full(2, 10.0), v_leak=np.zeros(2), v_threshold=np.ones(2)
    )

    def graph(nodes: dict, edges: list) -> nir.NIRGraph:
        return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)

    i, o = nir.Input(input_type=np.array([2])), nir.Output(output_type=np.array([2]))
    branching = graph(
        {"i": i, "a": lif, "b": nir.Scale(scale=np.ones(2)), "o": o},
        [("i", "a"), ("i", "b"), ("a", "o"), ("b", "o")],
    )
    with pytest.raises(InputError, match="feed-forward chains"):
        import_nir(branching)
    leak = nir.LIF(tau=np.full(2, 1e-3), r=np.ones(2), v_leak=np.ones(2), v_threshold=np.ones(2))
    with pytest.raises(InputError, match="v_leak"):
        import_nir(graph({"i": i, "a": leak, "o": o}, [("i", "a"), ("a", "o")]))
    with pytest.raises(InputError, match="at least dt"):
        import_nir(graph({"i": i, "a": lif, "o": o}, [("i", "a"), ("a", "o")]), dt=1e-2)
    delay = nir.Delay(delay=np.ones(2))
    with pytest.raises(InputError, match="cannot import node 'a' of type Delay"):
        import_nir(graph({"i": i, "a": delay, "o": o}, [("i", "a"), ("a", "o")]))
    with pytest.raises(InputError, match="could not read NIR file"):
        import_nir("/nonexistent/file.nir")


def test_export_errors_are_clear() -> None:
    with pytest.raises(InputError, match="cannot export layer 1"):
        export_nir(SpikingSequential(nn.Linear(2, 2), nn.ReLU()), (2,))
    with pytest.raises(InputError, match="infinite NIR time constant"):
        export_nir(SpikingSequential(LIF(beta=1.0, reset="zero")), (2,))
    with pytest.raises(InputError, match="expects"):
        export_nir(SpikingSequential(nn.Linear(3, 2)), (2,))
    with pytest.raises(InputError, match="dt"):
        export_nir(SpikingSequential(nn.Linear(2, 2)), (2,), dt=0.0)
    assert DEFAULT_DT > 0


def test_mixed_network_with_snntorch_neurons_exports(tmp_path: Path) -> None:
    import snntorch

    from neurosim.interop.snntorch import SnnTorchNeuron

    torch.manual_seed(4)
    mixed = SpikingSequential(
        nn.Linear(4, 6),
        LIF(beta=0.8, reset="zero"),
        nn.Linear(6, 3),
        SnnTorchNeuron(snntorch.Leaky(beta=0.7, reset_mechanism="zero", reset_delay=False)),
        nn.Linear(3, 2),
        SnnTorchNeuron(snntorch.Leaky(beta=0.6, reset_mechanism="none"), output="membrane"),
    )
    graph = export_nir(mixed, (4,))
    kinds = [type(graph.nodes[n]).__name__ for n in ("1_lif", "3_lif", "5_li")]
    assert kinds == ["LIF", "LIF", "LI"]
    nir.write(tmp_path / "mixed.nir", graph)
    _same_outputs(mixed, import_nir(tmp_path / "mixed.nir"), torch.rand(20, 3, 4) * 2)
    with pytest.raises(InputError, match="strict=False"):  # snnTorch's default delayed reset
        export_nir(SpikingSequential(SnnTorchNeuron(snntorch.Leaky(beta=0.5))), (2,))
