"""Budget sizing of the named baselines: ``size(budget, in_dim, out_dim, **options) -> specs``.

Each function returns the plain-data specs ``{"encoding", "decoder", "cam"}`` of one baseline
whose parameter count (all parameters, fixed ones included) fills ``budget``; the registry
(:mod:`fields.encodings`) attaches them to their encodings, and
:func:`fields.models.sized_model` looks them up by name. Keyword options are the overrides a
config's ``model_options`` may set; each function takes only its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fields.cam import default_normalization, default_resolution
from neurosim.backend import InputError


def mlp_params(in_dim: int, hidden: int, layers: int, out_dim: int) -> int:
    """Parameters of an ``in_dim -> hidden x (layers - 1) -> out_dim`` MLP with biases."""
    dims = [in_dim] + [hidden] * (layers - 1) + [out_dim]
    return sum((dims[i] + 1) * dims[i + 1] for i in range(layers))


def largest(fits: Callable[[int], bool], low: int, high: int) -> int:
    """The largest integer in ``[low, high]`` with ``fits`` true (``fits`` monotone; ``low`` if none)."""
    while low < high:
        mid = (low + high + 1) // 2
        if fits(mid):
            low = mid
        else:
            high = mid - 1
    return low


def cam_grid_params(
    in_dim: int, layers: int, resolution: int, width: int, per_feature: bool = False
) -> int:
    """Parameters of a CAM grid over ``in_dim`` axes for ``layers`` modulated layers.

    Paper form: one scale and one shift channel per layer (``2 * layers * resolution^D``);
    ``per_feature``: one pair per feature (times ``width``).
    """
    return 2 * layers * resolution**in_dim * (width if per_feature else 1)


def size_ffn(
    budget: int,
    in_dim: int,
    out_dim: int,
    *,
    num_frequencies: int = 128,
    sigma: float = 10.0,
    layers: int = 4,
) -> dict[str, Any]:
    """``ffn``: Fourier features and a ``layers``-layer ReLU MLP whose width fills the budget."""
    feat = 2 * num_frequencies + in_dim
    hidden = largest(lambda h: mlp_params(feat, h, layers, out_dim) <= budget, 4, 4096)
    return {
        "encoding": {"type": "fourier", "num_frequencies": num_frequencies, "sigma": sigma},
        "decoder": {"type": "mlp", "hidden": hidden, "layers": layers},
        "cam": None,
    }


def size_ffn_cam(
    budget: int,
    in_dim: int,
    out_dim: int,
    *,
    num_frequencies: int = 128,
    sigma: float = 10.0,
    layers: int = 4,
    cam_resolution: int | None = None,
    cam_per_feature: bool = False,
) -> dict[str, Any]:
    """``ffn_cam``: :func:`size_ffn` plus CAM over every coordinate in the paper's form (one
    scale and shift per layer; ``cam_per_feature`` for one per feature), the width re-solved so
    that the CAM grid is inside the budget. Grid resolution and normalisation default to the
    paper's for the coordinate dimension (:func:`fields.cam.default_resolution`: 32 x 32 for
    images, 64 in 1-D)."""
    res = int(cam_resolution or default_resolution(in_dim))
    feat = 2 * num_frequencies + in_dim
    hidden = largest(
        lambda h: (
            (
                mlp_params(feat, h, layers, out_dim)
                + cam_grid_params(in_dim, layers - 1, res, h, cam_per_feature)
            )
            <= budget
        ),
        4,
        4096,
    )
    spec = size_ffn(budget, in_dim, out_dim, num_frequencies=num_frequencies, sigma=sigma)
    spec["decoder"] = {"type": "mlp", "hidden": hidden, "layers": layers}
    spec["cam"] = {
        "coord_dims": list(range(in_dim)),
        "resolution": res,
        "per_feature": cam_per_feature,
        "normalization": default_normalization(in_dim),
    }
    if (
        mlp_params(feat, hidden, layers, out_dim)
        + cam_grid_params(in_dim, layers - 1, res, hidden, cam_per_feature)
        > budget
    ):
        raise InputError(
            f"parameter budget {budget} cannot hold a CAM grid of {res}^{in_dim} vertices; lower "
            "cam_resolution"
        )
    return spec


def size_siren(
    budget: int, in_dim: int, out_dim: int, *, layers: int = 5, omega_0: float = 30.0
) -> dict[str, Any]:
    """``siren``: a ``layers``-layer SIREN (5 by default: the reference's first layer, 3 hidden
    layers and the linear output), width filling the budget, on the coordinates mapped from the
    unit cube to [-1, 1] as in the SIREN reference code (its first-layer initialisation is
    designed to span several periods over [-1, 1]; on [0, 1] the first layer sees half that
    bandwidth). 256^2 astronaut, 65K parameters, 1,500 steps: 25.59 dB on [0, 1] with 4
    layers, 28.69 dB on [-1, 1], 30.42 dB with 5 layers (``docs/fields.md``)."""
    hidden = largest(lambda h: mlp_params(in_dim, h, layers, out_dim) <= budget, 4, 4096)
    return {
        "encoding": {"type": "identity", "low": -1.0, "high": 1.0},
        "decoder": {"type": "siren", "hidden": hidden, "layers": layers, "omega_0": omega_0},
        "cam": None,
    }


def _hashgrid_params(in_dim: int, options: dict[str, Any]) -> int:
    from fields.encodings.hashgrid import HashGrid

    grid = HashGrid(in_dim, **options)
    return sum(p.numel() for p in grid.parameters())


def size_hashgrid(
    budget: int,
    in_dim: int,
    out_dim: int,
    *,
    hash_levels: int = 16,
    mlp_hidden: int = 64,
    max_resolution: int | None = None,
) -> dict[str, Any]:
    """``hashgrid``: ``hash_levels`` levels x 2 features and a ``mlp_hidden``-wide 3-layer MLP;
    the largest power-of-two table that keeps the total within 10% over the budget (tables
    double, so an exact fit is rarely possible)."""
    max_res = int(max_resolution or (2048 if in_dim <= 2 else 512))
    fpl = 2
    mlp = mlp_params(hash_levels * fpl, mlp_hidden, 3, out_dim)

    def grid_opts(t: int) -> dict[str, Any]:
        # Keep the coarsest level dense (base^D <= table): with every level hashed there is
        # no collision-free low-frequency component, and small fields fill empty space with
        # hash noise (a 30K-parameter 3-D grid with base 16 in a 2^9 table: SDF IoU 0.21,
        # with base 8: 0.98 on the generated torus).
        base = min(16, max(2, round((2**t) ** (1.0 / in_dim)) + 1))
        while base > 2 and base**in_dim > 2**t:
            base -= 1
        return {
            "n_levels": hash_levels,
            "n_features_per_level": fpl,
            "log2_hashmap_size": t,
            "base_resolution": base,
            "per_level_scale": None,
            "max_resolution": max_res,
        }

    log2 = largest(lambda t: _hashgrid_params(in_dim, grid_opts(t)) + mlp <= 1.1 * budget, 3, 24)
    return {
        "encoding": {"type": "hashgrid", **grid_opts(log2)},
        "decoder": {"type": "mlp", "hidden": mlp_hidden, "layers": 3},
        "cam": None,
    }


def size_neurbf(
    budget: int,
    in_dim: int,
    out_dim: int,
    *,
    features: int = 32,
    neighbors: int = 4,
    kind: str = "inverse_quadratic",
    learn_positions: bool = False,
    grid_log2_hashmap_size: int = 12,
    max_resolution: int | None = None,
    mlp_hidden: int = 64,
) -> dict[str, Any]:
    """``neurbf``: a 2-level grid (``2^grid_log2_hashmap_size`` table; finest resolution dense
    in it unless ``max_resolution`` says otherwise, coarsest a quarter of it), a ``mlp_hidden``
    3-layer MLP with the first-layer sinusoid, and as many adaptive kernels (``features``
    channels, ``neighbors`` nearest) as the rest allows (centres and shape matrices counted,
    though fixed during training unless ``learn_positions``)."""
    # the finest level fits its table densely unless max_resolution says otherwise: a hashed
    # fine level this small is mostly collisions (measured: -2.7 dB on the 256^2 image)
    dense_res = max(2, round(2 ** (grid_log2_hashmap_size / in_dim)))
    while dense_res**in_dim > 2**grid_log2_hashmap_size:
        dense_res -= 1
    grid_max = int(max_resolution or dense_res)
    grid = {
        "type": "hashgrid",
        "n_levels": 2,
        "n_features_per_level": 2,
        "log2_hashmap_size": grid_log2_hashmap_size,
        "base_resolution": max(2, min(16, grid_max // 4)),
        "per_level_scale": None,
        "max_resolution": grid_max,
    }
    grid_params = _hashgrid_params(in_dim, {k: v for k, v in grid.items() if k != "type"})
    mlp = mlp_params(4 + features, mlp_hidden, 3, out_dim)
    per_kernel = features + in_dim + in_dim * in_dim
    rest = budget - grid_params - mlp - (4 + features)
    if rest < 16 * per_kernel:
        raise InputError(
            f"parameter budget {budget} leaves too few for NeuRBF kernels "
            f"(needs > {budget - rest + 16 * per_kernel})"
        )
    return {
        "encoding": {
            "type": "neurbf",
            "rbf": {
                "num_kernels": rest // per_kernel,
                "features": features,
                "neighbors": neighbors,
                "kind": kind,
                "learn_positions": learn_positions,
            },
            "grid": grid,
        },
        "decoder": {"type": "mlp", "hidden": mlp_hidden, "layers": 3, "first_sine": [10.0, 100.0]},
        "cam": None,
    }
