"""Hash-grid encode throughput: neurosim ``fields.HashGrid`` vs nerfstudio's pure-torch ``HashEncoding``.

The Instant-NGP configuration of the issue: 16 levels, 2 features per level, a 2^19 table,
base resolution 16, finest resolution 2048; 2-D and 3-D points, uniformly random in the unit
cube. Both run in the same process on the same points:

* **nerfstudio** ``HashEncoding(num_levels=16, min_res=16, max_res=2048, log2_hashmap_size=19,
  features_per_level=2, implementation="torch")`` (PyPI nerfstudio 1.1.5). Its torch path is
  3-D only (it asserts ``in_tensor.shape[-1] == 3``), so 2-D points are given to it as
  ``(x, y, 0)``: what a user of it would do, at its 3-D cost.
* **neurosim** ``HashGrid(D, ..., max_resolution=2048, per_level_scale=None)`` with each backend
  named by ``--backends`` (default: ``torch`` on the CPU; ``torch``, ``compile``, ``triton``
  and, where tinycudann imports, ``tcnn`` on CUDA).

CPU threads: 1 by default (``--threads``). On the shared 2-core machine this was written on,
the second core is mostly busy with other work, and then *every* multi-threaded ATen op waits
for it (about 8 ms per op, whatever its size; the header prints this "op latency"): that measures
the scheduler, and penalises code with many small ops (ours) far more than code with few large
ones. Pass ``--threads 2`` (or 0 for torch's default) on a quiet machine.

Timed: the forward with the table requiring a gradient (training mode, graph built) and forward +
backward of ``y.sum()`` (table gradient only, as in NeRF training), the median of up to
``--repeats`` runs after ``--warmup`` runs, stopping early once a case has used ``--budget``
seconds (CUDA: synchronised). Throughput is points per second; the ratio column divides by
nerfstudio's throughput in the same run.

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


def time_case(
    fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int, budget: float
) -> float:
    """Median seconds of ``fn()`` over up to ``repeats`` runs (at least one) after ``warmup``."""
    for _ in range(warmup):
        fn()
        _sync(device)
    times: list[float] = []
    spent = 0.0
    while len(times) < repeats and (not times or spent < budget):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
        spent += times[-1]
    return statistics.median(times)


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
    return f"{model}, {torch.get_num_threads()} torch threads"


def run(args: argparse.Namespace) -> str:
    device = resolve_device(args.device)
    threads = args.threads if args.threads is not None else (1 if device.type == "cpu" else 0)
    if threads:
        torch.set_num_threads(threads)
    latency = op_latency_ms()
    if args.backends:
        backends = args.backends
    elif device.type == "cuda":
        backends = ["torch", "compile", "triton"]
        if kernels.availability("hashgrid_encode", device)["tcnn"] is None:
            backends.append("tcnn")
    else:
        backends = ["torch"]
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
        f"CPU op latency {latency:.2f} ms; load average {load_average()}",
        flush=True,
    )

    rows: list[tuple[Any, ...]] = []
    gen = torch.Generator().manual_seed(0)
    for dim in args.dims:
        grids = {}
        for backend in backends:
            grid = HashGrid(
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
            grids[backend] = grid
        for log2_n in sizes:
            n = 2**log2_n
            x = torch.rand(n, dim, generator=gen).to(device)
            results: dict[str, tuple[float, float]] = {}
            reference = None
            cases: list[tuple[str, Callable[[], torch.Tensor]]] = []
            if peer is not None:
                x_peer = x if dim == 3 else torch.cat([x, x.new_zeros(n, 3 - dim)], dim=1)
                cases.append(("nerfstudio torch" + ("" if dim == 3 else " (x, y, 0)"),
                              lambda p=peer, xp=x_peer: p(xp)))  # fmt: skip
            for backend, grid in grids.items():
                cases.append((f"neurosim {backend}", lambda g=grid, xx=x: g(xx)))
            for label, fwd in cases:

                def forward(f: Callable[[], torch.Tensor] = fwd) -> None:
                    f()

                def forward_backward(f: Callable[[], torch.Tensor] = fwd) -> None:
                    f().sum().backward()

                try:
                    t_fwd = time_case(forward, device, args.repeats, args.warmup, args.budget)
                    t_fb = time_case(
                        forward_backward, device, args.repeats, args.warmup, args.budget
                    )
                except Exception as exc:
                    print(f"  {label}: failed ({type(exc).__name__}: {exc})", flush=True)
                    continue
                if label.startswith("neurosim"):
                    with torch.no_grad():
                        out = fwd().float()
                    if reference is None:
                        reference = out
                    elif not torch.allclose(out, reference, rtol=1e-3, atol=1e-6):
                        diff = float((out - reference).abs().max())
                        print(f"  WARNING {label} differs from the first backend by {diff:.3g}")
                results[label] = (n / t_fwd, n / t_fb)
                print(f"  {dim}-D 2^{log2_n} {label}: fwd {n / t_fwd / 1e6:.3f} M/s, "
                      f"fwd+bwd {n / t_fb / 1e6:.3f} M/s", flush=True)  # fmt: skip
                for grid in grids.values():
                    grid.params.grad = None
                if peer is not None:
                    peer.zero_grad(set_to_none=True)
            peer_rate = next((v for k, v in results.items() if k.startswith("nerfstudio")), None)
            for label, (fwd_rate, fb_rate) in results.items():
                ratio_f = f"{fwd_rate / peer_rate[0]:.1f}x" if peer_rate else "n/a"
                ratio_fb = f"{fb_rate / peer_rate[1]:.1f}x" if peer_rate else "n/a"
                rows.append((f"{dim}-D", f"2^{log2_n}", label, fwd_rate / 1e6, fb_rate / 1e6,
                             ratio_f, ratio_fb))  # fmt: skip

    lines = [
        f"Hash-grid encode throughput on **{device_name(device)}** (torch {torch.__version__}); "
        f"{LEVELS} levels x {FEATURES} features, 2^{LOG2_T} table, base {BASE}, max resolution "
        f"{MAX_RES}; peer: {peer_label}. Median of up to {args.repeats} runs. CPU op latency "
        f"(one multiply of 2^20 floats) {latency:.2f} ms, load average {load_average()}.",
        "",
        "| dim | points | implementation | fwd (M points/s) | fwd+bwd (M points/s) "
        "| fwd vs nerfstudio | fwd+bwd vs nerfstudio |",
        "|---|---|---|---|---|---|---|",
    ]
    for dim_s, n_s, label, f_rate, fb_rate, r_f, r_fb in rows:
        lines.append(
            f"| {dim_s} | {n_s} | {label} | {f_rate:.3f} | {fb_rate:.3f} | {r_f} | {r_fb} |"
        )
    table = "\n".join(lines)
    return table


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N | auto")
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--points", type=int, nargs="+", help="log2 of the point counts")
    parser.add_argument("--quick", action="store_true", help="2^16 points (CPU smoke run)")
    parser.add_argument("--backends", nargs="+", help="neurosim backends to time")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per case")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads (default: 1 on the CPU, see the module docstring; 0: torch's)",
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
