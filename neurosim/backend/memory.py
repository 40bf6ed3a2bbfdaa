"""Large CPU buffers on transparent huge pages.

A fresh ``torch.empty`` of a few MiB on the CPU is mapped page by page on first touch: on the
virtual machines these benchmarks run on, ~1,600 page faults for 6.5 MiB, which costs as much as
the compiled loops that write the buffer once. numpy asks the kernel for transparent huge pages
(``madvise(MADV_HUGEPAGE)``) on arrays of 4 MiB and more, so the same buffer allocated by numpy
and shared with torch (``torch.from_numpy``, no copy) takes a few dozen faults (measured:
32 MiB filled in 3.8 ms instead of 13.8 ms). Kernels whose outputs are large, fresh and written
once (the numba LIF scan, the ELM memory loop, the CPU hash grid) allocate through
:func:`empty`. Such a tensor behaves as any other (autograd, ``share_memory_``, ``torch.save``),
except that, like every tensor made by ``torch.from_numpy``, its storage cannot grow
(``resize_`` to more elements, or an ``out=`` of a larger shape, raises).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

HUGE_PAGE_BYTES = 1 << 22
"""numpy's threshold for asking for huge pages (4 MiB)."""

_NUMPY = {
    torch.float32: np.float32,
    torch.float64: np.float64,
    torch.float16: np.float16,
    torch.int32: np.int32,
    torch.int64: np.int64,
    torch.bool: np.bool_,
}


def _allocate(
    shape: Sequence[int], dtype: torch.dtype, device: torch.device | str | None, zeroed: bool
) -> torch.Tensor:
    dev = torch.device(device) if device is not None else torch.device("cpu")
    size = tuple(int(s) for s in shape)
    np_dtype = _NUMPY.get(dtype)
    nbytes = 0
    if dev.type == "cpu" and np_dtype is not None:
        nbytes = int(np.prod(size, dtype=np.int64)) * np.dtype(np_dtype).itemsize
    if nbytes < HUGE_PAGE_BYTES:
        return (torch.zeros if zeroed else torch.empty)(size, dtype=dtype, device=dev)
    # numpy's zeroed buffers come from calloc: fresh pages are zero without a pass over them
    return torch.from_numpy((np.zeros if zeroed else np.empty)(size, dtype=np_dtype))


def empty(
    shape: Sequence[int], dtype: torch.dtype, device: torch.device | str | None = None
) -> torch.Tensor:
    """An uninitialised tensor like ``torch.empty(shape, dtype=dtype, device=device)``; large
    CPU buffers of numpy-representable dtypes come from numpy (huge pages, see the module doc).

    >>> empty((2, 3), torch.float32).shape
    torch.Size([2, 3])
    """
    return _allocate(shape, dtype, device, zeroed=False)


def zeros(
    shape: Sequence[int], dtype: torch.dtype, device: torch.device | str | None = None
) -> torch.Tensor:
    """Like :func:`empty`, filled with zeros (large CPU buffers by numpy's ``zeros``)."""
    return _allocate(shape, dtype, device, zeroed=True)
