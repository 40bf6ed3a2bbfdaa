"""Data-parallel helpers: launching, rank, world size, sharding, metric reduction, DDP wrapping.

With one process (no ``torch.distributed`` process group) every function is the identity, so a
family written with them runs unchanged on one or many ranks. Families draw the *global* batch
from their generator (identical on every rank, the generators being seeded alike) and keep
``shard(batch)``, this rank's contiguous part; with a loss that is a mean over the batch and DDP's
gradient averaging, N ranks then take the same steps as one process with the global batch.

How ranks start (see ``docs/distributed.md``):

* ``neurosim run EXP --nproc N`` on one machine: :func:`launch` spawns N processes with the
  variables ``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
  ``MASTER_PORT`` on a free port);
* ``torchrun --nnodes M --nproc-per-node N -m experiments.cli run EXP ...`` on several machines.

Either way each process runs the ordinary CLI, which finds those variables
(:func:`launched`) and joins the process group (:func:`process_group`): ``gloo`` for CPU tensors,
``nccl`` for CUDA tensors (one GPU per rank, ``cuda:LOCAL_RANK``). Rank 0 alone writes the run
directory; what the others need from it (the run directory's path, the config of a resumed
run, the checkpoint) reaches them through :func:`from_main`, so the nodes share no filesystem.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import pickle
import socket
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import torch
from torch import nn

from neurosim.backend import InputError, NeurosimError, resolve_device

T = TypeVar("T")

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
"""What ``torchrun`` (and :func:`launch`) set in every rank's environment."""


def is_distributed() -> bool:
    """Whether a ``torch.distributed`` process group is initialised."""
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def rank() -> int:
    """This process's rank (0 without a process group)."""
    return torch.distributed.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of ranks (1 without a process group)."""
    return torch.distributed.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    """Whether this is rank 0, the one that writes results, plots and checkpoints."""
    return rank() == 0


def shard(batch: torch.Tensor, dim: int = 0) -> torch.Tensor:
    """This rank's contiguous share of ``batch`` along ``dim``.

    The size along ``dim`` must divide by the world size (so every rank's loss is a mean over
    equally many items and DDP's average equals the global mean).
    """
    n = world_size()
    if n == 1:
        return batch
    size = batch.shape[dim]
    if size % n:
        raise InputError(
            f"global batch of {size} does not divide over {n} ranks; "
            "pick a batch size that is a multiple of the number of processes"
        )
    return batch.narrow(dim, rank() * (size // n), size // n)


def local_rank() -> int:
    """This process's index on its machine (``LOCAL_RANK``; 0 without one)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def reduce_mean(
    metrics: Mapping[str, float | torch.Tensor], device: torch.device | None = None
) -> dict[str, float]:
    """Mean of each scalar metric over all ranks, as Python floats (one host sync in all).

    Values may be floats or 0-dim tensors (a trainer step's metrics stay on the device until
    they are logged). With one process this only converts them.
    """
    if not metrics:
        return {}
    keys = sorted(metrics)
    if device is None:
        devices = [v.device for v in metrics.values() if isinstance(v, torch.Tensor)]
        device = devices[0] if devices else torch.device("cpu")
    values = torch.stack(
        [torch.as_tensor(metrics[k], dtype=torch.float64).to(device).reshape(()) for k in keys]
    )
    if world_size() > 1:
        torch.distributed.all_reduce(values)
        values /= world_size()
    return dict(zip(keys, values.tolist(), strict=True))


def from_main(fn: Callable[[], T]) -> T:
    """``fn()`` evaluated on rank 0 only and sent to every rank (its exception too).

    Rank 0 creates the run directory, reads a resumed run's config and its checkpoint; the other
    ranks receive the result, so they need no shared filesystem. With one process: ``fn()``.
    """
    if world_size() == 1:
        return fn()
    box: list[Any] = [None]
    if is_main():
        try:
            box[0] = (True, fn())
        except Exception as exc:  # sent on, so that every rank stops with the same error
            try:
                pickle.dumps(exc)
                box[0] = (False, exc)
            except Exception:
                box[0] = (False, NeurosimError(f"{type(exc).__name__}: {exc}"))
            torch.distributed.broadcast_object_list(box, src=0)
            raise
    torch.distributed.broadcast_object_list(box, src=0)
    ok, value = box[0]
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


