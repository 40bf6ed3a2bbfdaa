"""Blender and nerfstudio loaders: values, downscaling, backgrounds, splits and bad input."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from fields.rendering.cameras import orbit_poses
from fields.rendering.datasets import load_blender, load_nerfstudio, load_views
from neurosim.backend import InputError


def _poses(n: int) -> list[list[list[float]]]:
    c2w = orbit_poses(n, 4.0).double()
    out = []
    for m in c2w:
        full = torch.eye(4, dtype=torch.float64)
        full[:3] = m
        out.append(full.tolist())
    return out


def _write_rgba(path: Path, rgba: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgba, mode="RGBA").save(path)


def _blender(root: Path, n: int = 3, size: tuple[int, int] = (8, 6)) -> list[np.ndarray]:
    gen = np.random.default_rng(0)
    images = []
    for split in ("train", "val", "test"):
        frames = []
        for i, pose in enumerate(_poses(n)):
            rgba = gen.integers(0, 256, (size[1], size[0], 4), dtype=np.uint8)
            _write_rgba(root / split / f"r_{i}.png", rgba)
            if split == "train":
                images.append(rgba)
            frames.append({"file_path": f"./{split}/r_{i}", "transform_matrix": pose})
        doc = {"camera_angle_x": 0.69, "frames": frames}
        (root / f"transforms_{split}.json").write_text(json.dumps(doc))
    return images


def test_blender_loader_premultiplies_and_composites_exactly(tmp_path: Path) -> None:
    images = _blender(tmp_path)
    data = load_blender(tmp_path, "train")
    assert data.images.shape == (3, 6, 8, 3) and data.alpha.shape == (3, 6, 8)
    raw = images[1].astype(np.float64) / 255.0
    expected_white = raw[..., :3] * raw[..., 3:] + (1 - raw[..., 3:])
    got = data.composited("white")[1].double().numpy()
    assert np.allclose(got, expected_white, atol=1e-6)
    assert np.allclose(data.composited("black")[1].numpy(), raw[..., :3] * raw[..., 3:], atol=1e-6)
    assert data.cameras.fx[0].item() == pytest.approx(0.5 * 8 / math.tan(0.5 * 0.69), rel=1e-6)
    assert data.aabb == (-1.5, -1.5, -1.5, 1.5, 1.5, 1.5)


def test_blender_downscale_averages_premultiplied_blocks(tmp_path: Path) -> None:
    images = _blender(tmp_path, size=(8, 6))
    data = load_blender(tmp_path, "train", downscale_factor=2)
    assert data.images.shape == (3, 3, 4, 3)
    raw = images[0].astype(np.float64) / 255.0
    pre = raw[..., :3] * raw[..., 3:]
    block = pre[0:2, 2:4].mean(axis=(0, 1))
    assert np.allclose(data.images[0, 0, 1].numpy(), block, atol=1e-6)
    assert np.allclose(data.alpha[0, 0, 1].item(), raw[0:2, 2:4, 3].mean(), atol=1e-6)
    full = load_blender(tmp_path, "train")
    # focal lengths and principal point scale with the image
    assert data.cameras.fx[0].item() == pytest.approx(full.cameras.fx[0].item() / 2)
    assert data.cameras.cx[0].item() == pytest.approx(2.0)


def _mutate(root: Path, split: str, fn: Any) -> None:
    path = root / f"transforms_{split}.json"
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def test_blender_bad_inputs_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_blender(tmp_path / "nowhere")
    _blender(tmp_path)
    with pytest.raises(InputError, match="split"):
        load_blender(tmp_path, "holdout")
    with pytest.raises(InputError, match="downscale"):
        load_blender(tmp_path, "train", downscale_factor=0)
    (tmp_path / "train" / "r_2.png").unlink()
    with pytest.raises(InputError, match=r"r_2\.png.*does not exist"):
        load_blender(tmp_path, "train")
    (tmp_path / "test" / "r_1.png").write_bytes(b"not a png")
    with pytest.raises(InputError, match="could not be decoded"):
        load_blender(tmp_path, "test")
    _mutate(
        tmp_path, "val", lambda d: d["frames"][0].__setitem__("transform_matrix", [[1, 0], [0, 1]])
    )
    with pytest.raises(InputError, match="4x4"):
        load_blender(tmp_path, "val")

    def skew(d: dict[str, Any]) -> None:
        d["frames"][0]["transform_matrix"][0][0] = 3.0

    _blender(tmp_path)
    _mutate(tmp_path, "val", skew)
    with pytest.raises(InputError, match="orthonormal"):
        load_blender(tmp_path, "val")
    _blender(tmp_path)
    _mutate(
        tmp_path,
        "val",
        lambda d: d["frames"][1]["transform_matrix"][0].__setitem__(3, float("nan")),
    )
    with pytest.raises(InputError, match="NaN"):
        load_blender(tmp_path, "val")
    _blender(tmp_path)
    _write_rgba(tmp_path / "train" / "r_1.png", np.zeros((5, 5, 4), dtype=np.uint8))
    with pytest.raises(InputError, match="expected one size"):
        load_blender(tmp_path, "train")
    (tmp_path / "transforms_test.json").write_text("{broken")
    with pytest.raises(InputError, match="not valid JSON"):
        load_blender(tmp_path, "test")


def _nerfstudio(root: Path, n: int = 10, distortion: bool = True) -> None:
    gen = np.random.default_rng(1)
    frames = []
    for i, pose in enumerate(_poses(n)):
        rgb = gen.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        path = root / "images" / f"frame_{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgb, mode="RGB").save(path)
        frames.append({"file_path": f"images/frame_{i:05d}.png", "transform_matrix": pose})
    doc: dict[str, Any] = {
        "fl_x": 7.0,
        "fl_y": 7.5,
        "cx": 4.1,
        "cy": 2.9,
        "w": 8,
        "h": 6,
        "camera_model": "OPENCV",
        "frames": frames,
    }
    if distortion:
        doc.update(k1=-0.05, k2=0.01, p1=0.001, p2=-0.002)
    (root / "transforms.json").write_text(json.dumps(doc))


def test_nerfstudio_loader_intrinsics_distortion_and_disjoint_splits(tmp_path: Path) -> None:
    _nerfstudio(tmp_path)
    train = load_nerfstudio(tmp_path, "train")
    test = load_nerfstudio(tmp_path, "test")
    assert set(train.names).isdisjoint(test.names)
    assert len(train) + len(test) == 10 and len(test) == 2  # every 8th of 10 sorted frames
    assert train.cameras.fy[0].item() == pytest.approx(7.5)
    assert train.cameras.distortion is not None
    assert train.cameras.distortion[0].tolist() == pytest.approx([-0.05, 0.01, 0.0, 0.001, -0.002])
    assert bool((train.alpha == 1).all()) and train.unbounded
    # normalised: camera centres within [-1, 1]^3, the largest coordinate at 1
    centres = torch.cat(
        [train.cameras.camera_to_world[:, :, 3], test.cameras.camera_to_world[:, :, 3]]
    )
    assert float(centres.abs().max()) == pytest.approx(1.0, abs=1e-6)
    assert isinstance(load_views(tmp_path, "train"), type(train))


def test_nerfstudio_named_splits_and_bad_inputs(tmp_path: Path) -> None:
    _nerfstudio(tmp_path, distortion=False)
    doc = json.loads((tmp_path / "transforms.json").read_text())
    doc["train_filenames"] = [f"images/frame_{i:05d}.png" for i in range(7)]
    doc["test_filenames"] = [f"images/frame_{i:05d}.png" for i in range(7, 10)]
    (tmp_path / "transforms.json").write_text(json.dumps(doc))
    assert len(load_nerfstudio(tmp_path, "train")) == 7
    assert load_nerfstudio(tmp_path, "test").names == [f"frame_{i:05d}.png" for i in range(7, 10)]
    assert load_nerfstudio(tmp_path, "train").cameras.distortion is None

    del doc["fl_x"]
    (tmp_path / "transforms.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="fl_x"):
        load_nerfstudio(tmp_path, "train")
    doc["fl_x"] = 7.0
    doc["w"] = 9
    (tmp_path / "transforms.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="intrinsics"):
        load_nerfstudio(tmp_path, "train")
    doc["w"] = 8
    doc["camera_model"] = "OPENCV_FISHEYE"
    (tmp_path / "transforms.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="camera_model"):
        load_nerfstudio(tmp_path, "train")
    with pytest.raises(InputError, match="neither a Blender scene"):
        load_views(tmp_path / "images")


def test_shared_lego_splits_are_disjoint_and_complete() -> None:
    train = load_blender("../shared/data/nerf/lego_200", "train")
    test = load_blender("../shared/data/nerf/lego_200", "test")
    assert (len(train), len(test)) == (87, 13)
    assert set(train.names).isdisjoint(test.names)
    assert train.images.shape[1:] == (200, 200, 3)
    # the same view at 400 px, downscaled by 2, matches the 200 px copy closely
    half = load_blender("../shared/data/nerf/lego_400", "test", downscale_factor=2)
    assert float((half.composited() - test.composited()).abs().mean()) < 0.01
