"""Hash grid: tiny-cuda-nn alignment (against a per-point loop written from grid.h), the torch
reference against the plain-autograd path (gradients and double backward included), the module,
configuration and bad input."""

from __future__ import annotations

import ctypes
import ctypes.util
import math
from collections.abc import Callable
from typing import cast

import numpy as np
import pytest
import torch

from fields.encodings.hashgrid import (
    INIT_SCALE,
    HashGrid,
    HashGridConfig,
    hashgrid_encode,
    hashgrid_encode_autograd,
    hashgrid_encode_reference,
)
from neurosim.backend import BackendUnavailableError, InputError, kernels

# tiny-cuda-nn's coherent_prime_hash factors (include/tiny-cuda-nn/common_device.h), written
# here from its source: the module's own PRIMES are never used as the expected values.
TCNN_PRIMES = (1, 2654435761, 805459861, 3674653429)


def _c_function(name: str, n_args: int) -> Callable[..., float]:
    lib = ctypes.CDLL(ctypes.util.find_library("m"))
    function = getattr(lib, name)
    function.restype = ctypes.c_float
    function.argtypes = [ctypes.c_float] * n_args
    return cast(Callable[..., float], function)


LOG2F, EXP2F, FMAF = _c_function("log2f", 1), _c_function("exp2f", 1), _c_function("fmaf", 3)
F32 = np.float32


