"""View-synthesis plots on plain arrays: renders vs ground truth with error maps, depth maps,
PSNR against training time, and a turntable GIF.

Images are ``[H, W, 3]`` (or ``[N, H, W, 3]``) arrays in ``[0, 1]``; depth maps ``[H, W]`` in
scene units. Nothing here imports a model: pass arrays (``results.arrays["renders"]``, ...).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from neurosim.backend import InputError
from neurosim.plotting.style import PALETTE, new_axes, pyplot

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure


def _images(array: Any, name: str) -> np.ndarray:
    out = np.asarray(array, dtype=np.float64)
    if out.ndim == 3:
        out = out[None]
    if out.ndim != 4 or out.shape[-1] != 3:
        raise InputError(f"{name} must be [H, W, 3] or [N, H, W, 3] images, got {out.shape}")
    return np.clip(out, 0.0, 1.0)


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else -10.0 * np.log10(mse)


def plot_render_comparison(
    renders: Any,
    targets: Any,
    *,
    depth: Any | None = None,
    views: Sequence[int] | None = None,
    title: str = "renders vs ground truth",
    max_error: float = 0.25,
) -> Figure:
    """One row per view: ground truth, render (with its PSNR), absolute error (mean over
    channels, colour scale up to ``max_error``) and, when given, the depth map.
    """
    pred = _images(renders, "renders")
    gt = _images(targets, "targets")
    if pred.shape != gt.shape:
        raise InputError(f"renders {pred.shape} and targets {gt.shape} must have one shape")
    depths = None if depth is None else np.asarray(depth, dtype=np.float64).reshape(pred.shape[:3])
    picks = list(views) if views is not None else list(range(min(3, pred.shape[0])))
    cols = 4 if depths is not None else 3
    plt = pyplot()
    fig, axes = plt.subplots(
        len(picks), cols, figsize=(3.0 * cols, 3.0 * len(picks)), squeeze=False
    )
    for row, v in enumerate(picks):
        err = np.abs(pred[v] - gt[v]).mean(-1)
        axes[row, 0].imshow(gt[v])
        axes[row, 0].set_title(f"ground truth (view {v})")
        axes[row, 1].imshow(pred[v])
        axes[row, 1].set_title(f"render, PSNR {_psnr(pred[v], gt[v]):.2f} dB")
        im = axes[row, 2].imshow(err, cmap="magma", vmin=0.0, vmax=max_error)
        axes[row, 2].set_title("|error| (mean over RGB)")
        fig.colorbar(im, ax=axes[row, 2], fraction=0.046, pad=0.04, label="absolute error")
        if depths is not None:
            dm = axes[row, 3].imshow(depths[v], cmap="viridis")
            axes[row, 3].set_title("expected depth")
            fig.colorbar(dm, ax=axes[row, 3], fraction=0.046, pad=0.04, label="depth (scene units)")
        for ax in axes[row]:
            ax.set_xlabel("x (pixels)")
            ax.set_ylabel("y (pixels)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_psnr_vs_time(
    seconds: Any,
    psnr: Any,
    *,
    label: str = "test PSNR",
    targets: Sequence[tuple[float, float]] = (),
    title: str = "test PSNR against training time",
    ax: Axes | None = None,
) -> Figure:
    """PSNR (dB) against wall-clock training seconds; ``targets`` marks ``(seconds, dB)`` goals."""
    t = np.asarray(seconds, dtype=np.float64)
    p = np.asarray(psnr, dtype=np.float64)
    if t.shape != p.shape or t.ndim != 1:
        raise InputError(f"seconds {t.shape} and psnr {p.shape} must be equal 1-D arrays")
    fig, ax = new_axes(ax)
    ax.plot(t, p, marker="o", color=PALETTE[0], label=label)
    for i, (ts, ps) in enumerate(targets):
        ax.scatter(
            [ts],
            [ps],
            marker="*",
            s=120,
            color=PALETTE[1],
            zorder=3,
            label="target" if i == 0 else None,
        )
    ax.set_xlabel("training time (s)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def plot_depth(depth: Any, *, title: str = "depth", ax: Axes | None = None) -> Figure:
    """A depth map ``[H, W]`` with a colour bar in scene units."""
    d = np.asarray(depth, dtype=np.float64)
    if d.ndim != 2:
        raise InputError(f"depth must be [H, W], got {d.shape}")
    fig, ax = new_axes(ax, figsize=(4.5, 4.0))
    im = ax.imshow(d, cmap="viridis")
    fig.colorbar(im, ax=ax, label="depth (scene units)")
    ax.set_xlabel("x (pixels)")
    ax.set_ylabel("y (pixels)")
    ax.set_title(title)
    return fig


def plot_turntable_strip(
    frames: Any, *, count: int = 6, title: str = "turntable", ax: Axes | None = None
) -> Figure:
    """``count`` evenly spaced frames of a turntable ``[F, H, W, 3]`` side by side."""
    imgs = _images(frames, "frames")
    picks = np.linspace(0, imgs.shape[0] - 1, min(count, imgs.shape[0])).round().astype(int)
    strip = np.concatenate([imgs[i] for i in picks], axis=1)
    fig, ax = new_axes(ax, figsize=(2.0 * len(picks), 2.4))
    ax.imshow(strip)
    width = imgs.shape[2]
    ax.set_xticks([(k + 0.5) * width for k in range(len(picks))])
    ax.set_xticklabels([f"{360.0 * i / imgs.shape[0]:.0f}°" for i in picks])
    ax.set_yticks([])
    ax.set_xlabel("camera azimuth (degrees)")
    ax.set_title(title)
    return fig


def save_gif(
    frames: Any, path: str | os.PathLike[str], *, fps: float = 12.0, loop: int = 0
) -> Path:
    """Write ``frames [F, H, W, 3]`` in ``[0, 1]`` as an animated GIF (Pillow); returns the path."""
    from PIL import Image

    imgs = _images(frames, "frames")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    pics = [Image.fromarray((f * 255.0 + 0.5).astype(np.uint8)) for f in imgs]
    pics[0].save(
        out,
        save_all=True,
        append_images=pics[1:],
        duration=max(1, round(1000.0 / fps)),
        loop=loop,
    )
    return out
