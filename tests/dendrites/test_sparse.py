"""k-WTA, duty-cycle boosting, fixed sparse weights and SDR sampling (neurosim.functional.sparse
and neurosim.sparse): hand-computed cases, functional vs module, dense vs sparse paths."""

from __future__ import annotations

import math

import pytest
import torch

from neurosim.backend import InputError, seeded
from neurosim.functional.sparse import (
    DutyCycleState,
    KWTAParameters,
    boost_factors,
    kwta,
    kwta_step,
    mask_indices,
    sample_sdr_indices,
    sample_sdrs,
    sdr_overlap,
    sparse_linear,
    sparse_linear_coo,
    sparse_mask,
    update_duty_cycle,
)
from neurosim.sparse import KWinners, SDRSampler, SparseLinear, decay_boosts, update_duty_cycles


def test_kwta_keeps_the_k_largest_by_hand() -> None:
    x = torch.tensor([[0.1, 0.9, 0.5, 0.3], [-1.0, -2.0, 4.0, 3.0]])
    assert kwta(x, 2).tolist() == [[0.0, pytest.approx(0.9), 0.5, 0.0], [0.0, 0.0, 4.0, 3.0]]
    assert torch.equal(kwta(x, 4), x)
    # boosting picks by x * boost but passes the unboosted value
    boost = torch.tensor([10.0, 1.0, 1.0, 1.0])
    assert kwta(x[:1], 2, boost).tolist() == [[pytest.approx(0.1), pytest.approx(0.9), 0.0, 0.0]]


def test_kwta_gradient_reaches_winners_only() -> None:
    x = torch.tensor([[0.1, 0.9, 0.5, 0.3]], requires_grad=True)
    kwta(x, 2).sum().backward()
    assert x.grad is not None and x.grad.tolist() == [[0.0, 1.0, 1.0, 0.0]]


def test_boost_formula_by_hand() -> None:
    b = boost_factors(torch.tensor([0.0, 0.05, 0.2]), 0.05, 4.0)
    expected = [math.exp(4 * 0.05), 1.0, math.exp(4 * -0.15)]
    assert b.tolist() == pytest.approx(expected, rel=1e-6)


def test_duty_cycle_is_the_exact_mean_then_an_exponential_window() -> None:
    state = DutyCycleState.zeros(2)
    # 4 inputs: unit 0 won 3 times, unit 1 once -> mean 0.75, 0.25 (window = seen = 4 < 10)
    state = update_duty_cycle(state, torch.tensor([3.0, 1.0]), 4, period=10)
    assert state.duty_cycle.tolist() == [0.75, 0.25] and int(state.seen) == 4
    # 8 more inputs, unit 0 never wins: window = min(10, 12) = 10 -> 0.75 + (0 - 8*0.75)/10
    state = update_duty_cycle(state, torch.tensor([0.0, 8.0]), 8, period=10)
    assert state.duty_cycle.tolist() == pytest.approx([0.75 - 0.6, 0.25 + (8 - 2) / 10])


def test_kwta_step_counts_wins_and_boost_rotates_winners() -> None:
    x = torch.tensor([[1.0, 0.9, 0.8, 0.7]]).repeat(5, 1)
    p = KWTAParameters(k=1, boost_strength=0.0, duty_cycle_period=100)
    out, state = kwta_step(x, None, p)
    assert out[:, 0].tolist() == [1.0] * 5 and out[:, 1:].abs().sum() == 0
    assert state.duty_cycle.tolist() == [1.0, 0.0, 0.0, 0.0]
    # with a strong boost the over-active unit 0 loses to unit 1 (0.9 e^{b 0.25} > 1 e^{-b 0.75})
    out, _ = kwta_step(x, state, p._replace(boost_strength=2.0), update=False)
    assert out[0].nonzero().flatten().tolist() == [1]


def test_kwinners_module_matches_functional_and_callbacks_update() -> None:
    torch.manual_seed(0)
    x = torch.randn(6, 20)
    layer = KWinners(20, density=0.25, boost_strength=1.5, boost_strength_factor=0.5,
                     duty_cycle_period=50)  # fmt: skip
    p = KWTAParameters(k=5, boost_strength=1.5, duty_cycle_period=50)
    state: DutyCycleState | None = None
    for _ in range(3):
        y = layer(x)
        ref, state = kwta_step(x, state, p._replace(boost_strength=float(layer.boost_strength)))
        assert torch.equal(y, ref)
        assert int(layer.pending_samples) == 6
        update_duty_cycles(layer)
        assert state is not None
        assert (
            torch.allclose(layer.duty_cycle, state.duty_cycle) and int(layer.pending_samples) == 0
        )
    assert (y != 0).sum(1).tolist() == [5] * 6
    decay_boosts(layer)
    assert float(layer.boost_strength) == pytest.approx(0.75)
    layer.eval()
    before = layer.duty_cycle.clone()
    layer(x)
    update_duty_cycles(layer)
    assert torch.equal(layer.duty_cycle, before)  # eval counts nothing


def test_kwinners_bad_input() -> None:
    with pytest.raises(InputError, match="exactly one of k and density"):
        KWinners(10)
    with pytest.raises(InputError, match="k must be an int in 1..10"):
        KWinners(10, k=11)
    with pytest.raises(InputError, match="expects 10 units"):
        KWinners(10, k=2)(torch.zeros(3, 9))
    with pytest.raises(InputError, match="k-WTA k must be an int >= 1"):
        kwta(torch.zeros(3), 0)
    with pytest.raises(InputError, match="does not broadcast"):
        kwta(torch.zeros(2, 4), 1, torch.ones(3))


