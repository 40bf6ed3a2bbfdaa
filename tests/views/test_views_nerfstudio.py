"""The nerfstudio plugin: every ``neurosim-*`` method trains (and evaluates) on the CPU with no
network, run in the nerfstudio environment that ``make nerfstudio-env`` builds (``make test``
depends on it; its path can be set with ``$NEUROSIM_NS_VENV``)."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
NS_VENV = Path(os.environ.get("NEUROSIM_NS_VENV", ROOT / ".venv-ns"))
LEGO = ROOT / ".." / "shared" / "data" / "nerf" / "lego_200"
METHODS = {
    "neurosim-hashgrid",
    "neurosim-neurbf",
    "neurosim-triplane",
    "neurosim-cam",
    "neurosim-cam-position",
}


def _env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    # an empty torch hub cache and offline hubs: any weight download would fail the run
    env.update(
        TORCH_HOME=str(tmp_path / "torch_home"),
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS="1",
        MPLBACKEND="Agg",
    )
    return env


def _require_env() -> None:
    assert (NS_VENV / "bin" / "ns-train").is_file(), (
        f"no nerfstudio environment at {NS_VENV}: run `make nerfstudio-env` (make test does)"
    )


def test_every_neurosim_method_trains_two_iterations_offline(tmp_path: Path) -> None:
    _require_env()
    out = subprocess.run(
        [
            str(NS_VENV / "bin" / "python"),
            str(ROOT / "tests" / "views" / "nerfstudio_check.py"),
            "--data",
            str(LEGO),
            "--out",
            str(tmp_path / "outputs"),
            "--iterations",
            "2",
        ],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=900,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(report) == METHODS
    for name, entry in report.items():
        assert entry["steps"] == 2
        assert math.isfinite(entry["loss"]) and entry["loss"] > 0, name
        assert math.isfinite(entry["eval"]["psnr"]), name
        assert "lpips" not in entry["eval"] and not entry["lpips_module"], name
        h, w2, c = entry["image_shape"]
        assert (h, w2, c) == (20, 40, 3), name  # ground truth beside the render, 20 x 20 each
    assert not any((tmp_path / "torch_home").rglob("*.pth"))  # nothing was downloaded


def test_ns_train_cli_trains_a_neurosim_method(tmp_path: Path) -> None:
    _require_env()
    out = subprocess.run(
        [
            str(NS_VENV / "bin" / "ns-train"),
            "neurosim-cam",
            "--data",
            str(LEGO),
            "--output-dir",
            str(tmp_path / "outputs"),
            "--max-num-iterations",
            "2",
            "--machine.device-type",
            "cpu",
            "--vis",
            "tensorboard",
            "--viewer.quit-on-train-completion",
            "True",
            "--pipeline.datamanager.train-num-rays-per-batch",
            "256",
            "--pipeline.datamanager.camera-res-scale-factor",
            "0.1",
            "blender-data",
        ],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=600,
        cwd=tmp_path,
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    runs = list((tmp_path / "outputs").rglob("config.yml"))
    assert len(runs) == 1 and "neurosim-cam" in runs[0].read_text()
    assert list(runs[0].parent.glob("nerfstudio_models/step-*.ckpt"))
