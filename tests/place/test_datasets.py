"""Place datasets: the generic folder layout, Corridor, missing-layout errors, generated route."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from experiments.data import data_root
from neurosim.backend import InputError
from neurosim.datasets.place import (
    generated_route,
    load_corridor,
    load_nordland,
    load_place_folder,
    load_robotcar,
)


def _write(folder: Path, n: int, value: int, size: tuple[int, int] = (8, 6)) -> None:
    folder.mkdir(parents=True)
    for i in range(n):
        image = np.full((size[1], size[0], 3), value + i, dtype=np.uint8)
        Image.fromarray(image).save(folder / f"{i:04d}.png")


def test_generic_layout_with_and_without_ground_truth(tmp_path: Path) -> None:
    _write(tmp_path / "ref", 4, 10)
    _write(tmp_path / "query", 3, 100)
    data = load_place_folder(tmp_path, tolerance=1)
    assert data.reference.shape == (4, 6, 8, 3) and data.query.dtype == torch.uint8
    assert int(data.query[2, 0, 0, 0]) == 102  # file-name order
    assert data.matches == [[0, 1], [0, 1, 2], [1, 2, 3]]
    (tmp_path / "ground_truth.json").write_text(
        json.dumps({"ground_truth": {"0": [3], "1": [0, 1], "2": [2]}})
    )
    assert load_place_folder(tmp_path).matches == [[3], [0, 1], [2]]
    assert load_place_folder(tmp_path).ground_truth().sum() == 4


def test_corridor_from_the_shared_data() -> None:
    data = load_corridor(data_root())
    assert data.reference.shape == (111, 120, 160, 3) and data.query.shape == (111, 120, 160, 3)
    assert data.matches[0] == [0, 1, 2] and data.matches[50] == [48, 49, 50, 51, 52]


def test_missing_datasets_name_the_expected_layout(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="ref/"):
        load_place_folder(tmp_path / "nothing")
    with pytest.raises(InputError, match=r"spring,summer,fall,winter"):
        load_nordland(tmp_path)
    with pytest.raises(InputError, match="stereo/centre"):
        load_robotcar(tmp_path)


def test_nordland_layout_filtering_and_stacked_seasons(tmp_path: Path) -> None:
    for season in ("spring", "fall", "summer"):
        folder = tmp_path / season
        folder.mkdir()
        for i in range(20):
            Image.fromarray(np.full((4, 4), i, dtype=np.uint8)).save(folder / f"images-{i:05d}.png")
    (tmp_path / "nordland_imageNames.txt").write_text(
        "\n".join(f"images-{i:05d}.png" for i in range(20) if i % 2 == 0)
    )
    data = load_nordland(tmp_path, every=2)  # filtered: 0, 2, ..., 18; every 2nd: 0, 4, ... 16
    assert len(data.query) == 5 and data.query[:, 0, 0].tolist() == [0, 4, 8, 12, 16]
    assert len(data.reference) == 10  # spring then fall
    assert data.matches[1] == [1, 6]


def test_generated_route_is_reproducible_and_changed_photometrically() -> None:
    a, b = generated_route(30, seed=1), generated_route(30, seed=1)
    assert torch.equal(a.query, b.query) and a.reference.shape == (30, 48, 64, 3)
    assert float(a.query.float().mean()) < 0.7 * float(a.reference.float().mean())  # night
    assert a.matches[10] == [9, 10, 11]
    with pytest.raises(InputError, match="geometry"):
        generated_route(10, stride=0)
