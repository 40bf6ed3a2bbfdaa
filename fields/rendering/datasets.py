"""Posed-image datasets: the Blender (NeRF synthetic) and nerfstudio ``transforms.json`` formats.

Both give a :class:`ViewDataset`: images with their :class:`~fields.rendering.cameras.Cameras`.
Colours are stored **premultiplied** by alpha (``rgb * a``) beside the alpha channel, so any
background is composited exactly, ``c = rgb_premultiplied + (1 - a) * background``, including a
random one per ray for training (Instant-NGP's trick against density floaters in transparent
areas). Downscaling by an integer factor averages premultiplied colour and alpha over the
pixel blocks (box filter; PIL's for sizes that do not divide).

Blender layout (``root/``): ``transforms_{train,val,test}.json`` with ``camera_angle_x`` and
``frames: [{file_path: "./train/r_0", transform_matrix: 4x4}, ...]``; images are
``file_path + ".png"`` (RGBA). The scene box is ``[-1.5, 1.5]^3``.

nerfstudio layout (``root/transforms.json``): intrinsics ``fl_x, fl_y, cx, cy, w, h`` and
distortion ``k1, k2, k3, p1, p2`` (``camera_model`` ``OPENCV`` or ``PINHOLE``) at the top level
or per frame; ``frames: [{file_path: "images/frame_00001.png", transform_matrix}, ...]`` relative
to ``root``. Splits: the file names under ``train_filenames`` / ``val_filenames`` /
``test_filenames`` when present, otherwise every 8th frame (sorted by file name) is held out for
``test`` and the rest is ``train``. With ``normalize`` the camera centres are shifted to their
mean and scaled into ``[-1, 1]^3`` (as nerfstudio's ``center_method="poses"`` and
``auto_scale_poses``; no re-orientation); the scene box is then ``[-1, 1]^3`` and the scene is
treated as unbounded (contraction).

Errors (all :class:`~neurosim.backend.InputError`): a missing folder or JSON file (the message
shows the expected layout), a missing or unreadable image, a pose that is not a finite rigid
4x4 (or 3x4) matrix, images whose sizes disagree with each other or with the intrinsics, an
unknown split, a bad downscale factor.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fields.rendering.cameras import Cameras
from neurosim.backend import InputError

BLENDER_LAYOUT = (
    "root/transforms_{train,val,test}.json (camera_angle_x, frames[].file_path, "
    "frames[].transform_matrix) and the PNG images they name (file_path + '.png')"
)
NERFSTUDIO_LAYOUT = (
    "root/transforms.json (fl_x, fl_y, cx, cy, w, h, optional k1 k2 k3 p1 p2, "
    "frames[].file_path relative to root, frames[].transform_matrix)"
)
SPLITS = ("train", "val", "test")
BACKGROUNDS = ("white", "black", "random")


@dataclass
class ViewDataset:
    """Posed images of one split.

    Attributes:
        images: ``[N, H, W, 3]`` float32 premultiplied colour in ``[0, 1]``.
        alpha: ``[N, H, W]`` float32 opacity (ones for RGB images).
        cameras: the ``N`` cameras.
        aabb: scene box ``(xmin, ymin, zmin, xmax, ymax, zmax)``.
        names: image file names.
        unbounded: the scene extends beyond ``aabb`` (use contraction / proposal sampling).
    """

    images: torch.Tensor
    alpha: torch.Tensor
    cameras: Cameras
    aabb: tuple[float, ...]
    names: list[str]
    unbounded: bool = False

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def height(self) -> int:
        return int(self.images.shape[1])

    @property
    def width(self) -> int:
        return int(self.images.shape[2])

    def composited(self, background: str | tuple[float, float, float] = "white") -> torch.Tensor:
        """``[N, H, W, 3]`` images over a fixed background colour."""
        bg = background_color(background)
        return self.images + (1.0 - self.alpha[..., None]) * bg

    def subset(self, indices: list[int]) -> ViewDataset:
        """The views at ``indices``."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        return ViewDataset(
            self.images[idx],
            self.alpha[idx],
            self.cameras[idx],
            self.aabb,
            [self.names[i] for i in indices],
            self.unbounded,
        )


