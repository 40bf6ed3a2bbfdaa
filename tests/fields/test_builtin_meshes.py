"""Generated meshes (the SDF demo's embedded default) and the demo command."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from experiments.cli import main
from experiments.runner import run_experiment
from fields.geometry import BUILTIN_SHAPES, builtin_mesh, signed_distance, winding_number
from neurosim.backend import InputError


@pytest.mark.parametrize("name", BUILTIN_SHAPES)
def test_builtin_mesh_is_closed_and_inside_the_unit_cube(name: str) -> None:
    mesh = builtin_mesh(name, 48)
    assert mesh.faces.shape[1] == 3 and len(mesh.faces) > 100
    assert float(mesh.vertices.min()) > 0.0 and float(mesh.vertices.max()) < 1.0
    # a closed surface: every edge is shared by exactly two faces
    f = mesh.faces
    edges = torch.cat([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]).sort(dim=1).values
    _, counts = torch.unique(edges, dim=0, return_counts=True)
    assert bool((counts == 2).all())


def test_sphere_distances_match_the_analytic_sdf() -> None:
    mesh = builtin_mesh("sphere", 64)
    points = torch.rand(300, 3, generator=torch.Generator().manual_seed(0))
    exact = (points - 0.5).norm(dim=-1) - 0.3
    got = signed_distance(points, mesh)
    assert float((got - exact).abs().max()) < 0.01
    inside = winding_number(points, mesh) > 0.5
    assert bool((inside == (exact < 0)).float().mean() > 0.99)


def test_torus_has_a_hole() -> None:
    mesh = builtin_mesh("torus", 64)
    centre_and_ring = torch.tensor([[0.5, 0.5, 0.5], [0.5 + 0.28, 0.5, 0.5]])
    inside = winding_number(centre_and_ring, mesh) > 0.5
    assert inside.tolist() == [False, True]


def test_unknown_shape_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="expected one of"):
        builtin_mesh("teapot")
    with pytest.raises(InputError, match="builtin:"):
        run_experiment("fields_sdf", ["mesh=builtin:teapot"], tmp_path, "tiny")


def test_sdf_experiment_runs_on_a_generated_mesh(tmp_path: Path) -> None:
    result = run_experiment("fields_sdf", ["mesh=builtin:sphere"], tmp_path, "tiny")
    assert all(math.isfinite(v) for v in result.metrics.values())


def test_demo_command_runs_one_family(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--only", "image_fit", "--runs-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "psnr" in out and str(tmp_path) in out
    assert main(["demo", "--only", "no_such"]) == 2
