"""Triangle-mesh geometry for SDF fitting: loading, signed distances, sampling, marching cubes
and reconstruction metrics, on torch tensors.

* :func:`load_mesh` (alias :func:`load_obj`): OBJ, PLY, STL, OFF, GLB/GLTF through trimesh;
  a non-finite vertex is an error naming the file, the vertex and (OBJ) its line; a mesh with
  open or non-manifold edges loads with a :class:`MeshWarning`.
* :func:`closest_points`: exact point-to-triangle distance, closest face and point (libigl's
  AABB tree, ``igl.point_mesh_squared_distance``).
* :func:`winding_number`: the generalised winding number (Jacobson et al. 2013)
  :math:`w(p) = \\frac{1}{4\\pi}\\sum_f \\Omega_f(p)`, ``w ~ 1`` inside a closed surface, ``~0``
  outside, degrading gracefully on meshes with holes; evaluated with libigl's fast winding
  number (Barill et al. 2018, ``igl.fast_winding_number``).
* :func:`signed_distance`: distance with the sign negative where ``w > 1/2`` (inside).
* :func:`sample_sdf`: training samples (near-surface perturbations plus uniform points).
* :func:`marching_cubes`: scikit-image's marching cubes on a sampled SDF grid.
* :func:`occupancy_iou`, :func:`normal_consistency`, :func:`chamfer_distance`: metrics.

Distances and winding numbers are computed on the CPU in float64 (libigl); points on another
device are copied there and the results come back on the points' device and dtype.
``benchmarks/mesh_sdf.py`` times them against the former pure-torch code and
point-cloud-utils.

Coordinates: :func:`normalize_vertices` maps a mesh into the unit cube ``[0, 1]^3`` (the fields'
input domain), keeping its aspect ratio.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from neurosim.backend import InputError, check_tensor


class Mesh(NamedTuple):
    """A triangle mesh: ``vertices [V, 3]`` (float) and ``faces [F, 3]`` (int64, 0-based)."""

    vertices: torch.Tensor
    faces: torch.Tensor


class MeshWarning(UserWarning):
    """A mesh loaded, but is not what the SDF maths assumes (e.g. it is not watertight)."""


MESH_FORMATS = (".obj", ".ply", ".stl", ".off", ".glb", ".gltf")


def _nonfinite_vertex_error(path: Path, vertices: np.ndarray) -> InputError:
    bad = np.flatnonzero(~np.isfinite(vertices).all(axis=1))
    first = int(bad[0])
    where = f"vertex {first + 1}"
    if path.suffix.lower() == ".obj":  # name the line of the first bad 'v' record
        count = 0
        with path.open("r", encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                parts = line.split()
                if parts and parts[0] == "v":
                    if count == first:
                        where = f"line {lineno} (vertex {first + 1}: {line.strip()!r})"
                        break
                    count += 1
    return InputError(
        f"mesh file {str(path)!r}: {where} has a non-finite coordinate "
        f"({len(bad)} such vertices in all); expected finite x y z"
    )


def mesh_edge_report(
    faces: torch.Tensor | np.ndarray, vertices: torch.Tensor | np.ndarray | None = None
) -> tuple[int, int]:
    """``(boundary, non_manifold)``: undirected edges used by one face, and by more than two.

    A watertight (closed, manifold) triangle mesh has neither. With ``vertices``, vertices at
    the same position count as one (STL files store every triangle's own corners).
    """
    f = np.asarray(faces.cpu().numpy() if isinstance(faces, torch.Tensor) else faces)
    if vertices is not None:
        v = np.asarray(vertices.cpu().numpy() if isinstance(vertices, torch.Tensor) else vertices)
        _, canonical = np.unique(v, axis=0, return_inverse=True)
        f = canonical.reshape(-1)[f]
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    _, counts = np.unique(edges, axis=0, return_counts=True)
    return int((counts == 1).sum()), int((counts > 2).sum())


def load_mesh(
    path: str | os.PathLike[str], dtype: torch.dtype = torch.float32, *, warn: bool = True
) -> Mesh:
    """Read a triangle mesh (OBJ, PLY, STL, OFF, GLB/GLTF) with trimesh; scenes are merged,
    polygons triangulated, vertices kept as stored (no merging or reordering).

    Raises :class:`InputError` when the file is missing or unreadable, has no faces, or has a
    vertex with a NaN or infinite coordinate (naming the vertex, and the line for OBJ). Emits a
    :class:`MeshWarning` (when ``warn``) if the mesh has boundary (hole) or non-manifold edges:
    signs then come from the generalised winding number, which tolerates holes, but the
    inside of a surface with large openings is ill-defined.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(
            f"mesh file {str(p)!r} not found; expected a triangle mesh ({', '.join(MESH_FORMATS)})"
        )
    if p.suffix.lower() not in MESH_FORMATS:
        raise InputError(
            f"mesh file {str(p)!r} has an unknown extension; expected one of {MESH_FORMATS}"
        )
    import trimesh

    try:
        loaded = trimesh.load(p, force="mesh", process=False)
    except Exception as exc:  # trimesh raises many types for malformed files
        raise InputError(
            f"mesh file {str(p)!r} could not be read ({type(exc).__name__}: {exc})"
        ) from exc
    vertices = np.asarray(getattr(loaded, "vertices", np.zeros((0, 3))), dtype=np.float64)
    faces = np.asarray(getattr(loaded, "faces", np.zeros((0, 3))), dtype=np.int64)
    if vertices.ndim != 2 or len(vertices) == 0 or faces.ndim != 2 or len(faces) == 0:
        raise InputError(
            f"mesh file {str(p)!r} has {len(vertices)} vertices and {len(faces)} faces; "
            "expected both"
        )
    if not np.isfinite(vertices).all():
        raise _nonfinite_vertex_error(p, vertices)
    if int(faces.min()) < 0 or int(faces.max()) >= len(vertices):
        raise InputError(
            f"mesh file {str(p)!r} has faces indexing vertices outside 1..{len(vertices)}"
        )
    if warn:
        boundary, non_manifold = mesh_edge_report(faces, vertices)
        if boundary or non_manifold:
            warnings.warn(
                f"mesh {str(p)!r} is not watertight: {boundary} boundary (hole) edges and "
                f"{non_manifold} non-manifold edges; inside/outside comes from the generalised "
                "winding number (robust to small holes), but check the fitted surface",
                MeshWarning,
                stacklevel=2,
            )
    return Mesh(torch.from_numpy(vertices).to(dtype), torch.from_numpy(faces))


def load_obj(path: str | os.PathLike[str], dtype: torch.dtype = torch.float32) -> Mesh:
    """:func:`load_mesh` (kept for the name; any supported format loads)."""
    return load_mesh(path, dtype)


def normalize_vertices(
    vertices: torch.Tensor, margin: float = 0.1
) -> tuple[torch.Tensor, float, torch.Tensor]:
    """Map vertices into ``[margin, 1 - margin]^3`` (uniform scale, centred bounding box).

    Returns ``(vertices', scale, offset)`` with ``vertices' = (vertices - offset) * scale + 0.5``.
    """
    if not 0 <= margin < 0.5:
        raise InputError(f"normalize_vertices margin must be in [0, 0.5), got {margin}")
    lo = vertices.min(0).values
    hi = vertices.max(0).values
    offset = (lo + hi) / 2
    extent = float((hi - lo).max())
    if extent <= 0:
        raise InputError("normalize_vertices needs a mesh with a non-zero extent")
    scale = (1 - 2 * margin) / extent
    return (vertices - offset) * scale + 0.5, scale, offset


def _triangles(mesh: Mesh) -> torch.Tensor:
    return mesh.vertices[mesh.faces]  # [F, 3, 3]


def face_normals(mesh: Mesh) -> torch.Tensor:
    """Unit normals ``[F, 3]`` (right-handed in the face's vertex order)."""
    tri = _triangles(mesh)
    n = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    return n / n.norm(dim=-1, keepdim=True).clamp_min(1e-20)


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a * b).sum(-1)


