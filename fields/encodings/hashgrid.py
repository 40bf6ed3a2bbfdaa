"""Multiresolution hash grid encoding (Instant-NGP, Müller et al. 2022), aligned with tiny-cuda-nn.

For ``L`` levels ``l = 0 .. L-1`` with ``F`` features each, a point ``x`` in the unit cube
``[0, 1]^D`` (``D`` in 1..4) is encoded as the concatenation over levels of an interpolated
lookup into that level's table ``theta_l`` (``T_l`` rows of ``F`` features):

.. math::

    s_l = b \\cdot 2^{l \\log_2 g} - 1, \\qquad r_l = \\lceil s_l \\rceil + 1, \\qquad
    p = s_l x + \\tfrac12, \\qquad c = \\lfloor p \\rfloor, \\qquad t = S(p - c)

    y_l(x) = \\sum_{v \\in \\{0,1\\}^D} \\Big(\\prod_{d} (v_d\\, t_d + (1 - v_d)(1 - t_d))\\Big)\\,
    \\theta_l[h_l(c + v)]

with base resolution ``b``, per-level scale ``g``, ``S`` the identity (``linear``) or the
smoothstep ``S(t) = t^2 (3 - 2t)`` (``smoothstep``). This is tiny-cuda-nn's ``HashGrid``
convention exactly (``grid.h``): ``s_l`` counts cells, ``r_l`` vertices per axis, and the
``+ 1/2`` staggers the levels against each other.

Arithmetic, as tiny-cuda-nn's: ``s_l`` in float32 with the C library's ``log2f``/``exp2f``
(:func:`level_scales`; the host code that sizes the tables), so resolutions, table sizes and
offsets equal tiny-cuda-nn's for every configuration; the position ``p = s_l x + 1/2`` is
rounded once, as its ``fmaf`` (:func:`grid_position`; ``tl.fma`` in the Triton kernel).
tiny-cuda-nn's CUDA kernels recompute ``s_l`` on the device with fast-math ``exp2f``, which for
a ``per_level_scale`` that is not a power of two can differ from the host value in the last
bits; positions here use the host value.

The index of a vertex ``u`` at level ``l``:

* **dense** when the level's vertices fit its table (``r_l^D <= T_l``):
  ``h_l(u) = (sum_d u_d r_l^d) mod T_l``; since ``u_d`` can reach ``r_l`` at the top face
  (the ``+ 1/2`` offset) this wraps into the next row, as tiny-cuda-nn does;
* **hashed** otherwise: ``h_l(u) = (XOR_d u_d pi_d) mod 2^32 mod T_l`` with the Instant-NGP
  primes ``pi = (1, 2654435761, 805459861, 3674653429)``.

Table sizes: ``T_l = min(next_multiple(r_l^D, 8), 2^log2_hashmap_size)``. The parameters of all
levels are one flat vector, level after level, each ``[T_l, F]`` row-major: the layout of
tiny-cuda-nn's ``params``, so a ``tinycudann.Encoding`` parameter tensor loads directly
(:meth:`HashGrid.load_tcnn_params`). Initialisation is ``U(-1e-4, 1e-4)`` as in Instant-NGP.

Input domain: ``x`` must lie in ``[0, 1]^D`` (no NaN). Checking that reads a value back to the
host: on CPU tensors (no device sync there), and everywhere in debug mode
(``neurosim.backend.debug_checks()``, :mod:`neurosim.backend.debug`), anything else raises
:class:`~neurosim.backend.InputError`; on accelerators outside debug mode the forward never
synchronises and out-of-domain input gives unspecified (but memory-safe) values. Outputs are ``[N, L * F]``, level-major
(``y[:, l * F + f]``), again as tiny-cuda-nn.

Backends of the registered op ``hashgrid_encode`` (see :mod:`neurosim.backend.registry`):

* ``torch``: the reference, a custom autograd function with few temporaries, all laid out
  ``[2^D, N]`` with the points innermost (rows and weights built by broadcasting over the
  corners, one gather per level; the backward reuses the forward's rows and weights, or
  recomputes them above :data:`SAVED_INDEX_BYTES`). On the CPU it uses the intra-op threads:
  gathers over the corner rows and one ``scatter_add_`` per group of levels (one level per
  thread), where 1-D ``index_select``/``index_add_`` would run serially. Its backward is
  itself differentiable (through ``index_add_`` when its graph is recorded), so double
  backward (e.g. an eikonal loss on ``d y / d x``) works.
* ``numba``: compiled CPU loops (:mod:`fields.encodings._numba_hashgrid`), one pass over the
  points per level, split over the intra-op thread count; ``auto``'s choice on the CPU. It
  computes the forward and the table gradient; a gradient for ``x``, double backward and
  mixed/half precision run the reference.
* ``compile``: the plain differentiable maths (:func:`hashgrid_encode_autograd`) under
  ``torch.compile``; autograd derives the backward. ``auto`` picks it only on CUDA: on the CPU
  it compiles for minutes at large sizes and ran slower than the reference.
* ``triton``: forward and backward kernels (atomic adds into the table gradient); ``auto``'s
  choice on CUDA. No double backward.
* ``tcnn``: ``tinycudann.Encoding`` when that package imports (CUDA only, fp32 here); used
  only when named.

Example (one level, dense, 1-D, ``b = 2``: ``s = 1``, ``r = 2``, ``T = 8``): at ``x = 0.25``,
``p = 0.75``, so ``y = 0.25 theta[0] + 0.75 theta[1]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

import numpy as np
import torch
from torch import nn

from neurosim.backend import (
    Backend,
    InputError,
    Operation,
    Selection,
    check_tensor,
    compile_backend,
    debug_enabled,
    kernels,
    module_missing,
    numba_backend,
    triton_backend,
)

PRIMES: tuple[int, ...] = (1, 2654435761, 805459861, 3674653429)
"""Instant-NGP's spatial-hash primes (tiny-cuda-nn's ``coherent_prime_hash``), one per axis."""

INTERPOLATIONS = ("linear", "smoothstep")
MAX_DIM = len(PRIMES)
INIT_SCALE = 1e-4
"""Instant-NGP / tiny-cuda-nn initialise every table entry from ``U(-1e-4, 1e-4)``."""

Interpolation = Literal["linear", "smoothstep"]


@dataclass(frozen=True)
class HashGridLevel:
    """Geometry of one level (all derived from :class:`HashGridConfig`).

    Attributes:
        scale: ``s_l`` (float32-rounded, as tiny-cuda-nn computes it): cells per unit length.
        resolution: ``r_l = ceil(s_l) + 1`` vertices per axis.
        size: ``T_l`` rows of this level's table.
        offset: index of this level's first row in the flat ``[sum T_l, F]`` table.
        hashed: ``True`` when ``r_l^D > T_l`` (spatial hash), ``False`` for dense indexing.
    """

    scale: float
    resolution: int
    size: int
    offset: int
    hashed: bool


def _next_multiple(value: int, multiple: int) -> int:
    return (value + multiple - 1) // multiple * multiple


@dataclass(frozen=True)
class HashGridConfig:
    """Immutable hyper-parameters of a hash grid (hashable: a static argument of compiled code).

    Attributes:
        in_dim: ``D``, the coordinate dimension (1..4).
        n_levels: ``L``.
        n_features_per_level: ``F``.
        log2_hashmap_size: ``log2`` of the largest table size ``T``.
        base_resolution: ``b``; level 0 has ``b`` vertices per axis.
        per_level_scale: ``g``, the growth of the resolution from one level to the next.
        interpolation: ``"linear"`` or ``"smoothstep"``.
    """

    in_dim: int
    n_levels: int = 16
    n_features_per_level: int = 2
    log2_hashmap_size: int = 19
    base_resolution: int = 16
    per_level_scale: float = 2.0
    interpolation: Interpolation = "linear"

    def __post_init__(self) -> None:
        def positive_int(name: str, value: object, low: int = 1, high: int | None = None) -> None:
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InputError(f"HashGrid {name} must be an int >= {low}, got {value!r}")
            if high is not None and value > high:
                raise InputError(f"HashGrid {name} must be <= {high}, got {value!r}")

        positive_int("in_dim", self.in_dim, 1, MAX_DIM)
        positive_int("n_levels", self.n_levels, 1, 128)
        positive_int("n_features_per_level", self.n_features_per_level, 1, 64)
        positive_int("log2_hashmap_size", self.log2_hashmap_size, 3, 30)
        positive_int("base_resolution", self.base_resolution, 2)
        scale = self.per_level_scale
        if isinstance(scale, bool) or not isinstance(scale, int | float) or not scale >= 1.0:
            raise InputError(f"HashGrid per_level_scale must be a number >= 1, got {scale!r}")
        if not math.isfinite(float(scale)):
            raise InputError(f"HashGrid per_level_scale must be finite, got {scale!r}")
        if self.interpolation not in INTERPOLATIONS:
            raise InputError(
                f"HashGrid interpolation {self.interpolation!r} is not known; "
                f"expected one of {INTERPOLATIONS}"
            )
        if self.levels[-1].resolution > 2**24:
            raise InputError(
                f"HashGrid finest resolution {self.levels[-1].resolution} exceeds 2^24 "
                "(float32 positions could not resolve its cells); lower per_level_scale or n_levels"
            )

    @classmethod
    def from_max_resolution(
        cls,
        in_dim: int,
        max_resolution: int,
        n_levels: int = 16,
        base_resolution: int = 16,
        **kwargs: Any,
    ) -> HashGridConfig:
        """Pick ``per_level_scale = (max_resolution / base_resolution) ** (1 / (L - 1))``.

        With the tiny-cuda-nn convention the finest level then has ``s = max_resolution - 1``
        cells and ``max_resolution`` vertices per axis, up to float32 rounding: tiny-cuda-nn
        (and so this grid) may land one vertex above, e.g. ``from_max_resolution(2, 128, 8, 2)``
        has 129 vertices at its finest level (``s_7 = 128.00002``).

        >>> HashGridConfig.from_max_resolution(3, 2048, 16, 16).levels[-1].resolution
        2048
        """
        if n_levels < 2:
            return cls(in_dim, n_levels, base_resolution=base_resolution, **kwargs)
        if max_resolution < base_resolution:
            raise InputError(
                f"HashGrid max_resolution {max_resolution} is below base_resolution {base_resolution}"
            )
        scale = math.exp((math.log(max_resolution) - math.log(base_resolution)) / (n_levels - 1))
        return cls(
            in_dim, n_levels, base_resolution=base_resolution, per_level_scale=scale, **kwargs
        )

    @property
    def levels(self) -> tuple[HashGridLevel, ...]:
        """Per-level geometry, computed as tiny-cuda-nn's ``GridEncodingTemplated`` does."""
        return _levels(self)

    @property
    def out_dim(self) -> int:
        """``L * F`` output features."""
        return self.n_levels * self.n_features_per_level

    @property
    def n_rows(self) -> int:
        """``sum_l T_l``, the rows of the flat table."""
        last = self.levels[-1]
        return last.offset + last.size

    @property
    def n_params(self) -> int:
        """Number of trainable parameters: ``F * sum_l T_l``."""
        return self.n_rows * self.n_features_per_level

    def tcnn_config(self) -> dict[str, Any]:
        """The ``encoding_config`` that makes ``tinycudann.Encoding`` compute this same grid."""
        return {
            "otype": "HashGrid",
            "n_levels": self.n_levels,
            "n_features_per_level": self.n_features_per_level,
            "log2_hashmap_size": self.log2_hashmap_size,
            "base_resolution": self.base_resolution,
            "per_level_scale": float(self.per_level_scale),
            "interpolation": "Linear" if self.interpolation == "linear" else "Smoothstep",
        }


