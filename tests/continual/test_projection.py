"""Gradient projection: projected updates keep old-task outputs (Linear, Conv, a small network),
both modes agree with the hand formula, conv unfolding matches hand-built patches, diagnostics
match scipy, bad input is named."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F
from torch import nn

from neurosim.backend import InputError, apply_grad_transforms
from neurosim.functional.projection import (
    extend_basis,
    orthonormality_error,
    principal_angles,
    project_weight_grad,
    unfold_patches,
)
from neurosim.plasticity import GradientProjection, SVDProjection, presynaptic_rows

DT = torch.float64


def _basis_of(rows: torch.Tensor, k: int) -> torch.Tensor:
    """Orthonormal rows spanning the row space of ``rows`` (numpy SVD, independent of the code)."""
    _, _, vh = np.linalg.svd(rows.detach().double().numpy(), full_matrices=False)
    return torch.from_numpy(vh[:k].copy())


def _hand_patches(
    x: torch.Tensor, k: tuple[int, int], stride: int, pad: int, dil: int
) -> torch.Tensor:
    """Patches by explicit loops: for each output (i, j), values x[c, i*s + a*dil, j*s + b*dil]
    in (c, a, b) order, zero outside the padded image."""
    n, c, h, w = x.shape
    padded = torch.zeros(n, c, h + 2 * pad, w + 2 * pad, dtype=x.dtype)
    padded[:, :, pad : pad + h, pad : pad + w] = x
    oh = (h + 2 * pad - dil * (k[0] - 1) - 1) // stride + 1
    ow = (w + 2 * pad - dil * (k[1] - 1) - 1) // stride + 1
    out = torch.empty(n, oh * ow, c * k[0] * k[1], dtype=x.dtype)
    for i, j in itertools.product(range(oh), range(ow)):
        vals = []
        for ch, a, b in itertools.product(range(c), range(k[0]), range(k[1])):
            vals.append(padded[:, ch, i * stride + a * dil, j * stride + b * dil])
        out[:, i * ow + j] = torch.stack(vals, 1)
    return out


@pytest.mark.parametrize(("k", "stride", "pad", "dil"), [((3, 3), 1, 1, 1), ((2, 3), 2, 0, 2)])
def test_unfold_patches_match_hand_built_patches(
    k: tuple[int, int], stride: int, pad: int, dil: int
) -> None:
    x = torch.randn(2, 3, 7, 6, dtype=DT)
    ours = unfold_patches(x, k, stride=stride, padding=pad, dilation=dil)
    torch.testing.assert_close(ours, _hand_patches(x, k, stride, pad, dil))
    # and the ordering is the weight's: conv output = patches @ W.reshape(out, -1).T
    conv = nn.Conv2d(3, 4, k, stride=stride, padding=pad, dilation=dil, bias=False).double()
    y = conv(x)
    by_patches = (ours @ conv.weight.reshape(4, -1).T).transpose(1, 2).reshape(y.shape)
    torch.testing.assert_close(by_patches, y)


def test_unfold_1d_same_padding_and_reflect() -> None:
    x = torch.randn(2, 3, 9, dtype=DT)
    conv = nn.Conv1d(3, 2, 4, padding="same", padding_mode="reflect", bias=False).double()
    rows = unfold_patches(x, conv.kernel_size, padding=conv.padding, padding_mode="reflect")
    y = conv(x)
    torch.testing.assert_close((rows @ conv.weight.reshape(2, -1).T).transpose(1, 2), y)


@pytest.mark.parametrize("mode", ["weight", "input"])
def test_projected_linear_update_keeps_old_outputs_and_input_gradients(mode: str) -> None:
    torch.manual_seed(0)
    layer = nn.Linear(12, 5).double()
    old = torch.randn(20, 4, dtype=DT) @ torch.randn(4, 12, dtype=DT)  # rank-4 old inputs
    basis = _basis_of(old, 4)
    projection = GradientProjection({"fc": layer}, lambda name: basis, mode)
    new = torch.randn(16, 12, dtype=DT, requires_grad=True)
    before_old = layer(old).detach()
    out = layer(new)
    torch.testing.assert_close(out, F.linear(new, layer.weight, layer.bias))  # forward unchanged
    target = torch.randn(16, 5, dtype=DT)
    ((out - target) ** 2).sum().backward()
    apply_grad_transforms(layer)
    # hand formula: g = 2 (out - t); dW = g^T new (I - B^T B); input grad g W unchanged
    g = 2 * (out.detach() - target)
    expected = g.T @ new.detach() @ (torch.eye(12, dtype=DT) - basis.T @ basis)
    torch.testing.assert_close(layer.weight.grad, expected)
    torch.testing.assert_close(new.grad, g @ layer.weight.detach())
    torch.testing.assert_close(layer.bias.grad, g.sum(0))  # biases are not projected
    with torch.no_grad():
        layer.weight -= 0.5 * layer.weight.grad  # a big step: exact in the linear layer
    torch.testing.assert_close(F.linear(old, layer.weight, None), before_old - layer.bias.detach())
    projection.remove()


@pytest.mark.parametrize("mode", ["weight", "input"])
def test_projected_conv_update_keeps_outputs_on_old_images(mode: str) -> None:
    torch.manual_seed(1)
    conv = nn.Conv2d(2, 3, 3, bias=False).double()
    # old images are horizontal stripes (constant along the width), so every 3x3 patch is
    # constant along its columns: the patches span at most 2 * 3 = 6 of the 18 dimensions
    old = torch.randn(8, 2, 6, 1, dtype=DT).expand(8, 2, 6, 6).contiguous()
    patches = _hand_patches(old, (3, 3), 1, 0, 1).reshape(-1, 18)
    rank = int(np.linalg.matrix_rank(patches.numpy()))
    assert rank == 6
    basis = _basis_of(patches, rank)
    projection = GradientProjection({"conv": conv}, lambda name: basis, mode)
    before = conv(old).detach()
    new = torch.randn(4, 2, 6, 6, dtype=DT)
    conv(new).pow(2).sum().backward()
    grad_plain = torch.autograd.grad(F.conv2d(new, conv.weight).pow(2).sum(), conv.weight)[0]
    apply_grad_transforms(conv)
    flat = grad_plain.reshape(3, -1)
    expected = (flat - flat @ basis.T @ basis).reshape(conv.weight.shape)
    torch.testing.assert_close(conv.weight.grad, expected)
    with torch.no_grad():
        after = F.conv2d(old, conv.weight - 0.1 * conv.weight.grad)
        moved = F.conv2d(old, conv.weight - 0.1 * grad_plain)
    assert (after - before).abs().max() < 1e-12 * before.abs().max()
    assert (moved - before).abs().max() > 1e-2 * before.abs().max()  # unprojected: it moves
    projection.remove()


def _network_change(project: bool, threshold: float) -> tuple[float, float]:
    """A 3-layer ReLU net after one old task (bases from its activity): the directional
    derivative of the old-task outputs along the update of a new-task step (first order), and
    the change after a finite step of 0.05."""
    torch.manual_seed(3)
    net = nn.Sequential(
        nn.Linear(20, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 4)
    ).double()
    g = torch.Generator().manual_seed(4)
    old_x = torch.randn(64, 6, generator=g, dtype=DT) @ torch.randn(6, 20, generator=g, dtype=DT)
    new_x = torch.randn(64, 20, generator=g, dtype=DT)
    new_y = torch.randint(0, 4, (64,), generator=g)
    gpm = SVDProjection(net, ["0", "2", "4"], threshold=threshold, freeze_bias=True)
    gpm.begin_task()
    with gpm.collect(), torch.no_grad():
        net(old_x)
    gpm.end_task()
    gpm.begin_task()  # task 1: biases frozen, updates projected
    if not project:
        gpm.projection.remove()
    F.cross_entropy(net(new_x), new_y).backward()
    apply_grad_transforms(net)
    names = [n for n, p in net.named_parameters() if p.grad is not None]
    params = {n: p.detach() for n, p in net.named_parameters()}
    step = {n: -p.grad.detach() for n, p in net.named_parameters() if p.grad is not None}

    def old_outputs(*values: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(
            net, {**params, **dict(zip(names, values, strict=True))}, (old_x,)
        )

    _, derivative = torch.func.jvp(
        old_outputs, tuple(params[n] for n in names), tuple(step[n] for n in names)
    )
    moved = old_outputs(*(params[n] + 0.05 * step[n] for n in names))
    return float(derivative.abs().max()), float(
        (moved - old_outputs(*(params[n] for n in names))).abs().max()
    )


def test_network_update_leaves_old_task_outputs_unchanged_to_first_order() -> None:
    plain_first, plain_step = _network_change(False, 1.0)
    exact_first, exact_step = _network_change(True, 1.0)
    assert plain_first > 1e-2 and plain_step > 1e-3
    # bases spanning all old activity: no first-order change, and none after a finite step
    assert exact_first < 1e-9 * plain_first
    assert exact_step < 1e-9 * plain_step
    # bases keeping 99% of the activity energy: the first-order change is small, not zero
    approx_first, _ = _network_change(True, 0.99)
    assert approx_first < 0.2 * plain_first


def test_principal_angles_and_orthonormality_match_scipy_and_hand_values() -> None:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(3, 9, generator=g, dtype=DT), torch.randn(4, 9, generator=g, dtype=DT)
    ours = principal_angles(a, b).numpy()
    ref = np.sort(scipy.linalg.subspace_angles(a.numpy().T, b.numpy().T))
    np.testing.assert_allclose(ours, ref, atol=1e-10)
    assert principal_angles(a, torch.cat([a * 2, b])).abs().max() < 1e-6  # contained: all zero
    # rows (1, 0), (0, 2): B B^T - I = diag(0, 3): spectral norm 3
    assert float(orthonormality_error(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))) == pytest.approx(3.0)


def test_extend_basis_energy_criterion_by_hand() -> None:
    a = torch.diag(torch.tensor([3.0, 2.0, 1.0], dtype=DT))  # energies 9, 4, 1 of 14
    empty = torch.zeros(0, 3, dtype=DT)
    two = extend_basis(empty, a, 0.9)  # 9/14 = 0.64 < 0.9 <= 13/14
    assert two.shape == (2, 3)
    torch.testing.assert_close(two.abs(), torch.eye(3, dtype=DT)[:2])
    assert extend_basis(empty, a, 0.6).shape == (1, 3)
    assert extend_basis(two, a, 0.9).shape == (2, 3)  # already keeps 13/14
    three = extend_basis(two, a, 0.95)
    torch.testing.assert_close(three @ three.T, torch.eye(3, dtype=DT))


def test_presynaptic_rows_of_time_major_and_folded_inputs() -> None:
    lin = nn.Linear(5, 2)
    spikes = (torch.rand(4, 3, 5) > 0.5).float()
    assert presynaptic_rows(lin, spikes).shape == (12, 5)
    rate = presynaptic_rows(lin, spikes, signal="rate", decay=1.0)
    torch.testing.assert_close(rate, spikes.mean(0))
    folded = presynaptic_rows(lin, spikes.reshape(12, 5), signal="rate", decay=1.0, time_steps=4)
    torch.testing.assert_close(folded, rate)
    conv = nn.Conv2d(2, 3, 3)
    x = torch.rand(4 * 2, 2, 5, 5)
    assert presynaptic_rows(conv, x).shape == (8 * 9, 18)
    assert presynaptic_rows(conv, x, signal="trace", time_steps=4).shape == (8 * 9, 18)


def test_bad_input_is_named() -> None:
    net = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Conv2d(2, 4, 3, groups=2))
    with pytest.raises(InputError, match="no submodule"):
        SVDProjection(net, ["fc9"])
    with pytest.raises(InputError, match="ReLU"):
        SVDProjection(net, ["1"])
    with pytest.raises(InputError, match="grouped"):
        SVDProjection(net, ["2"])
    with pytest.raises(InputError, match="mode"):
        SVDProjection(net, ["0"], mode="output")
    with pytest.raises(InputError, match="signal"):
        SVDProjection(net, ["0"], signal="voltage")
    with pytest.raises(InputError, match="threshold"):
        SVDProjection(net, ["0"], threshold=1.5)
    gpm = SVDProjection(net, ["0"])
    with pytest.raises(InputError, match="without begin_task"):
        gpm.end_task()
    gpm.begin_task()
    with pytest.raises(InputError, match="collect"):
        gpm.end_task()
    with pytest.raises(InputError, match="dimension"):
        project_weight_grad(torch.zeros(3, 5), torch.zeros(1, 4))
    with pytest.raises(InputError, match="multiple of time_steps"):
        presynaptic_rows(nn.Linear(5, 2), torch.zeros(7, 5), signal="rate", time_steps=4)


@pytest.mark.parametrize("mode", ["weight", "input"])
def test_projected_linear_on_time_major_input_without_bias(mode: str) -> None:
    """A ``[T, B, d]`` input (a spiking layer's time-major spikes), no bias: the input mode's own
    backward reshapes the input gradient back and projects the weight gradient by hand."""
    torch.manual_seed(1)
    layer = nn.Linear(10, 6, bias=False).double()
    basis = _basis_of(torch.randn(30, 10, dtype=DT), 3)
    projection = GradientProjection({"fc": layer}, lambda name: basis, mode)
    x = torch.randn(4, 3, 10, dtype=DT, requires_grad=True)
    cot = torch.randn(4, 3, 6, dtype=DT)
    (layer(x) * cot).sum().backward()
    apply_grad_transforms(layer)
    rows = x.detach().reshape(-1, 10)
    g = cot.reshape(-1, 6)
    expected = g.T @ rows @ (torch.eye(10, dtype=DT) - basis.T @ basis)
    torch.testing.assert_close(layer.weight.grad, expected)
    torch.testing.assert_close(x.grad, cot @ layer.weight.detach())
    projection.remove()


@pytest.mark.parametrize("k", [2, 5, 7])
def test_projector_forms_agree_with_the_definition(k: int) -> None:
    """basis (2k < d), gram and complement (k > d/2, orthonormal) give rows (I - B^T B)."""
    g = torch.Generator().manual_seed(k)
    basis = torch.linalg.qr(torch.randn(8, k, generator=g, dtype=DT))[0].T.contiguous()
    layer = nn.Linear(8, 3).double()
    for orthonormal in (False, True):
        proj = GradientProjection(
            {"fc": layer}, lambda name: basis, "weight", orthonormal=orthonormal
        )
        op = proj.operator("fc")
        expected_kind = (
            "basis" if 2 * k < 8 else ("complement" if orthonormal and k > 4 else "gram")
        )
        assert op.kind == expected_kind
        rows = torch.randn(5, 8, generator=g, dtype=DT)
        torch.testing.assert_close(op.kept(rows), rows @ (torch.eye(8, dtype=DT) - basis.T @ basis))
        torch.testing.assert_close(op.removed(rows), rows @ basis.T @ basis)
        proj.remove()
