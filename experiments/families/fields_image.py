"""``fields_image``: fit an image with a chosen neural field and report PSNR, SSIM and size.

Models (config ``model``), sized to one parameter ``budget`` by :func:`fields.models.sized_model`
so that a sweep over ``model`` gives a like-for-like table:

* ``ffn``: Fourier-feature MLP; ``ffn_cam``: the same with coordinate-aware modulation;
* ``siren``: SIREN on raw coordinates;
* ``hashgrid``: multiresolution hash grid + small MLP;
* ``neurbf``: NeuRBF hybrid (adaptive radial bases initialised by weighted k-means on the
  image-gradient magnitude, a 2-level hash grid, an MLP with the first-layer sinusoid);
* ``custom``: the ``encoding`` / ``decoder`` / ``cam`` specs given in the config.

The image is a scikit-image sample (``astronaut``, ``camera``, ...) or any image file (8/16-bit
PNG and TIFF, OpenEXR ``.exr``, Radiance ``.hdr``, ... through :mod:`experiments.images`),
resized to ``size x size``; integer formats in [0, 1], float formats linear as stored, and PSNR
and SSIM use the image's own range (peak 1, or ``max - min`` of a float image). Each step is one Adam step on ``batch_size`` random pixels (all
pixels when 0), run by :class:`experiments.trainer.Trainer` with up to three parameter groups
(``encoding``, ``decoder``, ``cam``; their optimizers are ``optim.<model>.<group>``, defaults
from the encoding registry, cosine decay to 1% of each rate). Final metrics: ``psnr``,
``ssim``, ``params`` (all parameters, fixed RBF positions included), ``trainable_params``.
Arrays: ``prediction``, ``target`` and ``error`` (mean absolute error per pixel).

Sweep: ``neurosim sweep fields_image model=ffn,ffn_cam,hashgrid,neurbf --preset default``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from experiments.base import Experiment, RunConfig
from experiments.config import bounded, one_of
from experiments.families._fields import (
    MODEL_CHOICES,
    FieldFitState,
    FieldsOptim,
    build_named_field,
    parameter_groups,
)
from experiments.families.image_fit import pixel_grid, regression_loss
from experiments.images import load_image
from experiments.registry import register
from experiments.trainer import Trainer, TrainerConfig
from fields.encodings.rbf import image_gradient_weights
from fields.metrics import count_parameters, psnr, ssim
from neurosim.backend import InputError


@dataclass
class FieldsImageConfig(RunConfig):
    """Config of ``fields_image`` (plus the common :class:`RunConfig` fields).

    Attributes:
        image: scikit-image sample name or image file path.
        size: side of the square the image is resized to.
        model: a registered named model (``ffn``, ``ffn_cam``, ``siren``, ``hashgrid``,
            ``neurbf``) or ``custom``.
        budget: parameter budget of the named models.
        model_options: overrides for :func:`fields.models.sized_model` (e.g. ``cam_resolution``).
        encoding, decoder, cam: specs of a ``custom`` model (see :mod:`fields.models`).
        optim: optimizers per model and parameter group (``optim.hashgrid.encoding.lr=0.02``).
        trainer: clipping, accumulation, divergence check.
        batch_size: pixels per step (0: every pixel).
        kmeans_iterations: Lloyd iterations of the NeuRBF initialisation.
        kernel_alpha: NeuRBF shape scale (see ``kernel_shapes_from_clusters``).
        refresh_every: rebuild the RBF neighbour grid every this many steps when RBF positions
            are trained.
    """

    image: str = "astronaut"
    size: int = bounded(256, ge=11)
    model: str = one_of("ffn", MODEL_CHOICES)
    budget: int = bounded(65536, ge=1000)
    model_options: dict[str, Any] = field(default_factory=dict)
    encoding: dict[str, Any] = field(default_factory=dict)
    decoder: dict[str, Any] = field(default_factory=dict)
    cam: dict[str, Any] = field(default_factory=dict)
    optim: FieldsOptim = field(default_factory=FieldsOptim)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    batch_size: int = bounded(16384, ge=0)
    kmeans_iterations: int = bounded(10, ge=1)
    kernel_alpha: float = bounded(0.5, gt=0)
    refresh_every: int = bounded(100, ge=1)
    steps: int = 2000
    log_every: int = 50
    checkpoint_every: int = 500


@register
class FieldsImage(FieldFitState, Experiment[FieldsImageConfig]):
    """Image fitting with Fourier/CAM/SIREN/hash-grid/NeuRBF fields."""

    name = "fields_image"
    config_class = FieldsImageConfig
    description = "fit an image with FFN, FFN+CAM, SIREN, hash grid or NeuRBF; PSNR/SSIM/params"

    def setup(self) -> None:
        cfg = self.config
        if cfg.size < 11:
            raise InputError(f"fields_image size must be >= 11 (the SSIM window), got {cfg.size}")
        if cfg.batch_size < 0:
            raise InputError(f"fields_image batch_size must be >= 0, got {cfg.batch_size}")
        optim = cfg.optim.for_model(cfg.model)
        device = self.runtime.device
        loaded = load_image(cfg.image, cfg.size)
        image = loaded.pixels
        self.peak = loaded.peak
        self.value_range = (float(image.min()), float(image.max())) if loaded.linear else (0.0, 1.0)
        self.shape = image.shape
        target = torch.from_numpy(image)
        self.target = target.reshape(-1, image.shape[-1]).to(device)
        self.coords = pixel_grid(cfg.size, cfg.size).to(device)
        init = torch.Generator().manual_seed(cfg.seed)
        custom = {"encoding": cfg.encoding, "decoder": cfg.decoder, "cam": cfg.cam}
        self.model = build_named_field(
            cfg.model,
            cfg.budget,
            2,
            image.shape[-1],
            dict(cfg.model_options),
            custom,
            init,
            cfg.seed,
        ).to(device)
        rbf = self.model.rbf
        if rbf is not None:
            weights = image_gradient_weights(target).to(device)
            rbf.init_from_signal(
                self.coords,
                weights + 1e-3 * float(weights.mean()),
                cfg.kmeans_iterations,
                cfg.kernel_alpha,
                generator=init,
            )
        self.trainer = Trainer(
            self.model,
            parameter_groups(self.model, optim),
            self.runtime,
            total_steps=cfg.steps,
            config=cfg.trainer,
        )
        self.sampler = torch.Generator().manual_seed(cfg.seed + 1)

    def loss(self, micro: int) -> torch.Tensor:
        """MSE on one (micro-)batch of random pixels."""
        assert self.trainer is not None
        return regression_loss(
            self.trainer.model, self.coords, self.target, self.config.batch_size, self.sampler
        )

    def step(self, step: int) -> dict[str, torch.Tensor | float]:
        cfg = self.config
        assert self.trainer is not None
        rbf = self.model.rbf
        if (
            rbf is not None
            and rbf.learn_positions
            and step > 0
            and step % max(cfg.refresh_every, 1) == 0
        ):
            rbf.refresh_neighbors()
        metrics = self.trainer.train_step(step, self.loss)
        # the batch PSNR in the image's own range (peak 1 or the float image's max - min),
        # on the loss's device (no host sync)
        loss = metrics["loss"]
        if isinstance(loss, torch.Tensor):
            metrics["psnr"] = 10.0 * torch.log10(
                self.peak**2 / loss.detach().float().clamp_min(1e-30)
            )
        else:
            metrics["psnr"] = 10.0 * math.log10(self.peak**2 / max(loss, 1e-30))
        return metrics

    @torch.no_grad()
    def predict(self, chunk: int = 65536) -> torch.Tensor:
        """The reconstruction ``[H, W, C]`` (CPU), clamped to the target's range: [0, 1] for
        integer-format images, ``[min, max]`` of the target for linear float ones."""
        parts = [
            self.model(self.coords[s : s + chunk]).float()
            for s in range(0, self.coords.shape[0], chunk)
        ]
        low, high = self.value_range
        return torch.cat(parts).clamp(low, high).reshape(self.shape).cpu()

    def evaluate(self) -> dict[str, float]:
        pred = self.predict()
        target = self.target.reshape(self.shape).cpu()
        self.save_array("prediction", pred.numpy())
        self.save_array("target", target.numpy())
        self.save_array("error", (pred - target).abs().mean(-1).numpy())
        return {
            "psnr": psnr(pred, target, data_range=self.peak),
            "ssim": ssim(pred, target, data_range=self.peak),
            "params": float(count_parameters(self.model, trainable_only=False)),
            "trainable_params": float(count_parameters(self.model)),
        }

    def artifacts(self) -> dict[str, np.ndarray]:
        pred = self.predict()
        return {"prediction": pred.numpy(), "target": self.target.reshape(self.shape).cpu().numpy()}
