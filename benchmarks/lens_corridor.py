"""LENS (``lens-vpr`` 0.1.5; Hines, Milford & Fischer 2024) on the Corridor place set.

Peer benchmark: trains LENS's feature + output layers (VPRTempo-style STDP with spike
forcing, ``lens.train_model``) on the 111 Corridor reference frames and runs the
111 queries through LENS's off-chip sinabs simulation (``lens.run_model.LENS.evaluate``:
conv centre-pixel selection -> ReLU -> Linear -> ReLU -> Linear, converted to IAF layers
by ``sinabs.from_torch.from_model``, Bernoulli-rate input over ``timebin`` steps). The
output spike counts form the similarity matrix, saved as ``[queries, references]``.

Run in a separate environment that has ``lens-vpr`` (not this project's venv)::

    make lens-env && .venv-lens/bin/python benchmarks/lens_corridor.py --out /tmp/lens_sim_0.npy --seed 0

``--out`` gets LENS's default output (sequence matcher of length 3 applied, as its
``evaluate`` does); ``<out stem>_single.npy`` gets the raw single-frame spike counts
(what single-image baselines should be compared with).

Settings changed from LENS's ``main.py`` defaults (everything else is the default):
``reference_places``/``query_places`` 100 -> 111 (the frame set's size), ``roi_dim``
[80, 80] -> [120, 160] (the whole frame; LENS's default is a DAVIS crop), ``nocuda``.
Frames are converted to 8-bit grayscale PNG (LENS's dataset reads one channel).
LENS's spiking query dataset reshapes every frame to a square (``sqrt(H*W)``), which
fails for 160x120 frames, so the query rasters here come from a wrapper around its
``CustomImageDataset`` (non-spiking output) that draws the same Bernoulli raster
(seed 50 per frame, ``timebin`` steps) in the frame's real shape.

The sinabs chip backend (``sinabs.backend.dynapcnn``, ``ChipFactory``) is replaced by
stubs in ``sys.modules``: importing it pulls the PyPI ``samna`` placeholder, which tries
to download the real package; it is only used for the on-chip (Speck) path.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import ClassVar

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

# Defaults copied from lens-vpr 0.1.5 main.py's argument parser (values, not code).
LENS_DEFAULTS = dict(
    dataset="example",
    camera="davis128",
    data_name="experiment001",
    reference="example-reference",
    query="example-query",
    data_dir="./lens/dataset/",
    reference_places=100,
    query_places=100,
    sequence_length=3,
    feature_multiplier=2.0,
    filter=1,
    epoch_feat=128,
    epoch_out=128,
    thr_l_feat=0.0,
    thr_h_feat=0.75,
    fire_l_feat=0.4,
    fire_h_feat=0.6,
    ip_rate_feat=0.02,
    stdp_rate_feat=0.01,
    thr_l_out=0.0,
    thr_h_out=0.5,
    fire_l_out=0.5,
    fire_h_out=0.5,
    ip_rate_out=0.02,
    stdp_rate_out=0.01,
    f_exc=0.35,
    f_inh=0.75,
    o_exc=1.0,
    o_inh=1.0,
    dims=[10, 10],
    roi_dim=[80, 80],
    train_model=False,
    GT_tolerance=3,
    sim_mat=False,
    PR_curve=False,
    matching=False,
    sad=False,
    timebin=1000,
    nocuda=False,
    event_driven=False,
    simulated_speck=False,
    collect_data=False,
    headless=False,
    save_input=False,
    demo=False,
)


def stub_chip_backend() -> None:
    """Keep ``sinabs.backend.dynapcnn`` (and so ``samna``) from being imported."""
    dyn = types.ModuleType("sinabs.backend.dynapcnn")
    dyn.__path__ = []

    class DynapcnnNetwork:  # only used on the Speck path
        def __init__(self, *args, **kwargs):
            raise RuntimeError("on-chip path is stubbed out in this benchmark")

    dyn.DynapcnnNetwork = DynapcnnNetwork
    chip = types.ModuleType("sinabs.backend.dynapcnn.chip_factory")
    chip.ChipFactory = DynapcnnNetwork
    sys.modules["sinabs.backend.dynapcnn"] = dyn
    sys.modules["sinabs.backend.dynapcnn.chip_factory"] = chip


def write_lens_layout(
    src: Path, root: Path, args: argparse.Namespace
) -> tuple[tuple[int, int], dict[str, int]]:
    """Write grayscale PNGs and LENS's CSVs (file name, place index, gps) under ``root``;
    returns the frame shape ``(H, W)`` and the number of frames written per split."""
    from PIL import Image

    shape = (0, 0)
    counts = {}
    for split, name in (("ref", args.reference), ("query", args.query)):
        out_dir = root / args.dataset / args.camera / name
        out_dir.mkdir(parents=True)
        files = sorted(p for p in (src / split).iterdir() if p.suffix.lower() in {".jpg", ".png"})
        if not files:
            raise SystemExit(f"no .jpg/.png frames in {src / split}")
        counts[split] = len(files)
        rows = ["image,index,gps"]
        for i, path in enumerate(files):
            with Image.open(path) as im:
                gray = im.convert("L")
            shape = (gray.height, gray.width)
            gray.save(out_dir / f"{i:06d}.png")
            rows.append(f"{i:06d}.png,{i},0")
        (root / f"{name}.csv").write_text("\n".join(rows) + "\n")
    return shape, counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="similarity .npy [queries, references]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="shared data root")
    opts = parser.parse_args(argv)
    out_path = Path(opts.out).resolve()
    src = Path(opts.data).resolve() / "vpr" / "corridor"

    stub_chip_backend()
    import lens.run_model as lens_run
    import torch
    import torchvision.transforms as transforms
    from lens.src.dataset import CustomImageDataset, ProcessImage
    from lens.tools import checker
    from lens.train_model import LENS_Trainer, train_model
    from torch.utils.data import DataLoader, Dataset

    random.seed(opts.seed)
    np.random.seed(opts.seed)  # noqa: NPY002 - LENS draws from numpy's global generator
    torch.manual_seed(opts.seed)

    work = Path(tempfile.mkdtemp(prefix="lens_corridor_"))
    os.chdir(work)  # LENS writes ./lens/models and ./lens/output relative to the cwd
    args = argparse.Namespace(**LENS_DEFAULTS)
    args.dataset, args.camera = "corridor", "gray"
    args.reference, args.query = "corridor-reference", "corridor-query"
    args.data_dir = str(work / "lens" / "dataset")
    (height, width), counts = write_lens_layout(src, Path(args.data_dir), args)
    n_ref, n_query = counts["ref"], counts["query"]
    args.reference_places, args.query_places = n_ref, n_query
    args.roi_dim = [height, width]
    args.nocuda = True

    # --- training (LENS's own train_model) ---
    args.train_model = True
    args.kernel_properties = checker.check_args(args)
    print("kernel properties:", args.kernel_properties, flush=True)
    trainer = LENS_Trainer(args)
    name = f"{args.reference}_LENS_IN{trainer.input}_FN{trainer.feature}_DB{n_ref}.pth"
    os.makedirs("./lens/models", exist_ok=True)
    t0 = time.perf_counter()
    train_model(trainer, name)
    train_s = time.perf_counter() - t0

    # --- inference (LENS's off-chip sinabs simulation) ---
    args.train_model = False
    args.kernel_properties = checker.check_args(args)
    model = lens_run.LENS(args)
    model.eval()
    model.load_model(os.path.join("./lens/models", name))

    class RasterQueries(Dataset):
        """LENS's query dataset, rastered in the frame's own [H, W] (not forced square)."""

        def __init__(self) -> None:
            self.base = CustomImageDataset(
                annotations_file=model.dataset_file,
                img_dir=model.query_dir,
                transform=transforms.Compose([ProcessImage()]),
                kernel_size=model.kernel_properties["kernel_size"],
                kernel_stride=model.kernel_properties["stride"],
                skip=model.filter,
                max_samples=model.query_places,
                is_spiking=False,
            )

        def __len__(self) -> int:
            return len(self.base)

        def __getitem__(self, idx):
            rate, label, gps, og = self.base[idx]
            gen = torch.Generator().manual_seed(50)
            steps = model.timebin
            raster = (torch.rand(steps, *rate.shape, generator=gen) < rate).float()
            return raster.view(steps, 1, height, width), label, gps, og

    single: list[torch.Tensor] = []
    real_from_model = lens_run.from_model

    def recording_from_model(*a, **kw):
        net = real_from_model(*a, **kw)
        net.register_forward_hook(lambda _m, _i, out: single.append(out.sum(dim=0).squeeze()))
        return net

    class Recorder:  # stands in for matplotlib in lens.run_model; keeps the first imshow
        shown: ClassVar[list[np.ndarray]] = []

        def imshow(self, x, *a, **kw):
            self.shown.append(np.asarray(x))

        def __getattr__(self, _name):
            return lambda *a, **kw: None

    lens_run.from_model = recording_from_model
    lens_run.plt = Recorder()
    loader = DataLoader(RasterQueries(), batch_size=1, shuffle=False, num_workers=0)
    t0 = time.perf_counter()
    with torch.no_grad():
        model.evaluate(loader, model)
    infer_s = time.perf_counter() - t0

    seq = Recorder.shown[0]  # LENS's [references, queries] matrix after sequence matching
    raw = torch.stack(single, dim=1).numpy()  # [references, queries] spike counts
    assert raw.shape == (n_ref, n_query) and seq.shape == raw.shape, (raw.shape, seq.shape)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    np.save(out_path, seq.T.astype(np.float32))
    np.save(out_path.with_name(out_path.stem + "_single.npy"), raw.T.astype(np.float32))
    print(f"train_time_s {train_s:.1f}")
    print(f"inference_time_s {infer_s:.1f} query_rate_hz {n_query / infer_s:.2f}")
    print(f"total output spikes {raw.sum():.0f}; queries with no spikes {(raw.sum(0) == 0).sum()}")
    print(f"saved {out_path} and {out_path.stem}_single.npy  [queries, references]")
    print(f"work dir {work}")


if __name__ == "__main__":
    main()
