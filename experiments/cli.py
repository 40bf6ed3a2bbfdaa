"""The ``neurosim`` command line: list, run (and --resume), sweep, show, config.

Examples::

    neurosim list
    neurosim run image_fit --preset tiny steps=200 lr=1e-3
    neurosim run --resume runs/image_fit/20261126-120000-abc123
    neurosim run snn_mnist --preset tiny --nproc 2     # data-parallel, 2 processes
    neurosim sweep image_fit --preset tiny lr=1e-3,3e-3 hidden=32,64 executor=local workers=2
    neurosim sweep --resume runs/sweeps/image_fit-20261126-120000-ab12 --retries 1
    neurosim show runs/image_fit/20261126-120000-abc123
    neurosim demo            # every experiment's short `demo` preset
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from typing import Any

import yaml

from experiments.config import ConfigError, parse_override, preset_names, to_dict
from experiments.registry import experiment_names, get_experiment
from neurosim._version import __version__
from neurosim.backend import NeurosimError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="neurosim", description="Run neurosim experiments and read their results."
    )
    parser.add_argument("--version", action="version", version=f"neurosim {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="list the registered experiments")

    run = sub.add_parser("run", help="run an experiment (or resume a run)")
    run.add_argument("name", nargs="?", help="experiment name (see `neurosim list`)")
    run.add_argument("overrides", nargs="*", help="config overrides key=value (nested: a.b=value)")
    run.add_argument("--preset", help="a shipped preset name or a YAML file")
    run.add_argument("--runs-dir", help="parent folder of run directories (default ./runs)")
    run.add_argument("--run-dir", help="use exactly this new run directory")
    run.add_argument("--resume", metavar="RUN", help="continue the run in this directory")
    run.add_argument(
        "--nproc",
        type=int,
        default=1,
        metavar="N",
        help="data-parallel training with N processes on this machine (gloo on CPU, one GPU per "
        "process on CUDA); for several machines use torchrun (docs/distributed.md)",
    )

    sweep = sub.add_parser("sweep", help="run a grid of configs and collect one table")
    sweep.add_argument("name", nargs="?", help="experiment name")
    sweep.add_argument(
        "specs",
        nargs="*",
        help="key=a,b,c values to sweep, key=value fixed overrides, executor=local|ray|serial, "
        "workers=N, retries=N",
    )
    sweep.add_argument("--resume", metavar="DIR", help="continue the sweep in this directory")
    sweep.add_argument(
        "--retries", type=int, help="run a failed trial up to N more times (default 0)"
    )
    sweep.add_argument("--preset", help="a shipped preset name or a YAML file")
    sweep.add_argument("--runs-dir", help="parent folder (default ./runs)")
    sweep.add_argument("--ray-address", help="connect to this Ray cluster instead of a local one")

    show = sub.add_parser("show", help="summary table and PNG plots of a run or sweep")
    show.add_argument("run", help="run (or sweep) directory")
    show.add_argument("--no-plots", action="store_true", help="print only, write no PNG files")
    show.add_argument("--metric", help="sweep: the final metric of the comparison plot")

    demo = sub.add_parser("demo", help="run every experiment's short `demo` preset")
    demo.add_argument("--runs-dir", help="parent folder of run directories (default ./runs)")
    demo.add_argument("--only", nargs="*", help="run only these experiments")

    config = sub.add_parser("config", help="print an experiment's full config as YAML")
    config.add_argument("name", help="experiment name")
    config.add_argument("overrides", nargs="*", help="key=value overrides")
    config.add_argument("--preset", help="a shipped preset name or a YAML file")
    return parser


def _cmd_list() -> int:
    rows = []
    for name in experiment_names():
        cls = get_experiment(name)
        presets = ",".join(preset_names(name)) or "-"
        rows.append((name, presets, cls.description))
    width = max(len(r[0]) for r in rows) if rows else 4
    pwidth = max(len(r[1]) for r in rows) if rows else 7
    print(f"{'name'.ljust(width)}  {'presets'.ljust(pwidth)}  description")
    for name, presets, description in rows:
        print(f"{name.ljust(width)}  {presets.ljust(pwidth)}  {description}")
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from experiments import distributed
    from experiments.runner import resume_run, run_experiment

    if args.resume:
        if args.name or args.overrides or args.preset:
            raise ConfigError("--resume RUN takes no experiment name, preset or overrides")
    elif not args.name:
        raise ConfigError("give an experiment name (see `neurosim list`) or --resume RUN")
    if args.nproc != 1:
        return _launch_ranks(args)
    with distributed.process_group():
        if args.resume:
            result = resume_run(args.resume)
        else:
            result = run_experiment(
                args.name, args.overrides, args.runs_dir, args.preset, run_dir=args.run_dir
            )
        if not distributed.is_main():
            return 0
    for key, value in result.metrics.items():
        print(f"{key}: {value:.6g}")
    print(f"results: {result.results_path}")
    print(f"read them with: neurosim show {result.run_dir}")
    return 0


def _launch_ranks(args: argparse.Namespace) -> int:
    """``neurosim run ... --nproc N``: check what can be checked once, then start N ranks."""
    import torch

    from experiments import distributed
    from experiments.runner import load_run_config, make_config

    if args.nproc < 1:
        raise ConfigError(f"--nproc must be >= 1, got {args.nproc}")
    if distributed.launched():
        raise ConfigError(
            "--nproc starts processes on this machine; under torchrun (RANK and WORLD_SIZE are "
            "set) torchrun starts them: drop --nproc"
        )
    if args.resume:
        name, config = load_run_config(args.resume)
    else:  # a bad config fails here, once, before any process starts
        name, config = args.name, make_config(args.name, args.overrides, args.preset)
    if not get_experiment(name).supports_ddp:
        raise ConfigError(
            f"experiment {name!r} does not support data-parallel training (supports_ddp is "
            "false); run it without --nproc"
        )
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if config.device.strip().lower() in ("auto", "cuda") and 0 < gpus < args.nproc:
        raise ConfigError(
            f"--nproc {args.nproc} with device={config.device} needs one GPU per process, but "
            f"{gpus} are visible; use --nproc {gpus} (or device=cpu)"
        )
    return distributed.launch(main, _without_nproc(args.argv), args.nproc)


def _without_nproc(argv: Sequence[str]) -> list[str]:
    words, skip = [], False
    for word in argv:
        if skip:
            skip = False
        elif word == "--nproc":
            skip = True
        elif not word.startswith("--nproc="):
            words.append(word)
    return words


def _cmd_sweep(args: argparse.Namespace) -> int:
    from experiments.sweep import resume_sweep, run_sweep, split_values

    executor: str | None = None
    workers: int | None = None
    retries: int | None = args.retries
    grid, fixed = [], []
    specs = list(args.specs)
    if args.resume and args.name and "=" in args.name:
        specs.insert(0, args.name)  # `sweep --resume DIR executor=serial`: not a name
        args.name = None
    for spec in specs:
        key, raw = parse_override(spec)
        if key == "executor":
            executor = raw
        elif key in ("workers", "retries"):
            try:
                number = int(raw)
            except ValueError:
                raise ConfigError(f"{key} must be an integer, got {raw!r}") from None
            if key == "workers":
                workers = number
            else:
                retries = number
        elif len(split_values(raw)) > 1:
            grid.append(spec)
        else:
            fixed.append(spec)
    if args.resume:
        if args.name or grid or fixed or args.preset:
            raise ConfigError(
                "--resume DIR takes no experiment name, preset or overrides "
                "(only executor=, workers=, retries=)"
            )
        result = resume_sweep(
            args.resume,
            executor=executor,
            workers=workers,
            retries=retries,
            ray_address=args.ray_address,
        )
    else:
        if not args.name:
            raise ConfigError("give an experiment name (see `neurosim list`) or --resume DIR")
        result = run_sweep(
            args.name,
            grid,
            fixed,
            preset=args.preset,
            runs_dir=args.runs_dir,
            executor=executor or "local",
            workers=workers or 0,
            retries=retries or 0,
            ray_address=args.ray_address,
        )
    print(result.table())
    print(f"sweep: {result.sweep_dir} (table in sweep.csv)")
    if not result.ok:
        print(
            f"neurosim: {len(result.failed)} of {len(result.trials)} trials did not finish "
            f"(reasons in sweep.csv); run them again with: neurosim sweep --resume "
            f"{result.sweep_dir}",
            file=sys.stderr,
        )
        return 1
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from experiments.show import show_run

    print(show_run(args.run, plots=not args.no_plots, metric=args.metric))
    return 0


def _wrap(head: str, items: list[str], width: int = 100) -> str:
    """``head`` then ``items`` joined by commas, wrapped under the head at ``width`` columns."""
    lines, line = [], head
    for i, item in enumerate(items):
        piece = item + ("," if i < len(items) - 1 else "")
        if len(line) + len(piece) + 1 > width and line.strip() != head.strip():
            lines.append(line.rstrip())
            line = " " * len(head)
        line += piece + " "
    lines.append(line.rstrip())
    return "\n".join(lines)


def _cmd_demo(args: argparse.Namespace) -> int:
    from experiments.runner import run_experiment

    names = [n for n in experiment_names() if "demo" in preset_names(n)]
    if args.only:
        unknown = sorted(set(args.only) - set(names))
        if unknown:
            raise ConfigError(f"no demo preset for {unknown}; experiments with one: {names}")
        names = [n for n in names if n in args.only]
    rows: list[tuple[str, dict[str, Any]]] = []
    paths: list[str] = []
    for name in names:
        print(f"== {name}: {get_experiment(name).description}", flush=True)
        result = run_experiment(name, [], args.runs_dir, "demo")
        rows.append((name, dict(result.metrics)))
        paths.append(f"{name}: {result.results_path}")
        print(f"   results: {result.results_path}", flush=True)
    print()
    for name, row in rows:  # one block per experiment: families report different metrics
        items = [f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()]
        print(_wrap(f"{name}: ", items))
    print("\nresults:\n  " + "\n  ".join(paths))
    print("\nread a run with: neurosim show RUN_DIR  (summary table + PNG plots)")
    return 0


def _cmd_config(args: argparse.Namespace) -> int:
    from experiments.runner import make_config

    config = make_config(args.name, args.overrides, args.preset)
    print(yaml.safe_dump(to_dict(config), sort_keys=False), end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``neurosim`` console script; returns the exit code."""
    parser = _parser()
    words = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in words  # accepted anywhere on the line, also after the command
    args, extra = parser.parse_known_args([w for w in words if w != "--debug"])
    args.debug = debug
    args.argv = words
    # argparse cannot interleave options with a second list of positionals: collect the
    # key=value words that came after an option here.
    unknown = [word for word in extra if word.startswith("-") or "=" not in word]
    if unknown or (extra and args.command not in ("run", "sweep", "config")):
        parser.error(f"unrecognized arguments: {' '.join(unknown or extra)}")
    if extra:
        if args.command == "sweep":
            args.specs = [*args.specs, *extra]
        else:
            args.overrides = [*args.overrides, *extra]
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if hasattr(signal, "SIGXFSZ"):
        # Past a file-size limit (`ulimit -f`) a write fails with EFBIG and the run says so,
        # instead of the process dying silently.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        if args.command == "list":
            return _cmd_list()
        if args.command == "run":
            return _cmd_run(args)
        if args.command == "sweep":
            return _cmd_sweep(args)
        if args.command == "show":
            return _cmd_show(args)
        if args.command == "config":
            return _cmd_config(args)
        if args.command == "demo":
            return _cmd_demo(args)
    except NeurosimError as exc:
        if args.debug:
            raise
        print(f"neurosim: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if args.debug:
            raise
        where = f": {exc.filename!r}" if exc.filename else ""
        print(f"neurosim: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except MemoryError as exc:
        if args.debug:
            raise
        print(f"neurosim: error: out of memory ({exc})", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        if args.debug:
            raise
        print(
            "neurosim: interrupted; continue with `neurosim run --resume RUN` "
            "(or `neurosim sweep --resume DIR`), using the directory printed above",
            file=sys.stderr,
        )
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
