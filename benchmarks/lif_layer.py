"""One Linear(n -> n) + LIF layer over T steps, batch 16: neurosim vs snnTorch vs SpikingJelly,
and the bare Linear on all steps (the physical floor: the matmul every library has to do).

The Open Neuromorphic SNN-library benchmark setup. Every library runs the same layer in the same
process, on the same input, with the same decay (``beta = 0.9``, SpikingJelly ``tau = 10`` with
``decay_input=False``), threshold 1 and reset by subtraction:

* **bare**: ``Linear`` on all ``T * B`` rows at once, ``out.sum().backward()``; no neuron.
* **neurosim**: ``SpikingSequential(Linear, LIF)``: one ``[T * B, n] x [n, n]`` matmul, then the
  fused ``lif_scan`` (``backend=auto``: numba on the CPU, Triton on CUDA). ``delayed_reset=True``
  so that its spikes are snnTorch's. ``--neurosim-backends loop`` adds rows for other backends.
* **snnTorch 1.0**: the documented step loop ``cur = fc(x[t]); spk, mem = lif(cur, mem)``.
* **SpikingJelly 2.0**: the Linear on all steps at once, then
  ``functional.lif_multi_step`` (its fastest backend for the device).
* **scan**: neurosim's LIF alone on a ``[T, B, n]`` input (no Linear): what the neuron adds on
  top of the floor.

Timing: after ``--warmup`` runs of each, ``--rounds`` rounds; in every round each library runs
once, in a rotating order, so that a change of machine load hits every library alike; the table
reports the median over rounds and the ratio to the bare Linear and to neurosim. The load average
(``os.getloadavg()``) is printed before and after; on a shared 2-core machine a load above ~2.5
makes the ratios unreliable (snnTorch's many small per-step operations suffer most). Peak
memory (``--memory``): on CUDA ``max_memory_allocated`` during one forward + backward; on the CPU
the growth of the peak resident set of a fresh child process.

    python benchmarks/lif_layer.py                       # CPU: n=1024, T=100, batch 16, fp32
    python benchmarks/lif_layer.py --device cuda --n 4096 16384 --steps 500 --dtype fp32 bf16

Prints a markdown table and writes it to ``benchmarks/results/lif_layer-<device>.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BETA = 0.9
THRESHOLD = 1.0
LIBRARIES = ("bare", "neurosim", "scan", "snntorch", "spikingjelly")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


# --------------------------------------------------------------------------------------------
# the layers


def build(library: str, n: int, device: torch.device, dtype: torch.dtype) -> Any:
    """A callable ``x [T, B, n] -> output [T, B, n]`` for one library (``neurosim:<backend>``
    picks a neurosim backend)."""
    torch.manual_seed(0)
    fc = nn.Linear(n, n).to(device, dtype)
    if library == "bare":

        def run_bare(x: torch.Tensor) -> torch.Tensor:
            steps, batch = x.shape[:2]
            return fc(x.reshape(steps * batch, -1)).reshape(steps, batch, -1)

        return run_bare
    if library.startswith("scan"):  # neurosim's LIF alone, on the input: the cost over the floor
        from neurosim.neurons import LIF

        backend = library.split(":", 1)[1] if ":" in library else "auto"
        lif_only = LIF(beta=BETA, threshold=THRESHOLD, delayed_reset=True, backend=backend)

        def run_scan(x: torch.Tensor) -> torch.Tensor:
            out, _ = lif_only(x.detach().requires_grad_(True))
            return out

        return run_scan
    if library.startswith("neurosim"):
        from neurosim.neurons import LIF, SpikingSequential

        backend = library.split(":", 1)[1] if ":" in library else "auto"
        lif = LIF(beta=BETA, threshold=THRESHOLD, delayed_reset=True, backend=backend)
        net = SpikingSequential(fc, lif).to(device)

        def run_ours(x: torch.Tensor) -> torch.Tensor:
            out, _ = net(x)
            return out

        return run_ours
    if library == "snntorch":
        import snntorch

        leaky = snntorch.Leaky(beta=BETA, threshold=THRESHOLD, reset_mechanism="subtract")
        leaky = leaky.to(device)

        def run_snntorch(x: torch.Tensor) -> torch.Tensor:
            mem = leaky.init_leaky()
            spikes = []
            for t in range(x.shape[0]):
                spk, mem = leaky(fc(x[t]), mem)
                spikes.append(spk)
            return torch.stack(spikes)

        return run_snntorch
    if library == "spikingjelly":
        from spikingjelly.activation_based import surrogate
        from spikingjelly.activation_based.functional import neuron as sj

        tau = 1.0 / (1.0 - BETA)  # v = (1 - 1/tau) v + x  with decay_input=False
        sg = surrogate.Sigmoid()

        def run_spikingjelly(x: torch.Tensor) -> torch.Tensor:
            steps, batch = x.shape[:2]
            cur = fc(x.reshape(steps * batch, -1)).reshape(steps, batch, -1)
            v0 = torch.zeros_like(cur[0], dtype=torch.float32)
            spikes, _, _ = sj.lif_multi_step(
                cur, v0, tau=tau, decay_input=False, v_threshold=THRESHOLD, v_reset=None,
                surrogate_function=sg,
            )  # fmt: skip
            return spikes

        return run_spikingjelly
    raise ValueError(f"unknown library {library!r}")


def make_input(
    steps: int, batch: int, n: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Uniform [0, 3) input: with the default Linear init 10-20% of neurons fire per step."""
    g = torch.Generator().manual_seed(1)
    return (torch.rand(steps, batch, n, generator=g) * 3.0).to(device, dtype)


