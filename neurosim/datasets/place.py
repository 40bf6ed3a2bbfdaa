"""Place-recognition datasets: a generic folder layout, Corridor, Nordland, Oxford RobotCar, and a
generated route for demos and tests.

Every loader returns a :class:`PlaceDataset`: reference and query frames (``uint8 [N, H, W, 3]``
tensors, or ``[N, H, W]`` for grayscale sources) and, for each query, the reference indices that
count as the same place.

Generic layout (:func:`load_place_folder`)::

    <root>/ref/*.{jpg,jpeg,png}       reference traverse, in file-name order
    <root>/query/*.{jpg,jpeg,png}     query traverse, in file-name order
    <root>/ground_truth.json          optional: {"ground_truth": {"<query index>": [ref indices]}}
                                      without it: query i matches references i +- tolerance

Corridor (:func:`load_corridor`) is this layout at ``<data_root>/vpr/corridor`` (111 + 111 frames,
160x120, ground truth about +-2 frames; Milford 2013, via VPR-Bench).

Nordland (:func:`load_nordland`; Sünderhauf et al. 2013, the layout of the QVPR/VPRSNN code)::

    <root>/{spring,summer,fall,winter}/   one folder per season, frames in file-name order,
                                          the frame number in the file name
    <root>/nordland_imageNames.txt        optional: the speed-filtered frame list (one file name
                                          per line; the digits name the frame)

The paper trains on spring + fall, queries summer, and keeps every 8th filtered frame.

Oxford RobotCar (:func:`load_robotcar`; Maddern et al. 2017), the layout of the QVPR/VPRSNN
code: one folder of RGB frames per traversal (e.g. ``<root>/Sun``, ``<root>/Rain``,
``<root>/Dusk``), each optionally with ``<root>/ORC_imageNames_<traversal>.txt`` listing the
frames to use in order (frame i of every listed traversal is the same place). Raw RobotCar
downloads (``<date>/stereo/centre/*.png``, Bayer-encoded) must be demosaiced and subsampled
into this layout first (the RobotCar SDK's ``load_image`` does the demosaicing).

Neither Nordland nor RobotCar is shipped; a missing folder raises :class:`InputError` naming the
expected layout.

:func:`generated_route` makes a route from windows slid along large real images that
scikit-image ships, with the query traverse changed photometrically (night gain and gamma,
noise, blur) and shifted by a few pixels.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from neurosim.backend import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")

GENERIC_LAYOUT = (
    "<root>/ref/*.{jpg,png} (reference frames), <root>/query/*.{jpg,png} (query frames), "
    'optional <root>/ground_truth.json {"ground_truth": {"<query>": [reference indices]}}'
)
NORDLAND_LAYOUT = (
    "<root>/{spring,summer,fall,winter}/<frame files with the frame number in the name>, "
    "optional <root>/nordland_imageNames.txt (speed-filtered frame list)"
)
ROBOTCAR_LAYOUT = (
    "<root>/<traversal>/<RGB frames> for each traversal (e.g. Sun, Rain, Dusk), optional "
    "<root>/ORC_imageNames_<traversal>.txt listing the frames in order; raw RobotCar "
    "<date>/stereo/centre/*.png must be demosaiced into this layout first"
)


@dataclass
class PlaceDataset:
    """Reference and query traverses with their ground truth.

    Attributes:
        name: what it is (``"corridor"``, ``"nordland spring+fall/summer"``, ...).
        reference: ``uint8 [R, H, W, 3]`` (or ``[R, H, W]``) reference frames.
        query: ``uint8 [Q, H, W, 3]`` (or ``[Q, H, W]``) query frames.
        matches: for each query, the reference indices that count as the same place.
        reference_names, query_names: file names (or generated labels).
    """

    name: str
    reference: torch.Tensor
    query: torch.Tensor
    matches: list[list[int]]
    reference_names: list[str] = field(default_factory=list)
    query_names: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.matches) != len(self.query):
            raise InputError(
                f"{self.name}: {len(self.matches)} ground-truth entries for {len(self.query)} "
                "queries"
            )
        for q, refs in enumerate(self.matches):
            for r in refs:
                if not 0 <= r < len(self.reference):
                    raise InputError(
                        f"{self.name}: query {q} matches reference {r}, outside "
                        f"[0, {len(self.reference)})"
                    )

    def ground_truth(self) -> np.ndarray:
        """Boolean ``[Q, R]`` ground-truth matrix."""
        gt = np.zeros((len(self.query), len(self.reference)), dtype=bool)
        for q, refs in enumerate(self.matches):
            gt[q, refs] = True
        return gt


def tolerance_matches(n_query: int, n_reference: int, tolerance: int) -> list[list[int]]:
    """Query ``i`` matches references ``i - tolerance .. i + tolerance`` (clipped)."""
    return [
        list(range(max(0, i - tolerance), min(n_reference, i + tolerance + 1)))
        for i in range(n_query)
    ]


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def read_images(paths: Sequence[str | os.PathLike[str]]) -> torch.Tensor:
    """Read image files into one ``uint8 [N, H, W, 3]`` tensor (grayscale files become
    ``[N, H, W]`` when all are grayscale); all must have one size."""
    from PIL import Image

    frames = []
    for path in paths:
        try:
            with Image.open(path) as im:
                mode = "L" if im.mode in ("L", "I;16", "I", "F") else "RGB"
                frames.append(np.asarray(im.convert(mode)))
        except OSError as exc:
            raise InputError(f"cannot read image {str(path)!r}: {exc}") from exc
    if not frames:
        raise InputError("read_images got no files")
    shapes = {f.shape for f in frames}
    if len(shapes) != 1:
        rgb = [f if f.ndim == 3 else np.repeat(f[..., None], 3, axis=-1) for f in frames]
        shapes = {f.shape for f in rgb}
        if len(shapes) != 1:
            raise InputError(f"images differ in size: {sorted(shapes)[:3]} ...")
        frames = rgb
    return torch.from_numpy(np.stack(frames))


def load_place_folder(
    root: str | os.PathLike[str],
    *,
    reference: str = "ref",
    query: str = "query",
    tolerance: int = 0,
    name: str | None = None,
    limit: int | None = None,
) -> PlaceDataset:
    """Read the generic layout (module docstring); ``limit`` keeps the first frames of each
    traverse (queries whose matches fall outside are dropped from the ground truth lists)."""
    root = Path(root)
    ref_dir, query_dir = root / reference, root / query
    if not ref_dir.is_dir() or not query_dir.is_dir():
        raise InputError(f"place dataset not found at {str(root)!r}; expected: {GENERIC_LAYOUT}")
    ref_files, query_files = _image_files(ref_dir), _image_files(query_dir)
    if not ref_files or not query_files:
        raise InputError(f"no images in {str(ref_dir)!r} or {str(query_dir)!r}: {GENERIC_LAYOUT}")
    if limit is not None:
        ref_files, query_files = ref_files[:limit], query_files[:limit]
    gt_file = root / "ground_truth.json"
    if gt_file.is_file():
        try:
            doc = json.loads(gt_file.read_text())
            table = doc["ground_truth"] if "ground_truth" in doc else doc
            matches = [
                [int(r) for r in table[str(q)] if int(r) < len(ref_files)]
                for q in range(len(query_files))
            ]
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f"{str(gt_file)!r} is not a ground truth of {GENERIC_LAYOUT} (needs one entry per "
                f"query index): {exc!r}"
            ) from exc
    else:
        matches = tolerance_matches(len(query_files), len(ref_files), tolerance)
    return PlaceDataset(
        name or root.name,
        read_images(ref_files),
        read_images(query_files),
        matches,
        [p.name for p in ref_files],
        [p.name for p in query_files],
    )


def load_corridor(data_root: str | os.PathLike[str]) -> PlaceDataset:
    """Corridor from ``<data_root>/vpr/corridor`` (the generic layout, with its ground truth)."""
    root = Path(data_root) / "vpr" / "corridor"
    return load_place_folder(root, name="corridor")


def _frame_number(name: str) -> int:
    digits = "".join(c for c in name if c.isdigit())
    if not digits:
        raise InputError(f"file name {name!r} has no frame number")
    return int(digits)


def load_nordland(
    root: str | os.PathLike[str],
    *,
    reference: Sequence[str] = ("spring", "fall"),
    query: str = "summer",
    every: int = 8,
    offset: int = 0,
    n_places: int | None = None,
    tolerance: int = 0,
) -> PlaceDataset:
    """Nordland in the VPRSNN layout (module docstring).

    Keeps the frames in the filtered list (all frames without one), then every ``every``-th
    from ``offset``, then the first ``n_places``. Several reference seasons are stacked as
    further training frames of the same places: reference frame ``k * P + i`` is place ``i``
    of season ``k`` (``matches`` lists all seasons' frames for each query place).
    """
    root = Path(root)
    seasons = [*reference, query]
    missing = [s for s in seasons if not (root / s).is_dir()]
    if missing:
        raise InputError(
            f"Nordland not found at {str(root)!r} (missing {', '.join(missing)}); expected: "
            f"{NORDLAND_LAYOUT}. Download the dataset (Sünderhauf et al. 2013) and arrange it so."
        )
    names_file = root / "nordland_imageNames.txt"
    allowed = None
    if names_file.is_file():
        allowed = {_frame_number(line) for line in names_file.read_text().split() if line.strip()}

    def frames(season: str) -> list[Path]:
        files = _image_files(root / season)
        if allowed is not None:
            files = [f for f in files if _frame_number(f.stem) in allowed]
        files = files[offset::every]
        return files[:n_places] if n_places else files

    return _traversals(
        f"nordland {'+'.join(reference)}/{query}",
        frames(query),
        [frames(s) for s in reference],
        tolerance,
        f"Nordland at {str(root)!r} has no frames after filtering: {NORDLAND_LAYOUT}",
    )


def _traversals(
    name: str,
    query_files: list[Path],
    ref_lists: list[list[Path]],
    tolerance: int,
    empty: str,
) -> PlaceDataset:
    """A dataset of one query traversal against several reference traversals of the same places:
    each cut to the shortest, references concatenated (frame ``r`` of traversal ``k`` is row
    ``k * count + r``), every traversal's frame matching a query place within ``tolerance``.
    ``empty``: the error message when no frames remain."""
    count = min([len(query_files), *(len(r) for r in ref_lists)])
    if count == 0:
        raise InputError(empty)
    query_files = query_files[:count]
    ref_files = [f for r in ref_lists for f in r[:count]]
    base = tolerance_matches(count, count, tolerance)
    matches = [[k * count + r for k in range(len(ref_lists)) for r in refs] for refs in base]
    return PlaceDataset(
        name,
        read_images(ref_files),
        read_images(query_files),
        matches,
        [p.name for p in ref_files],
        [p.name for p in query_files],
    )


def load_robotcar(
    root: str | os.PathLike[str],
    *,
    reference: Sequence[str] = ("Sun", "Rain"),
    query: str = "Dusk",
    every: int = 8,
    offset: int = 0,
    n_places: int | None = None,
    tolerance: int = 0,
) -> PlaceDataset:
    """Oxford RobotCar traversals in the VPRSNN layout (module docstring); frame selection and
    several reference traversals as in :func:`load_nordland`."""
    root = Path(root)
    traversals = [*reference, query]
    missing = [t for t in traversals if not (root / t).is_dir()]
    if missing:
        raise InputError(
            f"Oxford RobotCar not found at {str(root)!r} (missing {', '.join(missing)}); "
            f"expected: {ROBOTCAR_LAYOUT}"
        )

    def frames(traversal: str) -> list[Path]:
        listing = root / f"ORC_imageNames_{traversal}.txt"
        if listing.is_file():
            names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
            files = [root / traversal / Path(n).name for n in names]
            absent = [f for f in files if not f.is_file()]
            if absent:
                raise InputError(
                    f"{str(listing)!r} lists {len(absent)} frames missing from "
                    f"{str(root / traversal)!r} (first: {absent[0].name}); {ROBOTCAR_LAYOUT}"
                )
        else:
            files = _image_files(root / traversal)
        files = files[offset::every]
        return files[:n_places] if n_places else files

    return _traversals(
        f"robotcar {'+'.join(reference)}/{query}",
        frames(query),
        [frames(t) for t in reference],
        tolerance,
        f"RobotCar at {str(root)!r} has no frames: {ROBOTCAR_LAYOUT}",
    )


# ---------------------------------------------------------------------- generated route
ROUTE_IMAGES = ("astronaut", "coffee", "rocket", "chelsea", "hubble_deep_field", "retina")


@functools.lru_cache(maxsize=len(ROUTE_IMAGES))
def _route_source(name: str) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=-1)
    out = np.ascontiguousarray(image[..., :3], dtype=np.uint8)
    out.setflags(write=False)
    return out


def _route_sources() -> Iterator[np.ndarray]:
    """The source photographs in route order, each read (and cached) only when reached."""
    for name in ROUTE_IMAGES:
        yield _route_source(name)


def _windows(
    height: int, width: int, window: tuple[int, int], stride: int
) -> list[tuple[int, int]]:
    """Serpentine scan of window corners over one image (rows alternate direction)."""
    h, w = window
    ys = list(range(0, height - h + 1, stride))
    xs = list(range(0, width - w + 1, stride))
    out = []
    for i, y in enumerate(ys):
        for x in xs if i % 2 == 0 else xs[::-1]:
            out.append((y, x))
    return out


def generated_route(
    n_places: int = 200,
    *,
    seed: int = 0,
    window: tuple[int, int] = (48, 64),
    stride: int = 12,
    shift: int = 3,
    gain: float = 0.45,
    gamma: float = 1.4,
    noise: float = 0.03,
    blur: float = 1.0,
    tolerance: int = 1,
) -> PlaceDataset:
    """A route of ``n_places`` windows ``(h, w)`` slid with ``stride`` pixels in a serpentine
    over scikit-image's large sample photographs (``ROUTE_IMAGES``, in turn; up to several
    thousand places). The query traverse sees each place shifted by up to ``shift`` pixels,
    at night (``gain`` times darker, ``gamma``), blurred (Gaussian ``blur`` pixels) and with
    Gaussian noise ``noise`` (in ``[0, 1]`` units), all drawn from ``seed``. Ground truth:
    query ``i`` matches references ``i +- tolerance`` (consecutive windows overlap).
    """
    from scipy.ndimage import gaussian_filter

    if n_places < 1:
        raise InputError(f"generated_route n_places must be >= 1, got {n_places}")
    if stride < 1 or shift < 0 or min(window) < 4:
        raise InputError(f"bad route geometry: window={window}, stride={stride}, shift={shift}")
    rng = np.random.default_rng(seed)
    h, w = window
    refs: list[np.ndarray] = []
    queries: list[np.ndarray] = []
    for image in _route_sources():
        corners = _windows(image.shape[0], image.shape[1], window, stride)
        corners = corners[: n_places - len(refs)]
        if not corners:
            continue
        # the night version of the whole image (blur and tone curve commute with cropping,
        # up to the blur's reach at the border), padded for the query shifts
        night = image.astype(np.float64) / 255.0
        if blur > 0:
            night = gaussian_filter(night, sigma=(blur, blur, 0))
        night = np.pad(gain * night**gamma, ((shift, shift), (shift, shift), (0, 0)), "reflect")
        offsets = rng.integers(-shift, shift + 1, size=(len(corners), 2))
        for (y, x), (dy, dx) in zip(corners, offsets, strict=True):
            refs.append(image[y : y + h, x : x + w])
            queries.append(
                night[y + shift + dy : y + shift + dy + h, x + shift + dx : x + shift + dx + w]
            )
        if len(refs) == n_places:
            break
    if len(refs) < n_places:
        raise InputError(
            f"generated_route can make at most {len(refs)} places with window={window}, "
            f"stride={stride}; lower the stride or the window"
        )
    query = np.stack(queries)
    if noise > 0:
        query = query + rng.normal(0.0, noise, size=query.shape)
    query = np.clip(np.round(query * 255.0), 0, 255).astype(np.uint8)
    return PlaceDataset(
        f"generated route ({n_places} places)",
        torch.from_numpy(np.stack(refs)),
        torch.from_numpy(query),
        tolerance_matches(n_places, n_places, tolerance),
        [f"ref_{i:05d}" for i in range(n_places)],
        [f"query_{i:05d}" for i in range(n_places)],
    )