def launched() -> bool:
    """Whether this process was started by ``torchrun`` or :func:`launch` (``RANK`` and
    ``WORLD_SIZE`` are set)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def rank_device(spec: str | torch.device | None) -> torch.device:
    """This rank's device for a config's ``device`` spec.

    With several ranks, ``auto`` and ``cuda`` mean ``cuda:LOCAL_RANK`` (one GPU per rank);
    ``cuda:N`` would put several ranks on one GPU and is refused. With one process this is
    :func:`neurosim.backend.resolve_device`.
    """
    if world_size() == 1:
        return resolve_device(spec)
    text = str(spec).strip().lower() if spec is not None else "auto"
    if text in ("auto", "cuda") and (text == "cuda" or torch.cuda.is_available()):
        index = local_rank()
        count = torch.cuda.device_count()
        if index >= count:
            raise InputError(
                f"rank {rank()} has LOCAL_RANK {index} but this machine shows {count} CUDA "
                "device(s); start at most one process per GPU (--nproc / --nproc-per-node)"
            )
        return torch.device("cuda", index)
    device = resolve_device(spec)
    if device.type == "cuda":
        raise InputError(
            f"device {str(spec)!r} with {world_size()} processes would put several ranks on one "
            "GPU; use device=cuda (or auto): rank r then uses cuda:LOCAL_RANK"
        )
    return device


def backend_name() -> str:
    """The process-group backend: ``gloo`` for CPU tensors, plus ``nccl`` for CUDA tensors
    where CUDA and NCCL exist (``cpu:gloo,cuda:nccl``)."""
    if torch.cuda.is_available() and torch.distributed.is_nccl_available():
        return "cpu:gloo,cuda:nccl"
    return "gloo"


@contextlib.contextmanager
def process_group(timeout_s: float = 1800.0) -> Iterator[None]:
    """Join the process group described by the ``torchrun`` variables for the block.

    Does nothing when the variables are absent (one process) or a group already exists. On
    CUDA machines the current device becomes ``cuda:LOCAL_RANK``. Leaves the group at the end.
    """
    if not launched() or is_distributed():
        yield
        return
    missing = [name for name in ENV_VARS if name not in os.environ]
    if missing:
        raise InputError(
            f"RANK and WORLD_SIZE are set but {missing} are not; start the ranks with torchrun "
            "or `neurosim run --nproc N`"
        )
    if torch.cuda.is_available() and local_rank() < torch.cuda.device_count():
        torch.cuda.set_device(local_rank())
    torch.distributed.init_process_group(
        backend=backend_name(), timeout=datetime.timedelta(seconds=timeout_s)
    )
    try:
        yield
    finally:
        torch.distributed.destroy_process_group()


def free_port() -> int:
    """A TCP port that was free a moment ago on this machine (for ``MASTER_PORT``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launch(main: Callable[[list[str]], int], argv: Sequence[str], nproc: int) -> int:
    """Run ``main(argv)`` in ``nproc`` new processes that form one process group.

    Each process gets ``torchrun``'s variables (ranks ``0..nproc-1`` on ``127.0.0.1`` and a free
    port) and, unless ``OMP_NUM_THREADS`` is set, an equal share of the CPU threads. ``main``
    must be importable (a module-level function). Returns 0 when every rank succeeded, else the
    exit code of the first rank that failed (the others are stopped).
    """
    if nproc < 1:
        raise InputError(f"--nproc must be >= 1, got {nproc}")
    from torch.multiprocessing import ProcessExitedException, ProcessRaisedException

    context = torch.multiprocessing.start_processes(
        _rank_main,
        args=(main, list(argv), nproc, free_port()),
        nprocs=nproc,
        join=False,
        start_method="spawn",
    )
    try:
        while not context.join():
            pass
    except ProcessExitedException as exc:
        return exc.exit_code if exc.exit_code and exc.exit_code > 0 else 1
    except ProcessRaisedException as exc:
        print(f"neurosim: error: a rank failed:\n{exc}", file=sys.stderr)
        return 1
    return 0


def _rank_main(
    index: int, main: Callable[[list[str]], int], argv: list[str], nproc: int, port: int
) -> None:
    os.environ.update(
        RANK=str(index),
        LOCAL_RANK=str(index),
        WORLD_SIZE=str(nproc),
        LOCAL_WORLD_SIZE=str(nproc),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // nproc))
    code = main(argv)
    if code:
        sys.exit(code)


def wrap_ddp(model: nn.Module, device: torch.device) -> nn.Module:
    """``DistributedDataParallel(model)`` on ``device`` (CUDA: one device per rank)."""
    from torch.nn.parallel import DistributedDataParallel

    if device.type == "cuda":
        return DistributedDataParallel(model, device_ids=[device])
    return DistributedDataParallel(model)
