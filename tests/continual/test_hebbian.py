"""Oja's subspace rule converges to the principal subspace (checked against numpy's SVD and
scipy's principal angles), frozen rows stay put, and the presynaptic signals match hand values."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch

from neurosim.backend import InputError
from neurosim.functional.hebbian import (
    HebbianParameters,
    add_rows,
    check_hebbian_parameters,
    eligibility_trace,
    exponential_rate,
    freeze,
    init_state,
    oja_subspace_delta,
    presynaptic_signal,
    subspace_update,
)

D, R, N = 40, 5, 4000
SCALES = [5.0, 4.0, 3.0, 2.0, 1.5]


def _low_rank(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``x = A diag(SCALES) z + noise`` with an orthonormal ``A [D, R]``; returns (X, A)."""
    rng = np.random.default_rng(seed)
    a, _ = np.linalg.qr(rng.standard_normal((D, R)))
    x = (rng.standard_normal((N, R)) * SCALES) @ a.T + 0.05 * rng.standard_normal((N, D))
    return x.astype(np.float32), a


def _numpy_top(x: np.ndarray, k: int) -> np.ndarray:
    """Top-k right singular vectors by numpy (the independent reference), as columns."""
    return np.linalg.svd(x.astype(np.float64), full_matrices=False)[2][:k].T


def _train(state, x: np.ndarray, params: HebbianParameters, epochs: int):  # type: ignore[no-untyped-def]
    data = torch.from_numpy(x)
    for _ in range(epochs):
        for start in range(0, len(data), 100):
            state = subspace_update(state, data[start : start + 100], params)
    return state


def test_oja_rule_converges_to_the_svd_principal_subspace() -> None:
    x, _ = _low_rank()
    state = add_rows(init_state(D), R, torch.Generator().manual_seed(1))
    start = np.degrees(
        scipy.linalg.subspace_angles(state.weight.double().T.numpy(), _numpy_top(x, R))
    )
    assert start.max() > 45  # a random start is far from the answer
    state = _train(state, x, HebbianParameters(eta=0.5, iterations=5), epochs=2)
    h = state.weight.double().numpy()
    angles = np.degrees(scipy.linalg.subspace_angles(h.T, _numpy_top(x, R)))
    assert angles.max() < 1.0
    # the rows become orthonormal (Oja's fixed point), not just spanning
    np.testing.assert_allclose(h @ h.T, np.eye(R), atol=1e-3)


def test_new_rows_learn_the_residual_and_frozen_rows_do_not_move() -> None:
    x, _ = _low_rank(1)
    top = _numpy_top(x, R)
    # freeze the exact top-2 directions, then learn 3 new rows
    state = freeze(init_state(D)._replace(weight=torch.from_numpy(top[:, :2].T.copy()).float()))
    state = add_rows(state, 3, torch.Generator().manual_seed(2))
    frozen_before = state.weight[:2].clone()
    state = _train(state, x, HebbianParameters(eta=0.5, iterations=5, momentum=0.5), epochs=2)
    assert torch.equal(state.weight[:2], frozen_before)
    assert state.n_frozen == 2 and state.weight.shape == (5, D)
    new = state.weight[2:].double().numpy()
    angles = np.degrees(scipy.linalg.subspace_angles(new.T, top[:, 2:5]))
    assert angles.max() < 1.5  # the next three principal directions
    # and they are orthogonal to the frozen ones
    assert np.abs(new @ top[:, :2]).max() < 0.02


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_inplace_update_equals_the_functional_one(momentum: float) -> None:
    """``inplace=True`` (what HLOP uses: no copy of the frozen rows per step) gives the same
    rows and velocity as the functional update, written into the given state's tensors."""
    x, _ = _low_rank(3)
    top = _numpy_top(x, R)
    base = freeze(init_state(D)._replace(weight=torch.from_numpy(top[:, :2].T.copy()).float()))
    base = add_rows(base, 3, torch.Generator().manual_seed(4))
    params = HebbianParameters(eta=0.5, iterations=3, momentum=momentum)
    functional = base._replace(weight=base.weight.clone(), velocity=base.velocity.clone())
    owned = base._replace(weight=base.weight.clone(), velocity=base.velocity.clone())
    frozen = owned.weight[:2].clone()
    data = torch.from_numpy(x)
    for start in range(0, 600, 100):
        before = functional.weight.clone()
        functional = subspace_update(functional, data[start : start + 100], params)
        returned = subspace_update(owned, data[start : start + 100], params, inplace=True)
        assert returned.weight is owned.weight  # written in place
        assert not torch.equal(functional.weight, before)  # the rows do move
    torch.testing.assert_close(owned.weight, functional.weight, rtol=0, atol=0)
    torch.testing.assert_close(owned.velocity, functional.velocity, rtol=0, atol=0)
    assert torch.equal(owned.weight[:2], frozen)


