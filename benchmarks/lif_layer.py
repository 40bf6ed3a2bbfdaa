"""One Linear(n -> n) + LIF layer over T steps, batch 16: neurosim vs snnTorch vs SpikingJelly.

The Open Neuromorphic SNN-library benchmark setup. Every library runs the same layer in the same
process, on the same input, with the same decay (``beta = 0.9``, SpikingJelly ``tau = 10`` with
``decay_input=False``), threshold 1 and reset by subtraction:

* **neurosim**: ``SpikingSequential(Linear, LIF)``: one ``[T * B, n] x [n, n]`` matmul, then the
  fused ``lif_scan`` (``backend=auto``: the hand-written-backward loop on the CPU, Triton on CUDA).
  ``delayed_reset=True`` so that its spikes are snnTorch's.
* **snnTorch 1.0**: the documented step loop ``cur = fc(x[t]); spk, mem = lif(cur, mem)``.
* **SpikingJelly 2.0**: the Linear on all steps at once, then
  ``functional.lif_multi_step`` (its fastest backend for the device).

Timed: forward (training mode, graph built) and forward + backward of ``spikes.sum()``, the median
of ``--repeats`` runs after ``--warmup`` runs (CUDA: CUDA events). Peak memory: on CUDA
``max_memory_allocated`` during one forward + backward; on the CPU the growth of the peak resident
set size (``VmHWM``) of a fresh child process during its first full-size forward + backward, after
one tiny warm-up run that pays the one-time import costs (``--no-memory`` skips it).

    python benchmarks/lif_layer.py                       # CPU: n=1024, T=100, batch 16
    python benchmarks/lif_layer.py --device cuda --n 4096 16384 --steps 500 --dtype fp32 bf16

Prints a markdown table and writes it to ``benchmarks/results/lif_layer-<device>.md``.
"""

from __future__ import annotations

import argparse
import json
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
LIBRARIES = ("neurosim", "snntorch", "spikingjelly")
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


# --------------------------------------------------------------------------------------------
# the three layers


def build(library: str, n: int, device: torch.device, dtype: torch.dtype, backend: str) -> Any:
    """A callable ``x [T, B, n] -> spikes [T, B, n]`` and its parameters, for one library."""
    torch.manual_seed(0)
    fc = nn.Linear(n, n).to(device, dtype)
    if library == "neurosim":
        from neurosim.neurons import LIF, SpikingSequential

        lif = LIF(beta=BETA, threshold=THRESHOLD, delayed_reset=True, backend=backend)
        net = SpikingSequential(fc, lif).to(device)

        def run_ours(x: torch.Tensor) -> torch.Tensor:
            out, _ = net(x)
            return out

        return run_ours
    if library == "snntorch":
        import snntorch

        leaky = snntorch.Leaky(beta=BETA, threshold=THRESHOLD, reset_mechanism="subtract").to(
            device
        )

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


