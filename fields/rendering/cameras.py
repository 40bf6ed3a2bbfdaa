"""Pinhole cameras with OpenCV radial/tangential distortion, in the OpenGL camera-to-world
convention of Blender and nerfstudio ``transforms.json`` files.

Conventions
-----------
* ``camera_to_world [N, 3, 4]`` (or ``[N, 4, 4]``, the last row ignored) maps camera coordinates
  to world coordinates; its columns are the camera's x (right), y (up) and z (backwards) axes and
  its position. A camera looks along its **-z** axis (OpenGL, as Blender and nerfstudio write).
* Pixels: ``u`` grows to the right, ``v`` downwards; the centre of pixel ``(i, j)`` (column ``i``,
  row ``j``) is ``(i + 0.5, j + 0.5)``.
* Intrinsics ``fx, fy, cx, cy`` in pixels. The normalised image coordinates of the OpenCV model
  are ``x = X / Z``, ``y = Y / Z`` in the OpenCV camera frame (x right, y down, z forwards), i.e.
  ``(X, Y, Z) = (x_gl, -y_gl, -z_gl)``.
* Distortion (OpenCV ``k1, k2, p1, p2, k3``; stored as ``[k1, k2, k3, p1, p2]``, nerfstudio's
  order of names):

  .. math::

      r^2 = x^2 + y^2, \\quad \\rho = 1 + k_1 r^2 + k_2 r^4 + k_3 r^6

      x_d = x \\rho + 2 p_1 x y + p_2 (r^2 + 2 x^2), \\qquad
      y_d = y \\rho + p_1 (r^2 + 2 y^2) + 2 p_2 x y

  :func:`undistort` inverts it by Newton's method on the 2x2 Jacobian (a fixed number of
  iterations, no host sync).

Example: a 4x4 image with ``fx = fy = 2``, ``cx = cy = 2`` and the identity pose sees the world
point ``(0.5, -0.5, -1)`` at pixel ``(3, 3)`` (:func:`project`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from neurosim.backend import InputError, check_tensor

DISTORTION_NAMES = ("k1", "k2", "k3", "p1", "p2")


@dataclass(frozen=True)
class Cameras:
    """A batch of ``N`` pinhole cameras sharing one image size.

    Attributes:
        camera_to_world: ``[N, 3, 4]`` OpenGL camera-to-world matrices.
        fx, fy, cx, cy: ``[N]`` intrinsics in pixels.
        width, height: image size in pixels.
        distortion: ``[N, 5]`` OpenCV coefficients ``(k1, k2, k3, p1, p2)`` or ``None`` (pinhole).
    """

    camera_to_world: torch.Tensor
    fx: torch.Tensor
    fy: torch.Tensor
    cx: torch.Tensor
    cy: torch.Tensor
    width: int
    height: int
    distortion: torch.Tensor | None = None

    def __post_init__(self) -> None:
        c2w = check_tensor(self.camera_to_world, "camera_to_world [N, 3, 4]", ndim=3)
        if c2w.shape[1:] not in ((3, 4), (4, 4)):
            raise InputError(
                f"camera_to_world must be [N, 3, 4] or [N, 4, 4], got {tuple(c2w.shape)}"
            )
        if c2w.shape[1] == 4:
            object.__setattr__(self, "camera_to_world", c2w[:, :3, :])
        n = c2w.shape[0]
        for name in ("fx", "fy", "cx", "cy"):
            value = check_tensor(getattr(self, name), f"camera {name} [N]", ndim=1)
            if value.shape[0] != n:
                raise InputError(f"camera {name} has {value.shape[0]} entries for {n} cameras")
        if bool((self.fx <= 0).any()) or bool((self.fy <= 0).any()):
            raise InputError("camera focal lengths fx, fy must be positive")
        if int(self.width) < 1 or int(self.height) < 1:
            raise InputError(f"camera image size must be positive, got {self.width}x{self.height}")
        if self.distortion is not None:
            dist = check_tensor(self.distortion, "camera distortion [N, 5]", ndim=2)
            if dist.shape != (n, 5):
                raise InputError(
                    f"camera distortion must be [N, 5] (k1, k2, k3, p1, p2), got {tuple(dist.shape)}"
                )
        rot = self.camera_to_world[:, :, :3].double()
        eye = torch.eye(3, dtype=torch.float64, device=rot.device)
        orth = (rot.transpose(1, 2) @ rot - eye).abs().amax(dim=(1, 2))
        if bool((orth > 1e-3).any()):
            bad = int(torch.nonzero(orth > 1e-3)[0, 0])
            raise InputError(
                f"camera {bad}: the rotation part of camera_to_world is not orthonormal "
                f"(max |R^T R - I| = {float(orth[bad]):.3g}); expected a rigid camera-to-world pose"
            )

    def __len__(self) -> int:
        return int(self.camera_to_world.shape[0])

    @classmethod
    def from_fov(
        cls,
        camera_to_world: torch.Tensor,
        width: int,
        height: int,
        fov_x: float,
    ) -> Cameras:
        """Cameras with the horizontal field of view ``fov_x`` (radians), centred principal point.

        Blender's ``camera_angle_x``: ``fx = fy = 0.5 * width / tan(fov_x / 2)``.
        """
        if not 0 < fov_x < math.pi:
            raise InputError(f"field of view must be in (0, pi) radians, got {fov_x}")
        n = camera_to_world.shape[0]
        focal = 0.5 * width / math.tan(0.5 * fov_x)
        full = torch.full((n,), focal, dtype=camera_to_world.dtype, device=camera_to_world.device)
        return cls(
            camera_to_world,
            full,
            full.clone(),
            torch.full_like(full, width / 2),
            torch.full_like(full, height / 2),
            width,
            height,
        )

    def to(self, device: torch.device | str) -> Cameras:
        """The same cameras on ``device``."""
        dist = None if self.distortion is None else self.distortion.to(device)
        return Cameras(
            self.camera_to_world.to(device),
            self.fx.to(device),
            self.fy.to(device),
            self.cx.to(device),
            self.cy.to(device),
            self.width,
            self.height,
            dist,
        )

    def __getitem__(self, index: int | slice | torch.Tensor) -> Cameras:
        if isinstance(index, int):
            index = slice(index, index + 1)
        dist = None if self.distortion is None else self.distortion[index]
        return Cameras(
            self.camera_to_world[index],
            self.fx[index],
            self.fy[index],
            self.cx[index],
            self.cy[index],
            self.width,
            self.height,
            dist,
        )

    def scaled(self, factor: float) -> Cameras:
        """Cameras of the same views for images resized by ``factor`` (e.g. 0.5 to halve them).

        Pixel edges scale with the image, so ``cx`` and ``cy`` (measured from the top-left corner)
        scale like the focal lengths.
        """
        width = round(self.width * factor)
        height = round(self.height * factor)
        sx, sy = width / self.width, height / self.height
        return Cameras(
            self.camera_to_world,
            self.fx * sx,
            self.fy * sy,
            self.cx * sx,
            self.cy * sy,
            width,
            height,
            self.distortion,
        )


# ---------------------------------------------------------------------------------------------
# distortion


def distort(xy: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """OpenCV radial/tangential distortion of normalised image points.

    Args:
        xy: ``[..., 2]`` undistorted normalised coordinates ``(x, y)``.
        coeffs: ``[..., 5]`` ``(k1, k2, k3, p1, p2)`` broadcastable against ``xy``.

    Returns:
        ``[..., 2]`` distorted coordinates (see the module docstring).
    """
    x, y = xy[..., 0], xy[..., 1]
    k1, k2, k3, p1, p2 = coeffs.unbind(-1)
    r2 = x * x + y * y
    radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    xd = x * radial + 2.0 * p1 * x * y + p2 * (r2 + 2.0 * x * x)
    yd = y * radial + p1 * (r2 + 2.0 * y * y) + 2.0 * p2 * x * y
    return torch.stack((xd, yd), dim=-1)


def _distortion_jacobian(
    x: torch.Tensor, y: torch.Tensor, coeffs: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Partial derivatives ``d(xd, yd) / d(x, y)`` of :func:`distort`."""
    k1, k2, k3, p1, p2 = coeffs.unbind(-1)
    r2 = x * x + y * y
    radial = 1.0 + r2 * (k1 + r2 * (k2 + r2 * k3))
    dradial = k1 + r2 * (2.0 * k2 + 3.0 * k3 * r2)  # d radial / d r2
    dxd_dx = radial + 2.0 * x * x * dradial + 2.0 * p1 * y + 6.0 * p2 * x
    dxd_dy = 2.0 * x * y * dradial + 2.0 * p1 * x + 2.0 * p2 * y
    dyd_dx = 2.0 * x * y * dradial + 2.0 * p1 * x + 2.0 * p2 * y
    dyd_dy = radial + 2.0 * y * y * dradial + 6.0 * p1 * y + 2.0 * p2 * x
    return dxd_dx, dxd_dy, dyd_dx, dyd_dy


