"""VPRTempo (Hines et al., ICRA 2024; the ``vprtempo`` package, 1.1.10) on our data and splits.

The package's own entry points do not work as installed: its 1.1.10 evaluation path crashes,
and its bundled ``main.py`` script is overwritten by ``lens-vpr``'s when both are installed. So
this driver uses its classes directly, doing what its ``train_new_model`` and
``VPRTempo.evaluate`` do:

* images go through the package's own ``ProcessImage`` (grayscale, gamma correction, bilinear
  resize to ``dims``, ``patches x patches`` patch normalisation, 8-bit quantised intensities);
* one ``VPRTempoTrain`` module per region (the paper's setting for Corridor-sized sets: one module
  of all places) trains its ``feature_layer`` and then its ``output_layer`` for ``epochs``
  passes over the reference images in random order (the output neuron of place ``i`` is forced
  to fire for it);
* inference multiplies by both trained weight matrices (``output_layer.w(feature_layer.w(x))``,
  as ``VPRTempo.evaluate`` does) and reads the output as the similarity to each place.

VPRTempo draws its initial weights from torch's and NumPy's global generators; they are seeded
here inside :func:`neurosim.backend.seeded` and a saved/restored NumPy state, so a run is
reproducible and the caller's global random state is left as it was.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import time
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from neurosim.backend import BackendUnavailableError, seeded


def _torchvision_shim() -> None:
    """Make ``import torchvision`` succeed when its compiled operators cannot load.

    VPRTempo imports ``torchvision.transforms`` and ``torchvision.io`` at module level but this
    driver uses neither (it calls ``ProcessImage`` and the training loop directly). The PyPI
    torchvision wheel fails to import next to the CPU build of torch (its operators are built
    for another torch build), so where the real package does not import, empty stand-ins are
    registered; anything that reaches into them fails with an AttributeError.
    """
    import sys
    import types

    try:
        import torchvision  # noqa: F401
    except Exception:  # an incompatible binary build raises RuntimeError, not ImportError
        for name in [k for k in sys.modules if k == "torchvision" or k.startswith("torchvision.")]:
            del sys.modules[name]
        stub = types.ModuleType("torchvision")
        stub.__path__ = []  # a package, so that submodule imports resolve to the stand-ins
        for sub in ("transforms", "io"):
            module = types.ModuleType(f"torchvision.{sub}")
            setattr(stub, sub, module)
            sys.modules[f"torchvision.{sub}"] = module
        stub.io.read_image = None  # type: ignore[attr-defined]  # imported by name, unused
        sys.modules["torchvision"] = stub


def _import_vprtempo() -> tuple[type, type]:
    _torchvision_shim()
    try:
        from vprtempo.src.dataset import ProcessImage
        from vprtempo.VPRTempoTrain import VPRTempoTrain
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise BackendUnavailableError(
            "the VPRTempo comparison needs the `vprtempo` package (pip install "
            "'neurosim[vpr]', which also needs torchvision matching torch)"
        ) from exc
    return ProcessImage, VPRTempoTrain


@contextlib.contextmanager
def _numpy_seeded(seed: int) -> Iterator[None]:
    state = np.random.get_state()  # noqa: NPY002 - saved to be restored
    np.random.seed(seed % 2**32)  # noqa: NPY002 - the peer library samples from it
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


def vprtempo_inputs(
    frames: torch.Tensor, dims: tuple[int, int] = (28, 28), patches: int = 7
) -> torch.Tensor:
    """``uint8 [N, H, W, 3]`` (or ``[N, H, W]``) frames -> VPRTempo's input ``[N, h * w]``."""
    process_image, _ = _import_vprtempo()
    transform = process_image(list(dims), patches)
    x = frames if frames.dim() == 4 else frames.unsqueeze(-1).expand(*frames.shape, 3)
    return torch.stack([transform(f.permute(2, 0, 1).contiguous()).reshape(-1) for f in x])


class _Loader:
    """What VPRTempo's training loop iterates: ``(spikes [1, n], label [1])`` in a fresh
    random order every pass."""

    def __init__(self, x: torch.Tensor, generator: torch.Generator) -> None:
        self.x, self.generator = x, generator

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in torch.randperm(len(self.x), generator=self.generator).tolist():
            yield self.x[i].view(1, -1), torch.tensor([i])


def vprtempo_similarity(
    reference_frames: torch.Tensor,
    query_frames: torch.Tensor,
    *,
    regions: Sequence[torch.Tensor],
    epochs: int = 4,
    seed: int = 0,
    dims: tuple[int, int] = (28, 28),
    patches: int = 7,
    timing: dict[str, float] | None = None,
) -> np.ndarray:
    """Train VPRTempo modules on the reference frames and return ``[Q, R]`` similarities.

    Args:
        reference_frames, query_frames: ``uint8 [N, H, W, 3]``.
        regions: reference indices of each module (e.g. ``[torch.arange(R)]`` for one module).
        epochs: passes over each module's places (paper: 4).
        seed: seeds the package's global-RNG weight initialisation and the image order.
        dims, patches: image size and patch-normalisation window (paper: 28x28, 7).
        timing: if given, receives ``train_s`` and ``query_s``.
    """
    _, vprtempo_train = _import_vprtempo()
    ref = vprtempo_inputs(reference_frames, dims, patches)
    qry = vprtempo_inputs(query_frames, dims, patches)
    similarity = np.zeros((len(qry), len(ref)), dtype=np.float64)
    logger = logging.getLogger("neurosim.vprtempo")
    order = torch.Generator().manual_seed(seed)
    train_s = query_s = 0.0
    with contextlib.redirect_stderr(io.StringIO()):  # the package draws progress bars there
        for m, region in enumerate(regions):
            region = torch.as_tensor(region, dtype=torch.long)
            args = argparse.Namespace(
                database_dirs="reference", dataset="neurosim", max_module=len(region),
                epoch=epochs, filter=1,
            )  # fmt: skip
            start = time.perf_counter()
            with seeded(seed + m), _numpy_seeded(seed + m):
                model = vprtempo_train(args, list(dims), logger, len(regions), len(region))
                device = torch.device(model.device)
                loader = _Loader(ref[region].to(device), order)
                trained: list[str] = []
                for name in ("feature_layer", "output_layer"):
                    model.train_model(loader, getattr(model, name), model, 0, prev_layers=trained)
                    trained.append(name)
            train_s += time.perf_counter() - start
            start = time.perf_counter()
            with torch.no_grad():
                out = model.output_layer.w(model.feature_layer.w(qry.to(device)))
            similarity[:, region.numpy()] = out.double().cpu().numpy()
            query_s += time.perf_counter() - start
    if timing is not None:
        timing.update(train_s=train_s, query_s=query_s)
    return similarity
