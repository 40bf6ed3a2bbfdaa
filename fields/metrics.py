"""Image and model metrics: PSNR, SSIM and parameter counts.

* PSNR: :math:`10 \\log_{10}(R^2 / \\mathrm{MSE})` with data range ``R`` (1 for images in [0, 1]).
* SSIM (Wang et al. 2004): the mean over pixels and channels of

  .. math:: \\frac{(2\\mu_x\\mu_y + C_1)(2\\sigma_{xy} + C_2)}
                  {(\\mu_x^2 + \\mu_y^2 + C_1)(\\sigma_x^2 + \\sigma_y^2 + C_2)}

  with local statistics under an 11x11 Gaussian window (sigma 1.5), ``C_1 = (0.01 R)^2``,
  ``C_2 = (0.03 R)^2``, sample covariances and only windows that fit inside the image: the same
  conventions as ``skimage.metrics.structural_similarity(..., gaussian_weights=True,
  sigma=1.5, use_sample_covariance=True)`` (tested against it).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from neurosim.backend import InputError, check_tensor


def _check_pair(pred: torch.Tensor, target: torch.Tensor, name: str) -> None:
    check_tensor(pred, f"{name} prediction")
    check_tensor(target, f"{name} target")
    if pred.shape != target.shape:
        raise InputError(
            f"{name} prediction {tuple(pred.shape)} and target {tuple(target.shape)} must match"
        )


def mse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over every element (a 0-d tensor)."""
    _check_pair(pred, target, "mse")
    return (pred - target).pow(2).mean()


def psnr(pred: torch.Tensor, target: torch.Tensor, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB (``inf`` for identical inputs); any equal shapes.

    >>> psnr(torch.zeros(4), torch.full((4,), 0.1))  # MSE 0.01 -> 20 dB
    20.0
    """
    _check_pair(pred, target, "psnr")
    err = float((pred.double() - target.double()).pow(2).mean())
    if err == 0.0:
        return math.inf
    return round(10.0 * math.log10(data_range**2 / err), 10)


def _gaussian_kernel(size: int, sigma: float, dtype: torch.dtype) -> torch.Tensor:
    coords = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def ssim(
    pred: torch.Tensor,
    target: torch.Tensor,
    data_range: float = 1.0,
    window: int = 11,
    sigma: float = 1.5,
) -> float:
    """Structural similarity of two images ``[H, W]`` or ``[H, W, C]`` (see the module docstring).

    Returns the mean SSIM in ``[-1, 1]``; 1 for identical images.
    """
    _check_pair(pred, target, "ssim")
    if pred.dim() not in (2, 3):
        raise InputError(f"ssim expects images [H, W] or [H, W, C], got shape {tuple(pred.shape)}")
    if min(pred.shape[0], pred.shape[1]) < window:
        raise InputError(
            f"ssim needs images of at least {window}x{window}, got {tuple(pred.shape)}"
        )
    x = pred.double()
    y = target.double()
    if x.dim() == 2:
        x, y = x[..., None], y[..., None]
    x = x.permute(2, 0, 1)[:, None]  # [C, 1, H, W]
    y = y.permute(2, 0, 1)[:, None]
    g = _gaussian_kernel(window, sigma, torch.float64).to(x.device)
    kx = g.view(1, 1, 1, window)
    ky = g.view(1, 1, window, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.conv2d(torch.nn.functional.conv2d(t, kx), ky)

    n = window * window
    cov_norm = n / (n - 1)
    ux, uy = blur(x), blur(y)
    uxx, uyy, uxy = blur(x * x), blur(y * y), blur(x * y)
    vx = cov_norm * (uxx - ux * ux)
    vy = cov_norm * (uyy - uy * uy)
    vxy = cov_norm * (uxy - ux * uy)
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    return float(s.mean())


def count_parameters(module: nn.Module, trainable_only: bool = True) -> int:
    """Number of scalar parameters (``trainable_only``: those with ``requires_grad``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def parameter_breakdown(module: nn.Module) -> dict[str, int]:
    """Trainable parameter counts per direct child module (plus ``"total"``)."""
    out = {name: count_parameters(child) for name, child in module.named_children()}
    own = sum(p.numel() for p in module.parameters(recurse=False) if p.requires_grad)
    if own:
        out["(own)"] = own
    out["total"] = count_parameters(module)
    return out