def test_block_update_equals_the_full_rule_rows() -> None:
    """Orthonormal frozen rows, new rows orthogonal to them: the update of the new rows is the
    full rule's, dH = eta * mean(y x^T - y y^T H) with y = H x over all rows (by hand)."""
    g = torch.Generator().manual_seed(3)
    q, _ = torch.linalg.qr(torch.randn(10, 10, generator=g, dtype=torch.float64))
    h = torch.cat([q[:, :4].T, 0.7 * q[:, 4:6].T])  # frozen: orthonormal; new: orthogonal to them
    x = torch.randn(30, 10, generator=g, dtype=torch.float64)
    state = freeze(init_state(10, dtype=torch.float64)._replace(weight=h[:4]))
    state = state._replace(weight=h, velocity=torch.zeros(2, 10, dtype=torch.float64))
    params = HebbianParameters(eta=0.01, iterations=1, normalize=False)
    updated = subspace_update(state, x, params)
    y = x @ h.T
    full = (y.T @ x - y.T @ y @ h) / 30
    torch.testing.assert_close(updated.weight[4:], h[4:] + 0.01 * full[4:])
    torch.testing.assert_close(oja_subspace_delta(h, x), full)
    torch.testing.assert_close(updated.weight[:4], h[:4])
    # several iterations keep the new rows orthogonal to the frozen ones
    more = subspace_update(state, x, HebbianParameters(eta=0.5, iterations=20))
    assert (more.weight[4:] @ h[:4].T).abs().max() < 1e-12


def test_add_rows_is_orthonormal_and_capped() -> None:
    state = add_rows(init_state(8), 3, torch.Generator().manual_seed(0))
    state = add_rows(freeze(state), 4, torch.Generator().manual_seed(1))
    w = state.weight.double()
    torch.testing.assert_close(w @ w.T, torch.eye(7, dtype=torch.float64), atol=1e-6, rtol=0)
    assert add_rows(state, 10).weight.shape == (8, 8)  # capped at d


def test_presynaptic_signals_hand_values() -> None:
    s = torch.tensor([1.0, 0.0, 1.0]).reshape(3, 1, 1)
    # trace a_t = 0.5 a_{t-1} + s_t: [1, 0.5, 1.25]
    assert eligibility_trace(s, 0.5).flatten().tolist() == [1.0, 0.5, 1.25]
    # weights 0.25, 0.5, 1 (latest heaviest): (0.25 + 1) / 1.75
    assert exponential_rate(s, 0.5).item() == pytest.approx(1.25 / 1.75)
    assert exponential_rate(s, 1.0).item() == pytest.approx(2 / 3)
    spikes = torch.rand(4, 3, 7)
    assert presynaptic_signal(spikes, "spikes").shape == (12, 7)
    assert presynaptic_signal(spikes, "rate").shape == (3, 7)
    assert presynaptic_signal(spikes, "trace").shape == (12, 7)


def test_bad_parameters_are_named() -> None:
    with pytest.raises(InputError, match="eta"):
        check_hebbian_parameters(HebbianParameters(eta=0.0))
    with pytest.raises(InputError, match="iterations"):
        check_hebbian_parameters(HebbianParameters(iterations=0))
    with pytest.raises(InputError, match="momentum"):
        check_hebbian_parameters(HebbianParameters(momentum=1.0))
    with pytest.raises(InputError, match="signal"):
        presynaptic_signal(torch.zeros(2, 2, 2), "voltage")
    with pytest.raises(InputError, match="decay"):
        presynaptic_signal(torch.zeros(2, 2, 2), "rate", decay=2.0)
    with pytest.raises(InputError, match="dimension"):
        init_state(0)
