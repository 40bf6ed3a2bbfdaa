"""Mesh geometry: OBJ loading, exact distances, winding numbers, marching cubes, metrics."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from fields.geometry import (
    Mesh,
    MeshWarning,
    chamfer_distance,
    closest_point_on_triangles,
    closest_points,
    face_normals,
    grid_points,
    load_mesh,
    load_obj,
    marching_cubes,
    mesh_edge_report,
    normal_consistency,
    normalize_vertices,
    occupancy_iou,
    sample_sdf,
    sample_surface,
    signed_distance,
    winding_number,
    winding_number_exact,
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
    with pytest.raises(InputError, match="could not be read.*out of bounds"):
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


def test_closest_points_equal_the_exhaustive_search() -> None:
    """libigl's AABB search against every face through the Voronoi-region formula."""
    g = torch.Generator().manual_seed(2)
    verts = torch.randn(400, 3, generator=g, dtype=torch.float64)
    faces = torch.randint(0, 400, (600, 3), generator=g)
    distinct = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2])
    faces = faces[distinct & (faces[:, 0] != faces[:, 2])]  # the formula needs real triangles
    mesh = Mesh(verts, faces)
    p = 2 * torch.randn(700, 3, generator=g, dtype=torch.float64)
    got = closest_points(p, mesh)
    tri = verts[faces]
    q = closest_point_on_triangles(p[:, None], tri[None, :, 0], tri[None, :, 1], tri[None, :, 2])
    exhaustive = (q - p[:, None]).norm(dim=-1).min(1).values
    torch.testing.assert_close(got.distance, exhaustive, rtol=0, atol=1e-12)
    torch.testing.assert_close((got.point - p).norm(dim=-1), exhaustive, rtol=0, atol=1e-12)
    own = closest_point_on_triangles(p, tri[got.face, 0], tri[got.face, 1], tri[got.face, 2])
    torch.testing.assert_close((own - p).norm(dim=-1), exhaustive, rtol=0, atol=1e-12)
    # a degenerate face (a segment from (0,0,0) to (1,0,0)) is still a set of points: the
    # distance from (0.5, 1, 0) is 1 and from (2, 0, 0) is 1 (by hand)
    segment = Mesh(torch.tensor([[0.0, 0, 0], [1.0, 0, 0]]).double(), torch.tensor([[0, 0, 1]]))
    far = closest_points(torch.tensor([[0.5, 1.0, 0.0], [2.0, 0.0, 0.0]]).double(), segment)
    torch.testing.assert_close(far.distance, torch.tensor([1.0, 1.0]).double())


def test_winding_number_inside_outside_and_fast_agrees_with_exact(cube: Mesh) -> None:
    g = torch.Generator().manual_seed(3)
    p = torch.rand(2000, 3, generator=g, dtype=torch.float64)
    inside = (p - 0.5).abs().max(-1).values < 0.25
    exact = winding_number_exact(p, cube)
    torch.testing.assert_close(exact, inside.double(), rtol=0, atol=1e-9)
    fast_cube = winding_number(p, cube)  # far-field expansions: close, and the same sign
    torch.testing.assert_close(fast_cube, exact, rtol=0, atol=2e-3)
    assert bool(((fast_cube > 0.5) == inside).all())
    # a finer mesh (the sphere from marching cubes) exercises the far-field expansion
    sphere = marching_cubes(
        (grid_points(24, torch.float64) - 0.5).norm(dim=-1).reshape(24, 24, 24) - 0.3
    )
    q = torch.rand(1500, 3, generator=g, dtype=torch.float64)
    sphere64 = Mesh(sphere.vertices.double(), sphere.faces)
    fast = winding_number(q, sphere64)
    slow = winding_number_exact(q, sphere64)
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
    # asymmetric, by hand: insides {0, 1, 2} and {0} -> 1/3 (outsides would give 2/4)
    pred = torch.tensor([-1.0, -2.0, -0.5, 0.5, 3.0])
    true = torch.tensor([-1.0, 2.0, 0.5, 0.5, 3.0])
    assert occupancy_iou(pred, true) == pytest.approx(1 / 3)
    assert occupancy_iou(torch.ones(5), true) == 0.0  # nothing predicted inside


def _square(z: float, tilt_deg: float = 0.0) -> Mesh:
    """The unit square [0, 1]^2 as two triangles, at height z, tilted about the x axis."""
    c, s = math.cos(math.radians(tilt_deg)), math.sin(math.radians(tilt_deg))
    yz = [(0.0, 0.0), (0.0, 0.0), (1.0, 0.0), (1.0, 0.0)]
    corners = [(0.0, *yz[0]), (1.0, *yz[1]), (1.0, *yz[2]), (0.0, *yz[3])]
    verts = torch.tensor([[x, y * c, z + y * s] for x, y, _ in corners], dtype=torch.float64)
    return Mesh(verts, torch.tensor([[0, 1, 2], [0, 2, 3]]))


def test_chamfer_and_normal_consistency_by_hand() -> None:
    gen = torch.Generator().manual_seed(5)
    # parallel unit squares 0.1 apart: every sample is 0.1 from the other square
    assert chamfer_distance(_square(0.0), _square(0.1), 500, gen) == pytest.approx(0.1, abs=1e-12)
    assert normal_consistency(_square(0.0), _square(0.1), 500, gen) == pytest.approx(1.0)
    # one flat normal each, 60 degrees apart: |cos 60| = 1/2 whichever face is closest
    assert normal_consistency(_square(0.0), _square(0.3, 60.0), 500, gen) == pytest.approx(0.5)


def test_mesh_formats_nonfinite_vertices_and_holes(tmp_path: Path, cube: Mesh) -> None:
    import trimesh

    shape = trimesh.Trimesh(cube.vertices.numpy(), cube.faces.numpy(), process=False)
    for suffix in (".ply", ".stl", ".off"):
        path = tmp_path / f"cube{suffix}"
        shape.export(path)
        loaded = load_mesh(path, dtype=torch.float64)
        assert loaded.faces.shape == (12, 3)
        p = torch.rand(200, 3, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
        torch.testing.assert_close(signed_distance(p, loaded), _cube_sdf(p), rtol=0, atol=1e-6)
    nan_obj = tmp_path / "nan.obj"
    nan_obj.write_text("# a comment\nv 0 0 0\nv 1 0 0\n\nv nan 0 0\nf 1 2 3\n")
    with pytest.raises(InputError, match=r"nan\.obj.*line 5 \(vertex 3: 'v nan 0 0'\)"):
        load_mesh(nan_obj)
    with pytest.raises(InputError, match="unknown extension"):
        load_mesh(nan_obj.with_suffix(".txt").write_text("x") and nan_obj.with_suffix(".txt"))
    # an open box (the top face removed): a warning, and the inside still comes out inside
    top = cube.vertices[cube.faces].mean(1)[:, 2] > 0.74
    open_box = tmp_path / "open_box.obj"
    trimesh.Trimesh(cube.vertices.numpy(), cube.faces[~top].numpy(), process=False).export(open_box)
    with pytest.warns(MeshWarning, match="not watertight: 4 boundary"):
        box = load_mesh(open_box, dtype=torch.float64)
    assert mesh_edge_report(box.faces) == (4, 0) and mesh_edge_report(cube.faces) == (0, 0)
    centre = torch.tensor([[0.5, 0.5, 0.5], [0.5, 0.5, 0.3], [0.9, 0.5, 0.5]]).double()
    assert (signed_distance(centre, box) < 0).tolist() == [True, True, False]


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