_LEVEL_CACHE: dict[HashGridConfig, tuple[HashGridLevel, ...]] = {}


def _c_float_function(name: str) -> Callable[[float], float] | None:
    """``float name(float)`` from the C math library (what tiny-cuda-nn's host code calls), or
    ``None`` where no C math library can be loaded."""
    import ctypes
    import ctypes.util

    for lib_name in (ctypes.util.find_library("m"), ctypes.util.find_library("c"), "ucrtbase"):
        if not lib_name:
            continue
        try:
            function = getattr(ctypes.CDLL(lib_name), name)
        except (OSError, AttributeError):
            continue
        function.restype = ctypes.c_float
        function.argtypes = [ctypes.c_float]
        return cast(Callable[[float], float], function)
    return None


def _rounded_float64(function: Callable[[np.ndarray], np.ndarray]) -> Callable[[float], float]:
    """The float64 result of ``function`` rounded to float32 (the fallback without a C library)."""

    def call(value: float) -> float:
        return float(np.float32(function(np.array(np.float32(value), dtype=np.float64))))

    return call


_LOG2F = _c_float_function("log2f") or _rounded_float64(np.log2)
_EXP2F = _c_float_function("exp2f") or _rounded_float64(np.exp2)


def level_scales(
    n_levels: int, base_resolution: int, per_level_scale: float
) -> tuple[np.float32, ...]:
    """``s_l`` exactly as tiny-cuda-nn's host code computes them (``grid_scale`` in
    ``common_device.h``): every step rounded to float32,

    ``s_l = exp2f(float(l) * log2f(float(g))) * float(b) - 1.0f``

    with ``log2f``/``exp2f`` the C math library's own functions (called through ``ctypes``):
    numpy's float32 ``log2``/``exp2`` are vectorised approximations that differ from the C
    library in the last bit for about 1 argument in 10, which moves a level across an integer
    (e.g. ``g = 64^(1/7)``, ``b = 2``: ``s_7 = 128.00002``, 129 vertices, not 128). Where no C
    math library loads, the float64 result rounded to float32 stands in (equal to glibc's in
    all but about 1 argument in 200).
    """
    log2_scale = np.float32(_LOG2F(float(np.float32(per_level_scale))))
    base = np.float32(base_resolution)
    one = np.float32(1.0)
    scales = []
    for level in range(n_levels):
        exponent = np.float32(np.float32(level) * log2_scale)
        growth = np.float32(_EXP2F(float(exponent)))
        scales.append(np.float32(np.float32(growth * base) - one))
    return tuple(scales)


