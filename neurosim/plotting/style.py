"""Figure creation and saving shared by the plotting modules.

Every plot function takes an optional ``ax``; without one it makes a figure with
:func:`new_axes`. Figures are saved with :func:`save_figure`, which works headless (Agg) and
creates the parent folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

# Colour-blind-safe qualitative palette (Okabe & Ito 2008) for series that must separate.
PALETTE = (
    "#0072B2",
    "#D55E00",
    "#009E73",
    "#CC79A7",
    "#E69F00",
    "#56B4E9",
    "#F0E442",
    "#000000",
)


def pyplot() -> Any:
    """``matplotlib.pyplot``, switched to the Agg backend when no display is available."""
    import matplotlib

    if not os.environ.get("DISPLAY") and "inline" not in str(matplotlib.get_backend()).lower():
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def new_axes(
    ax: Axes | None = None, *, figsize: tuple[float, float] = (6.0, 4.0)
) -> tuple[Figure, Axes]:
    """``(figure, axes)``: the given axes and its figure, or a new single-axes figure."""
    if ax is not None:
        figure = ax.get_figure()
        assert figure is not None
        return figure, ax  # type: ignore[return-value]
    fig, new = pyplot().subplots(figsize=figsize)
    return fig, new


def save_figure(figure: Figure, path: str | os.PathLike[str], *, dpi: int = 100) -> Path:
    """Write ``figure`` as an image (format from the suffix), close it, return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=dpi, bbox_inches="tight")
    pyplot().close(figure)
    return path
