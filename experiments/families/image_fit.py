"""``image_fit``: fit a 2-D image with a Fourier-feature MLP (the runner's end-to-end example).

The image is one that scikit-image ships (``camera``, ``astronaut``, ...) or any image file path,
resized to ``size x size`` and scaled to [0, 1]. The model maps pixel-centre coordinates in
[0, 1]^2 to intensities; each step is one Adam step on a batch of pixels (all of them when
``batch_size = 0``). Metrics: ``loss`` (MSE) and ``psnr`` per logged step; final ``psnr``,
``ssim`` and ``params``. Arrays: ``target`` and ``prediction`` images.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from experiments import images
from experiments.base import Experiment, RunConfig
from experiments.config import bounded
from experiments.distributed import shard
from experiments.registry import register
from experiments.trainer import OptimConfig, Trainer, TrainerConfig
from fields import MLP, FourierFeatures
from neurosim.backend import seeded

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from experiments.results import Results


def load_image(spec: str, size: int) -> np.ndarray:
    """``[size, size, C]`` float32 image in [0, 1] from a scikit-image name or a file path
    (:func:`experiments.images.load_image`; linear float images are clipped to [0, 1] here)."""
    return np.clip(images.load_image(spec, size).pixels, 0.0, 1.0)


def pixel_grid(height: int, width: int) -> torch.Tensor:
    """Pixel-centre coordinates in [0, 1]^2, ``[H * W, 2]`` in row-major order (y, x)."""
    ys = (torch.arange(height) + 0.5) / height
    xs = (torch.arange(width) + 0.5) / width
    return torch.stack(torch.meshgrid(ys, xs, indexing="ij"), dim=-1).reshape(-1, 2)


def psnr(mse: float) -> float:
    """Peak signal-to-noise ratio of a [0, 1] signal: ``-10 log10(mse)``."""
    return float(-10.0 * np.log10(max(mse, 1e-12)))


def psnr_tensor(mse: torch.Tensor) -> torch.Tensor:
    """:func:`psnr` of a 0-dim tensor, computed on its device (no host sync)."""
    return -10.0 * torch.log10(mse.detach().float().clamp_min(1e-12))


def regression_loss(
    model: torch.nn.Module,
    coords: torch.Tensor,
    target: torch.Tensor,
    batch_size: int,
    sampler: torch.Generator,
) -> torch.Tensor:
    """MSE of ``model(coords) ~ target`` on ``batch_size`` rows drawn with ``sampler``.

    All rows when ``batch_size`` is 0. The draw is of the global batch; with several
    data-parallel ranks each keeps its share (:func:`experiments.distributed.shard`).
    """
    if batch_size > 0:
        idx = torch.randint(0, coords.shape[0], (batch_size,), generator=sampler)
        idx = shard(idx).to(coords.device, non_blocking=True)
        coords, target = coords[idx], target[idx]
    else:
        coords, target = shard(coords), shard(target)
    pred = model(coords)
    return torch.nn.functional.mse_loss(pred.float(), target)


def with_psnr(
    metrics: Mapping[str, torch.Tensor | float],
) -> dict[str, torch.Tensor | float]:
    """Add ``psnr`` of the step's MSE ``loss`` to a trainer step's metrics (a tensor stays one)."""
    loss = metrics["loss"]
    value = psnr_tensor(loss) if isinstance(loss, torch.Tensor) else psnr(loss)
    return {**metrics, "psnr": value}


@dataclass
class ImageFitConfig(RunConfig):
    """Config of ``image_fit`` (plus the common :class:`RunConfig` fields).

    ``optim`` is the Adam setting of the one parameter group (``optim.lr=3e-3``,
    ``optim.schedule=cosine``); ``trainer`` holds clipping and accumulation.
    """

    image: str = "camera"
    size: int = bounded(64, ge=2)
    num_frequencies: int = bounded(64, ge=1)
    sigma: float = bounded(10.0, gt=0)
    hidden: int = bounded(64, ge=1)
    layers: int = bounded(3, ge=1)
    batch_size: int = bounded(0, ge=0)
    optim: OptimConfig = field(default_factory=lambda: OptimConfig(lr=2e-3))
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    steps: int = 300
    log_every: int = 10
    checkpoint_every: int = 100


@register
class ImageFit(Experiment[ImageFitConfig]):
    """Fourier-feature MLP fitting of one image."""

    name = "image_fit"
    config_class = ImageFitConfig
    supports_ddp = True
    description = "fit a 2-D image (scikit-image photo or a file) with a Fourier-feature MLP"
    metric_units: ClassVar[dict[str, str]] = {"loss": "MSE, intensity in [0, 1]", "psnr": "dB"}

    @classmethod
    def figures(cls, results: Results) -> dict[str, Figure]:
        """``reconstruction``: target, prediction (with its PSNR) and the absolute-error map."""
        from neurosim.plotting.fields import plot_reconstruction

        arrays = results.arrays
        if "prediction" not in arrays or "target" not in arrays:
            return {}  # a run that stopped before its final arrays
        config = results.attrs.get("config")
        image = f" ({config.get('image')})" if isinstance(config, dict) else ""
        title = f"{results.run_label}: Fourier-feature MLP fit{image}"
        return {
            "reconstruction": plot_reconstruction(
                arrays["prediction"], arrays["target"], title=title
            )
        }

    def setup(self) -> None:
        cfg = self.config
        device = self.runtime.device
        image = load_image(cfg.image, cfg.size)
        self.shape = image.shape
        self.target = torch.from_numpy(image).reshape(-1, image.shape[-1]).to(device)
        self.coords = pixel_grid(cfg.size, cfg.size).to(device)
        init = torch.Generator().manual_seed(cfg.seed)
        self.encoding = FourierFeatures(2, cfg.num_frequencies, cfg.sigma, generator=init)
        with seeded(cfg.seed):
            self.decoder = MLP(self.encoding.out_dim, image.shape[-1], cfg.hidden, cfg.layers)
        self.model = torch.nn.Sequential(self.encoding, self.decoder).to(device)
        self.trainer = Trainer(
            self.model,
            {"model": (self.model.parameters(), cfg.optim)},
            self.runtime,
            total_steps=cfg.steps,
            config=cfg.trainer,
        )
        self.sampler = torch.Generator().manual_seed(cfg.seed + 1)

    def loss(self, micro: int) -> torch.Tensor:
        """MSE on one (micro-)batch of pixels."""
        return regression_loss(
            self.trainer.model if self.trainer else self.model,
            self.coords,
            self.target,
            self.config.batch_size,
            self.sampler,
        )

    def step(self, step: int) -> dict[str, torch.Tensor | float]:
        assert self.trainer is not None
        return with_psnr(self.trainer.train_step(step, self.loss))

    @torch.no_grad()
    def predict(self) -> np.ndarray:
        """The current reconstruction, ``[H, W, C]`` in [0, 1]."""
        pred = self.model(self.coords).float().clamp(0, 1)
        return pred.reshape(self.shape).cpu().numpy()

    def evaluate(self) -> dict[str, float]:
        from skimage.metrics import structural_similarity

        pred = self.predict()
        target = self.target.reshape(self.shape).cpu().numpy()
        mse = float(np.mean((pred - target) ** 2))
        ssim = structural_similarity(target, pred, channel_axis=-1, data_range=1.0)
        params = sum(p.numel() for p in self.model.parameters())
        return {"psnr": psnr(mse), "ssim": float(ssim), "params": float(params)}

    def artifacts(self) -> dict[str, np.ndarray]:
        target = self.target.reshape(self.shape).cpu().numpy()
        return {"prediction": self.predict(), "target": target}

    def state_dict(self) -> dict[str, Any]:
        return {"model": self.model.state_dict(), "sampler": self.sampler.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.sampler.set_state(state["sampler"])