def background_color(background: str | tuple[float, float, float] | list[float]) -> torch.Tensor:
    """``[3]`` colour of a named (``white``, ``black``) or given background."""
    if isinstance(background, str):
        if background == "white":
            return torch.ones(3)
        if background == "black":
            return torch.zeros(3)
        raise InputError(
            f"background {background!r} is not a fixed colour; expected white, black or (r, g, b)"
        )
    color = torch.as_tensor(background, dtype=torch.float32)
    if color.shape != (3,):
        raise InputError(f"background colour must be 3 numbers, got {background}")
    return color


# ---------------------------------------------------------------------------------------------
# images


def read_image(path: Path) -> np.ndarray:
    """``[H, W, 4]`` float32 RGBA in ``[0, 1]`` (alpha 1 for RGB/grey images), straight alpha."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise InputError(f"image {str(path)!r} does not exist (named by the transforms file)")
    try:
        with Image.open(path) as img:
            img.load()
            mode = img.mode
            if mode in ("I;16", "I;16B", "I"):
                raise InputError(f"image {str(path)!r} is a 16-bit image; expected 8-bit RGB(A)")
            rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"image {str(path)!r} could not be decoded: {exc}") from exc
    return rgba


def premultiply(rgba: np.ndarray) -> np.ndarray:
    """Straight RGBA ``[..., 4]`` -> premultiplied (colour times alpha)."""
    out = rgba.copy()
    out[..., :3] *= out[..., 3:4]
    return out


def downscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Box-filter ``[H, W, C]`` by an integer ``factor`` (block means when it divides)."""
    if factor == 1:
        return image
    h, w, c = image.shape
    nh, nw = max(1, round(h / factor)), max(1, round(w / factor))
    if h % factor == 0 and w % factor == 0:
        return image.reshape(nh, factor, nw, factor, c).mean(axis=(1, 3))
    from PIL import Image

    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(image[..., k]), mode="F").resize(
                (nw, nh), Image.Resampling.BOX
            )
        )
        for k in range(c)
    ]
    return np.stack(channels, axis=-1).astype(np.float32)


def _check_downscale(factor: int) -> int:
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise InputError(f"downscale must be a positive integer, got {factor!r}")
    return factor


# ---------------------------------------------------------------------------------------------
# poses


def parse_pose(matrix: Any, where: str) -> torch.Tensor:
    """A ``transform_matrix`` as a float64 ``[3, 4]`` tensor; errors name ``where``."""
    try:
        pose = np.asarray(matrix, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: transform_matrix is not a numeric matrix ({exc})") from exc
    if pose.shape not in ((4, 4), (3, 4)):
        raise InputError(f"{where}: transform_matrix must be 4x4 (or 3x4), got shape {pose.shape}")
    if not np.isfinite(pose).all():
        raise InputError(f"{where}: transform_matrix contains NaN or infinite values")
    rot = pose[:3, :3]
    err = float(np.abs(rot.T @ rot - np.eye(3)).max())
    if err > 1e-3:
        raise InputError(
            f"{where}: the rotation part of transform_matrix is not orthonormal "
            f"(max |R^T R - I| = {err:.3g}); expected a rigid camera-to-world pose"
        )
    if pose.shape == (4, 4) and not np.allclose(pose[3], [0, 0, 0, 1], atol=1e-6):
        raise InputError(f"{where}: the last row of transform_matrix must be [0, 0, 0, 1]")
    return torch.from_numpy(pose[:3].copy())


def _read_json(path: Path, layout: str) -> dict[str, Any]:
    if not path.is_file():
        raise InputError(f"{str(path)!r} not found; expected layout: {layout}")
    try:
        doc = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{str(path)!r} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("frames"), list) or not doc["frames"]:
        raise InputError(f"{str(path)!r} has no 'frames' list; expected layout: {layout}")
    return doc


def _frame_path(frame: Any, where: str) -> str:
    if not isinstance(frame, dict) or "file_path" not in frame or "transform_matrix" not in frame:
        raise InputError(f"{where}: a frame needs 'file_path' and 'transform_matrix'")
    return str(frame["file_path"])