def _levels(config: HashGridConfig) -> tuple[HashGridLevel, ...]:
    cached = _LEVEL_CACHE.get(config)
    if cached is not None:
        return cached
    dim = config.in_dim
    max_rows = 1 << config.log2_hashmap_size
    levels = []
    offset = 0
    scales = level_scales(config.n_levels, config.base_resolution, config.per_level_scale)
    for scale in scales:
        # tiny-cuda-nn: resolution = ceilf(scale) + 1; params_in_level = next_multiple(
        # min(resolution^D, 2^31 - 1), 8), then min(., 2^log2_hashmap_size) for hash grids
        resolution = math.ceil(float(scale)) + 1
        dense_rows = min(resolution**dim, 2**31 - 1)
        size = min(_next_multiple(dense_rows, 8), max_rows)
        levels.append(
            HashGridLevel(float(scale), resolution, size, offset, hashed=size < resolution**dim)
        )
        offset += size
    result = tuple(levels)
    _LEVEL_CACHE[config] = result
    return result


# --------------------------------------------------------------------------------------------
# validation


def validate_hashgrid_encode(
    x: torch.Tensor, params: torch.Tensor, config: HashGridConfig, **_: Any
) -> None:
    """Check ``x [N, D]`` (domain ``[0, 1]^D``, no NaN), ``params [n_params]`` and ``config``.

    Shape, dtype and device checks always run. The value checks (NaN, domain) need one
    ``aminmax`` reduction read back by the host: they run on CPU tensors, where that costs no
    device synchronisation, and on accelerators only in debug mode (the one switch of
    :mod:`neurosim.backend.debug`: ``with neurosim.backend.debug_checks():`` or
    ``NEUROSIM_DEBUG=1``), so the accelerator forward never synchronises. Inside
    ``torch.compile`` they are skipped. Unchecked out-of-domain input stays memory-safe (rows
    are reduced modulo the table) but its output is unspecified.
    """
    if not isinstance(config, HashGridConfig):
        raise InputError(f"hashgrid config must be a HashGridConfig, got {type(config).__name__}")
    check_tensor(x, "hashgrid input x [N, D]", ndim=2, finite=False)
    if x.shape[1] != config.in_dim:
        raise InputError(
            f"hashgrid input x must have {config.in_dim} coordinates per point (shape [N, "
            f"{config.in_dim}]), got shape {tuple(x.shape)}"
        )
    check_tensor(params, "hashgrid params [n_params]", ndim=1, finite=False)
    if params.shape[0] != config.n_params:
        raise InputError(
            f"hashgrid params must have {config.n_params} entries for this config, "
            f"got {params.shape[0]}"
        )
    if params.device != x.device:
        raise InputError(f"hashgrid params are on {params.device} but x is on {x.device}")
    if x.numel() == 0 or torch.compiler.is_compiling():
        return
    if x.device.type != "cpu" and not debug_enabled():
        return
    lo, hi = torch.aminmax(x.detach())
    lo_value, hi_value = float(lo), float(hi)
    if math.isnan(lo_value) or math.isnan(hi_value):
        bad = int(torch.isnan(x).sum())
        raise InputError(
            f"hashgrid input x contains {bad} NaN value(s); expected points in [0, 1]^D"
        )
    if lo_value < 0.0 or hi_value > 1.0:
        raise InputError(
            f"hashgrid input x must lie in the unit cube [0, 1]^{config.in_dim}, got values in "
            f"[{lo_value:.6g}, {hi_value:.6g}]; rescale your coordinates (e.g. (x - lo) / (hi - lo))"
        )


