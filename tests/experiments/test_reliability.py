"""Reliability of runs under faults and bad input: SIGKILL inside an HDF5 write and inside a
checkpoint write, two processes on one run, edited configs, full disk, absurd sizes,
unwritable folders, runs that fail in setup; every expected failure is one CLI line."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from experiments.checkpoint import list_checkpoints
from experiments.cli import main
from experiments.config import ConfigError
from experiments.lock import DirectoryInUseError
from experiments.results import open_results
from experiments.runner import RunError, RunResult, resume_run, run_experiment
from experiments.show import show_run

KILL = ["steps=60", "checkpoint_every=20", "log_every=5"]
Starter = Callable[[str, Path], "subprocess.Popen[bytes]"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    """The uninterrupted run the killed-and-resumed runs must match bit for bit."""
    return run_experiment("image_fit", KILL, tmp_path_factory.mktemp("ref"), "tiny")


@pytest.fixture
def paused(tmp_path: Path) -> Iterator[Starter]:
    """Start ``neurosim run`` in a subprocess that pauses at a fault point; kill it at the end."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(point: str, run_dir: Path) -> subprocess.Popen[bytes]:
        marker = tmp_path / "paused"
        env = {
            **os.environ,
            "NEUROSIM_PAUSE_AT": point,
            "NEUROSIM_PAUSE_FILE": str(marker),
            # same intra-op threads as this process, so that the numbers match bit for bit
            "OMP_NUM_THREADS": str(torch.get_num_threads()),
        }
        cmd = [sys.executable, "-m", "experiments.cli", "run", "image_fit", "--preset", "tiny"]
        cmd += [*KILL, "--run-dir", str(run_dir)]
        with open(tmp_path / "child.log", "w") as log:  # the child keeps its own copy
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
        procs.append(proc)
        deadline = time.monotonic() + 120
        while not marker.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"run did not pause at {point}: {(tmp_path / 'child.log').read_text()}")
            time.sleep(0.02)
        assert int(marker.read_text()) == proc.pid
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def _same_run(a: RunResult, b: RunResult) -> None:
    assert a.metrics == b.metrics  # bit for bit
    ra, rb = open_results(a.run_dir), open_results(b.run_dir)
    assert ra.status == rb.status == "finished"
    for name in ("loss", "psnr"):
        assert ra.metric(name)[0].tolist() == rb.metric(name)[0].tolist()  # no gap, no repeat
        assert np.array_equal(ra.metric(name)[1], rb.metric(name)[1])
    assert np.array_equal(ra.arrays["prediction"], rb.arrays["prediction"])


def test_sigkill_inside_a_results_write_resumes_bit_identical(
    tmp_path: Path, paused: Starter, reference: RunResult
) -> None:
    run_dir = tmp_path / "run"
    # Pause inside the HDF5 edit that adds the rows up to step 39 (written before the step-40
    # checkpoint): the new rows exist only in the writer's copy, not in results.h5.
    proc = paused("results.write@39", run_dir)
    during = open_results(run_dir)  # readable by another process while the write is under way
    steps = during.metric("loss")[0].tolist()
    assert steps and steps[-1] < 39 and during.status == "running"
    _kill(proc)
    after = open_results(run_dir)
    assert after.metric("loss")[0].tolist() == steps  # the previous complete file
    resumed = resume_run(run_dir)
    assert resumed.resumed_from == 20
    _same_run(resumed, reference)
    assert not list(run_dir.glob("*.tmp"))


