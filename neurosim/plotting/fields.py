"""Neural-field figures from plain arrays: 2-D field slices and image reconstructions.

Nothing here imports :mod:`fields`; pass the arrays a field produced (a slice of an SDF grid,
a predicted image and its target)::

    fig = plot_field_slice(sdf_grid[:, :, 32], sdf=True, reference=true_grid[:, :, 32],
                           extent=(-1, 1, -1, 1), title="fields_sdf run 42: z = 0 slice")
    fig = plot_reconstruction(prediction, target, title="fields_image run 42 (hashgrid)")

Image arrays are ``[H, W]`` or ``[H, W, C]`` (``C`` = 1 or 3) with intensities in ``[0, 1]``;
row 0 is the top of the image. Field slices are ``[rows, columns]`` with row ``i`` at the
second coordinate's ``i``-th value (drawn with that axis pointing up).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from neurosim.backend import InputError
from neurosim.plotting.style import PALETTE, new_axes, pyplot

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_field_slice", "plot_reconstruction", "reconstruction_error"]


def _array(x: Any, what: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} must be a numeric array, got {type(x).__name__}") from exc


def _slice(x: Any, what: str) -> np.ndarray:
    arr = _array(x, what)
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2 or min(arr.shape) < 2:
        raise InputError(f"{what} must be a 2-D slice [rows, columns] (>= 2 each), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError(f"{what} has {int((~np.isfinite(arr)).sum())} non-finite values")
    return arr


def plot_field_slice(
    values: Any,
    *,
    title: str,
    sdf: bool = False,
    reference: Any = None,
    extent: Sequence[float] | None = None,
    axis_names: Sequence[str] = ("x", "y"),
    unit: str = "scene units",
    value_label: str | None = None,
    ax: Axes | None = None,
) -> Figure:
    """A 2-D slice of a field as an image with a colour bar.

    With ``sdf=True`` the colours diverge around zero (blue inside, red outside) and the zero
    level set (the surface) is drawn as a black line; ``reference`` (another slice of the same
    shape, e.g. the true SDF) adds its zero level set as a dashed line.

    Args:
        values: ``[rows, columns]`` field values; row ``i`` is at the ``i``-th value of the
            second axis, drawn upwards.
        title: names the run and the slice.
        sdf: treat the values as signed distances.
        reference: optional slice whose zero level set is overlaid (``sdf=True`` only).
        extent: ``(first_min, first_max, second_min, second_max)`` of the slice in ``unit``
            (default: sample indices).
        axis_names: names of the two in-slice axes, e.g. ``("x", "z")``.
        unit: length unit of the axes (and of signed distances).
        value_label: colour-bar label (default ``signed distance (<unit>)`` or ``field value``).

    Returns:
        the figure; with ``sdf`` its axes hold one contour set per drawn level set.
    """
    arr = _slice(values, "values")
    ref = None
    if reference is not None:
        if not sdf:
            raise InputError("reference= draws a zero level set; it needs sdf=True")
        ref = _slice(reference, "reference")
        if ref.shape != arr.shape:
            raise InputError(f"reference of shape {ref.shape} does not match values {arr.shape}")
    if len(axis_names) != 2:
        raise InputError(f"axis_names needs two names, got {list(axis_names)}")
    if extent is None:
        box = (-0.5, arr.shape[1] - 0.5, -0.5, arr.shape[0] - 0.5)
        xlabel, ylabel = (f"{name} (sample index)" for name in axis_names)
    else:
        if len(extent) != 4 or not extent[0] < extent[1] or not extent[2] < extent[3]:
            raise InputError(f"extent must be (x0 < x1, y0 < y1), got {list(extent)}")
        box = tuple(float(e) for e in extent)  # type: ignore[assignment]
        xlabel, ylabel = (f"{name} ({unit})" for name in axis_names)
    fig, axes = new_axes(ax, figsize=(5.6, 4.6))
    if sdf:
        from matplotlib.colors import TwoSlopeNorm

        span = max(float(np.abs(arr).max()), 1e-12)
        norm = TwoSlopeNorm(vcenter=0.0, vmin=-span, vmax=span)
        image = axes.imshow(arr, origin="lower", extent=box, cmap="RdBu_r", norm=norm)
    else:
        image = axes.imshow(arr, origin="lower", extent=box, cmap="viridis")
    handles = []
    if sdf:
        from matplotlib.lines import Line2D

        grid_x = np.linspace(box[0], box[1], arr.shape[1] + 1)
        grid_y = np.linspace(box[2], box[3], arr.shape[0] + 1)
        cx, cy = (grid_x[:-1] + grid_x[1:]) / 2, (grid_y[:-1] + grid_y[1:]) / 2
        for slice_, colour, style, label in (
            (arr, "black", "solid", "zero level set"),
            (ref, PALETTE[4], "dashed", "reference zero level set"),
        ):
            if slice_ is None or slice_.min() > 0 or slice_.max() < 0:
                continue  # no surface crosses this slice
            axes.contour(cx, cy, slice_, levels=[0.0], colors=[colour], linestyles=style,
                         linewidths=1.6)  # fmt: skip
            handles.append(Line2D([], [], color=colour, ls=style, lw=1.6, label=label))
    if handles:
        axes.legend(handles=handles, fontsize="small", loc="upper right", framealpha=0.8)
    label = value_label or (f"signed distance ({unit})" if sdf else "field value")
    fig.colorbar(image, ax=axes, label=label, fraction=0.046, pad=0.04)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    return fig


def _image(x: Any, what: str) -> np.ndarray:
    arr = _array(x, what)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[-1] not in (1, 3) or min(arr.shape[:2]) < 2:
        raise InputError(f"{what} must be an image [H, W] or [H, W, 1|3], got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise InputError(f"{what} has {int((~np.isfinite(arr)).sum())} non-finite values")
    return arr


def reconstruction_error(prediction: Any, target: Any) -> tuple[np.ndarray, float]:
    """``(error map [H, W], PSNR in dB)``: the per-pixel mean absolute error over channels and
    ``10 log10(1 / MSE)`` over every pixel and channel (intensities in ``[0, 1]``)."""
    pred, tgt = _image(prediction, "prediction"), _image(target, "target")
    if pred.shape != tgt.shape:
        raise InputError(f"prediction of shape {pred.shape} does not match target {tgt.shape}")
    diff = pred - tgt
    mse = float(np.mean(diff**2))
    psnr = float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)
    return np.abs(diff).mean(axis=-1), psnr


def plot_reconstruction(prediction: Any, target: Any, *, title: str) -> Figure:
    """Target, reconstruction (PSNR in its panel title) and the absolute-error map.

    Three panels in one figure (no ``ax``: it needs three axes). The images are shown clipped to
    ``[0, 1]``; the error map is ``mean_c |prediction - target|`` with a colour bar.

    Args:
        prediction, target: ``[H, W]`` or ``[H, W, 1|3]`` in ``[0, 1]``, same shape.
        title: names the run (and the model).

    Returns:
        the figure; ``fig.axes[2]`` is the error map (its image holds the error array).
    """
    pred, tgt = _image(prediction, "prediction"), _image(target, "target")
    error, psnr = reconstruction_error(pred, tgt)
    height, width = tgt.shape[:2]
    panel = 3.4
    fig, axes = pyplot().subplots(1, 3, figsize=(3 * panel + 1.0, panel * height / width + 0.9))
    grey = tgt.shape[-1] == 1
    panels = ((axes[0], tgt, "target"), (axes[1], pred, f"reconstruction, {psnr:.2f} dB PSNR"))
    for a, image, name in panels:
        shown = np.clip(image[..., 0] if grey else image, 0.0, 1.0)
        a.imshow(shown, cmap="gray" if grey else None, vmin=0.0, vmax=1.0)
        a.set_title(name, fontsize=10)
    err = axes[2].imshow(error, cmap="magma", vmin=0.0, vmax=max(float(error.max()), 1e-6))
    axes[2].set_title("absolute error", fontsize=10)
    fig.colorbar(err, ax=axes[2], label="|prediction - target| (intensity)", fraction=0.046,
                 pad=0.04)  # fmt: skip
    for a in axes:
        a.set_xlabel("x (pixels)")
        a.set_ylabel("y (pixels)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
