"""Sweeps: grid expansion, the local process pool, Ray, the collected table, and failure:
a failing trial among good ones, retries, a SIGKILLed driver whose workers must exit, and
``--resume``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from experiments.cli import main
from experiments.config import ConfigError
from experiments.lock import DirectoryInUseError, DirectoryLock
from experiments.results import open_results
from experiments.show import show_run
from experiments.sweep import expand_grid, read_sweep, resume_sweep, run_sweep, split_values


def test_split_values_respects_brackets_and_quotes() -> None:
    assert split_values("1,2,3") == ["1", "2", "3"]
    assert split_values("[1,2],[3]") == ["[1,2]", "[3]"]
    assert split_values("'a,b',c") == ["'a,b'", "c"]


def test_expand_grid_is_a_cartesian_product() -> None:
    grid = expand_grid(["a=1,2", "b=x,y,z"])
    assert len(grid) == 6
    assert grid[0] == ["a=1", "b=x"] and grid[-1] == ["a=2", "b=z"]
    assert expand_grid([]) == [[]]


def test_invalid_sweep_fails_before_running_anything(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown config key 'lrr'"):
        run_sweep("image_fit", ["lrr=1,2"], preset="tiny", runs_dir=tmp_path)
    assert not (tmp_path / "sweeps").exists()
    with pytest.raises(ConfigError, match="executor"):
        run_sweep("image_fit", ["optim.lr=1,2"], preset="tiny", runs_dir=tmp_path, executor="slurm")


def _check(result_rows: list[dict[str, object]], key: str, values: list[float]) -> None:
    assert sorted(float(str(r[key])) for r in result_rows) == sorted(values)
    for row in result_rows:
        assert open_results(Path(str(row["run_dir"]))).status == "finished"
        assert float(str(row["psnr"])) > 0


def test_local_pool_sweep_collects_one_table(tmp_path: Path) -> None:
    result = run_sweep(
        "image_fit",
        ["optim.lr=0.01,0.003"],
        ["steps=10"],
        preset="tiny",
        runs_dir=tmp_path,
        executor="local",
        workers=2,
    )
    _check(result.rows, "optim.lr", [0.01, 0.003])
    table = read_sweep(result.sweep_dir)
    assert [r["optim.lr"] for r in table] == [0.01, 0.003]
    assert "psnr" in show_run(result.sweep_dir)


def test_cli_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "sweep",
            "image_fit",
            "--preset",
            "tiny",
            "size=16,24",
            "steps=5",
            "executor=serial",
            "--runs-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "size" in out and "psnr" in out and "sweep:" in out

    missing = tmp_path / "missing.png"
    args = ["sweep", "image_fit", "--preset", "tiny", f"image=camera,{missing}", "size=16"]
    args += ["steps=3", "executor=serial", "--retries", "1", "--runs-dir", str(tmp_path / "b")]
    assert main(args) == 1  # a trial did not finish
    err = capsys.readouterr().err
    assert "1 of 2 trials did not finish" in err and "neurosim sweep --resume" in err
    (sweep_dir,) = (tmp_path / "b" / "sweeps").iterdir()
    assert [r["attempts"] for r in read_sweep(sweep_dir)] == [1, 2]


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[Any]:
    """One local Ray instance for the module's Ray tests (the executor then leaves it up)."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _write_png(path: Path, size: int = 16) -> None:
    from skimage import io

    rng = np.random.default_rng(0)
    io.imsave(path, (rng.random((size, size)) * 255).astype(np.uint8), check_contrast=False)


