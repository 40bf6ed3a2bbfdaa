"""Orthogonal projection of weight updates, conv patch unfolding and subspace diagnostics.

A layer ``y = W x`` whose weight update ``dW`` satisfies ``dW u = 0`` for every ``u`` in a
subspace ``S`` leaves its response to inputs in ``S`` unchanged. With the rows of ``B [k, d]`` an
orthonormal basis of ``S``, the projected update

.. math:: dW \\leftarrow dW \\, (I - B^\\top B)

has that property (gradient projection: OWM, GPM, HLOP). For a convolution the "input" is a
patch: ``W [C_out, C_in, kh, kw]`` acts on unfolded patches of ``d = C_in * kh * kw`` values
(channel-major, then kernel rows, then columns: the order of ``W.reshape(C_out, -1)`` and of
``torch.nn.functional.unfold``), so ``B`` lives in patch space.

Diagnostics: :func:`orthonormality_error` (how far ``B B^T`` is from the identity) and
:func:`principal_angles` between two subspaces (0 = the same directions), with
:func:`top_subspace` giving the principal subspace of a set of activity rows from an SVD.
:func:`extend_basis` grows an orthonormal basis from stored activity by an energy threshold
(GPM, Saha et al., ICLR 2021), the exact counterpart of HLOP's Hebbian subspace.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from neurosim.backend import InputError, check_tensor


def project_rows(x: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``x - (x B^T) B`` for rows ``x [N, d]`` and ``basis [k, d]`` (``k = 0``: ``x``)."""
    if basis.shape[0] == 0:
        return x
    return x - (x @ basis.T) @ basis


def project_weight_grad(grad: torch.Tensor, basis: torch.Tensor) -> torch.Tensor:
    """``dW (I - B^T B)`` for a Linear ``[out, d]`` or conv ``[out, C, *k]`` weight gradient.

    The trailing dimensions of ``grad`` are flattened to ``d`` (patch space for convolutions),
    projected and restored.
    """
    if basis.shape[0] == 0:
        return grad
    flat = grad.reshape(grad.shape[0], -1)
    if flat.shape[1] != basis.shape[1]:
        raise InputError(
            f"projection basis has dimension {basis.shape[1]} but the weight gradient "
            f"{tuple(grad.shape)} has {flat.shape[1]} inputs per output"
        )
    b = basis.to(flat.dtype)
    return (flat - (flat @ b.T) @ b).reshape(grad.shape)


def _pair(value: int | Sequence[int], n: int) -> tuple[int, ...]:
    if isinstance(value, int):
        return (value,) * n
    return tuple(int(v) for v in value)


