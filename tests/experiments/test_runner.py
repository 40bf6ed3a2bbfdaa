"""The runner end to end: run, resume after SIGKILL, show, CLI errors."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from experiments.checkpoint import list_checkpoints
from experiments.cli import main
from experiments.results import open_results
from experiments.runner import load_run_config, resume_run, run_experiment
from experiments.show import show_run
from neurosim.backend import InputError

TINY = ["steps=40", "checkpoint_every=10", "log_every=5"]


def test_run_writes_config_results_and_checkpoints(tmp_path: Path) -> None:
    result = run_experiment("image_fit", TINY, runs_dir=tmp_path, preset="tiny")
    run_dir = result.run_dir
    assert run_dir.parent == tmp_path / "image_fit"
    doc = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert doc["experiment"] == "image_fit" and doc["config"]["steps"] == 40
    name, config = load_run_config(run_dir)
    assert name == "image_fit" and config == result.config
    results = open_results(run_dir)
    assert results.status == "finished"
    steps, psnr = results.metric("psnr")
    assert steps.tolist() == list(range(4, 40, 5))
    assert np.all(np.isfinite(psnr)) and psnr[-1] > psnr[0]
    assert results.summary["psnr"] == pytest.approx(result.metrics["psnr"])
    assert results.arrays["prediction"].shape == (32, 32, 1)
    assert results.attrs["environment"]["device"] == "cpu"
    assert list_checkpoints(run_dir)  # the final checkpoint at least


def test_resume_of_a_finished_run_returns_its_summary(tmp_path: Path) -> None:
    result = run_experiment("image_fit", TINY, runs_dir=tmp_path, preset="tiny")
    again = resume_run(result.run_dir)
    assert again.metrics == pytest.approx(result.metrics)


def test_sigkill_mid_run_then_resume_matches_uninterrupted(tmp_path: Path) -> None:
    overrides = ["steps=400", "checkpoint_every=20", "log_every=5", "size=24", "hidden=16"]
    killed = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "experiments.cli",
        "run",
        "image_fit",
        "--preset",
        "tiny",
        *overrides,
        "--run-dir",
        str(killed),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ckpts = list_checkpoints(killed)
            if ckpts and int(ckpts[-1].stem.split("_")[1]) >= 60:
                break
            if proc.poll() is not None:
                pytest.fail(f"run ended before it could be killed: {proc.stderr.read().decode()}")
            time.sleep(0.05)
        else:
            pytest.fail("no checkpoint appeared in time")
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # The results file is readable right after the kill, and the run is not marked finished.
    partial = open_results(killed)
    assert partial.status == "running"
    assert len(partial.metric("loss")[0]) > 0

    resumed = resume_run(killed)
    reference = run_experiment("image_fit", overrides, runs_dir=tmp_path / "ref", preset="tiny")
    assert resumed.metrics == pytest.approx(reference.metrics, rel=1e-6, abs=1e-9)
    a, b = open_results(killed), open_results(reference.run_dir)
    assert a.status == "finished"
    assert a.metric("loss")[0].tolist() == b.metric("loss")[0].tolist()  # no gaps, no duplicates
    np.testing.assert_allclose(a.metric("loss")[1], b.metric("loss")[1], rtol=1e-6)


class Crash(Exception):
    """Stands in for a run dying mid-way."""


def _crash_at(monkeypatch: pytest.MonkeyPatch, step_at: int) -> Any:
    """Make image_fit raise at ``step_at``; returns a function that undoes it."""
    from experiments.families.image_fit import ImageFit

    original = ImageFit.step

    def crashing(self: Any, step: int) -> dict[str, float]:
        if step == step_at:
            raise Crash(f"crash at step {step}")
        return original(self, step)

    monkeypatch.setattr(ImageFit, "step", crashing)
    return lambda: monkeypatch.setattr(ImageFit, "step", original)


def test_garbled_step20_checkpoint_falls_back_to_step10_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    overrides = ["steps=30", "checkpoint_every=10", "log_every=5"]
    reference = run_experiment("image_fit", overrides, runs_dir=tmp_path / "ref", preset="tiny")
    # A run keeps its two newest checkpoints (the final one and the one before).
    assert [p.name for p in list_checkpoints(reference.run_dir)] == [
        "step_000000020.pt",
        "step_000000030.pt",
    ]

    undo = _crash_at(monkeypatch, 25)  # the run dies after writing its step-20 checkpoint
    with pytest.raises(Crash):
        run_experiment("image_fit", overrides, runs_dir=tmp_path / "crash", preset="tiny")
    undo()
    (run_dir,) = (tmp_path / "crash" / "image_fit").iterdir()
    older, newest = list_checkpoints(run_dir)
    assert (older.name, newest.name) == ("step_000000010.pt", "step_000000020.pt")
    # Garble 64 bytes of the step-20 checkpoint where the first layer's weights are stored:
    # torch.load still reads the file, and without a checksum the run would resume from them.
    weights = torch.load(newest, weights_only=True)["experiment"]["model"]["1.0.weight"]
    data = bytearray(newest.read_bytes())
    at = bytes(data).find(weights.numpy().tobytes())
    assert at > 0
    data[at : at + 64] = bytes((b + 0x5A) % 256 for b in data[at : at + 64])
    newest.write_bytes(bytes(data))

    with caplog.at_level(logging.WARNING, logger="neurosim.experiments"):
        resumed = resume_run(run_dir)
    assert "step_000000020.pt" in caplog.text and "SHA-256" in caplog.text
    assert "older checkpoint step_000000010.pt (step 10)" in caplog.text
    assert resumed.resumed_from == 10
    assert all(np.isfinite(v) for v in resumed.metrics.values())
    assert resumed.metrics == reference.metrics  # same process, same threads: bit for bit
    a, b = open_results(run_dir), open_results(reference.run_dir)
    assert a.status == "finished"
    assert a.metric("loss")[0].tolist() == b.metric("loss")[0].tolist()
    assert np.array_equal(a.metric("loss")[1], b.metric("loss")[1])


def test_show_writes_plots(tmp_path: Path) -> None:
    result = run_experiment("image_fit", TINY, runs_dir=tmp_path, preset="tiny")
    text = show_run(result.run_dir)
    assert "psnr" in text and "finished" in text
    plots = {p.name for p in (result.run_dir / "plots").iterdir()}
    assert {"loss.png", "psnr.png", "prediction.png", "target.png"} <= plots
    assert (result.run_dir / "plots" / "psnr.png").read_bytes()[:4] == b"\x89PNG"


def test_run_dir_must_be_new(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("keep me")
    with pytest.raises(InputError, match="not empty"):
        run_experiment("image_fit", TINY, preset="tiny", run_dir=tmp_path / "x")
    assert (tmp_path / "x" / "file").read_text() == "keep me"


def test_resume_of_a_non_run_is_clear(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a run directory"):
        resume_run(tmp_path)


def test_cli_list_run_show_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    assert "image_fit" in capsys.readouterr().out

    assert (
        main(["run", "image_fit", "--preset", "tiny", "steps=10", "--runs-dir", str(tmp_path)]) == 0
    )
    out = capsys.readouterr().out
    assert "psnr:" in out and "results:" in out
    run_dir = next((tmp_path / "image_fit").iterdir())

    assert main(["show", str(run_dir), "--no-plots"]) == 0
    assert "psnr" in capsys.readouterr().out

    assert main(["run", "image_fit", "stepz=10", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert (
        "unknown config key 'stepz'" in err
        and "did you mean 'steps'" in err
        and "Traceback" not in err
    )
    assert main(["run", "no_such_experiment"]) == 2
    assert "unknown experiment 'no_such_experiment'" in capsys.readouterr().err
    assert main(["run", "image_fit", "steps=abc"]) == 2
    assert "expected an integer" in capsys.readouterr().err

    bad = tmp_path / "bad" / "results.h5"
    bad.parent.mkdir()
    bad.write_bytes(b"\x00" * 100)
    assert main(["show", str(bad.parent)]) == 2
    assert "not an HDF5 file" in capsys.readouterr().err

    assert main(["config", "image_fit", "--preset", "tiny", "optim.lr=0.5"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["optim"]["lr"] == 0.5


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).parent / "neurosim"
    out = subprocess.run([str(script), "list"], capture_output=True, text=True, check=True)
    assert "image_fit" in out.stdout