# --------------------------------------------------------------------------------------------
# timing and memory


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_once_ms(fn: Callable[[], Any], device: torch.device) -> float:
    """Wall time of one call in milliseconds (CUDA events on CUDA)."""
    if device.type == "cuda":
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize(device)
        return float(start.elapsed_time(end))
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def workloads(
    library: str, args: argparse.Namespace, n: int, dtype: torch.dtype, device: torch.device
) -> dict[str, Callable[[], Any]]:
    """``fwd`` (training-mode forward), ``fwd_bwd`` (forward + backward of ``out.sum()``) and
    ``spikes`` (the output under ``no_grad``) of one library."""
    run = build(library, n, device, dtype)
    x = make_input(args.steps, args.batch, n, device, dtype)

    def fwd_bwd() -> Any:
        out = run(x)
        out.float().sum().backward()
        return out

    def spikes() -> torch.Tensor:
        with torch.no_grad():
            return run(x).detach().float().cpu()

    return {"fwd": lambda: run(x), "fwd_bwd": fwd_bwd, "spikes": spikes}


def interleaved(
    cases: dict[str, dict[str, Callable[[], Any]]],
    device: torch.device,
    warmup: int,
    rounds: int,
) -> dict[str, dict[str, list[float]]]:
    """Times of every case, round by round (each round runs every library once, in a rotating
    order), for the forward and the forward + backward."""
    names = list(cases)
    for name in names:
        for _ in range(warmup):
            cases[name]["fwd_bwd"]()
    _sync(device)
    times: dict[str, dict[str, list[float]]] = {n: {"fwd": [], "fwd_bwd": []} for n in names}
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            for kind in ("fwd", "fwd_bwd"):
                times[name][kind].append(time_once_ms(cases[name][kind], device))
    return times


def peak_memory_mib(
    library: str, args: argparse.Namespace, n: int, dtype_name: str, device: torch.device
) -> float:
    """Peak memory of one forward + backward in MiB (see the module docstring)."""
    if device.type == "cuda":
        fwd_bwd = workloads(library, args, n, DTYPES[dtype_name], device)["fwd_bwd"]
        fwd_bwd()
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fwd_bwd()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    cmd = [sys.executable, __file__, "--child-memory", library, "--n", str(n),
           "--steps", str(args.steps), "--batch", str(args.batch), "--dtype", dtype_name]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return float("nan")
    return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"])


def _peak_rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _child_memory(args: argparse.Namespace) -> None:
    dtype = DTYPES[args.dtype[0]]
    tiny = argparse.Namespace(**{**vars(args), "steps": 2, "batch": 2})
    workloads(args.child_memory, tiny, 8, dtype, torch.device("cpu"))["fwd_bwd"]()
    fwd_bwd = workloads(args.child_memory, args, args.n[0], dtype, torch.device("cpu"))["fwd_bwd"]
    before = _peak_rss_kib()
    fwd_bwd()
    after = _peak_rss_kib()
    print(json.dumps({"peak_mib": (after - before) / 1024}))