def undistort(xy_d: torch.Tensor, coeffs: torch.Tensor, iterations: int = 10) -> torch.Tensor:
    """Invert :func:`distort`: the undistorted points whose distortion is ``xy_d``.

    Newton's method from ``xy_d``, ``iterations`` steps (no convergence test, so no host sync;
    10 steps reach float32 precision for the distortions of real lenses inside the image).
    """
    x, y = xy_d[..., 0], xy_d[..., 1]
    for _ in range(iterations):
        current = distort(torch.stack((x, y), dim=-1), coeffs)
        fx = current[..., 0] - xy_d[..., 0]
        fy = current[..., 1] - xy_d[..., 1]
        a, b, c, d = _distortion_jacobian(x, y, coeffs)
        det = a * d - b * c
        det = torch.where(det.abs() < 1e-12, torch.full_like(det, 1e-12), det)
        x = x - (d * fx - b * fy) / det
        y = y - (a * fy - c * fx) / det
    return torch.stack((x, y), dim=-1)


# ---------------------------------------------------------------------------------------------
# projection and rays


def world_to_camera(points: torch.Tensor, camera_to_world: torch.Tensor) -> torch.Tensor:
    """``points [..., 3]`` in the frames of cameras ``[..., 3, 4]`` (OpenGL camera axes)."""
    rot = camera_to_world[..., :3, :3]
    trans = camera_to_world[..., :3, 3]
    return ((points - trans).unsqueeze(-2) @ rot).squeeze(-2)