def conv_padding(
    padding: str | int | Sequence[int],
    kernel_size: Sequence[int],
    dilation: Sequence[int],
) -> list[tuple[int, int]]:
    """Explicit ``(before, after)`` zero padding per spatial dimension of a convolution.

    ``"valid"`` is no padding; ``"same"`` pads ``dilation * (k - 1)`` in total, the extra one
    after (as PyTorch does).
    """
    n = len(kernel_size)
    if padding == "valid":
        return [(0, 0)] * n
    if padding == "same":
        pads = []
        for k, dil in zip(kernel_size, dilation, strict=True):
            total = dil * (k - 1)
            pads.append((total // 2, total - total // 2))
        return pads
    if isinstance(padding, str):
        raise InputError(f"conv padding must be 'valid', 'same' or integers, got {padding!r}")
    return [(p, p) for p in _pair(padding, n)]


def unfold_patches(
    x: torch.Tensor,
    kernel_size: int | Sequence[int],
    *,
    stride: int | Sequence[int] = 1,
    padding: str | int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    padding_mode: str = "zeros",
) -> torch.Tensor:
    """Patches of a 1-D or 2-D convolution input, one row per output position.

    Args:
        x: ``[N, C, L]`` (Conv1d) or ``[N, C, H, W]`` (Conv2d).
        kernel_size, stride, padding, dilation, padding_mode: the convolution's settings
            (``padding_mode`` ``zeros``, ``reflect``, ``replicate`` or ``circular``).

    Returns:
        ``[N, P, C * prod(kernel_size)]`` with ``P`` output positions (row-major), each row in
        the order of ``weight.reshape(C_out, -1)``.
    """
    check_tensor(x, "conv input [N, C, *spatial]", ndim=(3, 4), finite=False)
    spatial = x.dim() - 2
    ks, st, dl = _pair(kernel_size, spatial), _pair(stride, spatial), _pair(dilation, spatial)
    pads = conv_padding(padding, ks, dl)
    flat_pad: list[int] = []
    for before, after in reversed(pads):
        flat_pad += [before, after]
    if any(flat_pad):
        mode = "constant" if padding_mode == "zeros" else padding_mode
        x = F.pad(x, flat_pad, mode=mode)
    if spatial == 1:
        x = x.unsqueeze(2)
        ks, st, dl = (1, *ks), (1, *st), (1, *dl)
    cols = F.unfold(x, ks, dilation=dl, padding=0, stride=st)  # [N, C*prod(k), P]
    return cols.transpose(1, 2)


def orthonormality_error(basis: torch.Tensor) -> torch.Tensor:
    """``||B B^T - I||_2`` (spectral norm): 0 for orthonormal rows; ``k = 0`` gives 0.

    For rows within ``eps`` of orthonormal, ``I - B^T B`` is a projection up to ``O(eps)``.
    """
    k = basis.shape[0]
    if k == 0:
        return basis.new_zeros(())
    b = basis.to(torch.float64)
    gram = b @ b.T - torch.eye(k, dtype=torch.float64, device=b.device)
    return torch.linalg.matrix_norm(gram, ord=2).to(basis.dtype)


def _orthonormal_columns(a: torch.Tensor) -> torch.Tensor:
    q, _ = torch.linalg.qr(a.to(torch.float64).T)
    return q


def principal_angles(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Principal angles (radians, ascending) between ``span(rows of a)`` and ``span(rows of b)``.

    ``a [k1, d]``, ``b [k2, d]`` (rows need not be orthonormal, only independent); returns
    ``min(k1, k2)`` angles in ``[0, pi/2]``: ``arccos`` of the singular values of
    ``Q_a^T Q_b`` (Björck & Golub 1973). All zero iff one span contains the other.
    """
    check_tensor(a, "principal_angles a [k1, d]", ndim=2)
    check_tensor(b, "principal_angles b [k2, d]", ndim=2)
    if a.shape[1] != b.shape[1]:
        raise InputError(f"principal_angles needs rows of one dimension, got {a.shape[1]} and "
                         f"{b.shape[1]}")  # fmt: skip
    if a.shape[0] == 0 or b.shape[0] == 0:
        return a.new_zeros(0)
    qa, qb = _orthonormal_columns(a), _orthonormal_columns(b)
    sigma = torch.linalg.svdvals(qa.T @ qb).clamp(-1.0, 1.0)
    return torch.arccos(sigma).sort().values.to(a.dtype)


def top_subspace(x: torch.Tensor, k: int) -> torch.Tensor:
    """``[k, d]`` orthonormal rows spanning the top-``k`` principal subspace of rows ``x [N, d]``
    (right singular vectors of the uncentred ``x``: eigenvectors of ``x^T x``)."""
    check_tensor(x, "activity rows x [N, d]", ndim=2)
    if not 0 <= k <= min(x.shape):
        raise InputError(f"k must be in 0..{min(x.shape)} for activity {tuple(x.shape)}, got {k}")
    _, _, vh = torch.linalg.svd(x.to(torch.float64), full_matrices=False)
    return vh[:k].to(x.dtype)


def extend_basis(
    basis: torch.Tensor, activity: torch.Tensor, threshold: float, max_rows: int | None = None
) -> torch.Tensor:
    """Grow an orthonormal ``basis [k, d]`` until it keeps ``threshold`` of ``activity``'s energy.

    GPM's criterion: with ``A`` the activity rows ``[N, d]``, the residual ``R = A - A B^T B``
    and its singular values ``s_1 >= s_2 >= ...`` (right singular vectors ``v_i``), add the
    fewest ``v_1 .. v_r`` such that ``(||A B^T||^2 + sum_{i<=r} s_i^2) / ||A||^2 >= threshold``.
    Nothing is added when the current basis already keeps that much. The result has
    orthonormal rows (the new ones are orthogonal to the old), at most ``max_rows`` (default
    ``d``) of them.

    Example: ``A = diag(3, 2, 1)`` (energies 9, 4, 1 of 14), empty basis, threshold 0.9: one
    vector keeps 9/14 = 0.64, two keep 13/14 = 0.93, so two rows ``e_1, e_2`` are returned.
    """
    check_tensor(activity, "activity rows [N, d]", ndim=2)
    if not 0.0 < threshold <= 1.0:
        raise InputError(f"energy threshold must be in (0, 1], got {threshold}")
    d = activity.shape[1]
    if basis.shape[1] != d:
        raise InputError(f"basis dimension {basis.shape[1]} != activity dimension {d}")
    cap = d if max_rows is None else min(max_rows, d)
    a = activity.to(torch.float64)
    b = basis.to(torch.float64)
    total = a.pow(2).sum()
    if basis.shape[0] >= cap or float(total) == 0.0:
        return basis
    kept = (a @ b.T).pow(2).sum() if b.shape[0] else torch.zeros((), dtype=torch.float64)
    res = a - (a @ b.T) @ b if b.shape[0] else a
    _, s, vh = torch.linalg.svd(res, full_matrices=False)
    need = threshold * total - kept
    if float(need) <= 0.0:
        return basis
    cumulative = torch.cumsum(s.pow(2), 0)
    r = int(torch.searchsorted(cumulative, need).item()) + 1
    r = min(r, len(s), cap - basis.shape[0])
    new = vh[:r]
    if b.shape[0]:  # re-orthogonalise against the old rows (rounding)
        new = new - (new @ b.T) @ b
        new, _ = torch.linalg.qr(new.T)
        new = new.T
    return torch.cat([basis, new.to(basis.dtype)])