def closest_point_on_triangles(
    p: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor
) -> torch.Tensor:
    """Closest point to ``p`` on triangles ``(a, b, c)``; all ``[..., 3]`` broadcasting.

    Ericson, *Real-Time Collision Detection* 5.1.5: classify ``p`` into the Voronoi region of a
    vertex, an edge or the face and project accordingly.
    """
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = _dot(ab, ap), _dot(ac, ap)
    bp = p - b
    d3, d4 = _dot(ab, bp), _dot(ac, bp)
    cp = p - c
    d5, d6 = _dot(ab, cp), _dot(ac, cp)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2

    def safe(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
        den = torch.where(den.abs() > 1e-30, den, torch.ones_like(den))
        return (num / den)[..., None]

    denom = va + vb + vc
    out = a + ab * safe(vb, denom) + ac * safe(vc, denom)  # inside the face
    bc_w = safe(d4 - d3, (d4 - d3) + (d5 - d6))
    out = torch.where(
        ((va <= 0) & (d4 - d3 >= 0) & (d5 - d6 >= 0))[..., None], b + (c - b) * bc_w, out
    )
    out = torch.where(
        ((vb <= 0) & (d2 >= 0) & (d6 <= 0))[..., None], a + ac * safe(d2, d2 - d6), out
    )
    out = torch.where(((d6 >= 0) & (d5 <= d6))[..., None], c.expand_as(out), out)
    out = torch.where(
        ((vc <= 0) & (d1 >= 0) & (d3 <= 0))[..., None], a + ab * safe(d1, d1 - d3), out
    )
    out = torch.where(((d3 >= 0) & (d4 <= d3))[..., None], b.expand_as(out), out)
    out = torch.where(((d1 <= 0) & (d2 <= 0))[..., None], a.expand_as(out), out)
    return out


class Closest(NamedTuple):
    """Result of :func:`closest_points`: ``distance [N]``, ``face [N]`` and ``point [N, 3]``."""

    distance: torch.Tensor
    face: torch.Tensor
    point: torch.Tensor


def _mesh_arrays(mesh: Mesh) -> tuple[np.ndarray, np.ndarray]:
    vertices = np.ascontiguousarray(mesh.vertices.detach().cpu().numpy(), dtype=np.float64)
    faces = np.ascontiguousarray(mesh.faces.detach().cpu().numpy(), dtype=np.int64)
    return vertices, faces


def _query_points(points: torch.Tensor, name: str) -> np.ndarray:
    check_tensor(points, f"{name} points [N, 3]", ndim=2)
    if points.shape[1] != 3:
        raise InputError(f"{name} expects 3-D points [N, 3], got {tuple(points.shape)}")
    return np.ascontiguousarray(points.detach().cpu().numpy(), dtype=np.float64)


def closest_points(points: torch.Tensor, mesh: Mesh) -> Closest:
    """Exact unsigned distance from each point ``[N, 3]`` to a triangle mesh, the closest face
    and the closest point (libigl's AABB tree; float64 on the CPU, results in the points'
    dtype and device)."""
    q = _query_points(points, "closest_points")
    if len(q) == 0:
        return Closest(
            points.new_zeros(0),
            torch.zeros(0, dtype=torch.long, device=points.device),
            points.new_zeros(0, 3),
        )
    import igl

    vertices, faces = _mesh_arrays(mesh)
    sq, face, near = igl.point_mesh_squared_distance(q, vertices, faces)
    return Closest(
        torch.from_numpy(np.sqrt(sq)).to(points.device, points.dtype),
        torch.from_numpy(np.asarray(face, dtype=np.int64)).to(points.device),
        torch.from_numpy(near).to(points.device, points.dtype),
    )


def _solid_angles(p: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
    """Solid angles ``[...]`` of triangles ``[..., 3, 3]`` seen from points ``[..., 3]``
    (Van Oosterom and Strackee: ``2 atan2(a . (b x c), |a||b||c| + (a.b)|c| + (b.c)|a| +
    (c.a)|b|)``)."""
    v = tri - p[..., None, :]
    a, b, c = v[..., 0, :], v[..., 1, :], v[..., 2, :]
    la, lb, lc = a.norm(dim=-1), b.norm(dim=-1), c.norm(dim=-1)
    det = _dot(a, torch.linalg.cross(b, c))
    den = la * lb * lc + _dot(a, b) * lc + _dot(b, c) * la + _dot(c, a) * lb
    return 2 * torch.atan2(det, den)


def winding_number_exact(points: torch.Tensor, mesh: Mesh, chunk: int = 1 << 22) -> torch.Tensor:
    """The generalised winding number ``[N]`` summed exactly over every face (``O(N F)``; a
    reference for small meshes and tests; use :func:`winding_number` otherwise)."""
    check_tensor(points, "winding_number_exact points [N, 3]", ndim=2)
    tri = _triangles(mesh).to(points.dtype)
    step = max(1, chunk // max(tri.shape[0], 1))
    out = [
        _solid_angles(points[s : s + step, None], tri[None]).sum(1) / (4 * math.pi)
        for s in range(0, points.shape[0], step)
    ]
    return torch.cat(out) if out else points.new_zeros(0)


def winding_number(points: torch.Tensor, mesh: Mesh) -> torch.Tensor:
    """Generalised winding number ``[N]`` of points ``[N, 3]`` w.r.t. the mesh: libigl's fast
    winding number (Barill et al. 2018: a tree of dipole expansions, exact near the surface)."""
    q = _query_points(points, "winding_number")
    if len(q) == 0:
        return points.new_zeros(0)
    import igl

    vertices, faces = _mesh_arrays(mesh)
    w = igl.fast_winding_number(vertices, faces, q)
    return torch.from_numpy(np.asarray(w)).to(points.device, points.dtype)


def signed_distance(points: torch.Tensor, mesh: Mesh) -> torch.Tensor:
    """Signed distance ``[N]``: negative inside (winding number > 1/2), positive outside.

    The magnitude is the exact distance (:func:`closest_points`), the sign the fast winding
    number (:func:`winding_number`), so holes in the mesh do not flip whole regions.
    """
    dist = closest_points(points, mesh).distance
    inside = winding_number(points, mesh) > 0.5
    return torch.where(inside, -dist, dist)


def sample_surface(
    mesh: Mesh, n: int, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` area-uniform surface points ``[n, 3]`` and their face normals ``[n, 3]``."""
    tri = _triangles(mesh)
    cross = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    area = cross.norm(dim=-1)
    if float(area.sum()) <= 0:
        raise InputError("sample_surface needs a mesh with non-zero area")
    faces = torch.multinomial(area.double().cpu(), n, replacement=True, generator=generator).to(
        tri.device
    )
    r = torch.rand(n, 2, generator=generator, dtype=torch.float64).to(tri.device, tri.dtype)
    s = r[:, :1].sqrt()
    u, v = 1 - s, s * (1 - r[:, 1:])
    w = s * r[:, 1:]
    t = tri[faces]
    pts = u * t[:, 0] + v * t[:, 1] + w * t[:, 2]
    normals = cross[faces] / area[faces, None].clamp_min(1e-20)
    return pts, normals


def sample_sdf(
    mesh: Mesh,
    n_surface: int,
    n_uniform: int,
    sigmas: tuple[float, ...] = (0.01, 0.002),
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Training samples ``(points [n_surface + n_uniform, 3], sdf [...])`` in ``[0, 1]^3``.

    ``n_surface`` surface points are perturbed by Gaussian noise, split evenly over ``sigmas``
    (near-surface detail); ``n_uniform`` points are uniform in the unit cube (the far field).
    Signed distances are computed exactly against the mesh.
    """
    if n_surface < 0 or n_uniform < 0 or n_surface + n_uniform == 0:
        raise InputError(
            f"sample_sdf needs a positive number of samples, got {n_surface} + {n_uniform}"
        )
    surf, _ = sample_surface(mesh, n_surface, generator)
    groups = torch.arange(n_surface) % max(len(sigmas), 1)
    sig = torch.tensor(sigmas or (0.0,), dtype=surf.dtype)[groups].to(surf.device)
    noise = torch.randn(n_surface, 3, generator=generator, dtype=torch.float64).to(
        surf.device, surf.dtype
    )
    near = (surf + noise * sig[:, None]).clamp(0, 1)
    uniform = torch.rand(n_uniform, 3, generator=generator, dtype=torch.float64).to(
        surf.device, surf.dtype
    )
    pts = torch.cat([near, uniform])
    return pts, signed_distance(pts, mesh)


def grid_points(
    resolution: int, dtype: torch.dtype = torch.float32, device: torch.device | None = None
) -> torch.Tensor:
    """``[R^3, 3]`` vertex positions of a ``R^3`` lattice spanning ``[0, 1]^3`` (``ij`` order)."""
    if resolution < 2:
        raise InputError(f"grid resolution must be >= 2, got {resolution}")
    axis = torch.linspace(0, 1, resolution, dtype=dtype, device=device)
    mesh = torch.meshgrid(axis, axis, axis, indexing="ij")
    return torch.stack([m.reshape(-1) for m in mesh], -1)


def marching_cubes(sdf_grid: torch.Tensor | np.ndarray, level: float = 0.0) -> Mesh:
    """The ``level`` set of an SDF sampled on :func:`grid_points` (``[R, R, R]``), in ``[0, 1]^3``.

    Uses ``skimage.measure.marching_cubes``; faces are oriented so normals point outward (to
    increasing SDF). Raises :class:`InputError` when the level set is empty.
    """
    from skimage import measure

    grid = (
        sdf_grid.detach().cpu().numpy()
        if isinstance(sdf_grid, torch.Tensor)
        else np.asarray(sdf_grid)
    )
    if grid.ndim != 3 or min(grid.shape) < 2:
        raise InputError(f"marching_cubes needs an [R, R, R] grid, got shape {grid.shape}")
    if not (grid.min() < level < grid.max()):
        raise InputError(
            f"marching_cubes: level {level} is outside the grid's range [{grid.min():.4g}, {grid.max():.4g}]"
        )
    spacing = tuple(1.0 / (s - 1) for s in grid.shape)
    verts, faces, _, _ = measure.marching_cubes(
        grid.astype(np.float32), level=level, spacing=spacing
    )
    # skimage's winding already gives normals towards increasing values: outward for an SDF
    return Mesh(
        torch.from_numpy(verts.astype(np.float32)), torch.from_numpy(faces.astype(np.int64))
    )


def occupancy_iou(pred_sdf: torch.Tensor, true_sdf: torch.Tensor) -> float:
    """Volumetric IoU of the insides (``sdf < 0``) over shared sample points (1 when both empty)."""
    if pred_sdf.shape != true_sdf.shape:
        raise InputError(
            f"occupancy_iou shapes differ: {tuple(pred_sdf.shape)} vs {tuple(true_sdf.shape)}"
        )
    a, b = pred_sdf < 0, true_sdf < 0
    union = int((a | b).sum())
    return 1.0 if union == 0 else int((a & b).sum()) / union


def normal_consistency(
    pred: Mesh, target: Mesh, n: int = 10000, generator: torch.Generator | None = None
) -> float:
    """Symmetric normal consistency in ``[0, 1]``: the mean ``|cos|`` between the normal at a
    surface sample of one mesh and the normal of the closest face of the other, both ways."""
    total = 0.0
    for src, dst in ((pred, target), (target, pred)):
        pts, normals = sample_surface(src, n, generator)
        near = closest_points(pts, dst)
        other = face_normals(dst)[near.face].to(normals.dtype)
        total += float(_dot(normals, other).abs().mean())
    return total / 2


def chamfer_distance(
    pred: Mesh, target: Mesh, n: int = 10000, generator: torch.Generator | None = None
) -> float:
    """Symmetric point-to-mesh Chamfer-L1: mean distance from surface samples of each mesh to
    the other mesh, averaged over both directions (in the meshes' units)."""
    total = 0.0
    for src, dst in ((pred, target), (target, pred)):
        pts, _ = sample_surface(src, n, generator)
        total += float(closest_points(pts, dst).distance.mean())
    return total / 2


BUILTIN_SHAPES = ("torus", "sphere", "capsule_pair")


def builtin_mesh(name: str, resolution: int = 96) -> Mesh:
    """A generated test mesh in ``[0, 1]^3``: the zero set of an analytic SDF by marching cubes.

    Shapes (all centred at 0.5): ``torus`` (radii 0.28 and 0.1, axis z), ``sphere`` (radius 0.3)
    and ``capsule_pair`` (the smooth union of two crossing capsules, a shape with a saddle and
    thin parts). Used as embedded defaults that need no data root.

    >>> builtin_mesh("sphere", 32).vertices.shape[1]
    3
    """
    if name not in BUILTIN_SHAPES:
        raise InputError(f"unknown built-in shape {name!r}; expected one of {BUILTIN_SHAPES}")
    p = grid_points(resolution, torch.float64) - 0.5
    if name == "sphere":
        sdf = p.norm(dim=-1) - 0.3
    elif name == "torus":
        ring = torch.stack([p[:, :2].norm(dim=-1) - 0.28, p[:, 2]], -1)
        sdf = ring.norm(dim=-1) - 0.1
    else:

        def capsule(a: torch.Tensor, b: torch.Tensor, radius: float) -> torch.Tensor:
            ab = b - a
            t = ((p - a) @ ab / (ab @ ab)).clamp(0, 1)
            return (p - a - t[:, None] * ab).norm(dim=-1) - radius

        d1 = capsule(
            torch.tensor([-0.3, -0.2, 0.0]).double(), torch.tensor([0.3, 0.2, 0.0]).double(), 0.1
        )
        d2 = capsule(
            torch.tensor([0.0, -0.3, -0.25]).double(), torch.tensor([0.0, 0.3, 0.25]).double(), 0.08
        )
        k = 0.05  # polynomial smooth minimum
        h = (0.5 + 0.5 * (d2 - d1) / k).clamp(0, 1)
        sdf = d2 * (1 - h) + d1 * h - k * h * (1 - h)
    mesh = marching_cubes(sdf.reshape(resolution, resolution, resolution))
    return Mesh(mesh.vertices.float(), mesh.faces)
