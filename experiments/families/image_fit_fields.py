"""``fields_image``: fit an image with a chosen neural field and report PSNR, SSIM and size.

Models (config ``model``), sized to one parameter ``budget`` by :func:`fields.models.sized_model`
so that a sweep over ``model`` gives a like-for-like table:

* ``ffn``: Fourier-feature MLP; ``ffn_cam``: the same with coordinate-aware modulation;
* ``siren``: SIREN on raw coordinates;
* ``hashgrid``: multiresolution hash grid + small MLP;
* ``neurbf``: NeuRBF hybrid (adaptive radial bases initialised by weighted k-means on the
  image-gradient magnitude, a 2-level hash grid, an MLP with the first-layer sinusoid);
* ``custom``: the ``encoding`` / ``decoder`` / ``cam`` specs given in the config.

The image is a scikit-image sample (``astronaut``, ``camera``, ...) or any image file, resized to
``size x size``, in [0, 1]. Each step is one Adam step on ``batch_size`` random pixels (all
pixels when 0) with a cosine learning-rate decay to ``lr / 100``. Final metrics: ``psnr``,
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
from experiments.families.image_fit import load_image, pixel_grid, regression_step
from experiments.registry import register
from fields.encodings.rbf import image_gradient_weights
from fields.metrics import count_parameters, psnr, ssim
from fields.models import MODELS, Field, build_field, sized_model
from neurosim.backend import InputError

# (decoder lr, encoding lr) per model when the config leaves ``lr`` / ``encoding_lr`` at 0
DEFAULT_LR: dict[str, tuple[float, float]] = {
    "ffn": (1e-3, 1e-3),
    "ffn_cam": (1e-3, 1e-3),
    "siren": (1e-4, 1e-4),
    "hashgrid": (1e-2, 1e-2),
    "neurbf": (1e-2, 5e-3),
    "custom": (1e-3, 1e-3),
}


@dataclass
class FieldsImageConfig(RunConfig):
    """Config of ``fields_image`` (plus the common :class:`RunConfig` fields).

    Attributes:
        image: scikit-image sample name or image file path.
        size: side of the square the image is resized to.
        model: one of ``ffn``, ``ffn_cam``, ``siren``, ``hashgrid``, ``neurbf``, ``custom``.
        budget: parameter budget of the named models.
        model_options: overrides for :func:`fields.models.sized_model` (e.g. ``cam_resolution``).
        encoding, decoder, cam: specs of a ``custom`` model (see :mod:`fields.models`).
        lr, encoding_lr: Adam learning rates of the decoder / encoding (0: the model's default).
        batch_size: pixels per step (0: every pixel).
        kmeans_iterations: Lloyd iterations of the NeuRBF initialisation.
        kernel_alpha: NeuRBF shape scale (see ``kernel_shapes_from_clusters``).
        refresh_every: rebuild the RBF neighbour grid every this many steps when RBF positions
            are trained.
    """

    image: str = "astronaut"
    size: int = 256
    model: str = "ffn"
    budget: int = 65536
    model_options: dict[str, Any] = field(default_factory=dict)
    encoding: dict[str, Any] = field(default_factory=dict)
    decoder: dict[str, Any] = field(default_factory=dict)
    cam: dict[str, Any] = field(default_factory=dict)
    lr: float = 0.0
    encoding_lr: float = 0.0
    batch_size: int = 16384
    kmeans_iterations: int = 10
    kernel_alpha: float = 0.5
    refresh_every: int = 100
    steps: int = 2000
    log_every: int = 50
    checkpoint_every: int = 500


def cosine_lr(base: float, step: int, total: int, floor: float = 0.01) -> float:
    """``base * (floor + (1 - floor) * (1 + cos(pi * step / total)) / 2)``."""
    t = min(max(step, 0), max(total, 1)) / max(total, 1)
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t)))


def build_named_field(
    model: str,
    budget: int,
    in_dim: int,
    out_dim: int,
    options: dict[str, Any],
    custom: dict[str, Any],
    generator: torch.Generator,
) -> Field:
    """A named baseline at ``budget`` or, for ``custom``, the given specs."""
    if model == "custom":
        return build_field(
            in_dim,
            out_dim,
            custom.get("encoding") or None,
            custom.get("decoder") or None,
            custom.get("cam") or None,
            generator,
        )
    if model not in MODELS:
        raise InputError(f"unknown model {model!r}; expected one of {(*MODELS, 'custom')}")
    return build_field(
        in_dim,
        out_dim,
        **sized_model(model, budget, in_dim, out_dim, **options),
        generator=generator,
    )


def make_optimizer(model: Field, lr: float, encoding_lr: float) -> torch.optim.Adam:
    """Adam (betas 0.9/0.99, eps 1e-15 as Instant-NGP) with an encoding and a decoder group."""
    enc = [p for p in model.encoding.parameters() if p.requires_grad]
    enc_ids = {id(p) for p in enc}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in enc_ids]
    groups = [
        g for g in ({"params": rest, "lr": lr}, {"params": enc, "lr": encoding_lr}) if g["params"]
    ]
    return torch.optim.Adam(groups, betas=(0.9, 0.99), eps=1e-15)


class FieldFitState:
    """Resume state shared by the field-fitting experiments: the field, its optimiser, the
    sample generator and (for NeuRBF) the centres its neighbour table was built from."""

    model: Field
    optimizer: torch.optim.Optimizer
    sampler: torch.Generator

    def state_dict(self) -> dict[str, Any]:
        rbf = self.model.rbf
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "sampler": self.sampler.get_state(),
            "table_centers": None if rbf is None else rbf.table_centers,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.sampler.set_state(state["sampler"])
        rbf = self.model.rbf
        if rbf is not None:
            rbf.refresh_neighbors(state.get("table_centers"))


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
        device = self.runtime.device
        image = load_image(cfg.image, cfg.size)
        self.shape = image.shape
        target = torch.from_numpy(image)
        self.target = target.reshape(-1, image.shape[-1]).to(device)
        self.coords = pixel_grid(cfg.size, cfg.size).to(device)
        init = torch.Generator().manual_seed(cfg.seed)
        custom = {"encoding": cfg.encoding, "decoder": cfg.decoder, "cam": cfg.cam}
        self.model = build_named_field(
            cfg.model, cfg.budget, 2, image.shape[-1], dict(cfg.model_options), custom, init
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
        dec_lr, enc_lr = DEFAULT_LR.get(cfg.model, DEFAULT_LR["custom"])
        self.lrs = (cfg.lr or dec_lr, cfg.encoding_lr or enc_lr)
        self.optimizer = make_optimizer(self.model, *self.lrs)
        self.base_lrs = [g["lr"] for g in self.optimizer.param_groups]
        self.sampler = torch.Generator().manual_seed(cfg.seed + 1)

    def step(self, step: int) -> dict[str, float]:
        cfg = self.config
        for group, base in zip(self.optimizer.param_groups, self.base_lrs, strict=True):
            group["lr"] = cosine_lr(base, step, cfg.steps)
        rbf = self.model.rbf
        if (
            rbf is not None
            and rbf.learn_positions
            and step > 0
            and step % max(cfg.refresh_every, 1) == 0
        ):
            rbf.refresh_neighbors()
        return regression_step(
            self.model,
            self.optimizer,
            self.runtime,
            self.coords,
            self.target,
            cfg.batch_size,
            self.sampler,
        )

    @torch.no_grad()
    def predict(self, chunk: int = 65536) -> torch.Tensor:
        """The reconstruction ``[H, W, C]`` in [0, 1] (CPU)."""
        parts = [
            self.model(self.coords[s : s + chunk]).float()
            for s in range(0, self.coords.shape[0], chunk)
        ]
        return torch.cat(parts).clamp(0, 1).reshape(self.shape).cpu()

    def evaluate(self) -> dict[str, float]:
        pred = self.predict()
        target = self.target.reshape(self.shape).cpu()
        self.save_array("prediction", pred.numpy())
        self.save_array("target", target.numpy())
        self.save_array("error", (pred - target).abs().mean(-1).numpy())
        return {
            "psnr": psnr(pred, target),
            "ssim": ssim(pred, target),
            "params": float(count_parameters(self.model, trainable_only=False)),
            "trainable_params": float(count_parameters(self.model)),
        }

    def artifacts(self) -> dict[str, np.ndarray]:
        pred = self.predict()
        return {"prediction": pred.numpy(), "target": self.target.reshape(self.shape).cpu().numpy()}
