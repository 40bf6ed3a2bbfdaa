"""Optional ``tcnn`` backend of :func:`fields.encodings.hashgrid.hashgrid_encode`.

Runs ``tinycudann.Encoding`` (tiny-cuda-nn's PyTorch bindings; CUDA only) on *our* parameter
tensor: the encoding is built once per config and device from
:meth:`~fields.encodings.hashgrid.HashGridConfig.tcnn_config`, and called through
``torch.func.functional_call`` with ``params`` swapped in, so gradients reach the caller's
tensor. The parameter layouts are identical (see the hashgrid module docstring), which is what
the GPU equivalence test checks. tiny-cuda-nn computes in fp32 here (``dtype=torch.float``);
the output is cast to ``params.dtype``.

Imported lazily by the registry; importing it without tinycudann raises ``ImportError``.
"""

from __future__ import annotations

from typing import Any

import tinycudann
import torch
from torch.func import functional_call

from fields.encodings.hashgrid import HashGridConfig

_ENCODINGS: dict[tuple[HashGridConfig, str], Any] = {}


def tcnn_encoding(config: HashGridConfig, device: torch.device) -> Any:
    """The cached ``tinycudann.Encoding`` computing ``config`` on ``device`` (fp32)."""
    key = (config, str(device))
    if key not in _ENCODINGS:
        with torch.cuda.device(device):
            _ENCODINGS[key] = tinycudann.Encoding(
                n_input_dims=config.in_dim,
                encoding_config=config.tcnn_config(),
                dtype=torch.float32,
            ).to(device)
    return _ENCODINGS[key]


def hashgrid_encode_tcnn(
    x: torch.Tensor, params: torch.Tensor, config: HashGridConfig
) -> torch.Tensor:
    """tiny-cuda-nn implementation; same contract as the torch reference (fp32 maths)."""
    encoding = tcnn_encoding(config, x.device)
    out: torch.Tensor = functional_call(
        encoding, {"params": params.to(torch.float32)}, (x.to(torch.float32).contiguous(),)
    )
    return out.to(params.dtype)
