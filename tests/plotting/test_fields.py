"""Field plots: an SDF slice draws its zero level set where the surface is, a reconstruction
shows the error map and the PSNR that scikit-image computes for the same pair."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

import neurosim.plotting.fields as plot_fields
from neurosim.backend import InputError
from neurosim.plotting.fields import plot_field_slice, plot_reconstruction
from neurosim.plotting.style import save_figure


def _circle_sdf(n: int, radius: float) -> np.ndarray:
    c = (np.arange(n) + 0.5) / n * 2 - 1  # cell centres in [-1, 1]
    x, y = np.meshgrid(c, c)  # row i is y = c[i]
    return np.sqrt(x**2 + y**2) - radius


def test_sdf_slice_zero_level_set_is_the_circle(tmp_path: Path, png_check) -> None:  # type: ignore[no-untyped-def]
    pred = _circle_sdf(64, 0.5)
    true = _circle_sdf(64, 0.6)
    fig = plot_field_slice(pred, sdf=True, reference=true, extent=(-1, 1, -1, 1),
                           axis_names=("x", "z"), title="fields_sdf run r1: y = 0")  # fmt: skip
    ax = fig.axes[0]
    contours = [c for c in ax.collections if hasattr(c, "get_paths")]
    assert len(contours) == 2  # the prediction's and the reference's surfaces
    for contour, radius in zip(contours, (0.5, 0.6), strict=True):
        vertices = np.concatenate([p.vertices for p in contour.get_paths()])
        np.testing.assert_allclose(np.hypot(vertices[:, 0], vertices[:, 1]), radius, atol=0.01)
    assert ax.get_xlabel() == "x (scene units)" and ax.get_ylabel() == "z (scene units)"
    assert fig.axes[1].get_ylabel() == "signed distance (scene units)"  # the colour bar
    png_check(save_figure(fig, tmp_path / "slice.png"), min_size=(350, 300))


def test_plain_field_slice_has_a_colour_bar_and_index_axes(tmp_path: Path, png_check) -> None:  # type: ignore[no-untyped-def]
    values = np.outer(np.linspace(0, 1, 20), np.linspace(1, 2, 30))
    fig = plot_field_slice(values, title="density", value_label="density (1/m)")
    assert fig.axes[0].get_xlabel() == "x (sample index)"
    assert fig.axes[1].get_ylabel() == "density (1/m)"
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), values)
    png_check(save_figure(fig, tmp_path / "plain.png"), min_size=(350, 250))
    with pytest.raises(InputError, match="needs sdf=True"):
        plot_field_slice(values, reference=values, title="t")
    with pytest.raises(InputError, match="non-finite"):
        plot_field_slice(np.full((4, 4), np.nan), title="t")


def test_reconstruction_error_map_and_psnr_agree_with_skimage(tmp_path: Path, png_check) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    target = rng.random((32, 48, 3))
    prediction = np.clip(target + rng.normal(0, 0.05, target.shape), 0, 1)
    fig = plot_reconstruction(prediction, target, title="image_fit run r1")
    expected = peak_signal_noise_ratio(target, prediction, data_range=1.0)
    assert f"{expected:.2f} dB PSNR" in fig.axes[1].get_title()
    error_image = fig.axes[2].images[0].get_array()
    np.testing.assert_allclose(error_image, np.abs(prediction - target).mean(-1))
    assert all(a.get_xlabel() == "x (pixels)" for a in fig.axes[:3])
    assert fig.axes[3].get_ylabel().startswith("|prediction - target|")
    png_check(save_figure(fig, tmp_path / "recon.png"), min_size=(700, 200))
    with pytest.raises(InputError, match="does not match target"):
        plot_reconstruction(prediction[:10], target, title="t")


def test_the_module_does_not_import_fields() -> None:
    tree = ast.parse(Path(plot_fields.__file__).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                for a in n.names}  # fmt: skip
    imported |= {
        (n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
    }
    assert "fields" not in imported and "experiments" not in imported
