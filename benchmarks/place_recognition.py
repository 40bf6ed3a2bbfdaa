"""Place recognition: training time vs number of places, and query rate, on one device.

Two parts, both printed as markdown tables with the device and the load average:

* ``scaling``: the ensemble (``n_exc`` neurons per module, ``places_per_module`` places each) on
  the generated route at several sizes: training time of ``epochs`` epochs (every module learns
  its own region in the same batched presentations, so the number of presentations stays
  ``epochs * places_per_module`` and only the width of each tensor operation grows), and the
  query rate measured on ``--queries`` queries. With ``--backends numba torch`` every size is
  trained and queried with each kernel backend in turn (same schedule and seeds) and the
  training-time ratio printed; the first presentation (where numba compiles) is left out of
  the time, which is scaled to all presentations.
* ``query``: queries per second of the ensemble at several batch sizes (after one epoch of
  learning; by default the ``default`` preset's read-out: 1400 ms regular trains, equal-length
  weights, no inhibition, a common threshold), interleaved round by round with the two matchers
  it is compared with on the same images: SAD (one ``cdist``) and the VPRTempo forward pass
  (two matrix products), which bound what a non-spiking matcher costs.

Usage (the GPU target of the issue, > 1000 queries/s, is measured with ``--device cuda``)::

    python benchmarks/place_recognition.py --device cpu --part scaling --sizes 100 400 1600 \
        --backends numba torch
    python benchmarks/place_recognition.py --device cuda --part query --batches 64 256 1024

Each run writes its table to ``benchmarks/results/place_recognition-<part>-<device>.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from neurosim.datasets.place import generated_route
from neurosim.functional.conductance import ConductanceLIFParameters
from neurosim.functional.plasticity import STDPParameters
from neurosim.functional.wta import WTAParameters
from neurosim.place import ModularPlaceNet, preprocess, sad_similarity, split_regions
from neurosim.place import training_schedule as schedule_for

RESULTS = Path(__file__).resolve().parent / "results"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _images(n: int, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    data = generated_route(n, seed=0)
    ref = preprocess(data.reference, size, 7)
    qry = preprocess(data.query, size, 7)
    ref = (2 * ref - 1).clamp(min=0).reshape(n, -1)
    qry = (2 * qry - 1).clamp(min=0).reshape(n, -1)
    return ref, qry


def _model(
    n: int, n_input: int, args: argparse.Namespace, device: torch.device, backend: str = "auto"
) -> ModularPlaceNet:
    gen = torch.Generator(device=device).manual_seed(0)
    regions = split_regions(n, args.places_per_module)
    wta = WTAParameters(
        exc=ConductanceLIFParameters.diehl_cook_excitatory(dt=1.0, theta_plus=0.5),
        inh=ConductanceLIFParameters.diehl_cook_inhibitory(dt=1.0),
        integrator="exponential",
    )
    return ModularPlaceNet(
        regions, n, n_input, args.n_exc, generator=gen, device=device, wta=wta,
        stdp=STDPParameters.diehl_cook(dt=1.0, triplet=False, nu_post=0.05),
        weight_sum=40.0, presentation_ms=args.presentation_ms, backend=backend,
    )  # fmt: skip


def scaling(args: argparse.Namespace, device: torch.device) -> list[str]:
    backends = args.backends
    head = " | ".join(f"train s ({b}) | query/s ({b})" for b in backends)
    ratio = f" | train {backends[1]} / {backends[0]}" if len(backends) > 1 else ""
    rows = [
        f"device: {device} ({_name(device)}), {args.epochs} epochs of {args.presentation_ms:g} ms "
        f"presentations, {args.n_exc} neurons per module; load average before: "
        f"{os.getloadavg()[0]:.2f}",
        "",
        f"| places | modules | presentations | {head}{ratio} | load |",
        "|---|---|---|" + "---|---|" * len(backends) + ("---|" if ratio else "") + "---|",
    ]
    for n in args.sizes:
        ref, qry = _images(n, (args.height, args.width))
        ref, qry = ref.to(device), qry.to(device)
        cells, train = [], []
        sched: list[torch.Tensor] = []
        regions = 0
        for backend in backends:  # the same training, each backend in turn
            model = _model(n, ref.shape[1], args, device, backend)
            regions = len(model.regions)
            gen = torch.Generator(device=device).manual_seed(1)
            sched = schedule_for(
                model.regions, args.epochs, generator=torch.Generator().manual_seed(0)
            )
            model.train_step(ref, sched[0], generator=gen)  # compiles on first use
            _sync(device)
            start = time.perf_counter()
            for k in range(1, len(sched)):
                model.train_step(ref, sched[k], generator=gen)
            _sync(device)
            train_s = (time.perf_counter() - start) * len(sched) / max(len(sched) - 1, 1)
            q = qry[: args.queries]
            _sync(device)
            start = time.perf_counter()
            model.net.respond(q, generator=gen, batch_size=args.batch)
            _sync(device)
            rate = len(q) / (time.perf_counter() - start)
            cells.append(f"{train_s:.1f} | {rate:.1f}")
            train.append(train_s)
        extra = f" | {train[1] / train[0]:.1f}" if len(train) > 1 else ""
        rows.append(
            f"| {n} | {regions} | {len(sched)} | {' | '.join(cells)}{extra} | "
            f"{os.getloadavg()[0]:.2f} |"
        )
        print(rows[-1], flush=True)
    return rows


def query(args: argparse.Namespace, device: torch.device) -> list[str]:
    n = args.sizes[0]
    ref, qry = _images(n, (args.height, args.width))
    ref, qry = ref.to(device), qry.to(device)
    model = _model(n, ref.shape[1], args, device)
    gen = torch.Generator(device=device).manual_seed(1)
    # one epoch of learning, so that the thresholds and weights fire at a realistic rate
    for places in schedule_for(model.regions, 1, generator=torch.Generator().manual_seed(0)):
        model.train_step(ref, places, generator=gen)
    theta = model.net.theta.mean().expand_as(model.net.theta)
    readout = dict(
        presentation_ms=args.query_ms,
        code=args.code,
        w_inh_exc=args.inhibition * model.net.wta.w_inh_exc,
        weight_norm="l2" if args.code == "regular" else None,
        theta=theta,
    )
    w1 = torch.rand(2 * ref.shape[1], ref.shape[1], device=device)  # VPRTempo-shaped layers
    w2 = torch.rand(n, 2 * ref.shape[1], device=device)
    rows = [
        f"device: {device} ({_name(device)}), {n} places, {len(model.regions)} modules of "
        f"{args.n_exc} neurons, {args.query_ms:g} ms {args.code} queries (inhibition x "
        f"{args.inhibition:g}); load average before: "
        f"{os.getloadavg()[0]:.2f}",
        "",
        "| batch | ensemble query/s | SAD query/s | VPRTempo-forward query/s | ensemble / SAD time |",
        "|---|---|---|---|---|",
    ]
    for batch in args.batches:
        x = qry[torch.arange(batch, device=device) % n]
        times: dict[str, list[float]] = {"snn": [], "sad": [], "vprtempo": []}
        for _ in range(args.rounds):  # interleaved round by round
            for name in times:
                _sync(device)
                start = time.perf_counter()
                if name == "snn":
                    model.net.respond(x, generator=gen, batch_size=batch, **readout)  # type: ignore[arg-type]
                elif name == "sad":
                    sad_similarity(x, ref)
                else:
                    (x @ w1.T) @ w2.T
                _sync(device)
                times[name].append(time.perf_counter() - start)
        med = {k: statistics.median(v) for k, v in times.items()}
        rows.append(
            f"| {batch} | {batch / med['snn']:.1f} | {batch / med['sad']:.1f} | "
            f"{batch / med['vprtempo']:.1f} | {med['snn'] / med['sad']:.0f} |"
        )
        print(rows[-1], flush=True)
    rows.append(f"\nload average after: {os.getloadavg()[0]:.2f}")
    return rows


def _name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{os.cpu_count()} CPU threads, torch threads {torch.get_num_threads()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--part", choices=("scaling", "query"), default="scaling")
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 400, 1600])
    parser.add_argument("--batches", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--queries", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--places-per-module", dest="places_per_module", type=int, default=25)
    parser.add_argument("--n-exc", dest="n_exc", type=int, default=100)
    parser.add_argument("--presentation-ms", dest="presentation_ms", type=float, default=350.0)
    parser.add_argument(
        "--backends",
        nargs="+",
        default=["auto"],
        help="kernel backends of the ensemble (e.g. numba torch: each size trained with both)",
    )
    parser.add_argument(
        "--query-ms", dest="query_ms", type=float, default=1400.0,
        help="query presentation (the default preset: 1400 ms)",
    )  # fmt: skip
    parser.add_argument("--code", choices=("regular", "poisson"), default="regular")
    parser.add_argument(
        "--inhibition", type=float, default=0.0, help="factor on the lateral inhibition at query"
    )
    parser.add_argument("--height", type=int, default=48)
    parser.add_argument("--width", type=int, default=64)
    args = parser.parse_args()
    device = torch.device(args.device)
    rows = scaling(args, device) if args.part == "scaling" else query(args, device)
    text = "\n".join(rows) + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"place_recognition-{args.part}-{device.type}.md").write_text(text)


if __name__ == "__main__":
    main()
