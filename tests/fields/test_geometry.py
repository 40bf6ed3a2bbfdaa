"""Mesh geometry: OBJ loading, exact distances, winding numbers, marching cubes, metrics."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from fields.geometry import (
    Mesh,
    chamfer_distance,
    closest_point_on_triangles,
    closest_points,
    face_normals,
    grid_points,
    load_obj,
    marching_cubes,
    normal_consistency,
    normalize_vertices,
    occupancy_iou,
    sample_sdf,
    sample_surface,
    signed_distance,
    winding_number,
)
from neurosim.backend import InputError

CUBE_OBJ = """# unit cube as quads, outward faces, mixed index styles
v 0 0 0
v 1 0 0
v 1 1 0
v 0 1 0
v 0 0 1
v 1 0 1
v 1 1 1
v 0 1 1
vn 0 0 1
f 1 4 3 2
f 5/1 6/1 7/1 8/1
f 1//1 2//1 6//1 5//1
f 2/1/1 3/1/1 7/1/1 6/1/1
f -5 -1 -2 -6
f 4 1 5 8
"""


@pytest.fixture
def cube(tmp_path: Path) -> Mesh:
    path = tmp_path / "cube.obj"
    path.write_text(CUBE_OBJ)
    mesh = load_obj(path, dtype=torch.float64)
    return Mesh(mesh.vertices * 0.5 + 0.25, mesh.faces)  # [0.25, 0.75]^3


def _cube_sdf(p: torch.Tensor) -> torch.Tensor:
    q = (p - 0.5).abs() - 0.25
    outside = q.clamp_min(0).norm(dim=-1)
    inside = q.max(-1).values.clamp_max(0)
    return outside + inside


def test_obj_loader_triangulates_and_resolves_indices(cube: Mesh) -> None:
    assert cube.vertices.shape == (8, 3) and cube.faces.shape == (12, 3)
    assert int(cube.faces.min()) == 0 and int(cube.faces.max()) == 7
    normals = face_normals(cube)
    centres = cube.vertices[cube.faces].mean(1)
    assert bool(((centres - 0.5) * normals).sum(-1).gt(0).all())  # outward orientation


def test_obj_loader_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        load_obj(tmp_path / "missing.obj")
    bad = tmp_path / "bad.obj"
    bad.write_text("v 0 0 0\nv 1 0 0\nf 1 2 3\n")
    with pytest.raises(InputError, match="outside"):
        load_obj(bad)
    empty = tmp_path / "empty.obj"
    empty.write_text("# nothing\n")
    with pytest.raises(InputError, match="expected both"):
        load_obj(empty)


def test_closest_point_on_triangles_beats_dense_sampling() -> None:
    g = torch.Generator().manual_seed(0)
    tri = torch.randn(300, 3, 3, generator=g, dtype=torch.float64)
    p = 2 * torch.randn(300, 3, generator=g, dtype=torch.float64)
    q = closest_point_on_triangles(p, tri[:, 0], tri[:, 1], tri[:, 2])
    d = (q - p).norm(dim=-1)
    u = torch.rand(4000, 2, generator=g, dtype=torch.float64)
    s = u[:, :1].sqrt()
    bary = torch.cat([1 - s, s * (1 - u[:, 1:]), s * u[:, 1:]], 1)
    dense = torch.einsum("sk,fkd->fsd", bary, tri)
    d_dense = (dense - p[:, None]).norm(dim=-1).min(1).values
    assert bool((d <= d_dense + 1e-12).all())  # the exact closest point is never beaten
    assert float((d_dense - d).max()) < 0.2  # and dense samples come close to it


def test_signed_distance_of_a_cube_is_exact(cube: Mesh) -> None:
    g = torch.Generator().manual_seed(1)
    p = torch.rand(3000, 3, generator=g, dtype=torch.float64)
    torch.testing.assert_close(signed_distance(p, cube), _cube_sdf(p), rtol=0, atol=1e-9)


def test_culled_closest_points_equal_the_exhaustive_search() -> None:
    g = torch.Generator().manual_seed(2)
    verts = torch.randn(400, 3, generator=g, dtype=torch.float64)
    faces = torch.randint(0, 400, (600, 3), generator=g)
    mesh = Mesh(verts, faces)
    p = 2 * torch.randn(700, 3, generator=g, dtype=torch.float64)
    culled = closest_points(p, mesh, candidates=8)
    exact = closest_points(p, mesh, candidates=10**9)
    torch.testing.assert_close(culled.distance, exact.distance)


def test_winding_number_inside_outside_and_far_field_agree(cube: Mesh) -> None:
    g = torch.Generator().manual_seed(3)
    p = torch.rand(2000, 3, generator=g, dtype=torch.float64)
    exact = winding_number(p, cube, cells=1, beta=math.inf)
    inside = (p - 0.5).abs().max(-1).values < 0.25
    torch.testing.assert_close(exact, inside.double(), rtol=0, atol=1e-9)
    # a finer mesh (the sphere from marching cubes) exercises the clustered far field
    sphere = marching_cubes(
        (grid_points(24, torch.float64) - 0.5).norm(dim=-1).reshape(24, 24, 24) - 0.3
    )
    q = torch.rand(1500, 3, generator=g, dtype=torch.float64)
    sphere64 = Mesh(sphere.vertices.double(), sphere.faces)
    fast = winding_number(q, sphere64, cells=4, beta=2.0)
    slow = winding_number(q, sphere64, cells=1, beta=math.inf)
    assert float((fast - slow).abs().max()) < 0.05
    assert bool(((fast > 0.5) == (slow > 0.5)).all())


def test_marching_cubes_and_metrics_on_a_sphere() -> None:
    res = 32
    lattice = grid_points(res)
    sdf = (lattice - 0.5).norm(dim=-1) - 0.3
    mesh = marching_cubes(sdf.reshape(res, res, res))
    radius = (mesh.vertices - 0.5).norm(dim=-1)
    assert float((radius - 0.3).abs().max()) < 0.01
    normals = face_normals(mesh)
    centres = mesh.vertices[mesh.faces].mean(1)
    assert float(((centres - 0.5) * normals).sum(-1).gt(0).float().mean()) > 0.99  # outward
    gen = torch.Generator().manual_seed(0)
    assert normal_consistency(mesh, mesh, 800, gen) > 0.999
    assert chamfer_distance(mesh, mesh, 800, gen) < 1e-6
    smaller = marching_cubes(((lattice - 0.5).norm(dim=-1) - 0.25).reshape(res, res, res))
    assert chamfer_distance(smaller, mesh, 800, gen) == pytest.approx(0.05, abs=0.01)
    with pytest.raises(InputError, match="outside the grid's range"):
        marching_cubes(torch.ones(8, 8, 8))


def test_occupancy_iou() -> None:
    a = torch.tensor([-1.0, -1.0, 1.0, 1.0])
    b = torch.tensor([-1.0, 1.0, -1.0, 1.0])
    assert occupancy_iou(a, a) == 1.0
    assert occupancy_iou(a, b) == pytest.approx(1 / 3)
    assert occupancy_iou(torch.ones(3), torch.ones(3)) == 1.0


def test_sampling(cube: Mesh) -> None:
    g = torch.Generator().manual_seed(4)
    pts, normals = sample_surface(cube, 500, g)
    assert float(_cube_sdf(pts).abs().max()) < 1e-9
    assert torch.allclose(normals.norm(dim=-1), torch.ones(500, dtype=normals.dtype))
    x, sdf = sample_sdf(cube, 300, 200, (0.01,), generator=g)
    assert x.shape == (500, 3) and float(x.min()) >= 0 and float(x.max()) <= 1
    torch.testing.assert_close(sdf, _cube_sdf(x), rtol=0, atol=1e-9)
    v, scale, offset = normalize_vertices(cube.vertices * 7 + 3, margin=0.1)
    assert float(v.min()) == pytest.approx(0.1) and float(v.max()) == pytest.approx(0.9)
    torch.testing.assert_close(v, (cube.vertices * 7 + 3 - offset) * scale + 0.5)