def test_sparse_mask_has_exact_row_counts() -> None:
    g = torch.Generator().manual_seed(1)
    mask = sparse_mask(30, 40, 0.25, generator=g)
    assert mask.sum(1).tolist() == [10] * 30
    assert not torch.equal(mask[0], mask[1])  # rows drawn independently
    assert sparse_mask(3, 4, 1.0).all()
    with pytest.raises(InputError, match="density must be in"):
        sparse_mask(3, 4, 0.0)


def test_sparse_linear_dense_and_sparse_paths_agree_with_gradients() -> None:
    g = torch.Generator().manual_seed(2)
    w = torch.randn(7, 12, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(7, generator=g, dtype=torch.float64, requires_grad=True)
    x = torch.randn(2, 3, 12, generator=g, dtype=torch.float64, requires_grad=True)
    mask = sparse_mask(7, 12, 0.5, generator=g)
    dense = sparse_linear(x, w, mask, b)
    reference = x @ (w * mask).T + b  # by definition
    assert torch.allclose(dense, reference)
    grads_dense = torch.autograd.grad(dense.square().sum(), (x, w, b))
    sparse = sparse_linear_coo(x, w, mask_indices(mask), b)
    assert torch.allclose(sparse, dense)
    grads_sparse = torch.autograd.grad(sparse.square().sum(), (x, w, b))
    for gd, gs in zip(grads_dense, grads_sparse, strict=True):
        assert torch.allclose(gd, gs.to_dense() if gs.is_sparse else gs)
    assert (grads_dense[1][~mask] == 0).all()


@pytest.mark.parametrize("path", ["dense", "sparse"])
def test_sparse_linear_module_keeps_masked_weights_zero_through_training(path: str) -> None:
    with seeded(0):
        layer = SparseLinear(16, 8, density=0.25, path=path,
                             generator=torch.Generator().manual_seed(3))  # fmt: skip
    assert (layer.weight[~layer.mask] == 0).all()
    x = torch.randn(4, 16)
    assert torch.allclose(layer(x), sparse_linear(x, layer.weight, layer.mask, layer.bias))
    opt = torch.optim.AdamW(layer.parameters(), lr=0.1, weight_decay=0.1)
    for _ in range(3):
        opt.zero_grad()
        layer(x).square().sum().backward()
        assert layer.weight.grad is not None
        grad = layer.weight.grad.to_dense() if layer.weight.grad.is_sparse else layer.weight.grad
        assert (grad[~layer.mask] == 0).all()
        opt.step()
    assert (layer.weight[~layer.mask] == 0).all() and (layer.weight[layer.mask] != 0).all()


def test_sparse_linear_bad_input() -> None:
    layer = SparseLinear(5, 3, density=0.6)
    with pytest.raises(InputError, match="has 4 features but the weight expects 5"):
        layer(torch.zeros(2, 4))
    with pytest.raises(InputError, match="path must be one of"):
        SparseLinear(5, 3, path="csr")
    with pytest.raises(InputError, match="mask must be a tensor of the weight's shape"):
        sparse_linear(torch.zeros(2, 5), torch.zeros(3, 5), torch.ones(5, 3, dtype=torch.bool))


def test_sdrs_have_a_active_cells_and_uniform_marginals() -> None:
    g = torch.Generator().manual_seed(4)
    sdrs = sample_sdrs(4000, 50, 5, generator=g)
    assert sdrs.dtype == torch.bool and sdrs.sum(1).eq(5).all()
    # every cell is active with probability a/n = 0.1: 4000 draws, SD = sqrt(4000*.1*.9) = 19
    per_cell = sdrs.sum(0).float()
    assert (per_cell - 400).abs().max() < 5 * 19
    idx = sample_sdr_indices(3, 50, 5, generator=torch.Generator().manual_seed(4))
    assert idx.shape == (3, 5) and (idx.diff(dim=1) > 0).all()
    assert torch.equal(sample_sdrs(4000, 50, 5, generator=torch.Generator().manual_seed(4)),
                       sdrs)  # fmt: skip
    x = torch.tensor([[1, 1, 0, 0, 1]], dtype=torch.bool)
    assert sdr_overlap(x, torch.tensor([[1, 0, 0, 1, 1]], dtype=torch.bool)).tolist() == [2]
    with pytest.raises(InputError, match="0 <= a <= n"):
        sample_sdrs(2, 10, 11)


@pytest.mark.parametrize(("n", "a"), [(5, 2), (6, 3)])  # Floyd (a^2 < n) and top-k paths
def test_sdr_subsets_are_uniform(n: int, a: int) -> None:
    draws = 12_000
    idx = sample_sdr_indices(draws, n, a, generator=torch.Generator().manual_seed(6))
    assert (idx.diff(dim=1) > 0).all()
    codes = (idx * torch.tensor([n**k for k in range(a)])).sum(1)
    counts = torch.bincount(codes).float()
    counts = counts[counts > 0]
    subsets = math.comb(n, a)
    assert len(counts) == subsets
    # chi-square with subsets - 1 dof: 10 or 20 subsets -> 99.99% quantile below 40
    chi2 = float(((counts - draws / subsets) ** 2 / (draws / subsets)).sum())
    assert chi2 < 40, chi2


def test_sdr_sampler_module_resumes_its_sequence() -> None:
    sampler = SDRSampler(100, 7, seed=5)
    sampler(3)
    state = sampler.state_dict()
    nxt = sampler(4)
    other = SDRSampler(100, 7, seed=99)
    other.load_state_dict(state)
    assert torch.equal(other(4), nxt)
    idx = sampler.indices(2)
    assert idx.shape == (2, 7) and (idx.diff(dim=1) > 0).all() and int(idx.max()) < 100
