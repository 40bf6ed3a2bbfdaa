"""Image preprocessing for place recognition: grayscale, resize, patch normalisation, spike codes.

The pipeline of Hussaini et al. (and VPRTempo) turns a camera frame into a small, locally
contrast-normalised image whose pixels drive input neurons::

    frames [N, H, W, 3] uint8 --grayscale--> [N, H, W] --resize--> [N, 28, 28]
           --patch_normalise(7)--> [N, 28, 28] in [0, 1] --rate_code / latency_code--> spikes

* :func:`to_grayscale`: ITU-R BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` (as OpenCV).
* :func:`resize`: bilinear (as OpenCV's ``INTER_LINEAR``, optionally anti-aliased).
* :func:`patch_normalise`: each pixel minus the mean of its ``k x k`` neighbourhood, divided by
  the neighbourhood's standard deviation (population std; the window is cut at the border, as
  the reference's NaN padding does), clipped to ``[-1, 1]`` and mapped to ``[0, 1]`` by
  ``(1 + z) / 2``; a flat neighbourhood (std 0) gives 0.5.
* :func:`rate_code`: Poisson spikes, rate proportional to the pixel value.
* :func:`latency_code`: one spike per pixel, earlier for brighter pixels (temporal code).

All functions take and return torch tensors and validate their input once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from neurosim.backend import InputError, check_tensor
from neurosim.functional.encoding import latency_encode
from neurosim.plasticity.ensemble import poisson_spikes

LUMA = (0.299, 0.587, 0.114)


def _as_float(images: torch.Tensor) -> torch.Tensor:
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    return images


def to_grayscale(images: torch.Tensor) -> torch.Tensor:
    """``[..., H, W, 3]`` RGB (uint8 or float) -> ``[..., H, W]`` float luma in the input's
    scale (uint8 input is scaled to ``[0, 1]``); ``[..., H, W]`` grayscale passes through
    (as float). Example: pure red ``(255, 0, 0)`` gives ``0.299``."""
    if not isinstance(images, torch.Tensor):
        raise InputError(f"to_grayscale expects a torch.Tensor, got {type(images).__name__}")
    x = _as_float(images)
    check_tensor(x, "to_grayscale images [..., H, W(, 3)]", min_ndim=2)
    if x.dim() >= 3 and x.shape[-1] == 3:
        weights = torch.tensor(LUMA, dtype=x.dtype, device=x.device)
        return (x * weights).sum(-1)
    if x.dim() >= 3 and x.shape[-1] in (1, 4):
        raise InputError(
            f"to_grayscale expects RGB [..., H, W, 3] or grayscale [..., H, W], got shape "
            f"{tuple(images.shape)} (drop the alpha channel or squeeze the channel first)"
        )
    return x


def resize(images: torch.Tensor, size: tuple[int, int], *, antialias: bool = False) -> torch.Tensor:
    """Resize grayscale ``[..., H, W]`` to ``size = (height, width)``, bilinear.

    ``antialias=False`` (default) samples like OpenCV's ``INTER_LINEAR`` that the reference
    code uses (each output pixel interpolates the 2x2 nearest inputs); ``True`` low-pass
    filters first (torch's anti-aliased bilinear).
    """
    check_tensor(images, "resize images [..., H, W]", min_ndim=2)
    if len(size) != 2 or any(not isinstance(s, int) or s < 1 for s in size):
        raise InputError(f"resize size must be (height, width) positive ints, got {size!r}")
    lead = images.shape[:-2]
    flat = images.reshape(-1, 1, *images.shape[-2:])
    if tuple(flat.shape[-2:]) == tuple(size):
        return images.clone()
    out = F.interpolate(flat, size=size, mode="bilinear", align_corners=False, antialias=antialias)
    return out.reshape(*lead, *size)


def patch_normalise(images: torch.Tensor, patch: int = 7) -> torch.Tensor:
    """Local contrast normalisation over ``patch x patch`` windows, mapped to ``[0, 1]``.

    ``z = (x - mean_w(x)) / std_w(x)`` over the window ``w`` centred on each pixel (cut at the
    image border), ``z`` clipped to ``[-1, 1]``, output ``(1 + z) / 2``. Example: in
    ``[[0, 0, 0], [0, 9, 0], [0, 0, 0]]`` with ``patch = 3`` the centre's window has mean 1 and
    std ``sqrt(8)``, so ``z = 8 / sqrt(8) > 1 -> 1`` and the output is 1.

    Args:
        images: ``[..., H, W]`` float grayscale.
        patch: odd window size (reference: 7).
    """
    check_tensor(images, "patch_normalise images [..., H, W]", min_ndim=2)
    if not isinstance(patch, int) or patch < 1 or patch % 2 == 0:
        raise InputError(f"patch_normalise patch must be an odd positive int, got {patch!r}")
    lead = images.shape[:-2]
    x = images.reshape(-1, 1, *images.shape[-2:]).to(torch.float64)
    half = patch // 2
    kwargs = dict(kernel_size=patch, stride=1, padding=half, count_include_pad=False)
    mean = F.avg_pool2d(x, **kwargs)  # type: ignore[arg-type]
    mean_sq = F.avg_pool2d(x * x, **kwargs)  # type: ignore[arg-type]
    std = (mean_sq - mean * mean).clamp_min(0.0).sqrt()
    flat = std <= 1e-12 * (1.0 + mean.abs())
    z = torch.where(flat, torch.zeros_like(x), (x - mean) / torch.where(flat, 1.0, std))
    out = (1.0 + z.clamp(-1.0, 1.0)) / 2.0
    return out.reshape(*lead, *images.shape[-2:]).to(images.dtype)


def preprocess(
    frames: torch.Tensor,
    size: tuple[int, int] = (28, 28),
    patch: int | None = 7,
    *,
    antialias: bool = False,
) -> torch.Tensor:
    """The whole pipeline: ``[N, H, W(, 3)]`` frames -> ``[N, h, w]`` in ``[0, 1]``
    (grayscale, resize to ``size = (h, w)``, patch normalisation unless ``patch`` is None)."""
    gray = resize(to_grayscale(frames), size, antialias=antialias)
    if patch is None:
        return gray.clamp(0.0, 1.0)
    return patch_normalise(gray, patch)


def _check_code_input(x: torch.Tensor, name: str, steps: int) -> None:
    check_tensor(x, f"{name} input [*S]")
    if not isinstance(steps, int) or steps < 1:
        raise InputError(f"{name} steps must be a positive int, got {steps!r}")
    if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
        raise InputError(f"{name} input must lie in [0, 1] (preprocess the images first)")


def rate_code(
    x: torch.Tensor,
    steps: int,
    *,
    max_rate_hz: float = 63.75,
    dt_ms: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Poisson rate code ``[T, *S]``: a pixel of value ``x`` fires with probability
    ``x * max_rate_hz * dt_ms / 1000`` per step (reference: pixel/4 Hz for 0..255 pixels, i.e.
    ``max_rate_hz = 63.75``). Pass an explicit ``generator`` for reproducible spikes."""
    _check_code_input(x, "rate_code", steps)
    if not (max_rate_hz > 0 and dt_ms > 0) or max_rate_hz * dt_ms / 1000.0 > 1.0:
        raise InputError(
            f"rate_code needs max_rate_hz * dt_ms / 1000 in (0, 1], got {max_rate_hz} Hz, "
            f"{dt_ms} ms"
        )
    return poisson_spikes(x, steps, max_rate_hz=max_rate_hz, dt_ms=dt_ms, generator=generator)


def latency_code(x: torch.Tensor, steps: int, *, threshold: float = 0.0) -> torch.Tensor:
    """Single-spike temporal code ``[T, *S]``: a spike at ``t = round((1 - x) (T - 1))`` for
    pixels above ``threshold`` (brighter fires earlier); see
    :func:`neurosim.functional.encoding.latency_encode`."""
    _check_code_input(x, "latency_code", steps)
    return latency_encode(x, steps, threshold=threshold)
