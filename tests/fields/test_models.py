"""Config-composed fields, the sized baselines, and the image metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from fields.cam import CAMDecoder
from fields.encodings import model_names
from fields.encodings.rbf import AdaptiveRBF, NeuRBFHybrid
from fields.metrics import count_parameters, mse, parameter_breakdown, psnr, ssim
from fields.models import Field, SineResidual, build_field, sized_model
from fields.siren import Siren
from neurosim.backend import InputError


@pytest.mark.parametrize(
    ("encoding", "decoder", "cam"),
    [
        ({"type": "fourier", "num_frequencies": 8}, {"type": "mlp", "hidden": 16}, None),
        (
            {"type": "fourier", "num_frequencies": 8},
            {"type": "mlp", "hidden": 16},
            {"resolution": 3},
        ),
        ({"type": "identity"}, {"type": "siren", "hidden": 16}, None),
        (
            {"type": "hashgrid", "n_levels": 3, "log2_hashmap_size": 6},
            {"type": "mlp", "hidden": 8},
            None,
        ),
        (
            {"type": "rbf", "num_kernels": 16, "features": 4},
            {"type": "mlp", "hidden": 8, "first_sine": [1, 10]},
            None,
        ),
        (
            {
                "type": "neurbf",
                "rbf": {"num_kernels": 9, "features": 4},
                "grid": {"type": "hashgrid", "n_levels": 2},
            },
            {"type": "mlp", "hidden": 8},
            {"coord_dims": [0], "resolution": 4},
        ),
    ],
)
def test_every_composition_builds_runs_and_trains(
    encoding: dict[str, object], decoder: dict[str, object], cam: dict[str, object] | None
) -> None:
    field = build_field(2, 3, encoding, decoder, cam, generator=torch.Generator().manual_seed(0))
    x = torch.rand(17, 2)
    y = field(x)
    assert y.shape == (17, 3) and bool(torch.isfinite(y).all())
    assert isinstance(field.decoder, CAMDecoder) == bool(cam)
    y.square().sum().backward()
    trainable = [p for p in field.parameters() if p.requires_grad]
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in trainable)
    assert all(
        float(p.grad.abs().sum()) > 0 for p in field.encoding.parameters() if p.grad is not None
    )
    again = build_field(2, 3, encoding, decoder, cam, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(again(x), y.detach())


def test_field_parts_are_reachable() -> None:
    field = build_field(
        2, 1, {"type": "neurbf", "rbf": {"num_kernels": 9}, "grid": None}, {"first_sine": [10, 100]}
    )
    assert isinstance(field.encoding, NeuRBFHybrid) and isinstance(field.rbf, AdaptiveRBF)
    assert isinstance(field.decoder[1], SineResidual)
    plain = build_field(2, 1, {"type": "identity"}, {"type": "siren"})
    assert plain.rbf is None and isinstance(plain.decoder, Siren)


def test_unknown_types_and_options_are_clear_errors() -> None:
    with pytest.raises(InputError, match="unknown encoding type"):
        build_field(2, 1, {"type": "wavelet"})
    with pytest.raises(InputError, match="unknown option"):
        build_field(2, 1, {"type": "fourier", "frequencies": 3})
    with pytest.raises(InputError, match="unknown decoder type"):
        build_field(2, 1, None, {"type": "kan"})
    with pytest.raises(InputError, match="unknown option"):
        build_field(2, 1, None, None, {"grid": 3})
    with pytest.raises(InputError, match="2-D coordinates"):
        build_field(2, 1)(torch.rand(4, 3))
    with pytest.raises(InputError, match="unknown model"):
        sized_model("nerf", 10000, 2, 3)
    with pytest.raises(InputError, match="unknown sized_model option"):
        sized_model("ffn", 10000, 2, 3, width=3)


@pytest.mark.parametrize("name", model_names())
@pytest.mark.parametrize(("d", "out", "budget"), [(2, 3, 40000), (3, 1, 60000)])
def test_sized_models_fill_but_do_not_exceed_the_budget(
    name: str, d: int, out: int, budget: int
) -> None:
    spec = sized_model(name, budget, d, out)
    field = build_field(d, out, **spec)
    total = count_parameters(field, trainable_only=False)
    # within a layer's width of the budget; the hash grid's tables double, so it may land
    # anywhere in one doubling below or 10% above
    assert total <= (1.1 if name == "hashgrid" else 1.0) * budget, (name, total)
    assert total >= (0.5 if name == "hashgrid" else 0.9) * budget, (name, total)


def test_psnr_and_mse() -> None:
    a = torch.zeros(4)
    b = torch.full((4,), 0.1)
    assert psnr(a, b) == pytest.approx(20.0)
    assert float(mse(a, b)) == pytest.approx(0.01)
    assert math.isinf(psnr(a, a))
    with pytest.raises(InputError, match="must match"):
        psnr(a, torch.zeros(5))


@pytest.mark.parametrize("channels", [None, 3])
def test_ssim_matches_scikit_image(channels: int | None) -> None:
    rng = np.random.default_rng(0)
    shape = (40, 37) if channels is None else (40, 37, channels)
    target = rng.random(shape)
    pred = np.clip(target + 0.1 * rng.standard_normal(shape), 0, 1)
    want = structural_similarity(
        target,
        pred,
        data_range=1.0,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=True,
        channel_axis=None if channels is None else -1,
    )
    got = ssim(torch.from_numpy(pred), torch.from_numpy(target))
    assert got == pytest.approx(want, abs=1e-6)
    assert ssim(torch.from_numpy(target), torch.from_numpy(target)) == pytest.approx(1.0)
    with pytest.raises(InputError, match="at least 11x11"):
        ssim(torch.rand(5, 5), torch.rand(5, 5))


def test_parameter_counts() -> None:
    field = build_field(
        2, 1, {"type": "rbf", "num_kernels": 10, "features": 3}, {"hidden": 4, "layers": 2}
    )
    fixed = 10 * 2 + 10 * 4  # centres and shape matrices (not trained by default)
    trained = 10 * 3 + (3 + 1) * 4 + (4 + 1) * 1
    assert count_parameters(field) == trained
    assert count_parameters(field, trainable_only=False) == trained + fixed
    parts = parameter_breakdown(field)
    assert parts["total"] == trained and parts["decoder"] == (3 + 1) * 4 + 5
    assert isinstance(field, Field)