def _stack_images(
    arrays: list[np.ndarray], names: list[str], expected: tuple[int, int] | None, source: str
) -> tuple[torch.Tensor, torch.Tensor]:
    shapes = {a.shape[:2] for a in arrays}
    if len(shapes) > 1:
        first = arrays[0].shape[:2]
        odd = next(n for n, a in zip(names, arrays, strict=True) if a.shape[:2] != first)
        raise InputError(
            f"{source}: images have different sizes (first {names[0]} is {first[1]}x{first[0]}, "
            f"{odd} differs); expected one size for all views"
        )
    if expected is not None and arrays[0].shape[:2] != expected:
        h, w = arrays[0].shape[:2]
        raise InputError(
            f"{source}: image {names[0]} is {w}x{h} but the intrinsics give "
            f"{expected[1]}x{expected[0]}"
        )
    stack = np.stack(arrays)
    return torch.from_numpy(stack[..., :3].copy()), torch.from_numpy(stack[..., 3].copy())


def load_blender(
    root: str | os.PathLike[str], split: str = "train", downscale_factor: int = 1
) -> ViewDataset:
    """One split of a Blender-format scene (see the module docstring)."""
    if split not in SPLITS:
        raise InputError(f"split {split!r} is not known; expected one of {SPLITS}")
    factor = _check_downscale(downscale_factor)
    base = Path(root)
    if not base.is_dir():
        raise InputError(f"Blender scene folder {str(base)!r} not found; expected {BLENDER_LAYOUT}")
    source = base / f"transforms_{split}.json"
    doc = _read_json(source, BLENDER_LAYOUT)
    fov = doc.get("camera_angle_x")
    if not isinstance(fov, int | float) or not 0 < float(fov) < math.pi:
        raise InputError(
            f"{source}: camera_angle_x must be an angle in (0, pi) radians, got {fov!r}"
        )
    arrays: list[np.ndarray] = []
    poses: list[torch.Tensor] = []
    names: list[str] = []
    first_size: tuple[int, ...] = ()
    for i, frame in enumerate(doc["frames"]):
        where = f"{source.name} frame {i}"
        rel = _frame_path(frame, where)
        path = (base / rel).resolve()
        if path.suffix.lower() not in (".png", ".jpg", ".jpeg"):
            path = path.with_name(path.name + ".png")
        poses.append(parse_pose(frame["transform_matrix"], f"{where} ({rel})"))
        rgba = read_image(path)
        if i and rgba.shape[:2] != first_size:
            raise InputError(
                f"{source}: image {path.name} is {rgba.shape[1]}x{rgba.shape[0]} but "
                f"{names[0]} is {first_size[1]}x{first_size[0]}; expected one size for all views"
            )
        first_size = rgba.shape[:2]
        arrays.append(downscale(premultiply(rgba), factor))
        names.append(path.name)
    images, alpha = _stack_images(arrays, names, None, str(source))
    c2w = torch.stack(poses).float()
    cams = Cameras.from_fov(c2w, int(first_size[1]), int(first_size[0]), float(fov))
    if factor != 1:
        cams = cams.scaled(1.0 / factor)
    return ViewDataset(images, alpha, cams, (-1.5, -1.5, -1.5, 1.5, 1.5, 1.5), names)


_INTRINSICS = ("fl_x", "fl_y", "cx", "cy", "w", "h")


