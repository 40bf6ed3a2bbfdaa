"""SIREN layers: the paper's initialisation and the sine activation."""

from __future__ import annotations

import math
from collections.abc import Callable

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


def _ks(sample: torch.Tensor, cdf: Callable[[torch.Tensor], torch.Tensor]) -> float:
    """Kolmogorov-Smirnov distance of a sample to a continuous distribution."""
    y, _ = torch.sort(sample.detach().flatten().double())
    n = y.numel()
    upper = torch.arange(1, n + 1, dtype=torch.float64) / n
    return float(torch.maximum((cdf(y) - upper + 1.0 / n).abs(), (cdf(y) - upper).abs()).max())


def _arcsine_cdf(y: torch.Tensor) -> torch.Tensor:
    return 0.5 + torch.asin(y.clamp(-1, 1)) / math.pi


def _normal_cdf(z: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1 + torch.erf(z / math.sqrt(2)))


def test_initialisation_gives_the_distributions_of_the_papers_theorem() -> None:
    """SIREN (Sitzmann et al. 2020, Sec. 3.2 and supplement Thm. 1.8), checked numerically on
    inputs uniform in [-1, 1]^2: the first layer spans many periods, so its outputs are arcsine
    distributed (CDF 1/2 + arcsin(y)/pi, variance 1/2); every later layer's pre-activation
    omega_0 W h is standard normal (the weight bound sqrt(6/n)/omega_0 gives variance
    n * (6/n)/3 * 1/2 = 1), and its sine keeps the activations' variance at 1/2."""
    net = Siren(2, 1, hidden=256, layers=5, generator=torch.Generator().manual_seed(1))
    net = net.double()
    h = torch.rand(4096, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    h = h * 2 - 1
    linears = [m for m in net if isinstance(m, nn.Linear)]
    net.requires_grad_(False)
    for i, linear in enumerate(linears[:-1]):
        if i > 0:
            pre = 30.0 * (h @ linear.weight.T)
            assert 0.95 < float(pre.std()) < 1.05, (i, float(pre.std()))
            assert _ks(pre, _normal_cdf) < 0.03, i
        h = torch.sin(30.0 * linear(h))
        assert abs(float(h.var()) - 0.5) < 0.03, (i, float(h.var()))
        if i == 0:
            assert _ks(h, _arcsine_cdf) < 0.02


def test_the_siren_baseline_feeds_coordinates_in_minus_one_to_one() -> None:
    """The SIREN reference code samples coordinates on [-1, 1] (its first layer spans several
    periods there); the budget-sized baseline maps the unit cube onto that box."""
    from fields.models import build_field, sized_model

    field = build_field(2, 3, **sized_model("siren", 20000, 2, 3))
    corners = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.5, 0.25]])
    torch.testing.assert_close(
        field.encoding(corners), torch.tensor([[-1.0, -1.0], [1.0, 1.0], [0.0, -0.5]])
    )
    first = next(m for m in field.decoder if isinstance(m, nn.Linear))
    assert float(first.weight.abs().max()) <= 1 / 2  # U(-1/fan_in, 1/fan_in), fan_in = 2
