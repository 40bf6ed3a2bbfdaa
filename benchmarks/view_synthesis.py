"""View-synthesis training throughput: rays/s and samples/s of one training step, hash-grid
backends side by side in one process (round-robin), on a scene of the data root.

Each backend gets its own copy of the same ``view_synthesis`` experiment (same seed, same config
but ``backend``). All copies first train ``--warmup`` steps (so the occupancy grid
has pruned empty space and the samples per ray are those of a real run), then the timed rounds
alternate between them: ``--rounds`` rounds of ``--steps`` steps each. Reported: median rays/s
and samples/s over the rounds, the ratio to the first backend, the device and the load average.

    python benchmarks/view_synthesis.py --device cuda --scene nerf/lego_400 --backends torch triton
    python benchmarks/view_synthesis.py --scene nerf/lego_200 --backends torch     # CPU

Writes ``benchmarks/results/view_synthesis-<device>.md``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from experiments.families.view_synthesis import ViewSynthesis
from experiments.runner import make_config
from neurosim.backend import Runtime


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--scene", default="nerf/lego_200")
    parser.add_argument("--backends", nargs="+", default=["torch"])
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--target-samples", type=int, default=1 << 18)
    parser.add_argument("--out", default=None)
    parser.add_argument("overrides", nargs="*", help="extra view_synthesis config overrides")
    args = parser.parse_args()

    experiments = {}
    for backend in args.backends:
        cfg = make_config(
            "view_synthesis",
            [
                f"scene={args.scene}",
                f"device={args.device}",
                f"precision={args.precision}",
                f"target_samples={args.target_samples}",
                "max_rays=65536",
                "rays=4096",
                f"steps={args.warmup + args.rounds * args.steps + 1}",
                f"backend={backend}",
                "turntable_frames=0",
                *args.overrides,
            ],
        )
        runtime = Runtime.create(cfg.device, cfg.precision, cfg.seed)
        exp = ViewSynthesis(cfg, runtime, None)
        exp.setup()
        experiments[backend] = exp
    device = next(iter(experiments.values())).runtime.device
    for backend, exp in experiments.items():
        for step in range(args.warmup):
            exp.step(step)
        print(f"{backend}: warm-up done, {exp.n_rays} rays per step", flush=True)

    rates: dict[str, list[tuple[float, float]]] = {b: [] for b in experiments}
    for r in range(args.rounds):
        for backend, exp in experiments.items():
            rays = samples = 0.0
            _sync(device)
            start = time.perf_counter()
            for k in range(args.steps):
                m = exp.step(args.warmup + r * args.steps + k)
                rays += m["rays"]
                samples += m["samples"]
            _sync(device)
            elapsed = time.perf_counter() - start
            rates[backend].append((rays / elapsed, samples / elapsed))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    load = os.getloadavg()
    lines = [
        f"device: {name}; torch {torch.__version__}; scene {args.scene}; precision "
        f"{args.precision}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        "",
        "| backend | rays/s (median) | samples/s (median) | rays/s vs first |",
        "|---|---|---|---|",
    ]
    first = None
    for backend, values in rates.items():
        ray_rate = statistics.median(v[0] for v in values)
        sample_rate = statistics.median(v[1] for v in values)
        first = first or ray_rate
        lines.append(
            f"| {backend} | {ray_rate:,.0f} | {sample_rate:,.0f} | {ray_rate / first:.2f}x |"
        )
    table = "\n".join(lines)
    print(table)
    out = Path(args.out or f"benchmarks/results/view_synthesis-{device.type}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + "\n")


if __name__ == "__main__":
    main()
