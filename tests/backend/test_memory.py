"""``neurosim.backend.memory``: large CPU buffers come from numpy (huge pages), small ones and
dtypes numpy lacks from torch; either way the result behaves as ``torch.empty`` /
``torch.zeros`` (shape, dtype, contiguity, writable, zero-filled)."""

from __future__ import annotations

import pytest
import torch

from neurosim.backend import memory


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64, torch.bool])
@pytest.mark.parametrize("shape", [(3, 5), (64, 1 << 16)], ids=["small", "large"])
def test_buffers_behave_as_torch_empty_and_zeros(
    dtype: torch.dtype, shape: tuple[int, int]
) -> None:
    out = memory.empty(shape, dtype)
    assert out.shape == shape and out.dtype == dtype and out.is_contiguous()
    assert (
        out.device.type == "cpu"
        and out.untyped_storage().nbytes() >= out.numel() * out.element_size()
    )
    out.fill_(1)
    assert bool(out.all())
    zeros = memory.zeros(shape, dtype)
    assert zeros.shape == shape and not bool(zeros.any())
    # usable as an autograd output and as an in-place target
    w = torch.ones(shape[1], dtype=torch.float64, requires_grad=True)
    (zeros.to(torch.float64) * w).sum().backward()
    assert w.grad is not None and float(w.grad.sum()) == 0.0


def test_dtypes_numpy_lacks_fall_back_to_torch() -> None:
    out = memory.empty((1 << 22,), torch.bfloat16)
    assert out.dtype == torch.bfloat16 and out.shape == (1 << 22,)
