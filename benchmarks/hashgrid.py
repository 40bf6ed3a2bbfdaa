"""Hash-grid encode throughput: neurosim ``fields.HashGrid`` vs nerfstudio's pure-torch ``HashEncoding``.

The Instant-NGP configuration of the issue: 16 levels, 2 features per level, a 2^19 table,
base resolution 16, finest resolution 2048; 2-D and 3-D points, uniformly random in the unit
cube. Both run in the same process on the same points:

* **nerfstudio** ``HashEncoding(num_levels=16, min_res=16, max_res=2048, log2_hashmap_size=19,
  features_per_level=2, implementation="torch")`` (PyPI nerfstudio 1.1.5). Its torch path is
  3-D only (it asserts ``in_tensor.shape[-1] == 3``), so 2-D points are given to it as
  ``(x, y, 0)``: what a user of it would do, at its 3-D cost.
* **neurosim** ``HashGrid(D, ..., max_resolution=2048, per_level_scale=None)`` with each backend
  named by ``--backends`` (default on the CPU: ``numba``, the choice of ``auto``, and the
  ``torch`` reference; on CUDA: ``torch``, ``compile``, ``triton`` and, where tinycudann
  imports, ``tcnn``).

CPU threads: every case runs with 1 and with 2 torch threads (``--threads``), so the table
shows each library's scaling beside the other's. The machine these figures come from has 2
cores shared with other work: while another process holds a core, every multi-threaded ATen op
waits for it (the header prints a small-op "op latency" probe), which penalises code with many
small ops and any 2-thread figure. Each round prints the load average; a round started above
2.5 is marked LOADED, and a table with such rounds says its ratios are not results.

Timed: the forward with the table requiring a gradient (training mode, graph built) and forward +
backward of ``y.sum()`` (table gradient only, as in NeRF training), after ``--warmup`` runs per
case and thread count; then ``--repeats`` rounds, each timing every library at every thread
count once, in turn (CUDA: synchronised); the median per case. Throughput is points per second;
the ratio columns divide by nerfstudio's time at the same thread count, the last column by the
same implementation's time with one thread.

    .venv-bench/bin/python benchmarks/hashgrid.py                 # CPU, 2^18 points, 2-D and 3-D
    .venv-bench/bin/python benchmarks/hashgrid.py --quick         # CPU, 2^16 points
    python benchmarks/hashgrid.py --device cuda                   # 2^18 .. 2^21 points

nerfstudio needs torchvision, which does not install beside the CPU torch wheel of ``.venv``;
run it from ``.venv-bench`` (see ``benchmarks/hashgrid.md``). Without nerfstudio the peer rows
say so and ratios are left out. Prints a markdown table and writes it to
``benchmarks/results/hashgrid-<device>.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fields.encodings.hashgrid import HashGrid  # noqa: E402
from neurosim.backend import kernels, resolve_device  # noqa: E402

LEVELS, FEATURES, LOG2_T, BASE, MAX_RES = 16, 2, 19, 16, 2048


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_peer(device: torch.device) -> tuple[Any, str]:
    """nerfstudio's torch HashEncoding, or ``None`` and the reason it is unavailable."""
    try:
        from nerfstudio.field_components.encodings import HashEncoding
    except Exception as exc:
        return None, f"nerfstudio does not import ({type(exc).__name__}: {exc})"
    torch.manual_seed(0)
    return HashEncoding(
        num_levels=LEVELS,
        min_res=BASE,
        max_res=MAX_RES,
        log2_hashmap_size=LOG2_T,
        features_per_level=FEATURES,
        implementation="torch",
    ).to(device), "nerfstudio"


def peer_version() -> str:
    try:
        from importlib.metadata import version

        return version("nerfstudio")
    except Exception:
        return "?"


def op_latency_ms() -> float:
    """Median time of one element-wise CPU op on 2^20 floats: well under 1 ms on an idle machine,
    several ms when a torch thread has to wait for a core that other processes hold."""
    a = torch.rand(1 << 20)
    times = []
    for _ in range(20):
        start = time.perf_counter()
        a.mul(2.0)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def load_average() -> str:
    try:
        return " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "?"


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    model = platform.processor() or "CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs"


