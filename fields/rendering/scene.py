"""An embedded scene for demos and tests: a few coloured analytic shapes, rendered by this
package's own volume renderer from known cameras (no download).

The scene (inside ``[-1.5, 1.5]^3``, ``+z`` up): a red sphere, a green box, a blue sphere and a
yellow torus on a grey slab. Its density is a smoothed indicator of the union of the shapes,
``sigma(x) = sigma_max * sigmoid(-sdf(x) / softness)``, and its colour that of the nearest shape
(Lambertian-like shading by a fixed light, so colours are view-independent). Views are rendered
with :func:`~fields.rendering.render.weights_dense` on ``samples`` midpoints per ray across the
box, over a transparent background (alpha = opacity), into a :class:`ViewDataset`.

Train and test cameras sit on spheres around the scene at azimuths that interleave but never
coincide (test azimuths are offset by half the training spacing), so the hold-out views are
provably different poses.
"""

from __future__ import annotations

import math

import torch

from fields.rendering.cameras import Cameras, image_rays, look_at
from fields.rendering.datasets import ViewDataset
from fields.rendering.render import weights_dense
from neurosim.backend import InputError

AABB = (-1.5, -1.5, -1.5, 1.5, 1.5, 1.5)

COLORS = torch.tensor(
    [
        [0.85, 0.15, 0.10],  # sphere
        [0.15, 0.70, 0.25],  # box
        [0.15, 0.30, 0.90],  # small sphere
        [0.95, 0.80, 0.10],  # torus
        [0.60, 0.60, 0.60],  # slab
    ]
)


def shape_distances(x: torch.Tensor) -> torch.Tensor:
    """Signed distances ``[M, 5]`` of points ``x [M, 3]`` to each shape (negative inside)."""
    sphere = (x - x.new_tensor([0.55, 0.0, -0.2])).norm(dim=-1) - 0.45
    q = (x - x.new_tensor([-0.5, 0.35, -0.35])).abs() - x.new_tensor([0.3, 0.3, 0.3])
    box = q.clamp(min=0).norm(dim=-1) + q.amax(dim=-1).clamp(max=0)
    small = (x - x.new_tensor([-0.3, -0.6, -0.45])).norm(dim=-1) - 0.2
    p = x - x.new_tensor([0.0, 0.0, 0.45])
    ring = torch.stack((p[:, :2].norm(dim=-1) - 0.45, p[:, 2]), dim=-1)
    torus = ring.norm(dim=-1) - 0.12
    q = (x - x.new_tensor([0.0, 0.0, -0.72])).abs() - x.new_tensor([1.0, 1.0, 0.08])
    slab = q.clamp(min=0).norm(dim=-1) + q.amax(dim=-1).clamp(max=0)
    return torch.stack((sphere, box, small, torus, slab), dim=-1)


def scene_density_color(
    x: torch.Tensor, sigma_max: float = 80.0, softness: float = 0.01
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sigma [M], rgb [M, 3])`` of the embedded scene at points ``x [M, 3]``."""
    dist = shape_distances(x)
    sdf, nearest = dist.min(dim=-1)
    sigma = sigma_max * torch.sigmoid(-sdf / softness)
    base = COLORS.to(x)[nearest]
    # a fixed light direction; the shading uses the position (view-independent)
    light = x.new_tensor([0.4, -0.3, 0.85])
    shade = 0.75 + 0.25 * torch.tanh(3.0 * (x @ light))
    return sigma, (base * shade[:, None]).clamp(0.0, 1.0)


def render_scene(cameras: Cameras, samples: int = 192) -> tuple[torch.Tensor, torch.Tensor]:
    """Premultiplied colour ``[N, H, W, 3]`` and alpha ``[N, H, W]`` of every camera's view."""
    box = torch.tensor(AABB)
    images, alphas = [], []
    for i in range(len(cameras)):
        rays = image_rays(cameras, i)
        from fields.rendering.sampling import intersect_aabb

        t0, t1 = intersect_aabb(rays.origins, rays.directions, box)
        t0 = t0.clamp(min=0.0)
        t1 = torch.maximum(t1, t0)
        edges = torch.linspace(0.0, 1.0, samples + 1)
        t = t0[:, None] + (t1 - t0)[:, None] * edges
        mids = 0.5 * (t[:, 1:] + t[:, :-1])
        points = rays.origins[:, None] + rays.directions[:, None] * mids[..., None]
        sigma, rgb = scene_density_color(points.reshape(-1, 3))
        n = mids.shape[0]
        w, _, _ = weights_dense(sigma.reshape(n, samples), t[:, :-1], t[:, 1:])
        color = (w[..., None] * rgb.reshape(n, samples, 3)).sum(1)
        opacity = w.sum(-1)
        images.append(color.reshape(cameras.height, cameras.width, 3))
        alphas.append(opacity.reshape(cameras.height, cameras.width))
    return torch.stack(images), torch.stack(alphas)


def scene_cameras(
    n: int,
    size: int,
    *,
    radius: float = 3.4,
    fov_deg: float = 40.0,
    offset: float = 0.0,
    elevations: tuple[float, float] = (15.0, 55.0),
) -> Cameras:
    """``n`` cameras looking at the origin from azimuths ``(k + offset) * 360 / n`` degrees,
    elevations cycling through ``elevations`` range (deterministic)."""
    if n < 1 or size < 8:
        raise InputError(f"scene_cameras needs n >= 1 views of size >= 8, got {n}, {size}")
    k = torch.arange(n, dtype=torch.float64)
    az = (k + offset) * (2 * math.pi / n)
    lo, hi = elevations
    el = torch.deg2rad(lo + (hi - lo) * ((k * 0.618034) % 1.0))
    eye = torch.stack(
        (radius * el.cos() * az.cos(), radius * el.cos() * az.sin(), radius * el.sin()), dim=-1
    )
    c2w = look_at(eye, torch.zeros_like(eye)).float()
    return Cameras.from_fov(c2w, size, size, math.radians(fov_deg))


def embedded_scene(
    split: str = "train",
    size: int = 64,
    views: int | None = None,
    samples: int = 128,
    train_views: int = 40,
) -> ViewDataset:
    """The embedded scene's ``train`` (default ``train_views`` = 40 views) or ``test`` (default
    8 views) split.

    Test azimuths are those of ``views`` evenly spaced cameras turned by half the training
    spacing, so when ``views`` divides ``train_views`` every test camera lies halfway between two
    training azimuths; their elevations follow another sequence as well.
    """
    if split not in ("train", "val", "test"):
        raise InputError(f"split {split!r} is not known; expected train, val or test")
    if split == "train":
        cams = scene_cameras(views or train_views, size)
    else:
        count = views or 8
        cams = scene_cameras(count, size, offset=0.5 * count / train_views, elevations=(20.0, 50.0))
    images, alpha = render_scene(cams, samples)
    names = [f"{split}_{i:03d}" for i in range(len(cams))]
    return ViewDataset(images, alpha, cams, AABB, names)
