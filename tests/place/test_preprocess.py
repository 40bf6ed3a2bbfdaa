"""Preprocessing on hand-made images: grayscale, resize, patch normalisation, spike codes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neurosim.backend import InputError
from neurosim.place import (
    latency_code,
    patch_normalise,
    preprocess,
    rate_code,
    resize,
    to_grayscale,
)


def test_grayscale_uses_bt601_luma() -> None:
    rgb = torch.tensor(
        [[[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 255]]], dtype=torch.uint8
    )
    gray = to_grayscale(rgb)
    assert gray.shape == (1, 4)
    assert gray[0].tolist() == pytest.approx([0.299, 0.587, 0.114, 1.0], abs=1e-6)
    with pytest.raises(InputError, match="alpha"):
        to_grayscale(torch.zeros(2, 2, 4))


def test_resize_halves_a_checker_of_2x2_blocks_exactly() -> None:
    # 2x2 blocks: bilinear sampling at the block centres returns each block's value
    blocks = torch.tensor([[0.0, 1.0], [0.5, 0.25]])
    image = blocks.repeat_interleave(2, 0).repeat_interleave(2, 1)
    assert resize(image, (2, 2)).tolist() == [[0.0, 1.0], [0.5, 0.25]]
    assert resize(image[None], (2, 2), antialias=True).shape == (1, 2, 2)
    with pytest.raises(InputError, match="size"):
        resize(image, (0, 2))


def _reference_patch_norm(img: np.ndarray, k: int) -> np.ndarray:
    """Direct loops with the window cut at the border (the reference's NaN padding)."""
    h, w = img.shape
    out = np.zeros_like(img, dtype=np.float64)
    r = k // 2
    for y in range(h):
        for x in range(w):
            win = img[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1]
            sd = win.std()
            z = 0.0 if sd == 0 else (img[y, x] - win.mean()) / sd
            out[y, x] = (1 + np.clip(z, -1, 1)) / 2
    return out


def test_patch_normalise_by_hand_and_against_loops() -> None:
    img = torch.zeros(3, 3)
    img[1, 1] = 9.0
    out = patch_normalise(img, 3)
    # centre: mean 1, std sqrt(8) -> z = 8 / sqrt(8) = 2.83 -> clipped to 1 -> 1.0
    assert float(out[1, 1]) == pytest.approx(1.0)
    # corner (0, 0): window [[0, 0], [0, 9]] mean 2.25, std 3.897 -> z = -0.577 -> 0.2113
    assert float(out[0, 0]) == pytest.approx((1 - 2.25 / math.sqrt(15.1875)) / 2, rel=1e-6)
    assert patch_normalise(torch.full((4, 4), 0.3), 3).unique().tolist() == [0.5]  # flat -> 0.5
    rng = np.random.default_rng(0)
    rand = rng.random((2, 9, 11))
    got = patch_normalise(torch.from_numpy(rand), 7).numpy()
    for i in range(2):
        np.testing.assert_allclose(got[i], _reference_patch_norm(rand[i], 7), atol=1e-9)
    with pytest.raises(InputError, match="odd"):
        patch_normalise(img, 4)


def test_preprocess_pipeline_shapes_and_range() -> None:
    frames = torch.randint(0, 256, (3, 120, 160, 3), dtype=torch.uint8)
    out = preprocess(frames, (28, 28), 7)
    assert out.shape == (3, 28, 28) and float(out.min()) >= 0 and float(out.max()) <= 1
    assert preprocess(frames, (12, 16), None).shape == (3, 12, 16)


def test_rate_code_is_poisson_with_the_given_rate_and_generator() -> None:
    x = torch.tensor([0.0, 0.5, 1.0])
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a = rate_code(x, 20000, max_rate_hz=100.0, dt_ms=1.0, generator=g1)
    b = rate_code(x, 20000, max_rate_hz=100.0, dt_ms=1.0, generator=g2)
    assert torch.equal(a, b)  # same generator seed, same spikes
    rates = a.mean(0) * 1000.0  # Hz
    assert float(rates[0]) == 0.0
    # binomial standard error of 20,000 draws at p = 0.1: 0.0021 (i.e. 2.1 Hz); allow 4 SE
    assert float(rates[2]) == pytest.approx(100.0, abs=8.5)
    assert float(rates[1]) == pytest.approx(50.0, abs=6.5)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        rate_code(torch.tensor([1.5]), 5)
    with pytest.raises(InputError, match="max_rate_hz"):
        rate_code(x, 5, max_rate_hz=3000.0, dt_ms=1.0)


def test_latency_code_single_spike_brighter_first() -> None:
    spikes = latency_code(torch.tensor([1.0, 0.5, 0.0]), 5)
    assert spikes.sum(0).tolist() == [1.0, 1.0, 0.0]  # one spike each; zero never fires
    assert spikes[:, 0].argmax().item() == 0 and spikes[:, 1].argmax().item() == 2