def project(
    points: torch.Tensor, cameras: Cameras, camera_indices: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel coordinates of world points seen by the given cameras.

    Args:
        points: ``[M, 3]`` world points.
        cameras: the cameras.
        camera_indices: ``[M]`` which camera sees each point.

    Returns:
        ``(uv [M, 2], depth [M])``: pixel coordinates ``(u, v)`` (continuous; pixel centres at
        ``+ 0.5``) and the depth along the viewing axis (positive in front of the camera).
    """
    check_tensor(points, "project points [M, 3]", ndim=2)
    if points.shape[1] != 3:
        raise InputError(f"project points must be [M, 3], got {tuple(points.shape)}")
    idx = camera_indices.long()
    p = world_to_camera(points, cameras.camera_to_world[idx])
    depth = -p[:, 2]
    xy = torch.stack((p[:, 0] / depth, -p[:, 1] / depth), dim=-1)  # OpenCV normalised coords
    if cameras.distortion is not None:
        xy = distort(xy, cameras.distortion[idx])
    u = cameras.fx[idx] * xy[:, 0] + cameras.cx[idx]
    v = cameras.fy[idx] * xy[:, 1] + cameras.cy[idx]
    return torch.stack((u, v), dim=-1), depth


class Rays:
    """A batch of rays: ``origins [N, 3]`` and unit ``directions [N, 3]`` (world frame).

    ``camera_indices [N]`` (long) remembers which camera cast each ray (or ``None``).
    """

    __slots__ = ("camera_indices", "directions", "origins")

    def __init__(
        self,
        origins: torch.Tensor,
        directions: torch.Tensor,
        camera_indices: torch.Tensor | None = None,
    ) -> None:
        self.origins = origins
        self.directions = directions
        self.camera_indices = camera_indices

    def __len__(self) -> int:
        return int(self.origins.shape[0])

    def __getitem__(self, index: slice | torch.Tensor) -> Rays:
        cams = None if self.camera_indices is None else self.camera_indices[index]
        return Rays(self.origins[index], self.directions[index], cams)

    def to(self, device: torch.device | str) -> Rays:
        cams = None if self.camera_indices is None else self.camera_indices.to(device)
        return Rays(self.origins.to(device), self.directions.to(device), cams)


def pixel_rays(cameras: Cameras, camera_indices: torch.Tensor, pixels: torch.Tensor) -> Rays:
    """Rays through pixel positions.

    Args:
        cameras: the cameras.
        camera_indices: ``[N]`` camera of each ray.
        pixels: ``[N, 2]`` continuous pixel coordinates ``(u, v)`` (``+0.5`` for the centres).

    Returns:
        :class:`Rays` starting at the camera centres with unit directions (distortion removed
        with :func:`undistort`).
    """
    idx = camera_indices.long()
    x = (pixels[:, 0] - cameras.cx[idx]) / cameras.fx[idx]
    y = (pixels[:, 1] - cameras.cy[idx]) / cameras.fy[idx]
    xy = torch.stack((x, y), dim=-1)
    if cameras.distortion is not None:
        xy = undistort(xy, cameras.distortion[idx])
    # OpenCV (x, y, 1) -> OpenGL (x, -y, -1)
    local = torch.stack((xy[:, 0], -xy[:, 1], -torch.ones_like(xy[:, 0])), dim=-1)
    c2w = cameras.camera_to_world[idx]
    directions = (c2w[:, :3, :3] @ local.unsqueeze(-1)).squeeze(-1)
    directions = directions / directions.norm(dim=-1, keepdim=True)
    return Rays(c2w[:, :3, 3].clone(), directions, idx)


def image_rays(cameras: Cameras, index: int) -> Rays:
    """Every pixel centre's ray of camera ``index``, row-major (``[H * W]`` rays)."""
    if not 0 <= index < len(cameras):
        raise InputError(f"camera index {index} out of range for {len(cameras)} cameras")
    device = cameras.camera_to_world.device
    dtype = cameras.camera_to_world.dtype
    v, u = torch.meshgrid(
        torch.arange(cameras.height, device=device, dtype=dtype) + 0.5,
        torch.arange(cameras.width, device=device, dtype=dtype) + 0.5,
        indexing="ij",
    )
    pixels = torch.stack((u.reshape(-1), v.reshape(-1)), dim=-1)
    cams = torch.full((pixels.shape[0],), index, dtype=torch.long, device=device)
    return pixel_rays(cameras, cams, pixels)


def look_at(
    eye: torch.Tensor, target: torch.Tensor, up: torch.Tensor | None = None
) -> torch.Tensor:
    """OpenGL camera-to-world ``[N, 3, 4]`` of cameras at ``eye [N, 3]`` looking at ``target``.

    ``up`` (default ``+z``, Blender's) fixes the roll: the camera's y axis is the component of
    ``up`` orthogonal to the viewing direction.
    """
    if up is None:
        up = torch.tensor([0.0, 0.0, 1.0], dtype=eye.dtype, device=eye.device)
    up = up.expand_as(eye)
    back = eye - target  # +z of an OpenGL camera points away from the target
    back = back / back.norm(dim=-1, keepdim=True)
    right = torch.linalg.cross(up, back, dim=-1)
    norm = right.norm(dim=-1, keepdim=True)
    if bool((norm < 1e-8).any()):
        raise InputError("look_at: the up vector is parallel to the viewing direction")
    right = right / norm
    cam_up = torch.linalg.cross(back, right, dim=-1)
    return torch.stack((right, cam_up, back, eye), dim=-1)


def orbit_poses(
    n: int,
    radius: float,
    elevation_deg: float = 30.0,
    target: tuple[float, float, float] = (0.0, 0.0, 0.0),
    start_deg: float = 0.0,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``[n, 3, 4]`` cameras on a horizontal circle around ``target`` (a turntable), ``+z`` up."""
    az = torch.deg2rad(
        torch.linspace(0.0, 360.0, n + 1, dtype=torch.float64)[:n] + float(start_deg)
    )
    el = math.radians(elevation_deg)
    centre = torch.tensor(target, dtype=torch.float64)
    eye = (
        torch.stack(
            (
                radius * math.cos(el) * torch.cos(az),
                radius * math.cos(el) * torch.sin(az),
                torch.full_like(az, radius * math.sin(el)),
            ),
            dim=-1,
        )
        + centre
    )
    return look_at(eye, centre.expand_as(eye)).to(dtype)