def test_sigkill_inside_a_checkpoint_write_and_a_second_process_is_refused(
    tmp_path: Path,
    paused: Starter,
    reference: RunResult,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_dir = tmp_path / "run"
    # Pause between writing the step-40 checkpoint's temporary file and renaming it.
    proc = paused("checkpoint.replace@40", run_dir)
    assert (run_dir / "checkpoints" / "step_000000040.pt.tmp").is_file()
    assert [p.name for p in list_checkpoints(run_dir)] == ["step_000000020.pt"]

    # A second process on the same run is refused, naming the first one's PID.
    with pytest.raises(DirectoryInUseError, match=f"in use by PID {proc.pid}"):
        resume_run(run_dir)
    assert main(["run", "--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert f"is in use by PID {proc.pid}" in err and "Traceback" not in err
    assert open_results(run_dir).status == "running"  # the refused process changed nothing
    assert f"status       running (PID {proc.pid})" in show_run(run_dir, plots=False)

    _kill(proc)
    assert "no process is on it: continue with" in show_run(run_dir, plots=False)
    resumed = resume_run(run_dir)  # the lock died with its owner
    assert resumed.resumed_from == 20
    _same_run(resumed, reference)
    leftovers = [p.name for p in (run_dir / "checkpoints").iterdir() if p.suffix == ".tmp"]
    assert not leftovers


def _crash_midway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A 30-step run that died at step 25, with checkpoints at 10 and 20."""
    from experiments.families.image_fit import ImageFit

    original = ImageFit.step

    def crashing(self: ImageFit, step: int) -> dict[str, float]:
        if step == 25:
            raise KeyboardInterrupt
        return original(self, step)

    monkeypatch.setattr(ImageFit, "step", crashing)
    with pytest.raises(KeyboardInterrupt):
        run_experiment("image_fit", ["steps=30", "checkpoint_every=10"], tmp_path, "tiny")
    monkeypatch.setattr(ImageFit, "step", original)
    (run_dir,) = (tmp_path / "image_fit").iterdir()
    assert open_results(run_dir).status == "interrupted"
    return run_dir


def _edit(run_dir: Path, **changes: object) -> dict[str, object]:
    path = run_dir / "config.yaml"
    doc = yaml.safe_load(path.read_text())
    before = dict(doc["config"])
    doc["config"].update(changes)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return before


def test_config_edits_before_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = _crash_midway(tmp_path, monkeypatch)
    original = _edit(run_dir, hidden=64)  # a different model than the checkpoint holds
    with pytest.raises(ConfigError, match=r"changed 'hidden' from 32 to 64"):
        resume_run(run_dir)
    capsys.readouterr()
    assert main(["run", "--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "'hidden'" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    _edit(run_dir, hidden=original["hidden"], optim={"lr": 0.5})
    with pytest.raises(ConfigError, match=r"changed 'optim.lr' from 0.01 to 0.5"):
        resume_run(run_dir)
    _edit(run_dir, optim=original["optim"], steps=15)  # below the step-20 checkpoint
    with pytest.raises(ConfigError, match=r"steps=15, below the step of the checkpoint.*\(20\)"):
        resume_run(run_dir)
    assert open_results(run_dir).status == "interrupted"  # refused edits changed nothing

    # Raising steps and changing log_every are fine; the run continues to the new end.
    _edit(run_dir, steps=40, log_every=4)
    resumed = resume_run(run_dir)
    assert resumed.resumed_from == 20 and resumed.config.steps == 40
    results = open_results(run_dir)
    assert results.status == "finished"
    assert results.metric("loss")[0].tolist() == [*range(4, 20, 5), *range(23, 40, 4)]
    # A finished run whose steps are raised again continues from its final checkpoint.
    _edit(run_dir, steps=45)
    longer = resume_run(run_dir)
    assert longer.resumed_from == 40 and open_results(run_dir).metric("loss")[0][-1] == 44
    assert resume_run(run_dir).metrics == longer.metrics  # finished: nothing runs


def test_setup_failure_marks_the_run_failed_and_the_run_dir_is_printed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.png"
    code = main(["run", "image_fit", f"image={missing}", "--runs-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    (run_dir,) = (tmp_path / "runs" / "image_fit").iterdir()
    assert code == 2
    assert f"neurosim: run directory {run_dir}" in err and f"--resume {run_dir}" in err
    assert "missing.png" in err and "Traceback" not in err
    results = open_results(run_dir)
    assert results.status == "failed" and "missing.png" in results.attrs["status_reason"]
    assert results.attrs["status_step"] == 0


def test_unwritable_run_folders_and_debug_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    for option in ("--runs-dir", "--run-dir"):
        assert main(["run", "image_fit", "--preset", "tiny", option, str(blocker / "x")]) == 2
        err = capsys.readouterr().err
        assert "cannot create" in err and "a_file" in err and "Not a directory" in err
        assert len(err.strip().splitlines()) == 1
    with pytest.raises(RunError, match="cannot create"):  # --debug: the real exception
        main(["run", "image_fit", "--runs-dir", str(blocker / "x"), "--debug"])
    with pytest.raises(ConfigError, match="stepz"):
        main(["--debug", "run", "image_fit", "stepz=1"])


def test_absurd_size_is_one_line_naming_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 10^15 Fourier frequencies: 8 PB for the projection matrix, beyond any address space.
    big = "num_frequencies=1000000000000000"
    assert main(["run", "image_fit", "--preset", "tiny", big, "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    error = [line for line in err.splitlines() if "error" in line]
    assert len(error) == 1 and "Traceback" not in err
    assert "ran out of memory" in error[0] and big in error[0]
    (run_dir,) = (tmp_path / "image_fit").iterdir()
    assert open_results(run_dir).status == "failed"


def test_full_disk_is_one_line_and_the_run_resumes(tmp_path: Path, reference: RunResult) -> None:
    run_dir = tmp_path / "run"
    limit = 48 * 1024  # bytes per file: the results file outgrows it within the run

    def limit_file_size() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    cmd = [sys.executable, "-m", "experiments.cli", "run", "image_fit", "--preset", "tiny"]
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    out = subprocess.run(
        [*cmd, *KILL, "--run-dir", str(run_dir)],
        env=env,
        preexec_fn=limit_file_size,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2, out.stderr  # not killed by SIGXFSZ, not a traceback
    error = [line for line in out.stderr.splitlines() if line.startswith("neurosim: error")]
    assert len(error) == 1 and "Traceback" not in out.stderr, out.stderr
    assert "File too large" in error[0] and f"--resume {run_dir}" in error[0]
    open_results(run_dir)  # still a readable results file
    resumed = resume_run(run_dir)  # space is back
    _same_run(resumed, reference)


def test_lock_waits_for_an_owner_that_is_already_exiting(tmp_path: Path) -> None:
    """A killed multi-threaded owner shows as a zombie before the kernel drops its flock.

    Reproduced by hand: child A takes the lock and forks B (which inherits the open lock), then A
    exits and stays an unreaped zombie while B holds the lock until told to go (0.3 s after the
    next acquire starts). That acquire waits for it instead of failing the resumed trial; a live
    owner is still refused at once.
    """
    import threading

    from experiments.lock import DirectoryLock

    r, w = os.pipe()
    release_r, release_w = os.pipe()
    a = os.fork()
    if a == 0:  # child A
        try:
            DirectoryLock(tmp_path).acquire()
            if os.fork() == 0:  # grandchild B keeps the inherited lock until released
                os.read(release_r, 1)
                os._exit(0)
            os.write(w, b"x")
        finally:
            os._exit(0)
    os.close(w)
    os.close(release_r)
    assert os.read(r, 1) == b"x"
    os.close(r)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # wait until A is a zombie (exited, not reaped)
        with open(f"/proc/{a}/stat") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == "Z":
                break
        time.sleep(0.01)
    else:
        pytest.fail("the lock's first owner did not exit")
    timer = threading.Timer(0.3, lambda: os.write(release_w, b"x"))
    start = time.monotonic()
    timer.start()
    lock = DirectoryLock(tmp_path)
    lock.acquire()  # waits for B to drop the lock, well inside the grace period
    waited = time.monotonic() - start
    lock.release()
    timer.join()
    os.close(release_w)
    os.waitpid(a, 0)
    assert 0.25 < waited < 9

    live = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\nfrom experiments.lock import DirectoryLock\n"
            f"DirectoryLock({str(tmp_path)!r}).acquire(); print('ok', flush=True); time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert live.stdout is not None and live.stdout.readline().strip() == "ok"
        start = time.monotonic()
        with pytest.raises(DirectoryInUseError, match=f"in use by PID {live.pid}"):
            DirectoryLock(tmp_path).acquire()
        assert time.monotonic() - start < 1
    finally:
        live.kill()
        live.wait()