def _intrinsics(frame: dict[str, Any], doc: dict[str, Any], where: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in (*_INTRINSICS, "k1", "k2", "k3", "p1", "p2"):
        value = frame.get(key, doc.get(key))
        if value is None:
            if key in _INTRINSICS:
                raise InputError(
                    f"{where}: intrinsic {key!r} is missing; expected {NERFSTUDIO_LAYOUT}"
                )
            value = 0.0
        try:
            out[key] = float(value)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{where}: {key} = {value!r} is not a number") from exc
    model = frame.get("camera_model", doc.get("camera_model", "OPENCV"))
    if model not in ("OPENCV", "PINHOLE"):
        raise InputError(
            f"{where}: camera_model {model!r} is not supported; expected OPENCV or PINHOLE"
        )
    return out


def load_nerfstudio(
    root: str | os.PathLike[str],
    split: str = "train",
    downscale_factor: int = 1,
    *,
    normalize: bool = True,
    holdout_every: int = 8,
) -> ViewDataset:
    """One split of a nerfstudio-format scene (see the module docstring)."""
    if split not in SPLITS:
        raise InputError(f"split {split!r} is not known; expected one of {SPLITS}")
    factor = _check_downscale(downscale_factor)
    base = Path(root)
    source = base / "transforms.json" if base.is_dir() or not base.suffix else base
    if source.parent.is_dir():
        base = source.parent
    doc = _read_json(source, NERFSTUDIO_LAYOUT)
    frames = list(doc["frames"])
    for i, frame in enumerate(frames):
        _frame_path(frame, f"transforms.json frame {i}")
    order = sorted(range(len(frames)), key=lambda i: str(frames[i]["file_path"]))
    listed = doc.get(f"{split}_filenames")
    if listed is not None:
        wanted = {Path(str(n)).as_posix() for n in listed}
        chosen = [i for i in order if Path(str(frames[i]["file_path"])).as_posix() in wanted]
        if not chosen:
            raise InputError(f"{source}: none of {split}_filenames matches a frame's file_path")
    else:
        test = set(order[::holdout_every])
        chosen = [i for i in order if (i in test) == (split != "train")]
    all_poses = torch.stack(
        [parse_pose(frames[i]["transform_matrix"], f"{source.name} frame {i}") for i in order]
    )
    center = torch.zeros(3, dtype=torch.float64)
    scale = 1.0
    if normalize:
        center = all_poses[:, :, 3].mean(0)
        extent = float((all_poses[:, :, 3] - center).abs().max())
        scale = 1.0 / extent if extent > 0 else 1.0
    arrays: list[np.ndarray] = []
    poses: list[torch.Tensor] = []
    names: list[str] = []
    fx: list[float] = []
    fy: list[float] = []
    cx: list[float] = []
    cy: list[float] = []
    dist: list[list[float]] = []
    size: tuple[int, int] | None = None
    for i in chosen:
        frame = frames[i]
        where = f"{source.name} frame {i}"
        intr = _intrinsics(frame, doc, where)
        frame_size = (round(intr["h"]), round(intr["w"]))
        if size is None:
            size = frame_size
        elif frame_size != size:
            raise InputError(
                f"{where}: size {frame_size[1]}x{frame_size[0]} differs from the other frames' "
                f"{size[1]}x{size[0]}; expected one image size"
            )
        pose = parse_pose(frame["transform_matrix"], where)
        pose[:, 3] = (pose[:, 3] - center) * scale
        rel = str(frame["file_path"])
        rgba = read_image(base / rel)
        if rgba.shape[:2] != frame_size:
            raise InputError(
                f"{where}: image {rel} is {rgba.shape[1]}x{rgba.shape[0]} but the intrinsics "
                f"give {frame_size[1]}x{frame_size[0]}"
            )
        arrays.append(downscale(premultiply(rgba), factor))
        poses.append(pose)
        names.append(Path(rel).name)
        fx.append(intr["fl_x"])
        fy.append(intr["fl_y"])
        cx.append(intr["cx"])
        cy.append(intr["cy"])
        dist.append([intr["k1"], intr["k2"], intr["k3"], intr["p1"], intr["p2"]])
    assert size is not None
    images, alpha = _stack_images(arrays, names, None, str(source))
    distortion = torch.tensor(dist, dtype=torch.float32)
    cams = Cameras(
        torch.stack(poses).float(),
        torch.tensor(fx, dtype=torch.float32),
        torch.tensor(fy, dtype=torch.float32),
        torch.tensor(cx, dtype=torch.float32),
        torch.tensor(cy, dtype=torch.float32),
        size[1],
        size[0],
        distortion if bool((distortion != 0).any()) else None,
    )
    if factor != 1:
        cams = cams.scaled(1.0 / factor)
    box = (-1.0, -1.0, -1.0, 1.0, 1.0, 1.0) if normalize else _camera_box(cams)
    return ViewDataset(images, alpha, cams, box, names, unbounded=True)


def _camera_box(cams: Cameras) -> tuple[float, ...]:
    centres = cams.camera_to_world[:, :, 3]
    extent = float(centres.abs().max()) or 1.0
    return (-extent, -extent, -extent, extent, extent, extent)


def load_views(
    path: str | os.PathLike[str], split: str = "train", downscale_factor: int = 1
) -> ViewDataset:
    """Blender format when ``path`` holds ``transforms_train.json``, else nerfstudio format."""
    base = Path(path)
    if (base / "transforms_train.json").is_file():
        return load_blender(base, split, downscale_factor)
    if (base / "transforms.json").is_file() or base.suffix == ".json":
        return load_nerfstudio(base, split, downscale_factor)
    raise InputError(
        f"{str(base)!r} is neither a Blender scene ({BLENDER_LAYOUT}) nor a nerfstudio scene "
        f"({NERFSTUDIO_LAYOUT})"
    )
