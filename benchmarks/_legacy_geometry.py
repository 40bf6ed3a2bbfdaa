"""The pure-torch distance and winding-number code that ``fields.geometry`` used before it moved
to libigl (kept only as the baseline row of ``benchmarks/mesh_sdf.py``; not part of the package).

Distances: per point, the faces of smallest centroid bound tested with Ericson's closest-point
formula (exact, with a fall-back to all faces); winding numbers: faces clustered on an 8^3
grid, far clusters by their dipole term, near clusters face by face.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from fields.geometry import Mesh, closest_point_on_triangles
from neurosim.backend import InputError


class Closest(NamedTuple):
    distance: torch.Tensor
    face: torch.Tensor
    point: torch.Tensor


def _triangles(mesh: Mesh) -> torch.Tensor:
    return mesh.vertices[mesh.faces]


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(-1)


def _closest_exact(p: torch.Tensor, tri: torch.Tensor, chunk: int) -> Closest:
    num_f = tri.shape[0]
    step = max(1, chunk // num_f)
    a, b, c = tri[None, :, 0], tri[None, :, 1], tri[None, :, 2]
    dist, face, near = [], [], []
    for s in range(0, p.shape[0], step):
        q = closest_point_on_triangles(p[s : s + step, None], a, b, c)  # [P, F, 3]
        d = (q - p[s : s + step, None]).norm(dim=-1)
        best = d.argmin(1)
        rows = torch.arange(best.shape[0], device=p.device)
        dist.append(d[rows, best])
        face.append(best)
        near.append(q[rows, best])
    return Closest(torch.cat(dist), torch.cat(face), torch.cat(near))


def _closest_culled(
    p: torch.Tensor, tri: torch.Tensor, centre: torch.Tensor, radius: torch.Tensor, k: int
) -> tuple[Closest, torch.Tensor]:
    lower, cand = (centre - radius).topk(k + 1, dim=1, largest=False, sorted=True)
    t = tri[cand[:, :k]]  # [P, k, 3, 3]
    q = closest_point_on_triangles(p[:, None], t[..., 0, :], t[..., 1, :], t[..., 2, :])
    d = (q - p[:, None]).norm(dim=-1)
    best = d.argmin(1)
    rows = torch.arange(p.shape[0], device=p.device)
    res = Closest(d[rows, best], cand[rows, best], q[rows, best])
    return res, res.distance > lower[:, k]


def closest_points(
    points: torch.Tensor, mesh: Mesh, candidates: int = 32, chunk: int = 1 << 20
) -> Closest:
    """Exact unsigned distance from each point ``[N, 3]`` to a triangle mesh, the closest face
    and the closest point.

    Culling keeps it exact: with ``o_f`` a face's centroid and ``r_f`` its bounding radius,
    ``|p - o_f| - r_f`` is a lower bound of the distance to face ``f``. Each point tests the
    ``candidates`` faces of smallest bound; when the best distance found exceeds the next bound,
    it retries with 8x the candidates, then with every face.
    """

    if points.shape[1] != 3:
        raise InputError(f"closest_points expects 3-D points [N, 3], got {tuple(points.shape)}")
    tri = _triangles(mesh).to(points.dtype)
    num_f = tri.shape[0]
    if points.shape[0] == 0:
        return Closest(
            points.new_zeros(0),
            torch.zeros(0, dtype=torch.long, device=points.device),
            points.new_zeros(0, 3),
        )
    if candidates >= num_f:
        return _closest_exact(points, tri, chunk)
    centroid = tri.mean(1)
    radius = (tri - centroid[:, None]).norm(dim=-1).max(1).values
    dist, face, near = [], [], []
    step = max(1, chunk // num_f)
    for s in range(0, points.shape[0], step):
        p = points[s : s + step]
        centre = torch.cdist(p, centroid, compute_mode="donot_use_mm_for_euclid_dist")
        res, redo = _closest_culled(p, tri, centre, radius, candidates)
        if bool(redo.any()) and 8 * candidates < num_f:
            again, still = _closest_culled(p[redo], tri, centre[redo], radius, 8 * candidates)
            rows = redo.nonzero()[:, 0]
            res.distance[rows], res.face[rows], res.point[rows] = again
            redo = torch.zeros_like(redo)
            redo[rows[still]] = True
        if bool(redo.any()):
            full = _closest_exact(p[redo], tri, chunk)
            res.distance[redo], res.face[redo], res.point[redo] = full
        dist.append(res.distance)
        face.append(res.face)
        near.append(res.point)
    return Closest(torch.cat(dist), torch.cat(face), torch.cat(near))


def _solid_angles(p: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
    """Solid angles ``[...]`` of triangles ``[..., 3, 3]`` seen from points ``[..., 3]``."""
    v = tri - p[..., None, :]
    a, b, c = v[..., 0, :], v[..., 1, :], v[..., 2, :]
    la, lb, lc = a.norm(dim=-1), b.norm(dim=-1), c.norm(dim=-1)
    det = _dot(a, torch.linalg.cross(b, c))
    den = la * lb * lc + _dot(a, b) * lc + _dot(b, c) * la + _dot(c, a) * lb
    return 2 * torch.atan2(det, den)


def winding_number(
    points: torch.Tensor, mesh: Mesh, cells: int = 8, beta: float = 2.5, chunk: int = 1 << 21
) -> torch.Tensor:
    """Generalised winding number ``[N]`` of points ``[N, 3]`` w.r.t. the mesh.

    Faces are grouped by the grid cell (``cells^3`` over the mesh's bounding box) of their
    centroid. A group farther than ``beta`` times its radius from a point contributes its
    first-order far-field (dipole) term ``N_g . (c_g - p) / |c_g - p|^3 / (4 pi)``, with
    ``N_g = sum_f A_f n_f`` the area-weighted normal sum and ``c_g`` the area-weighted centroid
    (Barill et al. 2018); nearer groups are summed exactly face by face. ``cells=1,
    beta=inf`` gives the exact sum over every face.
    """

    tri = _triangles(mesh).to(points.dtype)
    num_f = tri.shape[0]
    centroid = tri.mean(1)
    lo, hi = centroid.min(0).values, centroid.max(0).values
    cell = ((centroid - lo) / (hi - lo).clamp_min(1e-12) * cells).long().clamp(0, cells - 1)
    group = (cell[:, 0] * cells + cell[:, 1]) * cells + cell[:, 2]
    uniq, group = torch.unique(group, return_inverse=True)
    num_g = uniq.shape[0]
    order = torch.argsort(group)
    counts = torch.bincount(group, minlength=num_g)
    width = int(counts.max())
    start = torch.cumsum(counts, 0) - counts
    slot = torch.arange(num_f, device=tri.device) - start[group[order]]
    padded = torch.zeros(
        num_g, width, 3, 3, dtype=tri.dtype, device=tri.device
    )  # degenerate: angle 0
    padded[group[order], slot] = tri[order]
    area_vec = 0.5 * torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = area_vec.norm(dim=-1)
    mass = torch.zeros(num_g, dtype=tri.dtype, device=tri.device).index_add_(0, group, area)
    centre = torch.zeros(num_g, 3, dtype=tri.dtype, device=tri.device).index_add_(
        0, group, centroid * area[:, None]
    )
    centre = centre / mass.clamp_min(1e-30)[:, None]
    dipole = torch.zeros(num_g, 3, dtype=tri.dtype, device=tri.device).index_add_(
        0, group, area_vec
    )
    radius = torch.zeros(num_g, dtype=tri.dtype, device=tri.device).scatter_reduce_(
        0, group, (tri - centre[group][:, None]).norm(dim=-1).max(1).values, "amax"
    )
    out = []
    step = max(1, chunk // max(num_g, 1))
    for s in range(0, points.shape[0], step):
        p = points[s : s + step]
        rel = centre[None] - p[:, None]  # [P, G, 3]
        dist = rel.norm(dim=-1)
        near = dist < beta * radius[None]
        far = _dot(rel, dipole[None]) / dist.clamp_min(1e-12).pow(3)
        total = far.masked_fill(near, 0.0).sum(1)
        pi, gi = near.nonzero(as_tuple=True)
        if pi.numel():
            sub = max(1, chunk // (width * 4))
            for t in range(0, pi.numel(), sub):
                a, b = pi[t : t + sub], gi[t : t + sub]
                ang = _solid_angles(p[a][:, None], padded[b]).sum(1)
                total = total.index_add(0, a, ang)
        out.append(total / (4 * math.pi))
    return torch.cat(out) if out else points.new_zeros(0)


def signed_distance(points: torch.Tensor, mesh: Mesh) -> torch.Tensor:
    """Signed distance ``[N]``: negative inside (winding number > 1/2), positive outside."""
    dist = closest_points(points, mesh).distance
    inside = winding_number(points, mesh) > 0.5
    return torch.where(inside, -dist, dist)