# --------------------------------------------------------------------------------------------


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--n", type=int, nargs="+", default=[1024], help="layer width(s)")
    parser.add_argument("--steps", type=int, default=100, help="time steps T")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--dtype", nargs="+", default=["fp32"], choices=sorted(DTYPES))
    parser.add_argument("--libraries", nargs="+", default=list(LIBRARIES))
    parser.add_argument(
        "--neurosim-backends", nargs="*", default=[],
        help="extra neurosim lif_scan backends to time beside auto (e.g. loop compile)",
    )  # fmt: skip
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--memory", action="store_true", help="also measure peak memory")
    parser.add_argument("--out", type=Path, default=None, help="markdown file to write")
    parser.add_argument("--child-memory", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_memory:
        _child_memory(args)
        return ""
    device = torch.device(args.device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = f"{_cpu_name()}, {torch.get_num_threads()} torch threads"
    from neurosim.backend import kernels

    picked = kernels.resolve("lif_scan", "auto", device).backend
    libraries = list(args.libraries) + [f"neurosim:{b}" for b in args.neurosim_backends]
    load_before = _load()
    print(f"load average before: {load_before}", file=sys.stderr)
    rows: list[str] = []
    for n in args.n:
        for dtype_name in args.dtype:
            dtype = DTYPES[dtype_name]
            cases: dict[str, dict[str, Callable[[], Any]]] = {}
            for library in libraries:
                try:
                    cases[library] = workloads(library, args, n, dtype, device)
                    cases[library]["fwd_bwd"]()  # fails here if a peer lacks the dtype
                except Exception as exc:  # a peer may be missing or lack a dtype
                    print(f"{library} n={n} {dtype_name}: {type(exc).__name__}: {exc}",
                          file=sys.stderr)  # fmt: skip
                    cases.pop(library, None)
            times = interleaved(cases, device, args.warmup, args.rounds)
            med = {
                k: {kind: statistics.median(v) for kind, v in t.items()} for k, t in times.items()
            }
            spikes = {k: c["spikes"]() for k, c in cases.items()}
            bare = med.get("bare")
            ours = med.get("neurosim")
            for library, m in med.items():
                ratio_bare = (
                    f"{m['fwd'] / bare['fwd']:.2f}x / {m['fwd_bwd'] / bare['fwd_bwd']:.2f}x"
                    if bare
                    else "-"
                )
                vs_ours = (
                    f"{m['fwd'] / ours['fwd']:.2f}x / {m['fwd_bwd'] / ours['fwd_bwd']:.2f}x"
                    if ours
                    and library.startswith(("snntorch", "spikingjelly", "neurosim:", "scan"))
                    else "-"
                )
                agree = "-"
                if "snntorch" in spikes and library not in ("bare", "snntorch", "scan"):
                    same = (spikes[library] == spikes["snntorch"]).float().mean()
                    agree = f"{float(same) * 100:.2f}%"
                spread = max(times[library]["fwd_bwd"]) / min(times[library]["fwd_bwd"])
                mem = (
                    f"{peak_memory_mib(library, args, n, dtype_name, device):.0f}"
                    if args.memory
                    else "-"
                )
                rows.append(
                    f"| {n} | {dtype_name} | {library} | {m['fwd']:.1f} | {m['fwd_bwd']:.1f} | "
                    f"{spread:.2f} | {ratio_bare} | {vs_ours} | {agree} | {mem} |"
                )
                print(f"done {library} n={n} {dtype_name}: {m}", file=sys.stderr)
    load_after = _load()
    lines = [
        f"### Linear({'/'.join(map(str, args.n))}) + LIF, batch {args.batch}, T={args.steps} "
        f"on {device.type} ({name})",
        "",
        f"torch {torch.__version__}; neurosim lif_scan `auto` = `{picked}`; median of "
        f"{args.rounds} interleaved rounds after {args.warmup} warm-up runs; times in ms; "
        f"load average (1/5/15 min) before {load_before}, after {load_after}.",
        "",
        "| n | dtype | library | fwd ms | fwd+bwd ms | fwd+bwd max/min | time / bare Linear "
        "fwd, fwd+bwd | time / neurosim fwd, fwd+bwd | spikes equal to snnTorch | peak MiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]
    table = "\n".join(lines) + "\n"
    print(table)
    out = args.out or ROOT / "benchmarks" / "results" / f"lif_layer-{device.type}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    return table


if __name__ == "__main__":
    main()