def test_invalid_value_names_the_trial_and_the_key_before_anything_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigError, match=r"sweep trial 1 \(optim.lr=nan\): .*optim.lr"):
        run_sweep("image_fit", ["optim.lr=0.01,nan"], preset="tiny", runs_dir=tmp_path)
    assert not (tmp_path / "sweeps").exists()
    code = main(["sweep", "image_fit", "optim.lr=0.01,nan", "--runs-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "sweep trial 1 (optim.lr=nan)" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_one_failing_trial_is_recorded_retried_and_finished_on_resume(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    later = tmp_path / "later.png"  # missing now: that trial fails in setup
    result = run_sweep(
        "image_fit",
        [f"image=camera,{later}"],
        ["steps=10", "size=16"],
        preset="tiny",
        runs_dir=tmp_path / "runs",
        executor="serial",
        retries=1,
    )
    assert not result.ok
    good, bad = result.trials
    assert (good.status, good.attempts, good.reason) == ("finished", 1, "")
    assert bad.status == "failed" and bad.attempts == 2  # tried, then retried once
    assert "later.png" in bad.reason and "InputError" in bad.reason
    assert "retrying (1 of 1 retries)" in caplog.text
    # Every finished trial is collected, with a status column; the failed run is marked.
    table = read_sweep(result.sweep_dir)
    assert [r["status"] for r in table] == ["finished", "failed"]
    assert table[0]["psnr"] == pytest.approx(good.metrics["psnr"]) and table[1]["psnr"] is None
    assert "later.png" in table[1]["reason"]
    bad_results = open_results(table[1]["run_dir"])
    assert bad_results.status == "failed" and "later.png" in bad_results.attrs["status_reason"]
    assert "1 finished, 1 failed" in show_run(result.sweep_dir)
    manifest = json.loads((result.sweep_dir / "manifest.json").read_text())
    assert [t["status"] for t in manifest["trials"]] == ["finished", "failed"]

    # One driver at a time: a second resume of a sweep in use is refused with the PID.
    with DirectoryLock(result.sweep_dir, "sweep"):
        with pytest.raises(DirectoryInUseError, match=f"in use by PID {os.getpid()}"):
            resume_sweep(result.sweep_dir)

    # The cause is fixed: --resume runs only the failed trial.
    good_file = Path(table[0]["run_dir"]) / "results.h5"
    stamp = good_file.stat().st_mtime_ns
    _write_png(later)
    again = resume_sweep(result.sweep_dir)
    assert again.ok and [t.attempts for t in again.trials] == [1, 3]
    assert good_file.stat().st_mtime_ns == stamp  # the finished trial did not run again
    assert [r["status"] for r in read_sweep(result.sweep_dir)] == ["finished", "finished"]


def test_ray_sweep_records_failures_retries_and_resumes(tmp_path: Path, ray_cluster: Any) -> None:
    later = tmp_path / "later.png"
    result = run_sweep(
        "image_fit",
        ["hidden=8,16", f"image=camera,{later}"],
        ["steps=5", "size=16"],
        preset="tiny",
        runs_dir=tmp_path / "runs",
        executor="ray",
        workers=2,
        retries=1,
    )
    status = {(r["hidden"], r["image"] == "camera"): r["status"] for r in result.rows}
    assert status == {
        (8, True): "finished",
        (16, True): "finished",
        (8, False): "failed",
        (16, False): "failed",
    }
    assert [t.attempts for t in result.trials] == [1, 2, 1, 2]
    finished = [r for r in result.rows if r["status"] == "finished"]
    _check(finished, "hidden", [8, 16])
    assert len({r["params"] for r in finished}) == 2  # the swept width reached the model

    _write_png(later)
    again = resume_sweep(result.sweep_dir)  # Ray again: the executor is stored in the manifest
    assert again.ok and [t.attempts for t in again.trials] == [1, 3, 1, 3]
    _check(again.rows, "hidden", [8, 8, 16, 16])


def _gone(pid: int) -> bool:
    """Whether a process has exited (a zombie waiting for a reaper counts as exited)."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            state = next(line for line in fh if line.startswith("State:"))
    except (FileNotFoundError, ProcessLookupError, StopIteration):
        return True
    return "Z" in state.split()[1]


def test_sigkilled_driver_takes_its_workers_along_and_resume_completes(
    tmp_path: Path, ray_cluster: Any
) -> None:
    # Every trial process pauses forever in its step-40 checkpoint write: a worker that does
    # not notice its driver's death would stay there, as the old pool workers hung.
    env = {**os.environ, "NEUROSIM_PAUSE_AT": "checkpoint.replace@40", "OMP_NUM_THREADS": "1"}
    log = tmp_path / "driver.log"
    cmd = [
        sys.executable,
        "-m",
        "experiments.cli",
        "sweep",
        "image_fit",
        "--preset",
        "tiny",
        "size=16,20,24",
        "steps=60",
        "workers=2",
        "executor=local",
        "--runs-dir",
        str(tmp_path),
    ]
    with open(log, "w") as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            paused = list(tmp_path.glob("sweeps/*/run00[01]/checkpoints/step_000000040.pt.tmp"))
            if len(paused) == 2:
                break
            if proc.poll() is not None:
                pytest.fail(f"sweep ended before it could be killed: {log.read_text()}")
            time.sleep(0.05)
        else:
            pytest.fail(f"the trials did not reach their step-40 checkpoint: {log.read_text()}")
        (sweep_dir,) = tmp_path.glob("sweeps/*")
        workers = [int((sweep_dir / r / ".lock").read_text()) for r in ("run000", "run001")]
        assert all(not _gone(pid) for pid in workers)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    deadline = time.monotonic() + 5
    while not all(_gone(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [pid for pid in workers if not _gone(pid)]
    for pid in left:  # do not leak them into the rest of the suite
        os.kill(pid, signal.SIGKILL)
    assert not left, f"worker processes {left} outlived the killed sweep driver"

    manifest = json.loads((sweep_dir / "manifest.json").read_text())
    assert [t["status"] for t in manifest["trials"]] == ["running", "running", "pending"]
    assert [r["status"] for r in read_sweep(sweep_dir)] == ["running", "running", "pending"]

    # Resume on Ray: finished trials are kept, interrupted ones continue from step 20.
    assert main(["sweep", "--resume", str(sweep_dir), "executor=ray", "workers=2"]) == 0
    rows = read_sweep(sweep_dir)
    assert [r["status"] for r in rows] == ["finished"] * 3
    assert [r["attempts"] for r in rows] == [2, 2, 1]
    for row in rows:
        results = open_results(row["run_dir"])
        assert results.status == "finished"
        assert results.metric("loss")[0].tolist() == list(range(4, 60, 5))  # no gap, no repeat
