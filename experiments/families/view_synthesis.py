"""``view_synthesis``: train a radiance field on posed images and render held-out views.

Scenes (config ``scene``): ``builtin:shapes`` (the embedded analytic scene of
:mod:`fields.rendering.scene`, rendered by this package at ``image_size``; no download), a folder
under the data root (``nerf/lego_200``; Blender or nerfstudio format), or any absolute path.
Blender scenes use their ``train`` split for training and ``test`` for evaluation (disjoint view
lists); nerfstudio scenes hold out every 8th frame.

Models (config ``model``): ``hashgrid``, ``neurbf``, ``triplane``, ``cam``, ``cam_position``
(:func:`fields.rendering.radiance.radiance_field`; options in ``model_options``).

Each step draws ``rays`` random pixels of the training views (the global batch, then this rank's
:func:`~experiments.distributed.shard`), renders them over a random background (the target is
composited over the same colour), and takes one trainer step on the MSE. Bounded scenes march
through an occupancy grid updated by a trainer callback (``BEFORE_STEP``); with
``target_samples`` > 0 the number of rays adapts so that a step evaluates about that many samples
(Instant-NGP's dynamic batch). Unbounded scenes (``sampler: proposal``) use proposal sampling with
scene contraction and add the proposal (interlevel) loss.

Metrics per logged step: ``loss``, ``psnr`` (training batch), ``rays``, ``samples``,
``rays_per_second``, ``train_seconds``. The PSNR-vs-time curve: ``test_psnr`` and
``curve_seconds`` are logged whenever the training time crosses a mark of ``eval_seconds``
(and every ``eval_every`` steps), on ``eval_views`` test views. Final metrics: ``psnr``, ``ssim``
(mean over the test views; ``lpips`` too when its weights are on disk), ``params``.
Arrays: ``renders``, ``targets``, ``depth`` (expected distance of the visible surface, i.e. the
weighted mean sample distance divided by the opacity), ``opacity``, ``error`` (test views), ``turntable`` frames (also
written as ``turntable.gif`` in the run folder) and, for ``triplane``, ``triplane_planes``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from experiments.base import Experiment, RunConfig
from experiments.data import data_root
from experiments.distributed import reduce_mean, shard, world_size
from experiments.registry import register
from experiments.trainer import CallbackLocation, OptimConfig, Trainer, TrainerConfig
from fields.encodings.triplane import TriPlane
from fields.metrics import count_parameters, psnr, ssim
from fields.rendering.cameras import Cameras, Rays, image_rays, orbit_poses, pixel_rays
from fields.rendering.datasets import ViewDataset, load_views
from fields.rendering.radiance import MODELS, RadianceField, proposal_density_field, radiance_field
from fields.rendering.renderer import render_image, render_occupancy, render_proposal
from fields.rendering.sampling import OccupancyGrid, ProposalSampler, interlevel_loss
from neurosim.backend import InputError, seeded

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from experiments.results import Results

BUILTIN = "builtin:shapes"


@dataclass
class ViewOptim:
    """One Adam setting per parameter group (Instant-NGP: lr 1e-2, betas (0.9, 0.99), eps 1e-15)."""

    encoding: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            lr=1e-2, betas=(0.9, 0.99), eps=1e-15, schedule="cosine", min_lr_ratio=0.03
        )
    )
    network: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            lr=1e-2,
            betas=(0.9, 0.99),
            eps=1e-15,
            weight_decay=1e-6,
            schedule="cosine",
            min_lr_ratio=0.03,
        )
    )


@dataclass
class ViewSynthesisConfig(RunConfig):
    """Config of ``view_synthesis`` (plus the common :class:`RunConfig` fields).

    Attributes:
        scene: ``builtin:shapes``, a folder under the data root (``nerf/lego_200``) or a path.
        image_size: side of the embedded scene's images.
        train_views, test_views: embedded scene view counts.
        downscale: integer downscale of a scene's images.
        model: one of ``hashgrid``, ``neurbf``, ``triplane``, ``cam``, ``cam_position``.
        model_options: options of :func:`fields.rendering.radiance.radiance_field`.
        backend: kernel backend of the hash grids (``auto``, ``torch``, ``compile``,
            ``triton``, ``tcnn``); ``triplane`` has none.
        sampler: ``occupancy`` (bounded scenes) or ``proposal`` (unbounded; contraction).
        grid_resolution, grid_update_every, grid_warmup, grid_threshold: the occupancy grid
            (the threshold is on the opacity of a step of 1/1024 of the box diagonal).
        render_steps: marching steps along the scene box's diagonal (step size = diagonal / it).
        early_stop: transmittance below which samples are dropped before the gradient pass.
        rays: rays per step (the start value when ``target_samples`` > 0).
        target_samples: adapt the rays per step to about this many samples (0: fixed ``rays``).
        max_rays: upper bound of the adaptive ray count.
        background: training background ``random``, ``white`` or ``black``.
        eval_background: background of the test views (``white``: NeRF synthetic convention).
        eval_every: also evaluate the test PSNR every this many steps (0: never).
        eval_seconds: training-time marks (s) at which the test PSNR is evaluated (the curve).
        eval_views: test views of the periodic evaluations (0: all).
        final_views: test views of the final evaluation (0: all).
        max_train_seconds: stop training (remaining steps do nothing) after this much training
            time (0: no limit); for the time-budget measurements. The learning-rate schedules
            then run over the number of steps expected to fit into that time (re-estimated at
            every step from the pace so far), not over ``steps``.
        turntable_frames: frames of the turntable GIF (0: none).
        lpips: report LPIPS when the ``lpips`` package and its backbone weights are on disk.
        proposal_samples: samples per ray of each proposal level and of the field.
    """

    scene: str = BUILTIN
    image_size: int = 64
    train_views: int = 40
    test_views: int = 8
    downscale: int = 1
    model: str = "hashgrid"
    model_options: dict[str, Any] = field(default_factory=dict)
    backend: str = "auto"
    sampler: str = "occupancy"
    grid_resolution: int = 64
    grid_update_every: int = 16
    grid_warmup: int = 256
    grid_threshold: float = 0.01
    render_steps: int = 512
    early_stop: float = 1e-4
    rays: int = 4096
    target_samples: int = 0
    max_rays: int = 1 << 16
    background: str = "random"
    eval_background: str = "white"
    eval_every: int = 0
    eval_seconds: list[float] = field(default_factory=list)
    eval_views: int = 0
    final_views: int = 0
    max_train_seconds: float = 0.0
    turntable_frames: int = 24
    lpips: bool = True
    proposal_samples: list[int] = field(default_factory=lambda: [128, 48, 32])
    optim: ViewOptim = field(default_factory=ViewOptim)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    steps: int = 2000
    log_every: int = 50
    checkpoint_every: int = 500


def load_scene(cfg: ViewSynthesisConfig) -> tuple[ViewDataset, ViewDataset]:
    """``(train, test)`` views of the configured scene."""
    if cfg.scene == BUILTIN:
        from fields.rendering.scene import embedded_scene

        return (
            embedded_scene("train", cfg.image_size, cfg.train_views),
            embedded_scene("test", cfg.image_size, cfg.test_views, train_views=cfg.train_views),
        )
    path = Path(cfg.scene).expanduser()
    if not path.is_absolute():
        path = data_root(cfg.data_root or None) / cfg.scene
    if not path.exists():
        raise InputError(
            f"scene {cfg.scene!r} not found at {path}; expected {BUILTIN!r}, a Blender folder "
            "(transforms_train.json) or a nerfstudio folder (transforms.json) under the data root"
        )
    return load_views(path, "train", cfg.downscale), load_views(path, "test", cfg.downscale)


def lpips_metric() -> Any | None:
    """An LPIPS (AlexNet) module when ``lpips`` and every weight it needs are already on disk.

    Never downloads: returns ``None`` when the package, its linear-layer weights or torchvision's
    AlexNet checkpoint (in the torch hub cache) are missing.
    """
    try:
        import lpips  # type: ignore[import-not-found]
    except Exception:
        return None
    hub = Path(torch.hub.get_dir()) / "checkpoints"
    if not any(hub.glob("alexnet-*.pth")):
        return None
    linear = Path(lpips.__file__).parent / "weights" / "v0.1" / "alex.pth"
    if not linear.is_file():
        return None
    try:
        return lpips.LPIPS(net="alex", verbose=False).eval()
    except Exception:
        return None


class RayRenderer(torch.nn.Module):
    """The trained module: a radiance field with its occupancy grid or proposal sampler.

    ``forward(origins, directions, background, jitter, generator) -> (rgb [N, 3], extra loss,
    samples)`` renders training rays with per-ray sample offsets ``jitter`` (occupancy
    marching) or ``generator`` (proposals); ``extra`` is the interlevel loss with proposals,
    else 0.
    """

    def __init__(
        self,
        field_: RadianceField,
        grid: OccupancyGrid | None,
        sampler: ProposalSampler | None,
        step_size: float,
        early_stop: float,
    ) -> None:
        super().__init__()
        self.field = field_
        self.grid = grid
        self.sampler = sampler
        self.step_size = step_size
        self.early_stop = early_stop

    def forward(
        self,
        origins: torch.Tensor,
        directions: torch.Tensor,
        background: torch.Tensor,
        jitter: torch.Tensor,
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, torch.Tensor, int]:
        rays = Rays(origins, directions)
        if self.sampler is not None:
            out = render_proposal(
                self.field, self.sampler, rays, background=background, generator=generator
            )
            assert out.bins is not None and out.weights is not None
            extra = sum(
                (interlevel_loss(out.bins, out.weights, b, w) for b, w in out.proposals),
                torch.zeros((), device=origins.device),
            )
            return out.rgb, extra, out.samples
        out = render_occupancy(
            self.field,
            rays,
            self.grid,
            self.step_size,
            background=background,
            jitter=jitter,
            early_stop=self.early_stop,
        )
        return out.rgb, torch.zeros((), device=origins.device), out.samples


@register
class ViewSynthesis(Experiment[ViewSynthesisConfig]):
    """Radiance fields on posed images (bounded: occupancy grid; unbounded: proposals)."""

    name = "view_synthesis"
    config_class = ViewSynthesisConfig
    supports_ddp = True
    description = (
        "novel-view synthesis: radiance fields (hash grid, NeuRBF, tri-plane, CAM) on posed images"
    )

    # -- set-up --------------------------------------------------------------------------------
    def setup(self) -> None:
        cfg = self.config
        self._validate()
        device = self.runtime.device
        train, test = load_scene(cfg)
        self.train_set, self.test_set = train, test
        self.images = train.images.to(device)
        self.alpha = train.alpha.to(device)
        self.cameras = train.cameras.to(device)
        self.test_cameras = test.cameras.to(device)
        self.unbounded = cfg.sampler == "proposal"
        aabb = torch.tensor(train.aabb, dtype=torch.float32)
        diagonal = float((aabb[3:] - aabb[:3]).norm())
        self.step_size = diagonal / cfg.render_steps
        # the grid thresholds the opacity of a step of Instant-NGP's length (1/1024 of the box
        # diagonal), whatever step the renderer takes: the same density cut-off as Instant-NGP
        self.grid_step = diagonal / 1024
        init = torch.Generator().manual_seed(cfg.seed)
        options = dict(cfg.model_options)
        if self.unbounded:
            options.setdefault("contraction", True)
        if cfg.model != "triplane":
            options.setdefault("backend", cfg.backend)
        elif cfg.backend != "auto":
            raise InputError("the triplane model has no kernel backend; leave backend=auto")
        with seeded(cfg.seed):
            self.field = radiance_field(cfg.model, train.aabb, generator=init, **options)
        self.grid: OccupancyGrid | None = None
        self.sampler: ProposalSampler | None = None
        if self.unbounded:
            counts = tuple(int(c) for c in cfg.proposal_samples)
            proposals = [proposal_density_field(generator=init) for _ in counts[:-1]]
            self.sampler = ProposalSampler(proposals, counts)
        else:
            self.grid = OccupancyGrid(
                train.aabb,
                cfg.grid_resolution,
                threshold=cfg.grid_threshold,
                warmup_steps=cfg.grid_warmup,
                update_every=cfg.grid_update_every,
            )
        self.model = RayRenderer(
            self.field, self.grid, self.sampler, self.step_size, cfg.early_stop
        ).to(device)
        self.trainer = Trainer(
            self.model,
            self._groups(),
            self.runtime,
            total_steps=cfg.steps,
            config=cfg.trainer,
        )
        if self.grid is not None:
            self.trainer.add_callback(CallbackLocation.BEFORE_STEP, self._update_grid)
        self.sampler_rng = torch.Generator().manual_seed(cfg.seed + 1)
        self.grid_rng = torch.Generator().manual_seed(cfg.seed + 2)
        self.n_rays = cfg.rays
        self.train_seconds = 0.0
        self.next_mark = 0
        self._last: dict[str, float] = {}

    def _validate(self) -> None:
        cfg = self.config
        if cfg.model not in MODELS:
            raise InputError(
                f"view_synthesis model {cfg.model!r} is not known; expected one of {MODELS}"
            )
        if cfg.sampler not in ("occupancy", "proposal"):
            raise InputError(
                f"view_synthesis sampler {cfg.sampler!r} is not known; expected occupancy or proposal"
            )
        if cfg.background not in ("random", "white", "black"):
            raise InputError(
                f"view_synthesis background {cfg.background!r}; expected random, white or black"
            )
        if cfg.rays < 1 or cfg.render_steps < 8:
            raise InputError("view_synthesis needs rays >= 1 and render_steps >= 8")
        if cfg.sampler == "proposal" and len(cfg.proposal_samples) < 2:
            raise InputError("proposal_samples needs at least one proposal level and the field's")

    def _groups(self) -> dict[str, tuple[list[torch.nn.Parameter], OptimConfig]]:
        """``encoding``: grid tables, planes, RBF weights and CAM grids; ``network``: the MLPs."""
        encoding, network = [], []
        for name, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            if "mlp" in name:
                network.append(p)
            else:
                encoding.append(p)
        return {
            "encoding": (encoding, self.config.optim.encoding),
            "network": (network, self.config.optim.network),
        }

    def _update_grid(self, step: int) -> None:
        assert self.grid is not None
        self.grid.maybe_update(self.field.density, step, self.grid_step, self.grid_rng)

    # -- training ------------------------------------------------------------------------------
    def _draw(self) -> tuple[Rays, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Rays, target colours, background colours and per-ray sample offsets of one global
        batch (this rank's share)."""
        n_img, h, w = self.images.shape[:3]
        n = self.n_rays - self.n_rays % world_size() or world_size()
        view = torch.randint(0, n_img, (n,), generator=self.sampler_rng)
        pix = torch.randint(0, h * w, (n,), generator=self.sampler_rng)
        if self.config.background == "random":
            bg = torch.rand(n, 3, generator=self.sampler_rng)
        else:
            bg = torch.ones(n, 3) * (1.0 if self.config.background == "white" else 0.0)
        jitter = torch.rand(n, generator=self.sampler_rng)
        device = self.runtime.device
        view, pix, bg = shard(view).to(device), shard(pix).to(device), shard(bg).to(device)
        jitter = shard(jitter).to(device)
        uv = torch.stack(((pix % w).float() + 0.5, (pix // w).float() + 0.5), dim=-1)
        rays = pixel_rays(self.cameras, view, uv)
        rgb = self.images[view, pix // w, pix % w]
        alpha = self.alpha[view, pix // w, pix % w]
        target = rgb + (1.0 - alpha[:, None]) * bg
        return rays, target, bg, jitter

    def loss(self, micro: int) -> tuple[torch.Tensor, dict[str, Any]]:
        """MSE of one batch of rays (plus the interlevel loss with proposals)."""
        rays, target, bg, jitter = self._draw()
        assert self.trainer is not None
        # through trainer.model: with several ranks that is the DistributedDataParallel wrapper,
        # whose forward prepares the gradient all-reduce
        rgb, extra, samples = self.trainer.model(
            rays.origins, rays.directions, bg, jitter, self.sampler_rng
        )
        mse = torch.nn.functional.mse_loss(rgb, target)
        loss = mse + extra
        return loss, {"mse": mse.detach(), "samples": float(samples), "rays": float(len(rays))}

    def step(self, step: int) -> dict[str, torch.Tensor | float]:
        cfg = self.config
        assert self.trainer is not None
        if cfg.max_train_seconds:
            # every rank must stop at the same step: decide on the mean over ranks
            seconds = reduce_mean({"t": self.train_seconds})["t"]
            if seconds >= cfg.max_train_seconds:
                return {}
        start = time.perf_counter()
        # the renderer syncs with the host anyway (sample counts), so read the metrics now
        metrics: dict[str, torch.Tensor | float] = {
            k: float(v) for k, v in self.trainer.train_step(step, self.loss).items()
        }
        elapsed = time.perf_counter() - start
        self.train_seconds += elapsed
        if cfg.max_train_seconds > 0:
            # the learning-rate schedule follows the training time: the run is expected to end
            # after as many steps as fit into max_train_seconds at the pace so far
            done = self.trainer.steps_done
            expected = done * cfg.max_train_seconds / max(self.train_seconds, 1e-9)
            self.trainer.total_steps = int(min(cfg.steps, max(done + 1, expected)))
        samples = reduce_mean({"samples": float(metrics["samples"])})["samples"] * world_size()
        if cfg.target_samples > 0 and samples > 0:
            scale = cfg.target_samples / samples
            self.n_rays = int(min(cfg.max_rays, max(256, round(self.n_rays * min(scale, 2.0)))))
        metrics["psnr"] = -10.0 * math.log10(max(float(metrics.pop("mse")), 1e-12))
        metrics["rays_per_second"] = float(metrics["rays"]) / max(elapsed, 1e-9)
        metrics["train_seconds"] = self.train_seconds
        marks = sorted(cfg.eval_seconds)
        due = self.next_mark < len(marks) and self.train_seconds >= marks[self.next_mark]
        periodic = cfg.eval_every > 0 and (step + 1) % cfg.eval_every == 0
        if due or periodic:
            while self.next_mark < len(marks) and self.train_seconds >= marks[self.next_mark]:
                self.next_mark += 1
            views = cfg.eval_views or len(self.test_set)
            value = self.test_psnr(min(views, len(self.test_set)))
            if self.results is not None:
                self.results.log(step, {"test_psnr": value, "curve_seconds": self.train_seconds})
        return metrics

    # -- evaluation ----------------------------------------------------------------------------
    def render_view(
        self, cameras: Cameras, index: int, background: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(rgb [H, W, 3], depth [H, W], opacity [H, W])`` of one camera's view."""
        if background is None:
            background = self._eval_bg()
        rays = image_rays(cameras, index)
        self.model.eval()
        try:
            if self.sampler is not None:
                rgb, depth, opacity = render_image(
                    self.field, rays, sampler=self.sampler, background=background
                )
            else:
                rgb, depth, opacity = render_image(
                    self.field,
                    rays,
                    grid=self.grid,
                    step_size=self.step_size,
                    background=background,
                )
        finally:
            self.model.train()
        h, w = cameras.height, cameras.width
        return rgb.reshape(h, w, 3), depth.reshape(h, w), opacity.reshape(h, w)

    def _eval_bg(self) -> torch.Tensor:
        from fields.rendering.datasets import background_color

        return background_color(self.config.eval_background).to(self.runtime.device)

    def test_targets(self) -> torch.Tensor:
        """``[N, H, W, 3]`` test images over the evaluation background."""
        return self.test_set.composited(self.config.eval_background).clamp(0.0, 1.0)

    def test_psnr(self, views: int) -> float:
        """Mean PSNR over the first ``views`` test views."""
        targets = self.test_targets()
        values = []
        for i in range(views):
            rgb, _, _ = self.render_view(self.test_cameras, i)
            values.append(psnr(rgb.clamp(0, 1).cpu(), targets[i]))
        return float(np.mean(values))

    _renders: dict[str, np.ndarray] | None = None

    @torch.no_grad()
    def _final_renders(self) -> dict[str, np.ndarray]:
        if self._renders is not None:
            return self._renders
        cfg = self.config
        count = min(cfg.final_views or len(self.test_set), len(self.test_set))
        targets = self.test_targets()[:count]
        rgbs, depths, opacities = [], [], []
        for i in range(count):
            rgb, depth, opacity = self.render_view(self.test_cameras, i)
            rgbs.append(rgb.clamp(0, 1).cpu())
            depths.append((depth / opacity.clamp(min=1e-6)).cpu())
            opacities.append(opacity.cpu())
        renders = torch.stack(rgbs)
        self._renders = {
            "renders": renders.numpy().astype(np.float32),
            "targets": targets.numpy().astype(np.float32),
            "depth": torch.stack(depths).numpy().astype(np.float32),
            "opacity": torch.stack(opacities).numpy().astype(np.float32),
            "error": (renders - targets).abs().mean(-1).numpy().astype(np.float32),
        }
        return self._renders

    def evaluate(self) -> dict[str, float]:
        arrays = self._final_renders()
        pred = torch.from_numpy(arrays["renders"]).double()
        gt = torch.from_numpy(arrays["targets"]).double()
        psnrs = [psnr(pred[i], gt[i]) for i in range(len(pred))]
        ssims = [ssim(pred[i], gt[i]) for i in range(len(pred))]
        out = {
            "psnr": float(np.mean(psnrs)),
            "ssim": float(np.mean(ssims)),
            "params": float(count_parameters(self.model)),
        }
        if self.config.lpips:
            metric = lpips_metric()
            if metric is not None:
                with torch.no_grad():
                    a = pred.permute(0, 3, 1, 2).float() * 2 - 1
                    b = gt.permute(0, 3, 1, 2).float() * 2 - 1
                    out["lpips"] = float(metric(a, b).mean())
        return out

    @torch.no_grad()
    def turntable(self, frames: int) -> np.ndarray:
        """``[F, H, W, 3]`` views on a circle around the scene (radius and height of the
        training cameras' mean)."""
        centres = self.cameras.camera_to_world[:, :, 3]
        radius = float(centres.norm(dim=-1).mean())
        elevation = math.degrees(math.asin(float((centres[:, 2] / centres.norm(dim=-1)).mean())))
        c2w = orbit_poses(frames, radius, elevation).to(self.runtime.device)
        cams = Cameras(
            c2w,
            self.test_cameras.fx[:1].expand(frames).clone(),
            self.test_cameras.fy[:1].expand(frames).clone(),
            self.test_cameras.cx[:1].expand(frames).clone(),
            self.test_cameras.cy[:1].expand(frames).clone(),
            self.test_cameras.width,
            self.test_cameras.height,
        )
        out = [self.render_view(cams, i)[0].clamp(0, 1).cpu().numpy() for i in range(frames)]
        return np.stack(out).astype(np.float32)

    def artifacts(self) -> dict[str, np.ndarray]:
        arrays = dict(self._final_renders())
        if self.config.turntable_frames > 0:
            frames = self.turntable(self.config.turntable_frames)
            arrays["turntable"] = frames
            if self.results is not None:
                from neurosim.plotting.views import save_gif

                save_gif(frames, self.results.path.parent / "turntable.gif")
        encoding = self.field.encoding
        if isinstance(encoding, TriPlane):
            arrays["triplane_planes"] = encoding.export()
        return arrays

    @classmethod
    def figures(cls, results: Results) -> dict[str, Figure]:
        from neurosim.plotting.views import (
            plot_psnr_vs_time,
            plot_render_comparison,
            plot_turntable_strip,
        )

        run = results.path.parent.name
        figs: dict[str, Figure] = {}
        arrays = results.arrays
        if "renders" in arrays and "targets" in arrays:
            figs["views_vs_truth"] = plot_render_comparison(
                arrays["renders"],
                arrays["targets"],
                depth=arrays.get("depth"),
                title=f"view_synthesis {run}: test views",
            )
        if "test_psnr" in results.metrics and "curve_seconds" in results.metrics:
            _, p = results.metrics["test_psnr"]
            _, s = results.metrics["curve_seconds"]
            figs["psnr_vs_time"] = plot_psnr_vs_time(
                s, p, title=f"view_synthesis {run}: test PSNR against training time"
            )
        if "turntable" in arrays:
            figs["turntable"] = plot_turntable_strip(
                arrays["turntable"], title=f"view_synthesis {run}: turntable"
            )
        return figs

    # -- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "sampler_rng": self.sampler_rng.get_state(),
            "grid_rng": self.grid_rng.get_state(),
            "n_rays": self.n_rays,
            "train_seconds": self.train_seconds,
            "next_mark": self.next_mark,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.sampler_rng.set_state(state["sampler_rng"])
        self.grid_rng.set_state(state["grid_rng"])
        self.n_rays = int(state["n_rays"])
        self.train_seconds = float(state["train_seconds"])
        self.next_mark = int(state["next_mark"])


def field_of(experiment: ViewSynthesis) -> RadianceField:
    """The trained radiance field of a set-up experiment (for notebooks)."""
    return experiment.field
