"""nerfstudio plugin: neurosim's radiance fields as ``ns-train`` methods.

Registered through the ``nerfstudio.method_configs`` entry point (``pyproject.toml``), so with
neurosim and nerfstudio installed in one environment::

    ns-train neurosim-hashgrid --data ../shared/data/nerf/lego_200 blender-data
    ns-train neurosim-neurbf --data my_capture          # nerfstudio-data (the default parser)

Methods: ``neurosim-hashgrid``, ``neurosim-neurbf``, ``neurosim-triplane``, ``neurosim-cam``,
``neurosim-cam-position`` (:data:`fields.rendering.radiance.MODELS`). Each is a nerfstudio
``Model`` around :func:`fields.rendering.radiance.radiance_field` with neurosim's occupancy grid
(updated by a ``BEFORE_TRAIN_ITERATION`` callback) and renderer over the scene box the dataparser
gives. Unlike nerfstudio's own models, it builds no LPIPS metric (that downloads AlexNet weights
and fails offline): evaluation reports PSNR and SSIM only, so training needs no network.

This module imports nerfstudio; nothing else in neurosim does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.configs.base_config import ViewerConfig
from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManagerConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.engine.callbacks import (
    TrainingCallback,
    TrainingCallbackAttributes,
    TrainingCallbackLocation,
)
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.models.base_model import Model, ModelConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig
from nerfstudio.plugins.types import MethodSpecification

from fields.metrics import psnr, ssim
from fields.rendering.cameras import Rays
from fields.rendering.radiance import radiance_field
from fields.rendering.renderer import render_occupancy
from fields.rendering.sampling import OccupancyGrid


@dataclass
class NeurosimModelConfig(ModelConfig):
    """A neurosim radiance field inside nerfstudio.

    Attributes:
        field_model: ``hashgrid``, ``neurbf``, ``triplane``, ``cam`` or ``cam_position``.
        field_options: options of :func:`fields.rendering.radiance.radiance_field`.
        grid_resolution: occupancy-grid cells per axis.
        render_steps: marching steps along the scene box's diagonal.
        background: ``white``, ``black`` or ``random`` (training; evaluation uses white unless
            ``black``).
        seed: initialisation seed.
    """

    _target: type = field(default_factory=lambda: NeurosimModel)
    field_model: str = "hashgrid"
    field_options: dict[str, Any] = field(default_factory=dict)
    grid_resolution: int = 64
    render_steps: int = 512
    background: str = "random"
    seed: int = 0


class NeurosimModel(Model):  # type: ignore[misc]
    """nerfstudio ``Model`` rendering a neurosim radiance field (see the module docstring)."""

    config: NeurosimModelConfig

    def populate_modules(self) -> None:
        super().populate_modules()
        aabb = self.scene_box.aabb.flatten().tolist()
        generator = torch.Generator().manual_seed(self.config.seed)
        self.field = radiance_field(
            self.config.field_model, aabb, generator=generator, **self.config.field_options
        )
        self.grid = OccupancyGrid(aabb, self.config.grid_resolution)
        box = self.scene_box.aabb
        diagonal = float((box[1] - box[0]).norm())
        self.step_size = diagonal / self.config.render_steps
        self.grid_step = diagonal / 1024
        self.rng = torch.Generator().manual_seed(self.config.seed + 1)

    def get_param_groups(self) -> dict[str, list[torch.nn.Parameter]]:
        return {"fields": [p for p in self.field.parameters() if p.requires_grad]}

    def get_training_callbacks(
        self, training_callback_attributes: TrainingCallbackAttributes
    ) -> list[TrainingCallback]:
        def update(step: int) -> None:
            self.grid.maybe_update(self.field.density, step, self.grid_step, self.rng)

        return [
            TrainingCallback(
                where_to_run=[TrainingCallbackLocation.BEFORE_TRAIN_ITERATION],
                update_every_num_iters=1,
                func=update,
            )
        ]

    def _background(self, n: int, device: torch.device) -> torch.Tensor:
        if self.config.background == "black":
            return torch.zeros(n, 3, device=device)
        if self.config.background == "random" and self.training:
            return torch.rand(n, 3, generator=self.rng).to(device)
        return torch.ones(n, 3, device=device)

    def get_outputs(self, ray_bundle: RayBundle) -> dict[str, torch.Tensor]:
        shape = ray_bundle.origins.shape[:-1]
        origins = ray_bundle.origins.reshape(-1, 3)
        directions = ray_bundle.directions.reshape(-1, 3)
        directions = directions / directions.norm(dim=-1, keepdim=True)
        background = self._background(origins.shape[0], origins.device)
        out = render_occupancy(
            self.field,
            Rays(origins, directions),
            self.grid,
            self.step_size,
            background=background,
            generator=self.rng if self.training else None,
        )
        depth = out.depth / out.opacity.clamp(min=1e-6)
        return {
            "rgb": out.rgb.reshape(*shape, 3),
            "depth": depth.reshape(*shape, 1),
            "accumulation": out.opacity.reshape(*shape, 1),
            "background": background.reshape(*shape, 3),
        }

    @staticmethod
    def _target(image: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        if image.shape[-1] == 4:
            alpha = image[..., 3:]
            return image[..., :3] * alpha + (1.0 - alpha) * background
        return image[..., :3]

    def get_metrics_dict(self, outputs: dict[str, Any], batch: dict[str, Any]) -> dict[str, Any]:
        rgb = outputs["rgb"]
        gt = self._target(batch["image"].to(rgb.device), outputs["background"])
        return {"psnr": -10.0 * torch.log10(torch.mean((rgb - gt) ** 2).clamp(min=1e-10))}

    def get_loss_dict(
        self,
        outputs: dict[str, Any],
        batch: dict[str, Any],
        metrics_dict: dict[str, Any] | None = None,
    ) -> dict[str, torch.Tensor]:
        rgb = outputs["rgb"]
        gt = self._target(batch["image"].to(rgb.device), outputs["background"])
        return {"rgb_loss": torch.nn.functional.mse_loss(rgb, gt)}

    def get_image_metrics_and_images(
        self, outputs: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]
    ) -> tuple[dict[str, float], dict[str, torch.Tensor]]:
        rgb = outputs["rgb"].clamp(0.0, 1.0)
        gt = self._target(batch["image"].to(rgb.device), outputs["background"]).clamp(0.0, 1.0)
        metrics = {"psnr": psnr(rgb, gt)}
        if min(rgb.shape[0], rgb.shape[1]) >= 11:
            metrics["ssim"] = ssim(rgb, gt)
        images = {
            "img": torch.cat([gt, rgb], dim=1),
            "accumulation": outputs["accumulation"],
            "depth": outputs["depth"] / outputs["depth"].max().clamp(min=1e-6),
        }
        return metrics, images


def _method(model: str, description: str) -> MethodSpecification:
    name = "neurosim-" + model.replace("_", "-")
    config = TrainerConfig(
        method_name=name,
        steps_per_eval_batch=500,
        steps_per_save=2000,
        max_num_iterations=20000,
        mixed_precision=False,
        pipeline=VanillaPipelineConfig(
            datamanager=VanillaDataManagerConfig(
                dataparser=NerfstudioDataParserConfig(),
                train_num_rays_per_batch=4096,
                eval_num_rays_per_batch=4096,
            ),
            model=NeurosimModelConfig(field_model=model, eval_num_rays_per_chunk=4096),
        ),
        optimizers={
            "fields": {
                "optimizer": AdamOptimizerConfig(lr=1e-2, eps=1e-15),
                "scheduler": ExponentialDecaySchedulerConfig(lr_final=1e-4, max_steps=20000),
            }
        },
        viewer=ViewerConfig(num_rays_per_chunk=1 << 12),
        vis="viewer",
    )
    return MethodSpecification(config=config, description=description)


hashgrid = _method("hashgrid", "neurosim: Instant-NGP-style hash-grid radiance field")
neurbf = _method("neurbf", "neurosim: NeuRBF hybrid (adaptive radial bases + small hash grid)")
triplane = _method("triplane", "neurosim: tri-plane radiance field")
cam = _method("cam", "neurosim: hash grid + CAM over the view direction")
cam_position = _method("cam_position", "neurosim: hash grid + tri-plane CAM over the position")