def _tcnn_host_layout(
    dim: int, n_levels: int, log2_size: int, base: int, per_level_scale: float
) -> list[tuple[float, int, int, int]]:
    """``(scale, resolution, params_in_level, offset)`` per level, as tiny-cuda-nn's
    ``GridEncodingTemplated`` constructor computes them on the host (grid.h and
    common_device.h): the JSON ``per_level_scale`` cast to float, ``std::log2`` of a float
    (``log2f``), ``grid_scale = exp2f(level * log2_scale) * base_resolution - 1.0f`` and
    ``grid_resolution = (uint32_t)ceilf(scale) + 1``, every operation in float32."""
    log2_scale = F32(LOG2F(F32(per_level_scale)))
    out = []
    offset = 0
    for level in range(n_levels):
        scale = F32(F32(EXP2F(F32(F32(level) * log2_scale))) * F32(base)) - F32(1.0)
        resolution = int(np.ceil(scale)) + 1
        max_params = 0xFFFFFFFF // 2
        dense = max_params if float(resolution) ** dim > float(max_params) else resolution**dim
        params = -(-dense // 8) * 8
        params = min(params, 1 << log2_size)
        out.append((float(scale), resolution, params, offset))
        offset += params
    return out


def _fmaf(a: float, b: float, c: float) -> np.float32:
    return F32(FMAF(a, b, c))


def _loop_encode(x: np.ndarray, params: np.ndarray, cfg: HashGridConfig) -> np.ndarray:
    """Point by point, corner by corner, as tiny-cuda-nn's kernel_grid does (float64 weights).

    Independent of the vectorised code: the layout comes from :func:`_tcnn_host_layout`, the
    position from the C library's ``fmaf`` (one rounding, as ``pos_fract``), the dense/hash
    choice and the uint32 arithmetic from ``grid_index``/``lcg_hash`` with the primes above.
    """
    dim, feats = cfg.in_dim, cfg.n_features_per_level
    layout = _tcnn_host_layout(
        dim, cfg.n_levels, cfg.log2_hashmap_size, cfg.base_resolution, cfg.per_level_scale
    )
    table = params.reshape(-1, feats)
    out = np.zeros((x.shape[0], cfg.n_levels * feats))
    for i, point in enumerate(x):
        for level, (scale, res, size, offset) in enumerate(layout):
            pos = np.array([_fmaf(scale, float(v), 0.5) for v in point], dtype=np.float32)
            cell = np.floor(pos).astype(np.int64)
            frac = (pos - cell).astype(np.float64)
            if cfg.interpolation == "smoothstep":
                frac = frac * frac * (3.0 - 2.0 * frac)
            for corner in range(2**dim):
                weight = 1.0
                vertex = []
                for d in range(dim):
                    bit = (corner >> d) & 1
                    weight *= frac[d] if bit else 1.0 - frac[d]
                    vertex.append(int(cell[d]) + bit)
                if res**dim <= size:  # dense, possibly wrapping at the top face
                    index = sum(v * res**d for d, v in enumerate(vertex)) % size
                else:
                    h = 0
                    for d, v in enumerate(vertex):
                        h ^= (v * TCNN_PRIMES[d]) & 0xFFFFFFFF
                    index = h % size
                out[i, level * feats : (level + 1) * feats] += weight * table[offset + index]
    return out


CONFIGS = [
    HashGridConfig(1, n_levels=3, log2_hashmap_size=4, base_resolution=5, per_level_scale=2.5),
    HashGridConfig(2, n_levels=4, log2_hashmap_size=7, base_resolution=3, per_level_scale=2.0),
    HashGridConfig(3, n_levels=4, log2_hashmap_size=8, base_resolution=2, per_level_scale=1.9),
    HashGridConfig(
        3, n_levels=3, log2_hashmap_size=9, base_resolution=4, interpolation="smoothstep"
    ),
    HashGridConfig(4, n_levels=3, n_features_per_level=3, log2_hashmap_size=8, base_resolution=2),
    HashGridConfig(2, n_levels=2, n_features_per_level=1, log2_hashmap_size=7, base_resolution=9),
]


def _ids(cfg: HashGridConfig) -> str:
    return f"{cfg.in_dim}d-F{cfg.n_features_per_level}-{cfg.interpolation}"


def _inputs(
    cfg: HashGridConfig, n: int, dtype: torch.dtype, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, cfg.in_dim, generator=gen, dtype=torch.float64)
    x[:4] = torch.tensor([0.0, 1.0, 0.5, 1.0])[:4, None]  # the faces of the domain
    params = torch.rand(cfg.n_params, generator=gen, dtype=torch.float64) * 2 - 1
    return x.to(dtype), params.to(dtype)


@pytest.mark.parametrize("backend", ["torch", "numba"])
@pytest.mark.parametrize("cfg", CONFIGS, ids=_ids)
def test_matches_tiny_cuda_nn_rules_point_by_point(cfg: HashGridConfig, backend: str) -> None:
    levels = cfg.levels
    assert any(not lv.hashed for lv in levels), "config should exercise a dense level"
    if cfg.in_dim > 1:
        assert any(lv.hashed for lv in levels), "config should exercise a hashed level"
    x, params = _inputs(cfg, 40, torch.float32)
    expected = _loop_encode(x.numpy(), params.numpy().astype(np.float64), cfg)
    got = hashgrid_encode(x, params, cfg, backend=backend)
    assert got.shape == (40, cfg.out_dim) and got.dtype == torch.float32
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_level_geometry_follows_tiny_cuda_nn() -> None:
    cfg = HashGridConfig.from_max_resolution(3, 2048, n_levels=16, base_resolution=16)
    levels = cfg.levels
    assert levels[0].scale == 15.0 and levels[0].resolution == 16
    assert levels[-1].resolution == 2048
    assert math.isclose(cfg.per_level_scale, 128 ** (1 / 15))
    offset = 0
    for lv in levels:
        assert lv.resolution == math.ceil(lv.scale) + 1
        assert lv.offset == offset and lv.size % 8 == 0
        assert lv.hashed == (lv.resolution**3 > lv.size)
        assert lv.size == (2**19 if lv.hashed else ((lv.resolution**3 + 7) // 8) * 8)
        offset += lv.size
    assert cfg.n_params == offset * 2 and cfg.out_dim == 32
    assert [lv.hashed for lv in levels][:3] == [False, False, False]  # 16^3, 23^3, 31^3 fit
    assert cfg.tcnn_config()["otype"] == "HashGrid"


def test_compiled_path_rounds_positions_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``compile`` backend is ``torch.compile(hashgrid_encode_autograd)``: that function
    takes its positions from ``grid_position`` (a spy sees every level), and ``grid_position``
    compiled by inductor still rounds once, bit for bit against ``fmaf`` (compiling this small
    function costs seconds where the whole encoder costs a minute on 2 cores)."""
    import fields.encodings.hashgrid as hashgrid

    seen: list[float] = []
    original = hashgrid.grid_position

    def spy(x: torch.Tensor, scale: float) -> torch.Tensor:
        seen.append(scale)
        return original(x, scale)

    cfg = HashGridConfig(2, n_levels=3, log2_hashmap_size=8, base_resolution=5, per_level_scale=1.7)
    monkeypatch.setattr(hashgrid, "grid_position", spy)
    hashgrid_encode_autograd(torch.rand(9, 2), torch.zeros(cfg.n_params), cfg)
    assert seen == [lv.scale for lv in cfg.levels]
    monkeypatch.undo()

    compiled = torch.compile(original, fullgraph=True)
    rng = np.random.default_rng(11)
    x = rng.random((2, 3000)).astype(np.float32)
    x[:, :500] *= (2.0 ** -rng.integers(4, 30, 500)).astype(np.float32)
    scale = float(F32(cfg.levels[2].scale))
    expected = np.array([[_fmaf(scale, float(v), 0.5) for v in row] for row in x], np.float32)
    np.testing.assert_array_equal(compiled(torch.from_numpy(x), scale).numpy(), expected)
    twice = F32(x * F32(scale)) + F32(0.5)
    assert (twice != expected).sum() >= 20  # the case is exercised


def _scan_configs() -> list[HashGridConfig]:
    """1,200 configurations: dims 1-4, 1-32 levels, 1-8 features, tables 2^3..2^24, base
    resolutions 2-96, per_level_scale given directly (half) or from a max resolution (half)."""
    rng = np.random.default_rng(2024)
    configs = []
    for i in range(1200):
        dim = 1 + i % 4
        n_levels = int(rng.choice([1, 2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32]))
        feats = int(rng.choice([1, 2, 4, 8]))
        log2_size = int(rng.integers(3, 25))
        base = int(rng.choice([2, 3, 4, 5, 8, 12, 16, 17, 24, 32, 33, 64, 96]))
        common = {"n_features_per_level": feats, "log2_hashmap_size": log2_size}
        top = max(base, min(2**20, base * 2 ** max(n_levels - 1, 0)))
        if i % 2 and n_levels > 1:
            max_res = int(rng.integers(base, top + 1))
            configs.append(
                HashGridConfig.from_max_resolution(dim, max_res, n_levels, base, **common)
            )
        else:
            limit = (top / base) ** (1 / max(n_levels - 1, 1))
            scale = float(rng.choice([1.0, 1.26, 1.3819, 1.5, 2.0, rng.uniform(1.0, limit)]))
            scale = min(scale, limit)
            configs.append(
                HashGridConfig(dim, n_levels, base_resolution=base, per_level_scale=scale, **common)
            )
    return configs


def test_layout_equals_tiny_cuda_nn_host_arithmetic_over_1200_configs() -> None:
    configs = _scan_configs()
    assert len(configs) >= 1000 and {c.in_dim for c in configs} == {1, 2, 3, 4}
    sensitive = 0
    for cfg in configs:
        expected = _tcnn_host_layout(
            cfg.in_dim, cfg.n_levels, cfg.log2_hashmap_size, cfg.base_resolution,
            cfg.per_level_scale,
        )  # fmt: skip
        got = [(lv.scale, lv.resolution, lv.size, lv.offset) for lv in cfg.levels]
        assert got == expected, cfg
        last = expected[-1]
        assert cfg.n_params == (last[2] + last[3]) * cfg.n_features_per_level
        for lv in cfg.levels:
            assert lv.hashed == (lv.size < lv.resolution**cfg.in_dim)
        # configurations whose resolutions differ from exact (float64) maths are the ones that
        # single-precision rounding decides: the scan must contain some
        g = np.float64(np.float32(cfg.per_level_scale))
        exact = [math.ceil(cfg.base_resolution * g**level - 1) + 1 for level in range(cfg.n_levels)]
        sensitive += exact != [lv.resolution for lv in cfg.levels]
    assert sensitive >= 20


def test_issue_example_and_powers_of_two_have_known_layouts() -> None:
    # issue 12: tiny-cuda-nn gives 129 vertices at the finest level and 48,016 parameters
    cfg = HashGridConfig.from_max_resolution(2, 128, 8, 2)
    assert [lv.resolution for lv in cfg.levels] == [2, 4, 7, 12, 22, 40, 71, 129]
    assert cfg.n_params == 48016
    # per_level_scale 2: log2f(2) = 1 and exp2f(l) = 2^l exactly, so s_l = b 2^l - 1
    cfg = HashGridConfig(3, 6, log2_hashmap_size=12, base_resolution=5, per_level_scale=2.0)
    assert [lv.scale for lv in cfg.levels] == [4.0, 9.0, 19.0, 39.0, 79.0, 159.0]
    sizes = [lv.size for lv in cfg.levels]
    assert sizes == [128, 1000, 4096, 4096, 4096, 4096]  # 5^3 -> 128, 10^3 = 1000, then 2^12
    assert cfg.n_params == 2 * sum(sizes)


def test_positions_are_rounded_once_like_fmaf() -> None:
    """``scale * x + 1/2`` rounded once (tiny-cuda-nn's ``fmaf``), bit for bit: random points
    at several level scales, and points where rounding a float64 result to float32 would
    round twice (x = a 2^-34, s = b 2^-20 with a b = 1 mod 2^29: x s + 1/2 lies 2^-54 above
    a float32 tie)."""
    from fields.encodings.hashgrid import grid_position

    rng = np.random.default_rng(7)
    x = rng.random(4000).astype(np.float32)
    x[:1000] *= (2.0 ** -rng.integers(4, 30, 1000)).astype(np.float32)
    for scale in (15.0, 22.25, 127.00002, 2047.0, 1.0000001, 2.6228948):
        s32 = float(F32(scale))
        expected = np.array([_fmaf(s32, float(v), 0.5) for v in x], dtype=np.float32)
        got = grid_position(torch.from_numpy(x), s32).numpy()
        np.testing.assert_array_equal(got, expected)
    for a, b in [(6524473, 8388617), (8228825, 8388713), (13722405, 8388781)]:
        xv, sv = a / 2**34, b / 2**20
        expected_v = _fmaf(sv, xv, 0.5)
        assert float(F32(F32(np.float64(xv) * sv + 0.5))) != float(expected_v)  # double rounding
        assert float(grid_position(torch.tensor([xv]), sv)[0]) == float(expected_v)
    # the derivative still flows: d pos / d x = scale
    xg = torch.tensor([0.3, 0.7], requires_grad=True)
    grid_position(xg, 15.0).sum().backward()
    assert xg.grad is not None and xg.grad.tolist() == [15.0, 15.0]


@pytest.mark.parametrize("backend", ["torch", "triton", "numba"])
def test_every_backend_interpolates_at_the_fmaf_position(backend: str) -> None:
    """One 1-D dense level (``s = 15``) with rows ``theta[i] = i mod 2``: the output is exactly
    the fraction ``t`` (even cells) or ``1 - t`` (odd cells) of the float32 position
    ``fmaf(s, x, 1/2)``, so a position rounded twice (about 1 point in 40) shows up bit for bit.
    One level keeps the compiled graph small."""
    cfg = HashGridConfig(1, n_levels=1, n_features_per_level=1, base_resolution=16)
    params = torch.zeros(cfg.n_params)
    for lv in cfg.levels:
        params[lv.offset : lv.offset + lv.size] = (torch.arange(lv.size) % 2).float()
    rng = np.random.default_rng(3)
    x = rng.random(2000).astype(np.float32)
    got = hashgrid_encode(torch.from_numpy(x)[:, None], params, cfg, backend=backend).numpy()
    for level, lv in enumerate(cfg.levels):
        pos = np.array([_fmaf(lv.scale, float(v), 0.5) for v in x], dtype=np.float32)
        cell = np.floor(pos)
        t = pos - cell
        expected = np.where(cell % 2 == 0, t, F32(1.0) - t)
        np.testing.assert_array_equal(got[:, level], expected)
        twice = F32(x * F32(lv.scale)) + F32(0.5)
        assert (twice != pos).sum() >= 20  # the case is exercised


@pytest.mark.parametrize("cfg", CONFIGS, ids=_ids)
def test_reference_matches_autograd_path_with_gradients(cfg: HashGridConfig) -> None:
    x, params = _inputs(cfg, 64, torch.float64, seed=1)
    # keep points off the faces and cell boundaries for the input gradient (piecewise smooth)
    x = x.clamp(0.01, 0.99)
    xs = [x.clone().requires_grad_(True) for _ in range(2)]
    ps = [params.clone().requires_grad_(True) for _ in range(2)]
    y_ref = hashgrid_encode_reference(xs[0], ps[0], cfg)
    y_ag = hashgrid_encode_autograd(xs[1], ps[1], cfg)
    torch.testing.assert_close(y_ref, y_ag, rtol=1e-12, atol=1e-12)
    w = torch.randn(y_ref.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    grads_ref = torch.autograd.grad((y_ref * w).sum(), (xs[0], ps[0]), create_graph=True)
    grads_ag = torch.autograd.grad((y_ag * w).sum(), (xs[1], ps[1]), create_graph=True)
    for a, b in zip(grads_ref, grads_ag, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
    assert float(grads_ref[1].detach().abs().sum()) > 0
    assert float(grads_ref[0].detach().abs().sum()) > 0
    # double backward: a loss on dy/dx (an eikonal-style term) differentiates through both
    second_ref = torch.autograd.grad(
        grads_ref[0].pow(2).sum(), (xs[0], ps[0]), allow_unused=True, materialize_grads=True
    )
    second_ag = torch.autograd.grad(
        grads_ag[0].pow(2).sum(), (xs[1], ps[1]), allow_unused=True, materialize_grads=True
    )
    for a, b in zip(second_ref, second_ag, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    assert float(second_ref[1].detach().abs().sum()) > 0


def test_gradcheck_reference() -> None:
    cfg = HashGridConfig(
        2, n_levels=3, log2_hashmap_size=6, base_resolution=3, interpolation="smoothstep"
    )
    x, params = _inputs(cfg, 12, torch.float64, seed=3)
    x = x[4:].clamp(0.05, 0.95).requires_grad_(True)
    params.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a, b: hashgrid_encode_reference(a, b, cfg), (x, params), eps=1e-6, atol=1e-6
    )


def test_interpolation_is_exact_on_a_linear_field() -> None:
    """A single dense level whose table holds f(v) = a . v reproduces a . (s x + 1/2) exactly."""
    cfg = HashGridConfig(
        3, n_levels=1, n_features_per_level=1, log2_hashmap_size=12, base_resolution=9
    )
    level = cfg.levels[0]
    assert not level.hashed
    r = level.resolution
    a = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(*[torch.arange(r)] * 3, indexing="ij"), -1)  # [u0,u1,u2]
    table = torch.zeros(level.size, dtype=torch.float64)
    flat = grid[..., 0] + grid[..., 1] * r + grid[..., 2] * r * r
    table[flat.reshape(-1)] = (grid.to(torch.float64) @ a).reshape(-1)
    x = torch.rand(50, 3, dtype=torch.float64) * (r - 1.5) / level.scale  # stay inside the grid
    got = hashgrid_encode(x, table, cfg, backend="torch")
    torch.testing.assert_close(got[:, 0], (level.scale * x + 0.5) @ a)


def test_module_init_shapes_and_tcnn_loading() -> None:
    gen = torch.Generator().manual_seed(0)
    grid = HashGrid(3, n_levels=5, log2_hashmap_size=10, base_resolution=4, generator=gen)
    assert grid.params.shape == (grid.config.n_params,)
    assert float(grid.params.detach().abs().max()) <= INIT_SCALE
    assert float(grid.params.detach().std()) > INIT_SCALE / 4  # uniform, not constant
    x = torch.rand(2, 7, 3)
    y = grid(x)
    assert y.shape == (2, 7, grid.out_dim) == (2, 7, 10)
    torch.testing.assert_close(
        y.reshape(-1, 10), hashgrid_encode(x.reshape(-1, 3), grid.params, grid.config)
    )
    new = torch.randn(grid.config.n_params)
    grid.load_tcnn_params(new)
    torch.testing.assert_close(grid.params.detach(), new)
    assert grid.level_table(2).shape == (grid.config.levels[2].size, 2)
    with pytest.raises(InputError, match="entries"):
        grid.load_tcnn_params(new[:-1])
    # the module's parameters train
    y = grid(torch.rand(16, 3)).pow(2).sum()
    y.backward()
    assert grid.params.grad is not None and float(grid.params.grad.abs().sum()) > 0


def test_bad_input_and_bad_options() -> None:
    grid = HashGrid(2, n_levels=2, log2_hashmap_size=6, base_resolution=4)
    with pytest.raises(InputError, match="unit cube"):
        grid(torch.tensor([[0.5, 1.5]]))
    with pytest.raises(InputError, match="unit cube"):
        grid(torch.tensor([[-1e-3, 0.5]]))
    with pytest.raises(InputError, match="NaN"):
        grid(torch.tensor([[float("nan"), 0.5]]))
    with pytest.raises(InputError, match="2-D coordinates"):
        grid(torch.rand(4, 3))
    with pytest.raises(InputError, match="floating-point"):
        grid(torch.ones(4, 2, dtype=torch.int64))
    for kwargs, fragment in [
        ({"in_dim": 5}, "in_dim"),
        ({"in_dim": 2, "interpolation": "cubic"}, "interpolation"),
        ({"in_dim": 2, "per_level_scale": 0.5}, "per_level_scale"),
        ({"in_dim": 2, "log2_hashmap_size": 40}, "log2_hashmap_size"),
        ({"in_dim": 2, "backend": "cuda_magic"}, "backend"),
        ({"in_dim": 2, "per_level_scale": None}, "max_resolution"),
        ({"in_dim": 2, "max_resolution": 64}, "not both"),
    ]:
        with pytest.raises(InputError, match=fragment):
            HashGrid(**kwargs)  # type: ignore[arg-type]


def test_backends_are_registered_and_auto_says_which() -> None:
    names = kernels.backends("hashgrid_encode")
    assert {"torch", "compile", "numba", "tcnn"} <= set(names)
    picked = kernels.resolve("hashgrid_encode", "auto", torch.device("cpu"))
    assert picked.backend == "numba" and "hashgrid_encode" in picked.reason
    reason = kernels.availability("hashgrid_encode", torch.device("cpu"))["tcnn"]
    assert reason is not None and "cuda" in reason
    choice = HashGrid(2, n_levels=2, log2_hashmap_size=6).backend_choice()
    assert choice.backend == "numba" and "auto picked" in choice.reason
    named = HashGrid(2, n_levels=2, log2_hashmap_size=6, backend="tcnn")
    with pytest.raises(BackendUnavailableError, match="tcnn"):
        named(torch.rand(3, 2))


def test_backward_recomputes_corners_when_they_are_not_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Large batches do not keep the forward's corner rows and weights; every backward path
    (kept or recomputed; with or without the points' gradient) gives the same gradients."""
    import fields.encodings.hashgrid as hashgrid

    cfg = CONFIGS[2]
    x, params = _inputs(cfg, 50, torch.float64, seed=4)
    for need_x in (True, False):
        grads = []
        for budget in (hashgrid.SAVED_INDEX_BYTES, 0):
            monkeypatch.setattr(hashgrid, "SAVED_INDEX_BYTES", budget)
            xi, pi = x.clone().requires_grad_(need_x), params.clone().requires_grad_(True)
            hashgrid_encode_reference(xi, pi, cfg).pow(2).sum().backward()
            grads.append((xi.grad, pi.grad))
        assert (grads[0][0] is not None) == need_x
        for a, b in zip(grads[0], grads[1], strict=True):
            if need_x or b is not None:
                assert a is not None and b is not None
                torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_top_face_wraps_in_dense_levels_like_tiny_cuda_nn() -> None:
    """At x = 1 the upper vertex is u = r (the +1/2 offset); tiny-cuda-nn then takes the dense
    index modulo T, reading the next row's start. The golden configs do reach that case."""
    from fields.encodings.hashgrid import _corner_index

    cfg = CONFIGS[1]
    level = cfg.levels[1]
    assert not level.hashed
    r = level.resolution
    pos = torch.full((2, 1), level.scale * 1.0 + 0.5)
    index = _corner_index(pos, level)
    u = int(pos[0, 0]) + 1
    assert u == r
    unwrapped = u + u * r
    assert unwrapped >= level.size  # the case exists ...
    rows = sorted(int(i) for i in index.flatten())
    # corners (r-1, r-1), (r, r-1), (r-1, r), (r, r): the last two wrap to the table's start
    expected = sorted(((r - 1 + a) + (r - 1 + b) * r) % level.size for a in (0, 1) for b in (0, 1))
    assert rows == expected and unwrapped % level.size in rows


def test_parallel_level_groups_give_the_same_gradients() -> None:
    """The backward scatters groups of levels (one per intra-op thread; mixed dense/hashed
    groups through a padded buffer): any grouping gives the one-level-at-a-time gradients bit
    for bit, and they match autograd's."""
    cfg = HashGridConfig(3, n_levels=5, log2_hashmap_size=9, base_resolution=3)
    assert [lv.hashed for lv in cfg.levels] == [False, False, True, True, True]
    x, params = _inputs(cfg, 300, torch.float32, seed=8)
    cot = torch.randn(300, cfg.out_dim, generator=torch.Generator().manual_seed(9))
    before = torch.get_num_threads()
    grads = []
    try:
        for threads in (1, 2, 3, 5):
            torch.set_num_threads(threads)
            p = params.clone().requires_grad_(True)
            (hashgrid_encode_reference(x, p, cfg) * cot).sum().backward()
            grads.append(p.grad)
    finally:
        torch.set_num_threads(before)
    for other in grads[1:]:
        torch.testing.assert_close(other, grads[0], rtol=0, atol=0)
    p = params.clone().requires_grad_(True)
    (hashgrid_encode_autograd(x, p, cfg) * cot).sum().backward()
    torch.testing.assert_close(grads[0], p.grad, rtol=1e-5, atol=1e-6)
