"""HLOP training cost vs plain training of the same spiking network, interleaved in one process.

The ``continual_hlop`` network (784 -> hidden LIF -> hidden LIF -> 10, ``T`` steps, batch 64,
permuted MNIST) trained through :class:`experiments.trainer.Trainer`, at several points of the
10-task sequence. At task ``t`` HLOP holds the subspace rows that its schedule has frozen after
``t`` tasks (random orthonormal rows of the right sizes: the cost does not depend on their
values) plus the new rows of task ``t``; each HLOP step does the forward / backward, the
projection of the protected layers' weight updates (``auto`` mode) and the Hebbian update.
**plain** is the same step without HLOP (the ``finetune`` method).

Rounds alternate plain and HLOP (``--rounds`` x ``--steps`` steps each, the order flipped every
round); the table gives the median step time of each, their ratio per task (wall clock, and process
CPU time, which another job on the machine disturbs less), and the mean
ratio over the tasks measured (the whole-run ratio when the tasks are evenly spaced). It also
prints the ratio of multiply-adds (HLOP's extra matmuls over the training matmuls), the
arithmetic floor of the overhead on a device where matmuls dominate.

    python benchmarks/hlop_overhead.py                # CPU, 1 thread, tasks 0 3 6 9, paper network
    python benchmarks/hlop_overhead.py --network preset \
        --out benchmarks/results/hlop_overhead-cpu-preset.md   # the default preset's 256-wide net
    python benchmarks/hlop_overhead.py --device cuda --threads 0

Writes ``benchmarks/results/hlop_overhead-<device>.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from experiments.families.continual_hlop import ContinualHlop  # noqa: E402
from experiments.runner import make_config  # noqa: E402
from neurosim.backend import Runtime  # noqa: E402


def prepare(exp: ContinualHlop, method: int, task: int) -> None:
    """Put ``exp`` at the start of ``task`` of run ``method`` (HLOP: frozen rows of the earlier
    tasks, random orthonormal, plus the new rows of ``task``)."""
    exp._start_run(0, method)
    if exp.hlop is not None:
        for t in range(task):
            exp.hlop.begin_task(exp._rows(t))
            exp.hlop.end_task()
    exp._begin_task(task)
    exp.task = task


def time_steps(exp: ContinualHlop, steps: int, sync: bool) -> tuple[list[float], float]:
    """Wall seconds of each step, and the process CPU seconds per step of the block."""
    assert exp.trainer is not None
    times = []
    cpu = time.process_time()
    for s in range(steps):
        start = time.perf_counter()
        exp.trainer.train_step(s, exp.loss)
        if sync:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times, (time.process_time() - cpu) / steps


def macs(exp: ContinualHlop) -> tuple[float, float]:
    """(training, HLOP extra) multiply-adds per step, from the layer shapes and bases."""
    c = exp.config
    b, t, h = c.batch_size, c.time_steps, c.hidden
    layers = {"fc1": (b, 784, h, False), "fc2": (t * b, h, h, True), "heads.0": (b, h, 10, True)}
    train = 0.0
    extra = 0.0
    hlop = exp.hlop
    for name, (n, d, out, input_grad) in layers.items():
        train += n * d * out * (3 if input_grad else 2)
        if hlop is None or name not in hlop.layers:
            continue
        k_f = hlop.basis(name).shape[0]
        k_n = hlop.states[name].weight.shape[0] - k_f
        r = hlop.projection.operator(name).cost if k_f else 0
        input_mode = k_f > 0 and n * r < out * r  # what `auto` picks for a Linear
        if k_f:  # input mode: the projected rows replace the input of the weight gradient
            extra += n * d * r if input_mode else out * d * r
        rows = min(n, hlop.max_rows or n)
        if k_n:
            residual = 0 if (input_mode and rows == n) else rows * d * r  # shared in input mode
            extra += residual + c.hlop.iterations * 3 * rows * d * k_n  # + Oja iterations
    return train, extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0 = default)")
    parser.add_argument("--tasks", type=int, nargs="+", default=[0, 3, 6, 9])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--out", type=Path, help="where to write the table")
    parser.add_argument(
        "--network",
        default="paper",
        choices=["paper", "preset"],
        help="paper: the reference code's 784-800-800-10 LIF over T = 6 steps (default); "
        "preset: the preset's own network (default preset: 784-256-256-10, T = 4)",
    )
    parser.add_argument("overrides", nargs="*", help="config overrides, e.g. hidden=512")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    config = make_config(
        "continual_hlop",
        [
            f"device={args.device}",
            "methods=[finetune,hlop]",
            "n_seeds=1",
            *(["hidden=800", "time_steps=6"] if args.network == "paper" else []),
            *args.overrides,
        ],
        args.preset,
    )
    runtime = Runtime.create(args.device, seed=0)
    sync = runtime.device.type == "cuda"
    exps = {}
    for name in ("plain", "hlop"):
        exps[name] = ContinualHlop(config, runtime)
        exps[name].setup()
    load_start = os.getloadavg()
    rows = []
    ratios: list[float] = []
    cpu_ratios: list[float] = []
    for task in args.tasks:
        prepare(exps["plain"], 0, task)
        prepare(exps["hlop"], 1, task)
        for exp in exps.values():
            time_steps(exp, 3, sync)  # warm-up
        samples: dict[str, list[float]] = {"plain": [], "hlop": []}
        cpu: dict[str, list[float]] = {"plain": [], "hlop": []}
        for r in range(args.rounds):
            order = ("plain", "hlop") if r % 2 == 0 else ("hlop", "plain")
            for name in order:
                wall, per_step = time_steps(exps[name], args.steps, sync)
                samples[name] += wall
                cpu[name].append(per_step)
        plain = statistics.median(samples["plain"]) * 1e3
        hlop = statistics.median(samples["hlop"]) * 1e3
        cpu_ratio = statistics.median(cpu["hlop"]) / statistics.median(cpu["plain"])
        cpu_ratios.append(cpu_ratio)
        train_macs, extra_macs = macs(exps["hlop"])
        ratios.append(hlop / plain)
        sizes = {n: exps["hlop"].hlop.basis(n).shape[0] for n in exps["hlop"].hlop.layers}  # type: ignore[union-attr]
        rows.append(
            f"| {task} | {sizes} | {plain:.2f} | {hlop:.2f} | {hlop / plain:.2f} | "
            f"{cpu_ratio:.2f} | {1 + extra_macs / train_macs:.2f} |"
        )
    load_end = os.getloadavg()
    device = torch.cuda.get_device_name() if sync else f"{platform.machine()} CPU"
    c = config
    lines = [
        f"HLOP overhead, {device}, torch {torch.__version__}, threads {torch.get_num_threads()}; "
        f"hidden {c.hidden}, T {c.time_steps}, batch {c.batch_size}, Hebbian iterations "
        f"{c.hlop.iterations}, max_rows {c.hlop.max_rows}, mode {c.hlop.mode}; "
        f"{args.rounds} rounds x {args.steps} steps, interleaved",
        f"load average at start {load_start[0]:.2f}, at end {load_end[0]:.2f} (2-core machine: "
        "above ~2.5 the ratios are not a result)",
        "",
        "| task | frozen rows (fc1, fc2, head) | plain ms/step | HLOP ms/step | ratio (wall) | "
        "ratio (CPU time) | multiply-add ratio |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        f"mean ratio over tasks {args.tasks}: wall {statistics.mean(ratios):.2f}, CPU time "
        f"{statistics.mean(cpu_ratios):.2f}",
    ]
    text = "\n".join(lines)
    print(text)
    out = args.out or ROOT / "benchmarks" / "results" / f"hlop_overhead-{runtime.device.type}.md"
    out.write_text(text + "\n")


if __name__ == "__main__":
    main()
