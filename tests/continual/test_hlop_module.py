"""plasticity.HLOP from plain PyTorch: the Hebbian subspace of a layer's input converges to the
SVD subspace (diagnostics), later tasks keep the earlier task's outputs, the three projection
modes give one gradient, and state round-trips."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F
from torch import nn

from neurosim.backend import InputError, apply_grad_transforms
from neurosim.functional.hebbian import HebbianParameters
from neurosim.plasticity import HLOP


def _net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(16, 24), nn.Tanh(), nn.Linear(24, 3))


def _task(seed: int, rank: int = 3, n: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    basis = torch.linalg.qr(torch.randn(16, rank, generator=g))[0]
    x = (torch.randn(n, rank, generator=g) * torch.tensor([3.0, 2.0, 1.0])[:rank]) @ basis.T
    y = torch.randint(0, 3, (n,), generator=g)
    return x, y


def _train(net: nn.Module, hlop: HLOP, x: torch.Tensor, y: torch.Tensor, epochs: int) -> None:
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    for _ in range(epochs):
        for start in range(0, len(x), 32):
            loss = F.cross_entropy(net(x[start : start + 32]), y[start : start + 32])
            opt.zero_grad()
            loss.backward()
            apply_grad_transforms(net)
            opt.step()
            hlop.hebbian_update()


def test_plain_pytorch_loop_learns_the_input_subspace_and_protects_task_zero() -> None:
    net = _net()
    hlop = HLOP(net, ["0"], hebbian=HebbianParameters(eta=0.5, iterations=3),
                generator=torch.Generator().manual_seed(1))  # fmt: skip
    x0, y0 = _task(0)
    hlop.begin_task(rows=3)
    _train(net, hlop, x0, y0, epochs=5)
    diag = hlop.diagnostics({"0": x0})
    assert diag["0/rows"] == 3 and diag["0/orthonormality"] < 0.01
    assert diag["0/max_angle_deg"] < 1.0  # the SVD subspace of the same activity
    ref = np.linalg.svd(x0.double().numpy(), full_matrices=False)[2][:3].T  # numpy, independently
    angles = scipy.linalg.subspace_angles(hlop.subspace("0").double().numpy().T, ref)
    assert np.degrees(angles).max() < 1.0
    hlop.end_task()
    first_layer_before = net[0](x0).detach()
    x1, y1 = _task(1)
    hlop.begin_task(rows=3)
    assert not net[0].bias.requires_grad  # frozen from the second task on
    _train(net, hlop, x1, y1, epochs=2)
    hlop.end_task()
    drift = (net[0](x0) - first_layer_before).abs().max() / first_layer_before.abs().max()
    assert drift < 0.02  # protected (the subspace is learned, so not exactly zero)
    assert hlop.subspace("0").shape == (6, 16) and hlop.basis("0").shape == (6, 16)


def test_projection_modes_give_the_same_gradient_and_reuse_the_hebbian_residual() -> None:
    grads = {}
    states = {}
    x0, _ = _task(2)
    x, y = _task(3, n=8)  # a small batch: auto picks input mode for the 16 -> 24 layer
    for mode in ("weight", "input", "auto"):
        net = _net()
        hlop = HLOP(net, ["0", "2"], mode=mode, generator=torch.Generator().manual_seed(0))
        hlop.begin_task(rows=[3, 4])
        net(x0)
        hlop.hebbian_update()
        hlop.end_task()
        hlop.begin_task(rows=[2, 2])
        F.cross_entropy(net(x), y).backward()
        apply_grad_transforms(net)
        hlop.hebbian_update()
        grads[mode] = [p.grad.clone() for p in (net[0].weight, net[2].weight)]
        states[mode] = hlop.subspace("0").clone()
    for mode in ("input", "auto"):
        for a, b in zip(grads["weight"], grads[mode], strict=True):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(states["weight"], states[mode], atol=1e-6, rtol=1e-5)


def test_state_dict_round_trip_and_bad_input() -> None:
    net = _net()
    hlop = HLOP(net, ["0", "2"], generator=torch.Generator().manual_seed(0))
    hlop.begin_task(rows={"0": 3, "2": 2})
    net(_task(4)[0])
    hlop.hebbian_update()
    state = hlop.state_dict()
    other = HLOP(_net(), ["0", "2"])
    other.load_state_dict(state)
    assert other.task == 0 and other.in_task and other.recorder.mode == "train"
    torch.testing.assert_close(other.subspace("2"), hlop.subspace("2"))
    with pytest.raises(InputError, match="one count per protected layer"):
        hlop.end_task(), hlop.begin_task(rows=[1, 2, 3])
    with pytest.raises(InputError, match="eta"):
        HLOP(net, ["0"], hebbian=HebbianParameters(eta=-1.0))
    with pytest.raises(InputError, match="Tanh"):
        HLOP(net, ["1"])
