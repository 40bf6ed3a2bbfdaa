"""The image and SDF fitting experiments at tiny size: every model runs, learns and reports."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from experiments.families.fields_image import FieldsImage, FieldsImageConfig
from experiments.families.fields_sdf import FieldsSdf, FieldsSdfConfig, resolve_mesh
from experiments.results import open_results
from experiments.runner import make_config, run_experiment
from neurosim.backend import InputError, Runtime

IMAGE_MODELS = ["ffn", "ffn_cam", "siren", "hashgrid", "neurbf"]


def _tiny(name: str, cls: type, **changes: object) -> object:
    cfg = make_config(name, [f"{k}={v}" for k, v in changes.items()], "tiny")
    assert isinstance(cfg, cls)
    return cfg


@pytest.mark.parametrize("model", IMAGE_MODELS)
def test_image_models_learn_within_budget(model: str) -> None:
    cfg = _tiny("fields_image", FieldsImageConfig, model=model, steps=30)
    assert isinstance(cfg, FieldsImageConfig)
    exp = FieldsImage(cfg, Runtime.create("cpu", seed=0))
    exp.setup()
    before = exp.evaluate()
    losses = [exp.step(i)["loss"] for i in range(cfg.steps)]
    after = exp.evaluate()
    assert all(math.isfinite(v) for v in losses)
    assert after["psnr"] > before["psnr"], (model, before, after)
    assert after["params"] <= 1.1 * cfg.budget
    assert 0 < after["trainable_params"] <= after["params"]
    assert -1 <= after["ssim"] <= 1


def test_image_run_writes_metrics_and_arrays(tmp_path: Path) -> None:
    result = run_experiment("fields_image", ["model=neurbf"], tmp_path, "tiny")
    assert {"psnr", "ssim", "params"} <= set(result.metrics)
    stored = open_results(result.run_dir)
    assert stored.status == "finished"
    pred, target = np.asarray(stored.arrays["prediction"]), np.asarray(stored.arrays["target"])
    assert pred.shape == target.shape == (24, 24, 1)
    assert np.asarray(stored.arrays["error"]).shape == (24, 24)


def test_image_custom_model_and_bad_config(tmp_path: Path) -> None:
    custom = [
        "model=custom",
        "encoding={type: fourier, num_frequencies: 4}",
        "decoder={type: siren, hidden: 8}",
        "cam={resolution: 3}",
        "steps=3",
    ]
    result = run_experiment("fields_image", custom, tmp_path, "tiny")
    assert math.isfinite(result.metrics["psnr"])
    with pytest.raises(InputError, match="'model' = 'nerf'.*one of"):
        run_experiment("fields_image", ["model=nerf"], tmp_path, "tiny")
    with pytest.raises(InputError, match="neither a scikit-image sample"):
        run_experiment("fields_image", ["image=/no/such/file.png"], tmp_path, "tiny")


@pytest.mark.parametrize("model", ["hashgrid", "neurbf"])
def test_sdf_models_learn_and_report_mesh_metrics(model: str, tmp_path: Path) -> None:
    cfg = _tiny("fields_sdf", FieldsSdfConfig, model=model, steps=25)
    assert isinstance(cfg, FieldsSdfConfig)
    exp = FieldsSdf(cfg, Runtime.create("cpu", seed=0))
    exp.setup()
    first = exp.step(0)["loss"]
    for i in range(1, cfg.steps):
        last = exp.step(i)["loss"]
    assert last < first
    metrics = exp.evaluate()
    assert 0 <= metrics["iou"] <= 1 and 0 <= metrics["normal_consistency"] <= 1
    assert metrics["chamfer"] > 0 and metrics["params"] <= 1.1 * cfg.budget


def test_sdf_run_stores_slices_and_mesh(tmp_path: Path) -> None:
    result = run_experiment("fields_sdf", ["model=neurbf"], tmp_path, "tiny")
    stored = open_results(result.run_dir)
    res = make_config("fields_sdf", [], "tiny").mc_resolution
    pred, true = np.asarray(stored.arrays["slice_pred"]), np.asarray(stored.arrays["slice_true"])
    assert pred.shape == true.shape == (res, res)
    assert true.min() < 0 < true.max()  # the middle slice cuts the bunny
    assert np.asarray(stored.arrays["mesh_faces"]).shape[1:] == (3,)


def test_sdf_mesh_resolution(tmp_path: Path) -> None:
    obj = tmp_path / "tet.obj"
    obj.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n")
    assert resolve_mesh(str(obj), "") == obj
    with pytest.raises(InputError, match="not found"):
        resolve_mesh(str(tmp_path / "nope.obj"), "")
    # any OBJ path works end to end
    cfg = make_config("fields_sdf", [f"mesh={obj}", "steps=5", "model=hashgrid"], "tiny")
    assert isinstance(cfg, FieldsSdfConfig)
    exp = FieldsSdf(cfg, Runtime.create("cpu", seed=0))
    exp.setup()
    assert bool(torch.isfinite(exp.sdf).all()) and float(exp.sdf.min()) < 0
