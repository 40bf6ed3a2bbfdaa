"""The view_synthesis experiment: the renderer reproduces a known scene, training raises the
held-out PSNR, the hold-out views are not training views, and the run's arrays and figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from experiments.results import open_results
from experiments.runner import run_experiment
from fields.metrics import psnr
from fields.rendering.cameras import image_rays
from fields.rendering.renderer import render_image
from fields.rendering.sampling import OccupancyGrid
from fields.rendering.scene import AABB, embedded_scene, scene_density_color


class TrueScene(nn.Module):
    """The embedded scene's analytic density and colour behind the radiance-field interface."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("aabb", torch.tensor(AABB))

    def geometry(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        sigma, rgb = scene_density_color(x)
        return sigma, torch.cat((sigma[:, None], rgb), dim=-1)

    def density_from_features(self, g: torch.Tensor) -> torch.Tensor:
        return g[:, 0]

    def density(self, x: torch.Tensor) -> torch.Tensor:
        return scene_density_color(x)[0]

    def color(self, g: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        return g[:, 1:]

    def forward(self, x: torch.Tensor, d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return scene_density_color(x)


def test_marching_renderer_reproduces_the_reference_images_of_the_true_scene() -> None:
    # The reference images come from dense midpoint quadrature (fields.rendering.scene); the
    # training renderer marches through an occupancy grid and composites packed samples. Given
    # the true field, both must give the same pictures.
    data = embedded_scene("test", size=32, views=2, samples=256)
    field = TrueScene()
    grid = OccupancyGrid(AABB, resolution=32, warmup_steps=10)
    gen = torch.Generator().manual_seed(0)
    step = float(torch.tensor(AABB[3:]).sub(torch.tensor(AABB[:3])).norm()) / 512
    for k in range(4):
        grid.update(field.density, k, step, gen)
    assert grid.occupied_fraction < 0.5
    truth = data.composited("white")
    for i in range(len(data)):
        rays = image_rays(data.cameras, i)
        rgb, _, opacity = render_image(
            field, rays, grid=grid, step_size=step, background=torch.ones(3)
        )
        assert psnr(rgb.reshape(32, 32, 3), truth[i]) > 33.0
        diff = (opacity.reshape(32, 32) - data.alpha[i]).abs()
        assert float(diff.mean()) < 0.01 and float(diff.max()) < 0.3


def test_hold_out_views_are_not_training_views() -> None:
    train = embedded_scene("train", size=16, views=16, samples=8)
    test = embedded_scene("test", size=16, views=4, samples=8, train_views=16)
    tr = train.cameras.camera_to_world[:, :, 3]
    te = test.cameras.camera_to_world[:, :, 3]
    assert float(torch.cdist(te, tr).min()) > 0.3


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    overrides = [
        "image_size=24",
        "train_views=16",
        "test_views=2",
        "model_options={levels: 6, log2_hashmap_size: 13, max_resolution: 96, hidden: 32}",
        "grid_resolution=24",
        "grid_warmup=32",
        "grid_update_every=8",
        "render_steps=160",
        "rays=1024",
        "steps=120",
        "eval_every=20",
        "log_every=20",
        "checkpoint_every=0",
        "turntable_frames=4",
        "device=cpu",
    ]
    result = run_experiment("view_synthesis", overrides, tmp_path_factory.mktemp("vs"))
    return result.run_dir


def test_training_raises_the_held_out_psnr(trained_run: Path) -> None:
    results = open_results(trained_run)
    _, curve = results.metric("test_psnr")
    assert len(curve) == 6
    assert curve[-1] > curve[0] + 4.0
    assert results.summary["psnr"] > 18.0
    assert 0.5 < results.summary["ssim"] <= 1.0
    _, seconds = results.metric("curve_seconds")
    assert bool(np.all(np.diff(seconds) > 0))


def test_run_stores_renders_depth_errors_and_turntable(trained_run: Path) -> None:
    results = open_results(trained_run)
    arrays = results.arrays
    assert arrays["renders"].shape == arrays["targets"].shape == (2, 24, 24, 3)
    assert arrays["depth"].shape == arrays["error"].shape == (2, 24, 24)
    assert np.allclose(
        arrays["error"], np.abs(arrays["renders"] - arrays["targets"]).mean(-1), atol=1e-6
    )
    # the final PSNR is the mean over the stored renders, computed here independently
    mse = ((arrays["renders"].astype(np.float64) - arrays["targets"]) ** 2).mean(axis=(1, 2, 3))
    assert results.summary["psnr"] == pytest.approx(float(np.mean(-10 * np.log10(mse))), abs=1e-4)
    # depth of the pixels that see the scene lies between the camera and the far side of the box
    seen = arrays["opacity"] > 0.9
    assert bool(seen.any())
    assert bool((arrays["depth"][seen] > 1.0).all()) and bool((arrays["depth"][seen] < 6.0).all())
    assert arrays["turntable"].shape == (4, 24, 24, 3)
    gif = trained_run / "turntable.gif"
    from PIL import Image

    with Image.open(gif) as im:
        assert im.n_frames == 4 and im.size == (24, 24)


def test_show_writes_the_family_figures(trained_run: Path) -> None:
    import matplotlib.image as mpimg

    from experiments.show import show_run

    text = show_run(trained_run)
    assert "test_psnr" in text
    for name in ("views_vs_truth", "psnr_vs_time", "turntable"):
        image = mpimg.imread(trained_run / "plots" / f"{name}.png")
        assert image.shape[0] >= 150 and image.shape[1] >= 200
        assert float(image[..., :3].std()) > 0.01


def test_proposal_sampling_run_for_unbounded_scenes(tmp_path: Path) -> None:
    result = run_experiment(
        "view_synthesis",
        ["sampler=proposal", "proposal_samples=[24, 12]", "steps=4", "turntable_frames=0"],
        tmp_path,
        "tiny",
    )
    assert np.isfinite(result.metrics["psnr"]) and result.metrics["psnr"] > 5.0
    results = open_results(result.run_dir)
    assert results.arrays["renders"].shape == (2, 24, 24, 3)


def test_lpips_is_never_downloaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from experiments.families.view_synthesis import lpips_metric

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    # with an empty hub cache there are no AlexNet weights: no metric, and nothing fetched
    assert lpips_metric() is None
    assert not any(tmp_path.rglob("*.pth"))


def test_two_data_parallel_ranks_train_as_one_process(tmp_path: Path) -> None:
    # the global ray batch (pixels, backgrounds, per-ray sample offsets) is drawn once and
    # sharded, so 2 gloo ranks take the steps of 1 process up to float32 summation order
    from experiments.cli import main

    overrides = ["turntable_frames=0", "device=cpu", "steps=6", "checkpoint_every=3"]
    single = run_experiment("view_synthesis", overrides, tmp_path / "one", "tiny")
    code = main(
        [
            "run",
            "view_synthesis",
            "--preset",
            "tiny",
            *overrides,
            "--runs-dir",
            str(tmp_path / "two"),
            "--nproc",
            "2",
        ]
    )
    assert code == 0
    (run_dir,) = (tmp_path / "two" / "view_synthesis").iterdir()
    two = open_results(run_dir).summary
    assert two["psnr"] == pytest.approx(single.metrics["psnr"], abs=1e-3)
    assert two["ssim"] == pytest.approx(single.metrics["ssim"], abs=1e-4)
