"""``fields_sdf``: fit a signed distance field to a triangle mesh, extract a surface, score it.

The mesh (default: the Stanford bunny at ``<data_root>/sdf/bunny.obj``; or any OBJ path) is
scaled into ``[0.1, 0.9]^3``. Training samples: ``n_surface`` surface points perturbed by
Gaussian noise (``sigmas``) plus ``n_uniform`` uniform points in the unit cube, with exact signed
distances (:func:`fields.geometry.signed_distance`: point-triangle distance, sign from the
generalised winding number). Each step is one trainer step (Adam per parameter group, cosine
decay; ``optim.<model>.<group>``) of an L1 loss on ``batch_size`` samples.

Models (``model``, sized to ``budget`` by :func:`fields.models.sized_model`): ``hashgrid``,
``neurbf`` (kernels initialised by weighted k-means with weights ``1 / (|sdf| + 0.01)``, so
they gather at the surface), ``siren``, ``ffn``, ``ffn_cam``, or ``custom`` specs.

Evaluation: the field on a ``mc_resolution^3`` lattice, marching cubes at level 0, then
``iou`` (inside/outside agreement on ``iou_points`` uniform points against the mesh's winding
number), ``normal_consistency`` and ``chamfer`` (symmetric, surface samples, unit-cube units)
against the mesh, ``params``. When the fitted field has no zero level set the mesh metrics are
``normal_consistency = 0`` and ``chamfer = 1`` (the cube's size). Arrays: ``slice_pred`` and
``slice_true`` (the SDF on the middle ``z`` slice), ``mesh_vertices`` and ``mesh_faces``.

Sweep: ``neurosim sweep fields_sdf model=hashgrid,neurbf executor=serial --preset default``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from experiments.base import Experiment, RunConfig
from experiments.config import bounded, one_of
from experiments.data import dataset_path
from experiments.distributed import shard
from experiments.families._fields import (
    MODEL_CHOICES,
    FieldFitState,
    FieldsOptim,
    ModelOptim,
    build_named_field,
    model_optim,
    parameter_groups,
)
from experiments.registry import register
from experiments.trainer import Trainer, TrainerConfig
from fields.encodings.rbf import sdf_surface_weights
from fields.geometry import (
    BUILTIN_SHAPES,
    Mesh,
    builtin_mesh,
    chamfer_distance,
    grid_points,
    load_obj,
    marching_cubes,
    normal_consistency,
    normalize_vertices,
    sample_sdf,
    signed_distance,
    winding_number,
)
from fields.metrics import count_parameters
from neurosim.backend import InputError

BUILTIN_PREFIX = "builtin:"


@dataclass
class SdfOptim(FieldsOptim):
    """:class:`~experiments.families._fields.FieldsOptim` with SIREN's decoder at 5e-5, half its
    image rate (the rate behind the SDF table in ``benchmarks/README.md``)."""

    siren: ModelOptim = field(default_factory=lambda: model_optim("siren", decoder=5e-5))


@dataclass
class FieldsSdfConfig(RunConfig):
    """Config of ``fields_sdf`` (plus the common :class:`RunConfig` fields).

    Attributes:
        mesh: an OBJ path, a file name inside ``<data_root>/sdf/`` (empty: ``bunny.obj``), or
            ``builtin:torus`` / ``builtin:sphere`` / ``builtin:capsule_pair`` (generated, no data
            root needed; the demo's embedded default).
        model, budget, model_options, encoding, decoder, cam: as in ``fields_image``.
        n_surface, n_uniform, sigmas: training samples (see :func:`fields.geometry.sample_sdf`).
        batch_size: samples per step (0: all).
        optim: optimizers per model and parameter group (``optim.neurbf.decoder.lr=3e-3``).
        trainer: clipping, accumulation, divergence check.
        kmeans_iterations, kernel_alpha: NeuRBF initialisation.
        iou_points: uniform points of the IoU estimate.
        mc_resolution: marching-cubes lattice size per axis.
        metric_samples: surface samples per direction of normal consistency and Chamfer.
    """

    mesh: str = ""
    model: str = one_of("neurbf", MODEL_CHOICES)
    budget: int = bounded(131072, ge=1000)
    model_options: dict[str, Any] = field(default_factory=dict)
    encoding: dict[str, Any] = field(default_factory=dict)
    decoder: dict[str, Any] = field(default_factory=dict)
    cam: dict[str, Any] = field(default_factory=dict)
    n_surface: int = bounded(65536, ge=0)
    n_uniform: int = bounded(16384, ge=0)
    sigmas: list[float] = field(default_factory=lambda: [0.01, 0.002])
    batch_size: int = bounded(4096, ge=0)
    optim: SdfOptim = field(default_factory=SdfOptim)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    kmeans_iterations: int = bounded(10, ge=1)
    kernel_alpha: float = bounded(0.5, gt=0)
    iou_points: int = bounded(32768, ge=1)
    mc_resolution: int = bounded(128, ge=8)
    metric_samples: int = bounded(10000, ge=1)
    steps: int = 1000
    log_every: int = 50
    checkpoint_every: int = 500


def resolve_mesh(mesh: str, data_root: str) -> Path | str:
    """The OBJ file a config names, or ``builtin:<shape>`` (see :class:`FieldsSdfConfig`)."""
    if mesh.startswith(BUILTIN_PREFIX):
        shape = mesh[len(BUILTIN_PREFIX) :]
        if shape not in BUILTIN_SHAPES:
            raise InputError(
                f"mesh {mesh!r}: unknown built-in shape; expected builtin:<one of {BUILTIN_SHAPES}>"
            )
        return mesh
    if mesh:
        path = Path(mesh).expanduser()
        if path.is_file():
            return path
        if path.is_absolute() or len(path.parts) > 1:
            raise InputError(f"mesh {mesh!r} not found; expected an OBJ file path")
    folder = dataset_path("sdf", data_root or None, layout="sdf/<name>.obj (Wavefront OBJ meshes)")
    path = folder / (mesh or "bunny.obj")
    if not path.is_file():
        raise InputError(f"mesh {str(path)!r} not found; expected an OBJ file in {folder}")
    return path


@lru_cache(maxsize=4)
def _prepared(
    path: str,
    n_surface: int,
    n_uniform: int,
    sigmas: tuple[float, ...],
    iou_points: int,
    res: int,
    seed: int,
) -> tuple[Mesh, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Mesh, training samples, IoU points with their inside flags, and the true middle slice
    (CPU; cached so that a serial sweep over models computes the distances once)."""
    raw = (
        builtin_mesh(path[len(BUILTIN_PREFIX) :])
        if path.startswith(BUILTIN_PREFIX)
        else load_obj(path)
    )
    vertices, _, _ = normalize_vertices(raw.vertices, margin=0.1)
    mesh = Mesh(vertices, raw.faces)
    gen = torch.Generator().manual_seed(seed)
    points, sdf = sample_sdf(mesh, n_surface, n_uniform, sigmas, generator=gen)
    iou_x = torch.rand(iou_points, 3, generator=gen)
    inside = winding_number(iou_x, mesh) > 0.5
    axis = torch.linspace(0, 1, res)
    yy, xx = torch.meshgrid(axis, axis, indexing="ij")
    z = float(axis[res // 2])  # the lattice's middle z plane
    slice_x = torch.stack([yy.reshape(-1), xx.reshape(-1), torch.full((res * res,), z)], -1)
    slice_true = signed_distance(slice_x, mesh).reshape(res, res)
    return mesh, points, sdf, iou_x, inside, slice_true


@register
class FieldsSdf(FieldFitState, Experiment[FieldsSdfConfig]):
    """SDF fitting with hash-grid / NeuRBF / SIREN fields, scored by IoU and normals."""

    name = "fields_sdf"
    config_class = FieldsSdfConfig
    description = (
        "fit a mesh's SDF (bunny or any OBJ) with hash grid or NeuRBF; IoU, normal consistency"
    )

    def setup(self) -> None:
        cfg = self.config
        for key in ("n_surface", "n_uniform", "iou_points", "metric_samples"):
            if getattr(cfg, key) < 0:
                raise InputError(f"fields_sdf {key} must be >= 0, got {getattr(cfg, key)}")
        if cfg.mc_resolution < 8:
            raise InputError(f"fields_sdf mc_resolution must be >= 8, got {cfg.mc_resolution}")
        device = self.runtime.device
        path = resolve_mesh(cfg.mesh, cfg.data_root)
        mesh, points, sdf, iou_x, inside, slice_true = _prepared(
            str(path),
            cfg.n_surface,
            cfg.n_uniform,
            tuple(cfg.sigmas),
            cfg.iou_points,
            cfg.mc_resolution,
            cfg.seed,
        )
        self.mesh = mesh
        self.points, self.sdf = points.to(device), sdf.to(device)
        self.iou_x, self.inside = iou_x.to(device), inside.to(device)
        self.slice_true = slice_true
        optim = cfg.optim.for_model(cfg.model)
        init = torch.Generator().manual_seed(cfg.seed)
        custom = {"encoding": cfg.encoding, "decoder": cfg.decoder, "cam": cfg.cam}
        self.model = build_named_field(
            cfg.model, cfg.budget, 3, 1, dict(cfg.model_options), custom, init, cfg.seed
        ).to(device)
        rbf = self.model.rbf
        if rbf is not None:
            rbf.init_from_signal(
                self.points,
                sdf_surface_weights(self.sdf),
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
        """L1 error of the predicted signed distance on one (micro-)batch of samples."""
        assert self.trainer is not None
        x, target = self.points, self.sdf
        if self.config.batch_size > 0:
            idx = torch.randint(
                0, self.points.shape[0], (self.config.batch_size,), generator=self.sampler
            )
            idx = shard(idx).to(self.runtime.device)
            x, target = x[idx], target[idx]
        pred = self.trainer.model(x)[:, 0]
        return (pred.float() - target).abs().mean()

    def step(self, step: int) -> dict[str, torch.Tensor | float]:
        assert self.trainer is not None
        return self.trainer.train_step(step, self.loss)

    @torch.no_grad()
    def field_at(self, x: torch.Tensor, chunk: int = 65536) -> torch.Tensor:
        """The fitted SDF ``[N]`` at points ``[N, 3]``."""
        parts = [self.model(x[s : s + chunk])[:, 0].float() for s in range(0, x.shape[0], chunk)]
        return torch.cat(parts) if parts else x.new_zeros(0)

    def evaluate(self) -> dict[str, float]:
        cfg = self.config
        res = cfg.mc_resolution
        lattice = grid_points(res, device=self.runtime.device)
        volume = self.field_at(lattice).reshape(res, res, res).cpu()
        pred_inside = self.field_at(self.iou_x) < 0
        union = int((pred_inside | self.inside).sum())
        iou = 1.0 if union == 0 else int((pred_inside & self.inside).sum()) / union
        gen = torch.Generator().manual_seed(cfg.seed + 2)
        try:
            surface = marching_cubes(volume, 0.0)
        except InputError:
            surface = None
        if surface is None or surface.faces.shape[0] == 0:
            nc, chamfer = 0.0, 1.0
            verts, faces = np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int64)
        else:
            n = max(cfg.metric_samples, 1)
            nc = normal_consistency(surface, self.mesh, n, gen)
            chamfer = chamfer_distance(surface, self.mesh, n, gen)
            verts, faces = surface.vertices.numpy(), surface.faces.numpy()
        self.save_array("slice_pred", volume[:, :, res // 2].numpy())
        self.save_array("slice_true", self.slice_true.numpy())
        self.save_array("mesh_vertices", verts)
        self.save_array("mesh_faces", faces)
        return {
            "iou": float(iou),
            "normal_consistency": float(nc),
            "chamfer": float(chamfer) if math.isfinite(chamfer) else 1.0,
            "params": float(count_parameters(self.model, trainable_only=False)),
            "trainable_params": float(count_parameters(self.model)),
        }
