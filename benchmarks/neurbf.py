"""NeuRBF evaluation throughput: nearest-kernel evaluation vs the straightforward all-pairs sum.

The same kernels (``K`` anisotropic inverse-quadratic radial bases with ``C`` feature channels and
the multi-frequency sinusoidal composition) evaluated at the same ``N`` random points:

* **all-pairs (peer)**: the straightforward torch implementation, every kernel at every point
  (:func:`fields.encodings.rbf.rbf_features_dense`), processed in point chunks so its
  ``[n, K, C]`` intermediates fit in memory (forward and backward per chunk);
* **neurosim** ``AdaptiveRBF``: grid-bucketed ``k``-nearest-kernel lookup
  (:func:`~fields.encodings.rbf.knn_lookup`) then the ``rbf_features`` op on the ``k`` neighbours,
  with each backend named by ``--backends`` (``torch`` reference, ``compile``, ``triton``;
  default ``torch`` on the CPU, all three on CUDA).

Also timed, the neighbour search alone: the grid lookup against a brute-force torch search
(``cdist`` + ``topk``) and, where SciPy imports, a CPU KD-tree (``scipy.spatial.cKDTree``;
on CUDA its time includes the host transfers it needs), plus the one-off grid build.

Timed: forward with parameters requiring gradients, and forward + backward of ``y.sum()``
(gradients to the kernel weights, as in NeuRBF's image training where centres and shapes
stay fixed); one warm-up each, then ``--repeats`` rounds in which every case runs once, in an
order rotated every round; medians (CUDA: synchronised). The ratio column divides by the
all-pairs throughput measured in the same run; the load average before and after is printed.

    .venv/bin/python benchmarks/neurbf.py                 # CPU: 2-D and 3-D, 2^14 points
    .venv/bin/python benchmarks/neurbf.py --quick         # CPU: 2^12 points
    python benchmarks/neurbf.py --device cuda             # 2^18 points, 2^13 kernels

Prints a markdown table and writes it to ``benchmarks/results/neurbf-<device>.md``.
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

from fields.encodings.rbf import (  # noqa: E402
    AdaptiveRBF,
    build_neighbor_table,
    knn_bruteforce,
    knn_lookup,
    rbf_features_dense,
)
from neurosim.backend import kernels, resolve_device  # noqa: E402


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_once(fn: Callable[[], Any], device: torch.device) -> float:
    """Seconds of one call of ``fn`` (CUDA: synchronised)."""
    _sync(device)
    start = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - start


def interleaved(
    cases: list[tuple[str, Callable[[], Any]]], device: torch.device, repeats: int
) -> dict[str, float]:
    """Median seconds of every case: one warm-up each, then ``repeats`` rounds in which every
    case runs once, in an order rotated every round (a change of load hits all alike)."""
    for _, fn in cases:
        fn()
    times: dict[str, list[float]] = {name: [] for name, _ in cases}
    for r in range(repeats):
        order = cases[r % len(cases) :] + cases[: r % len(cases)]
        for name, fn in order:
            times[name].append(time_once(fn, device))
    return {name: statistics.median(t) for name, t in times.items()}


def dense_chunked(
    rbf: AdaptiveRBF, x: torch.Tensor, backward: bool, max_elems: int = 1 << 25
) -> None:
    """The all-pairs evaluation in point chunks (forward, or forward + backward per chunk)."""
    per_point = rbf.num_kernels * rbf.out_dim
    step = max(1, max_elems // per_point)
    for s in range(0, x.shape[0], step):
        y = rbf_features_dense(
            x[s : s + step],
            rbf.centers,
            rbf.shapes,
            rbf.weights,
            rbf.freqs,
            rbf.kind,
            rbf.normalize,
        )
        if backward:
            y.sum().backward()


def make_rbf(
    d: int, num_k: int, channels: int, k: int, device: torch.device, seed: int = 0
) -> AdaptiveRBF:
    """Kernels laid out by weighted k-means on a synthetic signal (clustered, as after init)."""
    g = torch.Generator().manual_seed(seed)
    rbf = AdaptiveRBF(d, num_k, features=channels, neighbors=k, generator=g, feature_init=0.1)
    pts = torch.rand(max(8 * num_k, 4096), d, generator=g)
    weights = 0.05 + torch.exp(-((pts - 0.3) ** 2).sum(-1) / 0.02)
    rbf.init_from_signal(pts, weights, iterations=3, generator=g)
    return rbf.to(device)


def bench_dim(
    d: int,
    device: torch.device,
    n: int,
    num_k: int,
    channels: int,
    k: int,
    backends: list[str],
    repeats: int,
) -> list[dict[str, Any]]:
    """Every implementation on one dimension's kernels and points."""
    rows: list[dict[str, Any]] = []
    rbf = make_rbf(d, num_k, channels, k, device)
    x = torch.rand(n, d, generator=torch.Generator().manual_seed(1)).to(device)
    case = f"{d}-D, N={n}, K={num_k}, C={channels}, k={k}"

    def add(impl: str, fwd: float | None, fb: float | None) -> None:
        rows.append({"case": case, "impl": impl, "fwd": fwd, "fb": fb})

    def forward() -> torch.Tensor:
        return rbf(x)

    def fwd_bwd() -> None:
        rbf(x).sum().backward()

    cases: list[tuple[str, Callable[[], Any]]] = [
        ("all-pairs fwd", lambda: dense_chunked(rbf, x, False)),
        ("all-pairs fb", lambda: dense_chunked(rbf, x, True)),
    ]

    def with_backend(backend: str, fn: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            rbf.backend = backend
            return fn()

        return run

    for backend in backends:
        rbf.backend = backend
        rbf(x[:64])  # compile (if any) outside the timing
        cases.append((f"{backend} fwd", with_backend(backend, forward)))
        cases.append((f"{backend} fb", with_backend(backend, fwd_bwd)))
    start = time.perf_counter()
    table = build_neighbor_table(rbf.centers, k)
    _sync(device)
    build = time.perf_counter() - start
    cases.append(("grid lookup", lambda: knn_lookup(x, rbf.centers, table)))
    cases.append(("brute lookup", lambda: knn_bruteforce(x, rbf.centers, k)))
    from scipy.spatial import cKDTree  # scipy is a dependency (scikit-image, scikit-learn)

    tree = cKDTree(rbf.centers.detach().cpu().numpy())

    def kdtree() -> torch.Tensor:
        _, idx = tree.query(x.cpu().numpy(), k=k)
        return torch.from_numpy(idx).to(device)

    cases.append(("kdtree lookup", kdtree))
    med = interleaved(cases, device, repeats)
    add("all-pairs torch (peer)", med["all-pairs fwd"], med["all-pairs fb"])
    for backend in backends:
        add(f"neurosim kNN `{backend}`", med[f"{backend} fwd"], med[f"{backend} fb"])
    add(f"lookup: grid table (build {build * 1e3:.0f} ms once)", med["grid lookup"], None)
    add("lookup: brute force cdist+topk", med["brute lookup"], None)
    add("lookup: scipy cKDTree (CPU)", med["kdtree lookup"], None)
    return rows


def format_table(rows: list[dict[str, Any]], device_name: str, n: int) -> str:
    lines = [
        f"NeuRBF evaluation on **{device_name}** (median times; throughput in million points/s; "
        "ratio = throughput / all-pairs throughput in the same run, lookups vs brute force)",
        "",
        "| case | implementation | fwd ms | fwd M pts/s | fwd ratio | fwd+bwd ms | fwd+bwd M pts/s | fwd+bwd ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    base: dict[str, dict[str, float | None]] = {}
    for r in rows:
        if r["impl"].startswith("all-pairs"):
            base[r["case"]] = {"fwd": r["fwd"], "fb": r["fb"]}
        if r["impl"].startswith("lookup: brute"):
            base[r["case"] + "/lookup"] = {"fwd": r["fwd"], "fb": None}

    def cell(t: float | None) -> tuple[str, str]:
        return ("-", "-") if t is None else (f"{t * 1e3:.1f}", f"{n / t / 1e6:.3f}")

    for r in rows:
        ref = base.get(r["case"] + ("/lookup" if r["impl"].startswith("lookup") else ""), {})
        out = [r["case"], r["impl"]]
        for key in ("fwd", "fb"):
            ms, tput = cell(r[key])
            b = ref.get(key)
            ratio = "-" if r[key] is None or b is None else f"{b / r[key]:.1f}x"
            out += [ms, tput, ratio]
        lines.append("| " + " | ".join(out) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--points", type=int, default=None)
    parser.add_argument("--kernels", type=int, default=None)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--neighbors", type=int, default=4)
    parser.add_argument("--backends", nargs="+", default=None)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    n = args.points or (1 << 18 if cuda else (1 << 12 if args.quick else 1 << 14))
    num_k = args.kernels or (1 << 13 if cuda else 1024)
    backends = args.backends or (["torch", "compile", "triton"] if cuda else ["torch"])
    for b in backends:
        kernels.resolve("rbf_features", b, device)  # fail early with the reason
    name = (
        torch.cuda.get_device_name(device)
        if cuda
        else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    )
    load_start = os.getloadavg()
    rows = [
        row
        for d in args.dims
        for row in bench_dim(
            d, device, n, num_k, args.channels, args.neighbors, backends, args.repeats
        )
    ]
    load_end = os.getloadavg()
    loads = " / ".join(f"{v:.2f}" for v in load_start), " / ".join(f"{v:.2f}" for v in load_end)
    table = (
        format_table(rows, name, n)
        + f"\n\ntorch {torch.__version__}; {args.repeats} interleaved rounds; load average "
        f"(1/5/15 min) before {loads[0]}, after {loads[1]} (on the 2-core development machine a "
        "load above ~2.5 means other jobs shared the cores: not a result)\n"
    )
    print(table)
    out = ROOT / "benchmarks" / "results" / f"neurbf-{device.type}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
