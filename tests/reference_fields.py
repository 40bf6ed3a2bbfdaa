"""Independent reference of the NeuRBF feature op, written here from the paper's formula
(Chen et al., ICCV 2023; nothing imported from ``fields``): for each point and each of its
neighbour kernels ``j``: ``q = |A_j (x - c_j)|^2``, ``rho = 1 / (1 + q)`` (inverse quadratic) or
``exp(-q / 2)`` (Gaussian), optionally divided by the stop-gradient sum over the neighbours plus
1e-8, lifted to channels by ``sin(m_c rho)`` (``rho`` itself where ``m_c = 0``), weighted by
``w_jc`` and summed over the neighbours. One Python loop over the neighbour slots."""

from __future__ import annotations

import torch


def rbf_features(
    x: torch.Tensor,
    centers: torch.Tensor,
    shapes: torch.Tensor,
    weights: torch.Tensor,
    freqs: torch.Tensor,
    index: torch.Tensor,
    kind: str = "inverse_quadratic",
    normalize: bool = True,
) -> torch.Tensor:
    rhos = []
    for j in range(index.shape[1]):
        kernel = index[:, j].long()
        d = x - centers[kernel]  # [N, D]
        z = (shapes[kernel] @ d.unsqueeze(-1)).squeeze(-1)  # A_j (x - c_j)
        q = (z * z).sum(-1)
        rhos.append(1 / (1 + q) if kind == "inverse_quadratic" else torch.exp(-q / 2))
    total = sum(r.detach() for r in rhos)
    out = torch.zeros(x.shape[0], weights.shape[1], dtype=x.dtype, device=x.device)
    for j, rho in enumerate(rhos):
        if normalize:
            rho = rho / (total + 1e-8)
        lifted = torch.stack(
            [torch.sin(m * rho) if float(m) > 0 else rho for m in freqs], dim=-1
        )  # [N, C]
        out = out + weights[index[:, j].long()] * lifted
    return out


REFERENCES = {"rbf_features": rbf_features}
