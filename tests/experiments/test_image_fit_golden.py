"""Golden value of ``image_fit``: its tiny preset's final PSNR equals an independent plain-PyTorch
re-implementation written from the family's documented spec (same seed, data and steps).

Only the image loader is shared with the family. A swapped or mis-scaled learning rate, a wrong
loss, a changed feature map, initialisation or coordinate grid moves the runner's number away
from this one.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from experiments.families.image_fit import load_image
from experiments.runner import run_experiment

# The tiny preset (experiments/presets/image_fit/tiny.yaml), restated here on purpose.
SEED, IMAGE, SIZE, FREQUENCIES, SIGMA, HIDDEN, LR, STEPS = 0, "camera", 32, 16, 4.0, 32, 0.01, 60


def reference_fit() -> tuple[float, float]:
    """Final PSNR (dB) and SSIM of the spec, in plain PyTorch: Gaussian Fourier features
    ``[cos 2 pi x B^T, sin 2 pi x B^T, x]`` with ``B ~ sigma N(0, 1)`` (16 x 2, from a generator
    seeded with the seed), a 2-layer ReLU MLP (PyTorch's default init from the global RNG seeded
    with the seed), full-batch Adam on the mean squared error at pixel centres in [0, 1]^2."""
    image = load_image(IMAGE, SIZE)  # [32, 32, 1] in [0, 1]
    target = torch.from_numpy(image).reshape(-1, 1)
    centres = (torch.arange(SIZE, dtype=torch.float32) + 0.5) / SIZE
    ys, xs = torch.meshgrid(centres, centres, indexing="ij")
    coords = torch.stack([ys.reshape(-1), xs.reshape(-1)], dim=1)  # row-major, (y, x)
    b = torch.randn(FREQUENCIES, 2, generator=torch.Generator().manual_seed(SEED)) * SIGMA
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        hidden = torch.nn.Linear(2 * FREQUENCIES + 2, HIDDEN)
        out = torch.nn.Linear(HIDDEN, 1)

    def predict() -> torch.Tensor:
        angle = 2 * math.pi * coords @ b.T
        features = torch.cat([torch.cos(angle), torch.sin(angle), coords], dim=1)
        return out(torch.relu(hidden(features)))

    optimizer = torch.optim.Adam([*hidden.parameters(), *out.parameters()], lr=LR)
    for _ in range(STEPS):
        loss = torch.mean((predict() - target) ** 2)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        prediction = predict().clamp(0, 1).reshape(SIZE, SIZE, 1).numpy()
    mse = float(np.mean((prediction - image) ** 2))
    ssim = structural_similarity(image, prediction, channel_axis=-1, data_range=1.0)
    return -10 * math.log10(mse), float(ssim)


def test_tiny_preset_psnr_matches_an_independent_reimplementation(tmp_path: Path) -> None:
    expected_psnr, expected_ssim = reference_fit()
    assert 12 < expected_psnr < 30  # it did learn, and is far from a perfect fit
    result = run_experiment("image_fit", [], tmp_path, "tiny", announce=False)
    assert result.config.optim.lr == LR and result.config.steps == STEPS  # the preset restated
    assert result.metrics["psnr"] == pytest.approx(expected_psnr, abs=1e-3)
    assert result.metrics["ssim"] == pytest.approx(expected_ssim, abs=1e-4)
    assert result.metrics["params"] == (34 * HIDDEN + HIDDEN) + (HIDDEN + 1)
