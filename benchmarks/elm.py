"""ELM and Branch-ELM throughput: neurosim vs the reference implementation, in one process.

The reference is the authors' TorchScript module (AaronSpieler/elmneuron,
``src/expressive_leaky_memory_neuron.py``, one ``jit.script_method`` call per time step). Its code
is not part of neurosim: put a checkout's ``src`` folder under the git-ignored
``benchmarks/.elm_reference`` first, e.g.::

    git clone --depth 1 https://github.com/AaronSpieler/elmneuron /tmp/elmneuron
    mkdir -p benchmarks/.elm_reference && cp -r /tmp/elmneuron/src benchmarks/.elm_reference/

(``--reference PATH`` points elsewhere). Its ``neuronio`` helpers import seaborn for plotting; the
benchmark stands in a stub for that one module (only a constant of the evaluation methods is read).

Configurations (issue 8, batch 32, T = 500):

* ``elm``: ELM 128 inputs -> 20 outputs, ``d_m = 100`` (68,048 parameters), no branches;
* ``branch``: Branch-ELM with the NeuronIO settings: 1278 inputs routed to 45 branches x 100
  synapses (``neuronio`` routing), ``d_m = 20``, 2 outputs (8,002 parameters).

Both models get the same weights (ours are copied into the reference) and the same Bernoulli
spike input ``[B, T, D]`` (``--density``, batch-major as the reference takes it); the outputs are
compared (max abs difference printed). Timed per round, libraries interleaved: forward (training
mode, graph built) and forward + backward of ``y.sum()``; medians over ``--repeats`` rounds after
``--warmup``. On the CPU the times are the process's CPU time by default (``--clock cpu``): on a
shared machine the wall clock also counts the time other jobs held the core, the CPU time much
less so (``--clock wall`` for wall-clock times). Also printed: the "floor", the two in-loop GEMMs of the memory MLP alone
(``T`` x ``[B, d_m] @ [d_m, H]`` and ``[B, H] @ [H, d_m]``), which any step-by-step ELM must
pay, and the load average before and after (``os.getloadavg()``).

    python benchmarks/elm.py                    # CPU, both configurations, 1 thread
    python benchmarks/elm.py --threads 2 --repeats 7
    python benchmarks/elm.py --device cuda --backend loop cuda_graph --batch 256

Prints a markdown table and writes it to ``benchmarks/results/elm-<device>.md``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import statistics
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from neurosim.neurons.elm import ELM  # noqa: E402

DEFAULT_REFERENCE = ROOT / "benchmarks" / ".elm_reference"
CONFIGS: dict[str, dict[str, Any]] = {
    "elm": {"num_input": 128, "num_output": 20, "num_memory": 100},
    "branch": {
        "num_input": 1278,
        "num_output": 2,
        "num_memory": 20,
        "num_branch": 45,
        "num_synapse_per_branch": 100,
        "routing": "neuronio",
    },
}


def load_reference(path: Path, version: str) -> type:
    """The reference ``ELM`` class from ``<path>/src`` (a clear message if it is missing)."""
    src = path / "src"
    name = "expressive_leaky_memory_neuron" + ("_v2" if version == "v2" else "")
    if not (src / f"{name}.py").is_file():
        raise SystemExit(
            f"reference implementation not found at {src}/{name}.py; get it with\n"
            "  git clone --depth 1 https://github.com/AaronSpieler/elmneuron /tmp/elmneuron\n"
            f"  mkdir -p {path} && cp -r /tmp/elmneuron/src {path}/\n"
            "(the folder is git-ignored: never commit the reference's code)"
        )
    package = types.ModuleType("elm_reference")
    package.__path__ = [str(src)]
    sys.modules["elm_reference"] = package
    neuronio = types.ModuleType("elm_reference.neuronio")
    neuronio.__path__ = []
    utils = types.ModuleType("elm_reference.neuronio.neuronio_data_utils")
    utils.DEFAULT_Y_TRAIN_SOMA_SCALE = 1 / 10  # type: ignore[attr-defined]
    sys.modules["elm_reference.neuronio"] = neuronio
    sys.modules["elm_reference.neuronio.neuronio_data_utils"] = utils
    module = importlib.import_module(f"elm_reference.{name}")
    return module.ELM  # type: ignore[no-any-return]


def build_pair(
    config: dict[str, Any], ref_cls: type, version: str, backend: str, device: torch.device
) -> tuple[ELM, Any]:
    """Our ELM (batch-major) and the reference with the same weights."""
    torch.manual_seed(0)
    ours = ELM(**config, version=version, time_major=False, backend=backend).to(device)
    ref_kwargs = {
        "num_input": config["num_input"],
        "num_output": config["num_output"],
        "num_memory": config["num_memory"],
    }
    if "num_branch" in config:
        ref_kwargs.update(
            num_branch=config["num_branch"],
            num_synapse_per_branch=config["num_synapse_per_branch"],
            input_to_synapse_routing=f"{config['routing']}_routing",
        )
    ref = ref_cls(**ref_kwargs).to(device)
    with torch.no_grad():
        ref._proto_w_s.copy_(ours.synapse_weight_raw)
        ref._proto_tau_m.copy_(ours.memory_tau_raw)
        linears = [m for m in ref.mlp.network if isinstance(m, torch.nn.Linear)]
        for theirs, mine in zip(linears, ours.mlp, strict=True):
            theirs.weight.copy_(mine.weight)
            theirs.bias.copy_(mine.bias)
        ref.w_y.weight.copy_(ours.readout.weight)
        ref.w_y.bias.copy_(ours.readout.bias)
        if ours.routing_index is not None:
            same = torch.equal(ref.input_to_synapse_indices.cpu(), ours.routing_index.cpu())
            if not same:
                raise SystemExit("reference and neurosim routings differ")
    return ours, ref


def timer(device: torch.device, clock: str) -> Callable[[Callable[[], Any]], float]:
    """Seconds one call takes: CUDA events on a GPU; on the CPU the process's CPU time
    (``clock="cpu"``: robust to other jobs taking turns on the cores) or the wall clock."""
    now = time.process_time if clock == "cpu" else time.perf_counter

    def run(fn: Callable[[], Any]) -> float:
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize()
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            return start.elapsed_time(end) / 1000
        t0 = now()
        fn()
        return now() - t0

    return run


def floor_fn(model: ELM, batch: int, steps: int, device: torch.device) -> Callable[[], None]:
    """The two in-loop GEMMs of the memory MLP, ``steps`` times (no other work)."""
    hidden, dm = model.mlp_hidden_size, model.num_memory
    m = torch.randn(batch, dm, device=device)
    a = torch.randn(batch, hidden, device=device)
    w1, w2 = torch.randn(dm, hidden, device=device), torch.randn(hidden, dm, device=device)
    z1, z2 = torch.empty(batch, hidden, device=device), torch.empty(batch, dm, device=device)

    def run() -> None:
        for _ in range(steps):
            torch.mm(m, w1, out=z1)
            torch.mm(a, w2, out=z2)

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--density", type=float, default=0.02, help="input spike probability")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--version", default="v1", choices=["v1", "v2"])
    parser.add_argument("--backend", nargs="+", default=["auto"],
                        help="neurosim elm_memory_scan backends to time")  # fmt: skip
    parser.add_argument("--reference", type=Path, default=DEFAULT_REFERENCE)
    parser.add_argument("--clock", default="cpu", choices=["cpu", "wall"],
                        help="CPU device: process CPU time (default) or wall-clock time")  # fmt: skip
    parser.add_argument("--out", type=Path, default=None, help="table path (default results/)")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    ref_cls = load_reference(args.reference, args.version)
    clock = timer(device, args.clock)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    lines = [
        f"# ELM throughput, {device.type} ({name or platform.machine()}), torch {torch.__version__}, "
        f"{args.threads} thread(s), batch {args.batch}, T = {args.steps}, input density "
        f"{args.density}, {args.version}, "
        + ("CUDA events" if device.type == "cuda" else f"{args.clock} time"),
        "",
        "| config | params | implementation | fwd ms | fwd+bwd ms | fwd seq/s | fwd+bwd seq/s "
        "| fwd speed-up | fwd+bwd speed-up | ours / GEMM floor (fwd) | max abs diff | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cfg_name in args.configs:
        config = CONFIGS[cfg_name]
        load_before = os.getloadavg()
        gen = torch.Generator().manual_seed(1)
        x = torch.rand(args.batch, args.steps, config["num_input"], generator=gen) < args.density
        x = x.float().to(device)
        runners: dict[str, Callable[[], torch.Tensor]] = {}
        ref_model = None
        ours_models = {}
        for backend in args.backend:
            ours, ref_model = build_pair(config, ref_cls, args.version, backend, device)
            ours_models[backend] = ours
            runners[f"neurosim ({backend})"] = lambda m=ours, x=x: m(x)[0]
        assert ref_model is not None
        runners["reference (TorchScript)"] = lambda r=ref_model, x=x: r(x)
        params = sum(p.numel() for p in next(iter(ours_models.values())).parameters())
        with torch.no_grad():
            expected = ref_model(x)
            diffs = {k: float((fn() - expected).abs().max()) for k, fn in runners.items()}
        floor = floor_fn(next(iter(ours_models.values())), args.batch, args.steps, device)
        times: dict[str, dict[str, list[float]]] = {
            k: {"fwd": [], "fb": []} for k in [*runners, "floor"]
        }
        for round_ in range(args.warmup + args.repeats):
            for key, fn in runners.items():
                fwd = clock(fn)

                def fwd_bwd(fn: Callable[[], torch.Tensor] = fn) -> None:
                    fn().sum().backward()

                fb = clock(fwd_bwd)
                if round_ >= args.warmup:
                    times[key]["fwd"].append(fwd)
                    times[key]["fb"].append(fb)
            floor_t = clock(floor)
            if round_ >= args.warmup:
                times["floor"]["fwd"].append(floor_t)
        load_after = os.getloadavg()
        med = {k: {m: statistics.median(v) if v else float("nan") for m, v in d.items()}
               for k, d in times.items()}  # fmt: skip
        ref_key = "reference (TorchScript)"
        load = f"{load_before[0]:.2f} -> {load_after[0]:.2f}"
        for key in runners:
            fwd, fb = med[key]["fwd"], med[key]["fb"]
            sp_f = med[ref_key]["fwd"] / fwd
            sp_b = med[ref_key]["fb"] / fb
            floor_ratio = fwd / med["floor"]["fwd"]
            lines.append(
                f"| {cfg_name} | {params} | {key} | {fwd * 1e3:.1f} | {fb * 1e3:.1f} | "
                f"{args.batch / fwd:.0f} | {args.batch / fb:.0f} | {sp_f:.2f}x | {sp_b:.2f}x | "
                f"{floor_ratio:.2f} | {diffs[key]:.1e} | {load} |"
            )
        lines.append(
            f"| {cfg_name} | | GEMM floor (2 x T small matmuls) | {med['floor']['fwd'] * 1e3:.1f} "
            f"| | | | | | | | {load} |"
        )
    lines += [
        "",
        "Speed-up: reference time / implementation time (same process, rounds interleaved). "
        "A load average above ~2.5 on the 2-core development machine means other jobs shared "
        "the cores: rerun such rows at a quiet moment.",
    ]
    table = "\n".join(lines)
    print(table)
    if not args.no_write:
        out = args.out or ROOT / "benchmarks" / "results" / f"elm-{device.type}.md"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(table + "\n")
        print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