LOADED = 2.5
"""A load average above this (on the 2-core machine these figures come from) marks a round."""


def load_value() -> float:
    try:
        return os.getloadavg()[0]
    except OSError:
        return float("nan")


def run(args: argparse.Namespace) -> str:
    device = resolve_device(args.device)
    if args.threads is not None:
        thread_counts = [t if t > 0 else torch.get_num_threads() for t in args.threads]
    else:
        thread_counts = [1, 2] if device.type == "cpu" else [torch.get_num_threads()]
    latency = op_latency_ms()
    if args.backends:
        backends = args.backends
    elif device.type == "cuda":
        backends = ["torch", "compile", "triton"]
        if kernels.availability("hashgrid_encode", device)["tcnn"] is None:
            backends.append("tcnn")
    else:
        backends = ["numba", "torch"]
    if args.points:
        sizes = args.points
    elif args.quick:
        sizes = [16]
    else:
        sizes = [18, 19, 20, 21] if device.type == "cuda" else [18]
    peer, peer_label = (
        (None, "nerfstudio skipped (--no-peer)") if args.no_peer else build_peer(device)
    )
    if peer is not None:
        peer_label = f"nerfstudio {peer_version()} HashEncoding(implementation='torch')"
    print(
        f"# device: {device_name(device)}; torch {torch.__version__}; peer: {peer_label}; "
        f"threads {thread_counts}; CPU op latency {latency:.2f} ms; load average "
        f"{load_average()}",
        flush=True,
    )

    # every (dim, size, implementation) case, timed once per round and thread count; the
    # rounds interleave the libraries so that a burst of load hits them alike
    Case = tuple[int, int, str, Callable[[], torch.Tensor]]
    cases: list[Case] = []
    grids: list[HashGrid] = []
    gen = torch.Generator().manual_seed(0)
    for dim in args.dims:
        dim_grids = {
            backend: HashGrid(
                dim,
                n_levels=LEVELS,
                n_features_per_level=FEATURES,
                log2_hashmap_size=LOG2_T,
                base_resolution=BASE,
                per_level_scale=None,
                max_resolution=MAX_RES,
                backend=backend,
                generator=torch.Generator().manual_seed(1),
            ).to(device)
            for backend in backends
        }
        grids.extend(dim_grids.values())
        for log2_n in sizes:
            n = 2**log2_n
            x = torch.rand(n, dim, generator=gen).to(device)
            if peer is not None:
                x_peer = x if dim == 3 else torch.cat([x, x.new_zeros(n, 3 - dim)], dim=1)
                label = "nerfstudio torch" + ("" if dim == 3 else " (x, y, 0)")
                cases.append((dim, log2_n, label, lambda p=peer, xp=x_peer: p(xp)))
            for backend, grid in dim_grids.items():
                cases.append((dim, log2_n, f"neurosim {backend}", lambda g=grid, xx=x: g(xx)))

    def clear() -> None:
        for grid in grids:
            grid.params.grad = None
        if peer is not None:
            peer.zero_grad(set_to_none=True)

    def once(fn: Callable[[], torch.Tensor], backward: bool) -> float:
        _sync(device)
        start = time.perf_counter()
        out = fn()
        if backward:
            out.sum().backward()
        _sync(device)
        elapsed = time.perf_counter() - start
        clear()
        return elapsed

    failed: set[int] = set()
    for threads in thread_counts:  # warm-up (and the neurosim backends agree)
        torch.set_num_threads(threads)
        for i, (_, _, label, fn) in enumerate(cases):
            try:
                for _ in range(args.warmup):
                    once(fn, True)
            except Exception as exc:
                print(f"  {label}: failed ({type(exc).__name__}: {exc})", flush=True)
                failed.add(i)
    times: dict[tuple[int, int], list[tuple[float, float]]] = {}
    loaded = 0
    for r in range(args.repeats):
        load = load_value()
        loaded += load > LOADED
        mark = " (LOADED: not a result)" if load > LOADED else ""
        print(f"round {r + 1}/{args.repeats}: load average {load:.2f}{mark}", flush=True)
        for threads in thread_counts:
            torch.set_num_threads(threads)
            for i, (dim, log2_n, label, fn) in enumerate(cases):
                if i in failed:
                    continue
                t_f, t_fb = once(fn, False), once(fn, True)
                times.setdefault((i, threads), []).append((t_f, t_fb))
                print(f"  {threads} thr {dim}-D 2^{log2_n} {label}: fwd {t_f * 1e3:.0f} ms, "
                      f"fwd+bwd {t_fb * 1e3:.0f} ms", flush=True)  # fmt: skip

    def median(i: int, threads: int, which: int) -> float:
        return statistics.median(t[which] for t in times[(i, threads)])

    end_load = load_average()
    flag = (
        f" **{loaded} of {args.repeats} rounds started at a load average above {LOADED}: these "
        "ratios are not results; rerun at a quiet moment.**"
        if loaded
        else ""
    )
    lines = [
        f"Hash-grid encode throughput on **{device_name(device)}** (torch {torch.__version__}); "
        f"{LEVELS} levels x {FEATURES} features, 2^{LOG2_T} table, base {BASE}, max resolution "
        f"{MAX_RES}; peer: {peer_label}. Median of {args.repeats} rounds, libraries and thread "
        f"counts interleaved in each. CPU op latency (one multiply of 2^20 floats) "
        f"{latency:.2f} ms; load average at the end {end_load}.{flag}",
        "",
        "| dim | points | implementation | threads | fwd (M points/s) | fwd+bwd (M points/s) "
        "| fwd vs nerfstudio | fwd+bwd vs nerfstudio | fwd+bwd speed-up over 1 thread |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for threads in thread_counts:
        for i, (dim, log2_n, label, _) in enumerate(cases):
            if i in failed:
                continue
            n = 2**log2_n
            t_f, t_fb = median(i, threads, 0), median(i, threads, 1)
            peer_i = next(
                (
                    j
                    for j, c in enumerate(cases)
                    if c[0] == dim and c[1] == log2_n and c[2].startswith("nerfstudio")
                    and j not in failed
                ),
                None,
            )  # fmt: skip
            if peer_i is not None:
                r_f = f"{median(peer_i, threads, 0) / t_f:.1f}x"
                r_fb = f"{median(peer_i, threads, 1) / t_fb:.1f}x"
            else:
                r_f = r_fb = "n/a"
            base = thread_counts[0]
            scaling = f"{median(i, base, 1) / t_fb:.2f}x" if threads != base else "1.00x (base)"
            lines.append(
                f"| {dim}-D | 2^{log2_n} | {label} | {threads} | {n / t_f / 1e6:.3f} | "
                f"{n / t_fb / 1e6:.3f} | {r_f} | {r_fb} | {scaling} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--points", type=int, nargs="+", help="log2 of the point counts")
    parser.add_argument("--quick", action="store_true", help="2^16 points (CPU smoke run)")
    parser.add_argument("--backends", nargs="+", help="neurosim backends to time")
    parser.add_argument("--repeats", type=int, default=5, help="rounds")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument(
        "--threads",
        type=int,
        nargs="+",
        default=None,
        help="torch CPU thread counts, interleaved (default on the CPU: 1 2; 0: torch's default)",
    )
    parser.add_argument("--no-peer", action="store_true", help="skip nerfstudio")
    parser.add_argument("--out", type=Path, help="where to write the table")
    args = parser.parse_args(argv)
    table = run(args)
    print()
    print(table)
    device = resolve_device(args.device)
    out = args.out or ROOT / "benchmarks" / "results" / f"hashgrid-{device.type}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + "\n")
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    os.environ.setdefault("TORCHINDUCTOR_COMPILE_THREADS", "1")
    main()
