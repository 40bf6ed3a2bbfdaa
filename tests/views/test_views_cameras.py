"""Cameras and rays: projection round trips, OpenCV distortion and its inverse, conventions."""

from __future__ import annotations

import math

import pytest
import torch

from fields.rendering.cameras import (
    Cameras,
    distort,
    image_rays,
    look_at,
    orbit_poses,
    pixel_rays,
    project,
    undistort,
)
from fields.rendering.datasets import load_blender
from neurosim.backend import InputError


def _cams(distortion: bool) -> Cameras:
    c2w = orbit_poses(5, 4.0, elevation_deg=25.0, dtype=torch.float64)
    n = len(c2w)
    dist = None
    if distortion:
        dist = torch.tensor([[-0.12, 0.03, -0.004, 0.0015, -0.001]], dtype=torch.float64).repeat(
            n, 1
        )
    return Cameras(
        c2w,
        torch.full((n,), 80.0, dtype=torch.float64),
        torch.full((n,), 75.0, dtype=torch.float64),
        torch.full((n,), 31.0, dtype=torch.float64),
        torch.full((n,), 26.5, dtype=torch.float64),
        64,
        48,
        dist,
    )


def test_documented_example_projects_to_the_hand_computed_pixel() -> None:
    # identity pose (camera at the origin looking along -z), fx = fy = 2, cx = cy = 2:
    # the point (0.5, -0.5, -1) is at depth 1, OpenCV (x, y) = (0.5, 0.5) -> pixel (3, 3)
    cams = Cameras(
        torch.eye(4)[None, :3].double(),
        torch.tensor([2.0]).double(),
        torch.tensor([2.0]).double(),
        torch.tensor([2.0]).double(),
        torch.tensor([2.0]).double(),
        4,
        4,
    )
    uv, depth = project(torch.tensor([[0.5, -0.5, -1.0]]).double(), cams, torch.tensor([0]))
    assert uv.tolist() == [[3.0, 3.0]]
    assert depth.tolist() == [1.0]


def test_distortion_matches_the_opencv_formula_computed_by_hand() -> None:
    # OpenCV's model at x = 0.3, y = -0.2 with k1 = 0.1, k2 = 0.01, k3 = 0.001, p1 = 0.002,
    # p2 = -0.003: r2 = 0.13, radial = 1 + 0.013 + 0.000169 + 0.000002197 = 1.013171197,
    # xd = 0.3 * radial + 2 * 0.002 * 0.3 * (-0.2) + (-0.003) * (0.13 + 0.18)
    #    = 0.3039513591 - 0.00024 - 0.00093 = 0.3027813591
    # yd = -0.2 * radial + 0.002 * (0.13 + 0.08) + 2 * (-0.003) * 0.3 * (-0.2)
    #    = -0.2026342394 + 0.00042 + 0.00036 = -0.2018542394
    xy = torch.tensor([[0.3, -0.2]], dtype=torch.float64)
    coeffs = torch.tensor([[0.1, 0.01, 0.001, 0.002, -0.003]], dtype=torch.float64)
    out = distort(xy, coeffs)
    assert out[0, 0].item() == pytest.approx(0.3027813591, abs=1e-10)
    assert out[0, 1].item() == pytest.approx(-0.2018542394, abs=1e-10)


def test_undistort_inverts_distort_across_the_image() -> None:
    gen = torch.Generator().manual_seed(0)
    xy = (torch.rand(500, 2, generator=gen, dtype=torch.float64) - 0.5) * 1.2
    coeffs = torch.tensor([[-0.25, 0.08, -0.01, 0.002, -0.0015]], dtype=torch.float64)
    back = undistort(distort(xy, coeffs), coeffs)
    assert torch.allclose(back, xy, atol=1e-10)
    # and the other way round: distort(undistort(p)) = p
    again = distort(undistort(xy, coeffs), coeffs)
    assert torch.allclose(again, xy, atol=1e-10)


@pytest.mark.parametrize("distortion", [False, True], ids=["pinhole", "opencv"])
def test_pixel_to_ray_to_point_projects_back_to_the_pixel(distortion: bool) -> None:
    cams = _cams(distortion)
    gen = torch.Generator().manual_seed(1)
    n = 300
    idx = torch.randint(0, len(cams), (n,), generator=gen)
    pixels = torch.rand(n, 2, generator=gen, dtype=torch.float64) * torch.tensor([64.0, 48.0])
    rays = pixel_rays(cams, idx, pixels)
    assert torch.allclose(rays.directions.norm(dim=-1), torch.ones(n, dtype=torch.float64))
    t = 1.0 + 5.0 * torch.rand(n, generator=gen, dtype=torch.float64)
    points = rays.origins + rays.directions * t[:, None]
    uv, depth = project(points, cams, idx)
    assert torch.allclose(uv, pixels, atol=1e-7)
    assert bool((depth > 0).all())


def test_camera_looks_along_minus_z_and_the_centre_pixel_sees_the_target() -> None:
    eye = torch.tensor([[0.0, -4.0, 1.0]], dtype=torch.float64)
    c2w = look_at(eye, torch.zeros_like(eye))
    # OpenGL: the camera's +z axis points away from the target
    assert torch.allclose(c2w[0, :, 2], eye[0] / eye[0].norm())
    cams = Cameras.from_fov(c2w, 33, 33, math.radians(50.0))
    rays = image_rays(cams, 0)
    centre = rays[torch.tensor([16 * 33 + 16])]
    assert torch.allclose(centre.directions[0], -eye[0] / eye[0].norm(), atol=1e-12)
    # +z (Blender's up) appears towards the top of the image (smaller v)
    uv, _ = project(torch.tensor([[0.0, 0.0, 0.5]], dtype=torch.float64), cams, torch.tensor([0]))
    assert uv[0, 1] < 16.5 and abs(uv[0, 0] - 16.5) < 1e-9


def test_lego_cameras_look_at_the_scene_centre() -> None:
    # the NeRF synthetic cameras sit on a sphere around the object: every centre ray passes
    # close to the origin (a check of the pose convention on real data)
    data = load_blender("../shared/data/nerf/lego_200", "test")
    cams = data.cameras
    centre = torch.tensor([[100.0, 100.0]]).repeat(len(cams), 1)
    rays = pixel_rays(cams, torch.arange(len(cams)), centre)
    t = -(rays.origins * rays.directions).sum(-1)
    closest = rays.origins + rays.directions * t[:, None]
    assert float(closest.norm(dim=-1).max()) < 0.1
    assert float(cams.fx[0]) == pytest.approx(0.5 * 200 / math.tan(0.5 * 0.6911112070083618))


def test_bad_cameras_are_clear_errors() -> None:
    c2w = orbit_poses(2, 3.0)
    ones = torch.ones(2)
    with pytest.raises(InputError, match="orthonormal"):
        Cameras(c2w * 2.0, ones, ones, ones, ones, 8, 8)
    with pytest.raises(InputError, match="positive"):
        Cameras(c2w, -ones, ones, ones, ones, 8, 8)
    with pytest.raises(InputError, match=r"\[N, 3, 4\]"):
        Cameras(c2w[:, :2], ones, ones, ones, ones, 8, 8)
    with pytest.raises(InputError, match="distortion"):
        Cameras(c2w, ones, ones, ones, ones, 8, 8, torch.zeros(2, 4))
    with pytest.raises(InputError, match="field of view"):
        Cameras.from_fov(c2w, 8, 8, 4.0)