# --------------------------------------------------------------------------------------------
# timing and memory


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(
    fn: Callable[[], Any], device: torch.device, warmup: int, repeats: int
) -> tuple[float, float]:
    """Median and minimum wall time of ``fn`` in milliseconds (CUDA events on CUDA)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times)


def make_input(
    steps: int, batch: int, n: int, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """Uniform [0, 1) input: with the default Linear init about 10-20% of neurons fire per step."""
    g = torch.Generator().manual_seed(1)
    return (torch.rand(steps, batch, n, generator=g) * 3.0).to(device, dtype)


def cases(
    library: str, args: argparse.Namespace, n: int, dtype: torch.dtype, device: torch.device
) -> tuple[Callable[[], Any], Callable[[], Any], Callable[[], torch.Tensor]]:
    run = build(library, n, device, dtype, args.backend)
    x = make_input(args.steps, args.batch, n, device, dtype)

    def forward() -> Any:
        return run(x)

    def forward_backward() -> Any:
        out = run(x)
        out.float().sum().backward()
        return out

    def spikes() -> torch.Tensor:
        with torch.no_grad():
            return run(x).detach().float().cpu()

    return forward, forward_backward, spikes


def peak_memory_mib(
    library: str, args: argparse.Namespace, n: int, dtype_name: str, device: torch.device
) -> float:
    """Peak memory of one forward + backward in MiB (see the module docstring)."""
    if device.type == "cuda":
        _, fwd_bwd, _ = cases(library, args, n, DTYPES[dtype_name], device)
        fwd_bwd()
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fwd_bwd()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / 2**20
    cmd = [sys.executable, __file__, "--child-memory", library, "--n", str(n),
           "--steps", str(args.steps), "--batch", str(args.batch), "--dtype", dtype_name,
           "--backend", args.backend]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return float("nan")
    return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_mib"])


def _peak_rss_kib() -> int:
    """This process's peak resident set (``VmHWM``; unlike ``ru_maxrss`` not inherited from
    the parent across fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _child_memory(args: argparse.Namespace) -> None:
    dtype = DTYPES[args.dtype[0]]
    # one tiny run first, so that one-time costs (lazy imports such as backend availability
    # checks, allocator pools) are not counted as the layer's memory
    tiny = argparse.Namespace(**{**vars(args), "steps": 2, "batch": 2})
    cases(args.child_memory, tiny, 8, dtype, torch.device("cpu"))[1]()
    _, fwd_bwd, _ = cases(args.child_memory, args, args.n[0], dtype, torch.device("cpu"))
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


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--n", type=int, nargs="+", default=[1024], help="layer width(s)")
    parser.add_argument("--steps", type=int, default=100, help="time steps T")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--dtype", nargs="+", default=["fp32"], choices=sorted(DTYPES))
    parser.add_argument("--backend", default="auto", help="neurosim lif_scan backend")
    parser.add_argument("--libraries", nargs="+", default=list(LIBRARIES), choices=LIBRARIES)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-memory", action="store_true")
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
        name = f"{_cpu_name()}, {torch.get_num_threads()} threads"
    from neurosim.backend import kernels

    picked = kernels.resolve("lif_scan", args.backend, device).backend
    lines = [
        f"### Linear({'/'.join(map(str, args.n))}) + LIF, batch {args.batch}, T={args.steps} "
        f"on {device.type} ({name})",
        "",
        f"torch {torch.__version__}; neurosim lif_scan backend `{picked}`; median of "
        f"{args.repeats} runs after {args.warmup} warm-up; times in ms; memory = peak of one "
        f"forward+backward in MiB.",
        "",
        "| n | dtype | library | fwd ms | fwd+bwd ms | peak MiB | neurosim speed-up fwd / fwd+bwd "
        "| spikes equal to neurosim |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for n in args.n:
        for dtype_name in args.dtype:
            dtype = DTYPES[dtype_name]
            results: dict[str, tuple[float, float, float, torch.Tensor | None]] = {}
            for library in args.libraries:
                try:
                    fwd, fwd_bwd, spikes = cases(library, args, n, dtype, device)
                    t_fwd, _ = time_ms(fwd, device, args.warmup, args.repeats)
                    t_fb, _ = time_ms(fwd_bwd, device, args.warmup, args.repeats)
                    s = spikes()
                    mem = (
                        float("nan")
                        if args.no_memory
                        else peak_memory_mib(library, args, n, dtype_name, device)
                    )
                    results[library] = (t_fwd, t_fb, mem, s)
                except Exception as exc:  # a peer may not support a dtype
                    print(
                        f"{library} n={n} {dtype_name}: {type(exc).__name__}: {exc}",
                        file=sys.stderr,
                    )
                    results[library] = (float("nan"), float("nan"), float("nan"), None)
                print(f"done {library} n={n} {dtype_name}: {results[library][:3]}", file=sys.stderr)
            ours = results.get("neurosim")
            for library, (t_fwd, t_fb, mem, s) in results.items():
                if ours is not None and library != "neurosim":
                    speed = f"{t_fwd / ours[0]:.2f}x / {t_fb / ours[1]:.2f}x"
                else:
                    speed = "1 / 1" if library == "neurosim" else "-"
                agree = "-"
                if ours is not None and ours[3] is not None and s is not None:
                    agree = f"{float((s == ours[3]).float().mean()) * 100:.2f}%"
                lines.append(
                    f"| {n} | {dtype_name} | {library} | {t_fwd:.1f} | {t_fb:.1f} | {mem:.0f} | "
                    f"{speed} | {agree} |"
                )
            if "bf16" in args.dtype and dtype_name == "bf16" and "neurosim" in args.libraries:
                fp32 = cases("neurosim", args, n, torch.float32, device)[2]()
                bf16 = results["neurosim"][3]
                if bf16 is not None:
                    lines.append(
                        f"| {n} | bf16 vs fp32 | neurosim | | | | | "
                        f"{float((bf16 == fp32).float().mean()) * 100:.2f}% of spikes equal |"
                    )
    table = "\n".join(lines) + "\n"
    print(table)
    out = args.out or ROOT / "benchmarks" / "results" / f"lif_layer-{device.type}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    return table


if __name__ == "__main__":
    main()
