"""SIREN layers: the paper's initialisation and the sine activation."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from fields.siren import Sine, Siren, sine, siren_init_
from neurosim.backend import InputError


def test_initialisation_bounds_follow_the_paper() -> None:
    net = Siren(
        3, 2, hidden=256, layers=4, omega_0=30.0, generator=torch.Generator().manual_seed(0)
    )
    linears = [m for m in net if isinstance(m, nn.Linear)]
    first = linears[0].weight
    assert float(first.abs().max()) <= 1 / 3 + 1e-7
    assert float(first.abs().max()) > 0.9 / 3  # uses the range, not a tiny init
    bound = math.sqrt(6 / 256) / 30
    for lin in linears[1:]:
        assert float(lin.weight.abs().max()) <= bound + 1e-7
        assert float(lin.weight.abs().max()) > 0.9 * bound


def test_activations_keep_their_spread_through_depth() -> None:
    """The init keeps hidden pre-activations O(1) (not collapsing or exploding)."""
    net = Siren(2, 1, hidden=256, layers=6, generator=torch.Generator().manual_seed(1))
    h = torch.rand(4096, 2, generator=torch.Generator().manual_seed(2)) * 2 - 1
    stds = []
    for m in net:
        h = m(h)
        if isinstance(m, Sine):
            stds.append(float(h.std()))
    assert all(0.4 < s < 0.9 for s in stds), stds  # arcsine-distributed ~ 1/sqrt(2)


def test_sine_and_seeded_build() -> None:
    x = torch.linspace(-1, 1, 11)
    torch.testing.assert_close(Sine(2.0)(x), torch.sin(2.0 * x))
    torch.testing.assert_close(sine(x, 3.0), torch.sin(3.0 * x))
    a = Siren(2, 3, generator=torch.Generator().manual_seed(5))
    b = Siren(2, 3, generator=torch.Generator().manual_seed(5))
    x2 = torch.rand(7, 2)
    torch.testing.assert_close(a(x2), b(x2))
    lin = nn.Linear(4, 4)
    siren_init_(lin, first=True, omega_0=30.0, generator=torch.Generator().manual_seed(0))
    assert float(lin.weight.abs().max()) <= 0.25


def test_bad_configuration_and_input() -> None:
    with pytest.raises(InputError, match="at least 2 layers"):
        Siren(2, 1, layers=1)
    with pytest.raises(InputError, match="omega_0"):
        Sine(0.0)
    with pytest.raises(InputError, match="input features"):
        Siren(2, 1)(torch.rand(3, 3))
