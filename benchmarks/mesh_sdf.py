"""Preparing SDF ground truth on a large scanned mesh: signed distances of ~82K query points.

The mesh: the Stanford bunny of the data root (``<data_root>/sdf/bunny.obj``, 4,968 faces, with
holes), scaled into ``[0.1, 0.9]^3`` and subdivided ``--subdivisions`` times by trimesh (each
splits every face in four: 2 -> 79,488 faces, 3 -> 317,952), generated here and never stored.
The points: what ``fields_sdf`` draws by default, 65,536 surface samples perturbed by Gaussian
noise (sigma 0.01 and 0.002) plus 16,384 uniform points in the unit cube.

Rows, all in one process, interleaved round by round on the same mesh and points:

* **neurosim** ``fields.geometry.signed_distance``: libigl's AABB point-mesh distance
  (``igl.point_mesh_squared_distance``) and fast winding number (``igl.fast_winding_number``);
* **point-cloud-utils** ``signed_distance_to_mesh`` (the alternative library);
* **libigl** ``igl.signed_distance`` with the fast-winding-number sign, for reference;
* **old neurosim** (the pure-torch code in ``benchmarks/_legacy_geometry.py``), timed on the
  first ``--old-points`` points only and scaled linearly to all points (it is linear in the
  number of points), since the full run takes tens of minutes.

Agreement with neurosim is printed (largest distance difference, share of equal signs; for the
old code on its subset). The header and each round print the load average; a round started at
a load above 2.5 (2-core machine) is marked as loaded, and so is the table if any was.

    .venv/bin/python benchmarks/mesh_sdf.py                 # 79,488 faces, 81,920 points
    .venv/bin/python benchmarks/mesh_sdf.py --subdivisions 3

Writes the table to ``benchmarks/results/mesh_sdf-cpu.md``.
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

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import _legacy_geometry as legacy  # noqa: E402
from experiments.data import dataset_path  # noqa: E402
from fields.geometry import (  # noqa: E402
    Mesh,
    load_mesh,
    normalize_vertices,
    sample_sdf,
    signed_distance,
)

LOADED = 2.5


def load_average() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (float("nan"),) * 3


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "CPU"


def build_mesh(subdivisions: int) -> Mesh:
    import trimesh

    path = dataset_path("sdf", None, layout="sdf/bunny.obj") / "bunny.obj"
    raw = load_mesh(path, torch.float64, warn=False)
    vertices, _, _ = normalize_vertices(raw.vertices, margin=0.1)
    v, f = vertices.numpy(), raw.faces.numpy()
    for _ in range(subdivisions):
        v, f = trimesh.remesh.subdivide(v, f)
    return Mesh(torch.from_numpy(np.ascontiguousarray(v)), torch.from_numpy(f.astype(np.int64)))


def run(args: argparse.Namespace) -> str:
    mesh = build_mesh(args.subdivisions)
    gen = torch.Generator().manual_seed(0)
    # the points of sample_sdf (its own signed distances are neurosim's, not timed here)
    points, _ = sample_sdf(Mesh(mesh.vertices, mesh.faces), 65536, 16384, generator=gen)
    q = points.numpy()
    v, f = mesh.vertices.numpy(), mesh.faces.numpy()
    old_n = min(args.old_points, len(q))
    header = (
        f"# {cpu_name()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads); mesh: bunny x{args.subdivisions} subdivisions, "
        f"{len(f):,} faces, {len(v):,} vertices; {len(q):,} points; "
        f"load average at start {'/'.join(f'{x:.1f}' for x in load_average())}"
    )
    print(header, flush=True)

    import igl
    import point_cloud_utils as pcu

    def ours() -> np.ndarray:
        return signed_distance(points, mesh).numpy()

    def peer_pcu() -> np.ndarray:
        sd, _, _ = pcu.signed_distance_to_mesh(q, v, f.astype(np.int32))
        return np.asarray(sd)

    def peer_igl() -> np.ndarray:
        s, _, _, _ = igl.signed_distance(
            q, v, f, sign_type=igl.SIGNED_DISTANCE_TYPE_FAST_WINDING_NUMBER
        )
        return np.asarray(s)

    def old() -> np.ndarray:
        sub = points[:old_n]
        dist = legacy.closest_points(sub, mesh).distance
        inside = legacy.winding_number(sub, mesh) > 0.5
        return torch.where(inside, -dist, dist).numpy()

    cases: list[tuple[str, Callable[[], np.ndarray], float]] = [
        ("neurosim (libigl AABB distance + fast winding number)", ours, 1.0),
        ("point-cloud-utils signed_distance_to_mesh", peer_pcu, 1.0),
        ("libigl signed_distance (fast winding number sign)", peer_igl, 1.0),
    ]
    if old_n:
        cases.append((f"old neurosim (pure torch; {old_n:,} points, scaled)", old, len(q) / old_n))
    times: dict[str, list[float]] = {label: [] for label, _, _ in cases}
    results: dict[str, np.ndarray] = {}
    loaded_rounds = 0
    for r in range(args.rounds):
        load = load_average()[0]
        loaded_rounds += load > LOADED
        print(f"round {r + 1}: load average {load:.1f}{' (LOADED)' if load > LOADED else ''}")
        for label, fn, scale in cases:
            start = time.perf_counter()
            results[label] = fn()
            times[label].append((time.perf_counter() - start) * scale)
            print(f"  {label}: {times[label][-1]:.2f} s", flush=True)
    reference = results[cases[0][0]]
    base = statistics.median(times[cases[0][0]])
    end_load = load_average()
    flag = (
        f" **Loaded: {loaded_rounds} of {args.rounds} rounds started above load {LOADED}; the "
        "ratios are not results, rerun at a quiet moment.**"
        if loaded_rounds
        else ""
    )
    lines = [
        f"Signed distances of {len(q):,} points to the bunny subdivided {args.subdivisions}x "
        f"({len(f):,} faces) on **{cpu_name()}** ({os.cpu_count()} CPUs), median of "
        f"{args.rounds} interleaved rounds; load average at the end "
        f"{'/'.join(f'{x:.1f}' for x in end_load)}.{flag}",
        "",
        "| implementation | seconds | vs neurosim | max abs distance diff | same sign |",
        "|---|---|---|---|---|",
    ]
    for label, _, _ in cases:
        got = results[label]
        ref = reference[: len(got)]
        t = statistics.median(times[label])
        diff = float(np.abs(np.abs(got) - np.abs(ref)).max())
        same = float(((got < 0) == (ref < 0)).mean())
        lines.append(f"| {label} | {t:.2f} | {t / base:.1f}x | {diff:.2g} | {same:.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--subdivisions", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--old-points", type=int, default=1024, help="0: skip the old code")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    table = run(args)
    print()
    print(table)
    out = args.out or ROOT / "benchmarks" / "results" / "mesh_sdf-cpu.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(table + "\n")
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