# --------------------------------------------------------------------------------------------
# the maths shared by the torch paths


def _acc_dtype(x: torch.Tensor, params: torch.Tensor) -> torch.dtype:
    """Positions and sums in float64 when either input is float64, else float32."""
    return torch.float64 if torch.float64 in (x.dtype, params.dtype) else torch.float32


def _signed32(value: int) -> int:
    """``value mod 2^32`` as a signed int32 (int32 products then wrap like tiny-cuda-nn's uint32)."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


_PRIMES32 = tuple(_signed32(p) for p in PRIMES)


def grid_position(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``scale * x + 1/2`` rounded once, as tiny-cuda-nn's ``fmaf(scale, x, 0.5f)``.

    For float32 ``x`` (and ``scale``, a float32 value) the product is exact in float64 (24 + 24
    significant bits), so ``r = fl64(p + 1/2)`` is the only rounding before the cast to float32;
    casting ``r`` directly could round twice (a float64 result that lands exactly on a float32
    tie). Rounding ``r`` to odd first removes that: with ``t = r - 1/2`` (exact, Sterbenz) the
    error of ``r`` is ``p - t`` (exact, Fast2Sum, for ``p >= 0``); when it is non-zero the last
    bit of ``r`` is set on the side of the exact value, and a float64 value rounded to odd
    rounds correctly to float32 (53 >= 24 + 2 bits; Boldo and Melquiond 2008). Other dtypes
    (float64) compute ``scale * x + 1/2`` in their own precision. Where ``x`` takes part in
    autograd the result is ``x * scale + 1/2`` plus the (detached) rounding correction, so its
    derivative is ``scale``.

    >>> grid_position(torch.tensor([0.25]), 15.0).tolist()
    [4.25]
    """
    if x.dtype != torch.float32:
        return x * scale + 0.5
    p = x.to(torch.float64) * scale
    r = p + 0.5
    t = r - 0.5
    bits = r.view(torch.int64)
    odd = (bits - (p < t).to(torch.int64)) | (p != t)
    exact = odd.view(torch.float64).to(torch.float32)
    if x.requires_grad and torch.is_grad_enabled():
        naive = x * scale + 0.5
        return naive + (exact - naive).detach()
    return exact


def _outer(parts: list[torch.Tensor]) -> torch.Tensor:
    """``[2, N]`` per axis -> ``[2, ..., 2, N]`` products (axis ``d`` of the result is dim ``d``)."""
    out = parts[0]
    for part in parts[1:]:
        out = out.unsqueeze(-2) * part
    return out


