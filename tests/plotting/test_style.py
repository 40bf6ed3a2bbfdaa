"""The shared figure helpers save a readable, non-blank image."""

from __future__ import annotations

from pathlib import Path

from neurosim.plotting.style import PALETTE, new_axes, save_figure


def test_save_figure_writes_an_image_of_the_figure_size(tmp_path: Path, png_check) -> None:  # type: ignore[no-untyped-def]
    fig, ax = new_axes(figsize=(4.0, 3.0))
    for i, color in enumerate(PALETTE[:3]):
        ax.plot([0, 1, 2], [i, i + 1, i], color=color, label=f"series {i}")
    ax.set_xlabel("x (a.u.)")
    ax.set_ylabel("y (a.u.)")
    ax.set_title("style check")
    ax.legend()
    path = save_figure(fig, tmp_path / "sub" / "fig.png", dpi=100)
    image = png_check(path, min_size=(300, 200))
    assert image.shape[1] <= 500  # tight bounding box of a 4-inch figure at 100 dpi