def _corner_geometry(
    xt: torch.Tensor,
    level: HashGridLevel,
    config: HashGridConfig,
    with_derivative: bool,
    index: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """Rows of the level's table ``[2^D, N]`` (int32), weights ``[2^D, N]`` and ``d w / d x_d``.

    ``xt`` is ``x`` transposed to ``[D, N]`` in the accumulation dtype: every intermediate keeps
    the points on its innermost (contiguous) axis, so element-wise loops run over ``N``.
    Corners are built by broadcasting ``[2, N]`` pairs (``c_d`` and ``c_d + 1``) over the axes.
    A known ``index`` (saved by the forward) is returned as is instead of being recomputed.
    """
    dim, n = xt.shape
    pos = grid_position(xt, level.scale)  # >= 0.5 on the domain: truncation is floor
    frac = torch.frac(pos)
    if index is None:
        index = _corner_index(pos, level)
    if config.interpolation == "smoothstep":
        t = frac * frac * (3.0 - 2.0 * frac)
    else:
        t = frac
    stacked = torch.stack((1.0 - t, t), dim=1)  # [D, 2, N]
    pairs = list(stacked.unbind(0))  # D x [2, N]
    weight = _outer(pairs).reshape(1 << dim, n)
    derivs: list[torch.Tensor] = []
    if with_derivative:
        sign = torch.tensor([-level.scale, level.scale], dtype=xt.dtype, device=xt.device)
        for d in range(dim):
            if config.interpolation == "smoothstep":
                dpair = sign.view(2, 1) * (6.0 * frac[d] * (1.0 - frac[d]))
            else:
                dpair = sign.view(2, 1).expand(2, n)
            derivs.append(
                _outer([dpair if e == d else pairs[e] for e in range(dim)]).reshape(1 << dim, n)
            )
    return index, weight, derivs


def _corner_index(pos: torch.Tensor, level: HashGridLevel) -> torch.Tensor:
    """Rows of the level's table ``[2^D, N]`` (int32) of the corners of the cells holding
    the (non-negative) grid positions ``pos [D, N]``.

    Dense: ``sum_d u_d r^d mod T``; hashed: ``XOR_d u_d pi_d mod T`` in int32 arithmetic,
    whose wrap-around products keep the low 32 bits exactly as tiny-cuda-nn's uint32 ones.
    """
    dim, n = pos.shape
    step = torch.arange(2, dtype=torch.int32, device=pos.device).view(2, 1)
    coords = pos.to(torch.int32).unsqueeze(1) + step  # [D, 2, N]
    if level.hashed:
        factors = _PRIMES32[:dim]
    else:
        factors = tuple(level.resolution**d for d in range(dim))
    if dim > 1:
        mult = torch.tensor(factors, dtype=torch.int32, device=pos.device).view(dim, 1, 1)
        coords = coords * mult  # factors[0] == 1: prime 1, stride 1
    index = coords[0]
    for d in range(1, dim):
        part = coords[d].view(*([1] * d), 2, n)
        index = index.unsqueeze(-2) ^ part if level.hashed else index.unsqueeze(-2) + part
    if level.hashed:
        index = index & (level.size - 1)  # T_l is a power of two when hashed
    else:
        index = torch.remainder(index, level.size)
    return index.reshape(1 << dim, n)


SAVED_INDEX_BYTES = 1 << 28
"""The reference's forward keeps its corner rows and weights for the backward when they take at
most this many bytes (``8 L 2^D N`` in fp32: 2^18 3-D points at 16 levels take 256 MiB); above,
the backward recomputes them."""

_CONTAINERS = {2: torch.int16, 4: torch.int32, 8: torch.int64, 16: torch.complex128}


SCATTER_GROUP_BYTES = 1 << 28
"""The backward scatters the table gradient of up to ``torch.get_num_threads()`` levels in one
call (one level per thread); its int64 rows and values take ``12 2^D N`` bytes per level in
fp32, and a group holds at most this many bytes."""


def _gather_rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``table [T, F]`` rows at ``index [C, N]`` -> ``[C, N, F]`` (not differentiable).

    A row of ``2, 4, 8`` or ``16`` bytes is moved as one element of a same-sized container dtype
    (one random access per corner instead of ``F``). ``torch.gather`` over the ``C`` corner
    rows of the table broadcast to ``[C, T]`` runs its rows on the intra-op threads (a 1-D
    ``index_select``/``gather`` is one serial loop on the CPU).
    """
    c, n = index.shape
    feats, size = table.shape[1], table.shape[0]
    rows = index.to(torch.int64)
    container = _CONTAINERS.get(feats * table.element_size())
    if container is not None and table.is_contiguous():
        flat = table.view(container).view(-1)
        picked = torch.gather(flat.expand(c, size), 1, rows)
        return picked.view(table.dtype).view(c, n, feats)
    out = torch.empty(c, n, feats, dtype=table.dtype, device=table.device)
    for f in range(feats):
        torch.gather(table[:, f].expand(c, size), 1, rows, out=out[..., f])
    return out


def _level_groups(config: HashGridConfig, n: int, acc: torch.dtype) -> list[list[int]]:
    """Consecutive levels whose table gradients one ``scatter_add_`` call computes together
    (one level per intra-op thread)."""
    per_level = (n << config.in_dim) * (8 + torch.finfo(acc).bits // 8)
    size = max(1, min(torch.get_num_threads(), SCATTER_GROUP_BYTES // max(per_level, 1)))
    levels = list(range(config.n_levels))
    return [levels[i : i + size] for i in range(0, len(levels), size)]


def _scatter_levels(
    grad_table: torch.Tensor,
    levels: list[HashGridLevel],
    indices: list[torch.Tensor],
    weights: list[torch.Tensor],
    g: list[torch.Tensor],
) -> None:
    """``grad_table[offset_l + index_l, f] += weight_l * g_l[f]`` for a group of levels.

    ``grad_table [n_rows, F]`` (zeros where the group writes), ``indices``/``weights``
    ``[C, N]`` and ``g`` ``[F, N]`` per level. The group's levels are the rows of one
    ``scatter_add_`` along dim 1, which runs its rows in parallel (a 1-D ``index_add_`` or
    ``scatter_add_`` is a serial loop on the CPU). Hashed levels have equal sizes and adjacent
    rows, so their rows are a view of ``grad_table``; others scatter into a padded buffer that
    is copied back.
    """
    count, feats = len(levels), grad_table.shape[1]
    entries = indices[0].numel()
    width = max(lv.size for lv in levels)
    first = levels[0].offset
    adjacent = all(
        lv.size == width and lv.offset == first + j * width for j, lv in enumerate(levels)
    )
    if adjacent:
        target = grad_table[first : first + count * width].view(count, width, feats)
    else:
        target = grad_table.new_zeros(count, width, feats)
    rows = torch.empty(count, entries, dtype=torch.int64, device=grad_table.device)
    for j, index in enumerate(indices):
        rows[j].view(index.shape).copy_(index)
    values = torch.empty(count, entries, dtype=grad_table.dtype, device=grad_table.device)
    for f in range(feats):
        for j, weight in enumerate(weights):
            torch.mul(weight, g[j][f], out=values[j].view(weight.shape))
        target[..., f].scatter_add_(1, rows, values)
    if not adjacent:
        for j, lv in enumerate(levels):
            grad_table[lv.offset : lv.offset + lv.size] = target[j, : lv.size]


def hashgrid_encode_autograd(
    x: torch.Tensor, params: torch.Tensor, config: HashGridConfig
) -> torch.Tensor:
    """Plain differentiable torch maths (autograd derives the backward); the ``compile`` path.

    Shapes: ``x [N, D]``, ``params [n_params] -> [N, L * F]`` in ``params.dtype``.
    """
    acc = _acc_dtype(x, params)
    xt = x.to(acc).t()
    n = x.shape[0]
    feats = config.n_features_per_level
    table = params.view(-1, feats).to(acc)
    outs = []
    for level in config.levels:
        index, weight, _ = _corner_geometry(xt, level, config, with_derivative=False)
        rows = table[level.offset : level.offset + level.size]
        vals = rows.index_select(0, index.reshape(-1)).view(index.shape[0], n, feats)  # [C, N, F]
        outs.append((vals * weight.unsqueeze(-1)).sum(0))
    return torch.cat(outs, dim=1).to(params.dtype)


class _HashGridEncode(torch.autograd.Function):
    """Reference forward/backward with hand-written (and itself differentiable) gradients."""

    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, params: torch.Tensor, config: HashGridConfig
    ) -> torch.Tensor:
        acc = _acc_dtype(x, params)
        xt = x.to(acc).t().contiguous()
        n = x.shape[0]
        feats = config.n_features_per_level
        table = params.view(-1, feats)
        out_t = torch.empty(config.n_levels, feats, n, dtype=acc, device=x.device)
        entry_bytes = 4 + torch.finfo(acc).bits // 8  # an int32 row and a weight
        keep = n * (config.n_levels << config.in_dim) * entry_bytes <= SAVED_INDEX_BYTES
        indices: list[torch.Tensor] = []
        weights: list[torch.Tensor] = []
        for i, level in enumerate(config.levels):
            index, weight, _ = _corner_geometry(xt, level, config, with_derivative=False)
            vals = _gather_rows(table[level.offset : level.offset + level.size], index)
            for f in range(feats):
                torch.sum(vals[..., f] * weight, dim=0, out=out_t[i, f])
            if keep:
                indices.append(index)
                weights.append(weight)
        ctx.save_for_backward(x, params)
        ctx.config = config
        ctx.indices = indices or None
        ctx.weights = weights or None
        return (
            out_t.view(config.out_dim, n)
            .t()
            .to(params.dtype, memory_format=torch.contiguous_format)
        )

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, params = ctx.saved_tensors
        config: HashGridConfig = ctx.config
        need_x, need_params = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        grads = _hashgrid_backward(
            x, params, config, grad_out, need_x, need_params, ctx.indices, ctx.weights
        )
        return (*grads, None)


def _hashgrid_backward(
    x: torch.Tensor,
    params: torch.Tensor,
    config: HashGridConfig,
    grad_out: torch.Tensor,
    need_x: bool,
    need_params: bool,
    indices: list[torch.Tensor] | None = None,
    weights: list[torch.Tensor] | None = None,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """``dL/dx [N, D]`` and ``dL/dparams [n_params]`` from ``dL/dy [N, L * F]``.

    ``dL/dtheta_l[h(c+v)] += w_v dL/dy_l`` (scatter-add); ``dL/dx_d = sum_v (d w_v / d x_d)
    <theta_l[h(c+v)], dL/dy_l>`` with ``d w_v / d x_d = s_l S'(frac_d) (+-1) prod_{e != d} ...``.
    Written in differentiable torch ops of ``x``, ``params`` and ``grad_out``, so that double
    backward (a loss on ``dy/dx``) works. ``indices`` and ``weights`` are the forward's corner
    rows and weights per level (recomputed when ``None``; the weights also when the graph of
    this backward is recorded or ``dL/dx`` is needed).
    """
    acc = _acc_dtype(x, params)
    differentiable = torch.is_grad_enabled()
    xt = x.to(acc).t().contiguous()
    feats = config.n_features_per_level
    n = x.shape[0]
    g = grad_out.to(acc).t().reshape(config.n_levels, feats, n)
    table = params.view(-1, feats)
    grad_table = (
        torch.zeros(config.n_rows, feats, dtype=acc, device=x.device) if need_params else None
    )
    grad_xt: torch.Tensor | None = None
    all_levels = config.levels
    for group in _level_groups(config, n, acc):
        group_indices: list[torch.Tensor] = []
        group_weights: list[torch.Tensor] = []
        for i in group:
            level = all_levels[i]
            if weights is not None and indices is not None and not need_x and not differentiable:
                derivs: list[torch.Tensor] = []
                index, weight = indices[i], weights[i]  # the forward's, as they were
            else:
                known = indices[i] if indices is not None else None
                index, weight, derivs = _corner_geometry(xt, level, config, need_x, index=known)
            rows = slice(level.offset, level.offset + level.size)
            if grad_table is not None:
                if differentiable:  # the graph of this backward is recorded: index_add_
                    flat = index.reshape(-1)
                    for f in range(feats):
                        grad_table[rows, f].index_add_(0, flat, (weight * g[i, f]).reshape(-1))
                else:
                    group_indices.append(index)
                    group_weights.append(weight)
            if need_x:
                if differentiable:
                    flat = index.reshape(-1)
                    vals = table[rows].index_select(0, flat).view(index.shape[0], n, feats)
                    vals = vals.to(acc)
                else:
                    vals = _gather_rows(table[rows], index).to(acc)
                gv = vals[..., 0] * g[i, 0]
                for f in range(1, feats):
                    gv = gv + vals[..., f] * g[i, f]
                level_grad = torch.stack([(dw * gv).sum(0) for dw in derivs])  # [D, N]
                grad_xt = level_grad if grad_xt is None else grad_xt + level_grad
        if grad_table is not None and group_indices:
            _scatter_levels(
                grad_table,
                [all_levels[i] for i in group],
                group_indices,
                group_weights,
                [g[i] for i in group],
            )
    gx = grad_xt.t().to(x.dtype) if grad_xt is not None else None
    gp = grad_table.view(-1).to(params.dtype) if grad_table is not None else None
    return gx, gp


def hashgrid_encode_reference(
    x: torch.Tensor, params: torch.Tensor, config: HashGridConfig
) -> torch.Tensor:
    """The torch reference backend (custom autograd function); same contract as
    :func:`hashgrid_encode`."""
    out: torch.Tensor = _HashGridEncode.apply(x, params, config)
    return out


# --------------------------------------------------------------------------------------------
# registration


def _load_compile() -> Any:
    return torch.compile(hashgrid_encode_autograd, fullgraph=True, dynamic=True)


def _load_triton() -> Any:
    from fields.encodings._triton_hashgrid import hashgrid_encode_triton

    return hashgrid_encode_triton


def _load_tcnn() -> Any:
    from fields.encodings._tcnn import hashgrid_encode_tcnn

    return hashgrid_encode_tcnn


def _load_numba() -> Any:
    from fields.encodings._numba_hashgrid import hashgrid_encode_numba

    return hashgrid_encode_numba


def _tcnn_available(device: torch.device) -> str | None:
    if device.type != "cuda":
        return "tinycudann runs on CUDA only"
    return module_missing("tinycudann", "build tiny-cuda-nn's PyTorch bindings from source")(device)


def _example(
    device: torch.device, dtype: torch.dtype, generator: torch.Generator
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    config = HashGridConfig(
        3, n_levels=4, log2_hashmap_size=8, base_resolution=3, per_level_scale=2.0
    )
    x = torch.rand(37, 3, generator=generator, dtype=torch.float64).to(device, dtype)
    params = (torch.rand(config.n_params, generator=generator, dtype=torch.float64) * 2 - 1).to(
        device, dtype
    )
    return (x, params, config), {}


def _bad_inputs(device: torch.device) -> list[tuple[tuple[Any, ...], dict[str, Any], str]]:
    config = HashGridConfig(2, n_levels=2, log2_hashmap_size=6, base_resolution=4)
    x = torch.rand(5, 2, device=device)
    params = torch.zeros(config.n_params, device=device)
    return [
        ((x * 2.0, params, config), {}, "unit cube"),
        ((x - 1.0, params, config), {}, "unit cube"),
        ((x.clone().fill_(float("nan")), params, config), {}, "NaN"),
        ((torch.rand(5, 3, device=device), params, config), {}, "coordinates per point"),
        ((x, params[:-1], config), {}, "entries"),
        ((x.long(), params, config), {}, "floating-point"),
        ((x[0], params, config), {}, "dimensions"),
    ]


kernels.register(
    Operation(
        name="hashgrid_encode",
        reference=hashgrid_encode_reference,
        validate=validate_hashgrid_encode,
        example=_example,
        bad_inputs=_bad_inputs,
        grad_args=(0, 1),
        doc="multiresolution hash grid lookup (tiny-cuda-nn HashGrid alignment)",
    )
)
kernels.register_backend("hashgrid_encode", compile_backend(_load_compile))
kernels.register_backend("hashgrid_encode", triton_backend(_load_triton))
kernels.register_backend("hashgrid_encode", numba_backend(_load_numba))
# tiny-cuda-nn is only ever used when named: its bindings are fragile (see the module docstring).
kernels.register_backend(
    "hashgrid_encode",
    Backend(
        "tcnn",
        _load_tcnn,
        devices=frozenset({"cuda"}),
        auto_devices=frozenset(),
        priority=30,
        available=_tcnn_available,
        dtypes=frozenset({torch.float32}),
    ),
)


def hashgrid_encode(
    x: torch.Tensor,
    params: torch.Tensor,
    config: HashGridConfig,
    *,
    backend: str = "auto",
) -> torch.Tensor:
    """Encode points ``x [N, D]`` in ``[0, 1]^D`` with the grid ``params [n_params]``.

    Returns ``[N, L * F]`` in ``params.dtype`` (level-major). ``backend`` is ``"auto"``,
    ``"torch"``, ``"compile"``, ``"triton"`` or ``"tcnn"``. Inside ``torch.compile`` the plain
    torch maths is traced whatever the backend (so the graph has no breaks), and value checks
    (NaN, domain) are skipped.

    >>> cfg = HashGridConfig(1, n_levels=1, base_resolution=2)
    >>> theta = torch.zeros(cfg.n_params); theta[2:4] = 1.0  # row 1 (F = 2)
    >>> hashgrid_encode(torch.tensor([[0.25]]), theta, cfg, backend="torch").tolist()
    [[0.75, 0.75]]
    """
    if torch.compiler.is_compiling():
        validate_hashgrid_encode(x, params, config)
        return hashgrid_encode_autograd(x, params, config)
    return kernels.call("hashgrid_encode", x, params, config, backend=backend)


# --------------------------------------------------------------------------------------------
# module


class HashGrid(nn.Module):
    """Multiresolution hash grid encoding ``x [*B, D] in [0, 1]^D -> [*B, L * F]``.

    Args:
        in_dim: ``D`` (1..4).
        n_levels: ``L``.
        n_features_per_level: ``F``.
        log2_hashmap_size: ``log2 T`` of the largest table.
        base_resolution: vertices per axis of the coarsest level.
        per_level_scale: growth per level; ``None`` derives it from ``max_resolution``.
        max_resolution: finest vertices per axis (used when ``per_level_scale`` is ``None``).
        interpolation: ``"linear"`` or ``"smoothstep"``.
        backend: kernel backend (``"auto"``, ``"torch"``, ``"compile"``, ``"triton"``, ``"tcnn"``).
        generator: RNG for the ``U(-1e-4, 1e-4)`` initialisation.
        dtype: parameter dtype.

    Attributes:
        params: flat ``[n_params]`` table in tiny-cuda-nn's layout.
        config: the :class:`HashGridConfig`.
        out_dim: ``L * F``.

    >>> grid = HashGrid(3, n_levels=16, base_resolution=16, max_resolution=2048, per_level_scale=None)
    >>> grid(torch.rand(5, 3)).shape
    torch.Size([5, 32])
    """

    def __init__(
        self,
        in_dim: int,
        n_levels: int = 16,
        n_features_per_level: int = 2,
        log2_hashmap_size: int = 19,
        base_resolution: int = 16,
        per_level_scale: float | None = 2.0,
        max_resolution: int | None = None,
        interpolation: Interpolation = "linear",
        backend: str = "auto",
        generator: torch.Generator | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        common: dict[str, Any] = {
            "n_features_per_level": n_features_per_level,
            "log2_hashmap_size": log2_hashmap_size,
            "interpolation": interpolation,
        }
        if per_level_scale is None:
            if max_resolution is None:
                raise InputError("HashGrid needs per_level_scale or max_resolution")
            self.config = HashGridConfig.from_max_resolution(
                in_dim, max_resolution, n_levels, base_resolution, **common
            )
        else:
            if max_resolution is not None:
                raise InputError(
                    "HashGrid takes per_level_scale or max_resolution, not both "
                    "(pass per_level_scale=None to derive it from max_resolution)"
                )
            self.config = HashGridConfig(
                in_dim,
                n_levels,
                base_resolution=base_resolution,
                per_level_scale=per_level_scale,
                **common,
            )
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise InputError(f"HashGrid dtype must be a floating-point torch.dtype, got {dtype!r}")
        kernels.operation("hashgrid_encode")  # registered
        if backend != "auto" and backend not in kernels.backends("hashgrid_encode"):
            raise InputError(
                f"HashGrid backend {backend!r} is not known; expected 'auto' or one of "
                f"{kernels.backends('hashgrid_encode')}"
            )
        self.backend = backend
        init = torch.rand(self.config.n_params, generator=generator, dtype=torch.float64)
        self.params = nn.Parameter(((init * 2.0 - 1.0) * INIT_SCALE).to(dtype))

    @property
    def in_dim(self) -> int:
        """``D``."""
        return self.config.in_dim

    @property
    def out_dim(self) -> int:
        """``L * F``."""
        return self.config.out_dim

    def backend_choice(self, device: torch.device | None = None) -> Selection:
        """Which backend :meth:`forward` runs on ``device`` (default: the parameters') and why.

        >>> HashGrid(2, n_levels=2).backend_choice().backend
        'torch'
        """
        target = self.params.device if device is None else device
        return kernels.resolve("hashgrid_encode", self.backend, target)

    def level_table(self, level: int) -> torch.Tensor:
        """A view ``[T_l, F]`` of one level's rows of :attr:`params`."""
        if not 0 <= level < self.config.n_levels:
            raise InputError(f"HashGrid level must be in [0, {self.config.n_levels}), got {level}")
        info = self.config.levels[level]
        feats = self.config.n_features_per_level
        return self.params.view(-1, feats)[info.offset : info.offset + info.size]

    @torch.no_grad()
    def load_tcnn_params(self, params: torch.Tensor) -> None:
        """Copy a ``tinycudann.Encoding(...).params`` tensor (same config) into this grid."""
        check_tensor(params, "tcnn params", ndim=1)
        if params.numel() != self.config.n_params:
            raise InputError(
                f"tcnn params have {params.numel()} entries but this HashGrid has "
                f"{self.config.n_params}; build both from the same config (HashGridConfig.tcnn_config)"
            )
        self.params.copy_(params.to(self.params.device, self.params.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Encode ``x [*B, D]`` in ``[0, 1]^D`` to ``[*B, L * F]``."""
        check_tensor(x, "HashGrid input x [*B, D]", min_ndim=1, finite=False)
        if x.shape[-1] != self.config.in_dim:
            raise InputError(
                f"HashGrid expected {self.config.in_dim}-D coordinates (shape [*B, "
                f"{self.config.in_dim}]), got shape {tuple(x.shape)}"
            )
        flat = x.reshape(-1, self.config.in_dim)
        out = hashgrid_encode(flat, self.params, self.config, backend=self.backend)
        return out.view(*x.shape[:-1], self.config.out_dim)

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"in_dim={c.in_dim}, n_levels={c.n_levels}, n_features_per_level={c.n_features_per_level}, "
            f"log2_hashmap_size={c.log2_hashmap_size}, base_resolution={c.base_resolution}, "
            f"per_level_scale={c.per_level_scale:.6g}, interpolation={c.interpolation!r}, "
            f"backend={self.backend!r}"
        )
