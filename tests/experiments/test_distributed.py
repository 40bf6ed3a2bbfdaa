"""Data-parallel training on the CPU with 2 gloo processes (``neurosim run --nproc 2``).

Two spawned jobs serve every assertion (starting processes is the costly part):

* ``image_fit`` tiny from scratch on 2 ranks, compared with the same run on 1 process (same
  global batch of 256 pixels per step), then resumed 2 -> 1 from its mid-run checkpoint;
* ``snn_mnist`` tiny on 1 process, resumed 1 -> 2 from its mid-run checkpoint.

Tolerance. With the global batch split over 2 ranks, each rank's loss is the mean over its half
and DDP averages the two gradients: mathematically the gradient of the global mean, but summed in
another order, so every step differs from the 1-process step by float32 rounding (~1e-7
relative). Adam over 60 steps of a smooth MSE problem carries such differences forward without
amplifying them much (measured on this CPU: logged losses within 1.2e-7 relative, final PSNR
equal, SSIM 6e-8 apart), so PSNR is compared to 1e-3 dB, SSIM to 1e-4 and the logged losses to
1e-4 relative: three orders of magnitude of room for another BLAS or CPU, and still far below
what ranks drawing different global batches, or both training on the same half, would change.
A spiking network thresholds its membranes, so one rounding difference can flip a spike; its
held-out accuracy may then move by a digit or two of 200 (measured: unchanged, loss 8e-8 apart),
and its loss is compared to 1 %.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from experiments import distributed
from experiments.checkpoint import list_checkpoints
from experiments.cli import main
from experiments.results import open_results
from experiments.runner import RunResult, resume_run, run_experiment
from neurosim.backend import InputError

IMAGE = ["batch_size=256", "checkpoint_every=20", "device=cpu"]  # 60 steps: checkpoints 20, 40
MNIST = ["checkpoint_every=20", "device=cpu"]  # 40 steps: checkpoint 20


def _as_crashed_after_first_checkpoint(run: Path, copy: Path) -> Path:
    """A copy of a finished run as a crash after its first checkpoint would leave it."""
    shutil.copytree(run, copy)
    for path in list_checkpoints(copy)[1:]:
        path.unlink()
    with h5py.File(copy / "results.h5", "r+") as handle:
        handle.attrs["status"] = "running"
    return copy


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("ddp")
    image_ref = run_experiment("image_fit", IMAGE, root / "image_ref", "tiny")
    mnist_ref = run_experiment("snn_mnist", MNIST, root / "mnist_ref", "tiny")
    mnist_crashed = _as_crashed_after_first_checkpoint(mnist_ref.run_dir, root / "mnist_1to2")
    code_2 = main(
        [
            "run",
            "image_fit",
            "--preset",
            "tiny",
            *IMAGE,
            "--runs-dir",
            str(root / "2"),
            "--nproc",
            "2",
        ]
    )
    code_1to2 = main(["run", "--resume", str(mnist_crashed), "--nproc", "2"])
    return {
        "root": root,
        "image_ref": image_ref,
        "mnist_ref": mnist_ref,
        "code_2": code_2,
        "code_1to2": code_1to2,
        "mnist_1to2": mnist_crashed,
    }


def test_two_ranks_match_one_process_with_the_same_global_batch(runs: dict[str, object]) -> None:
    assert runs["code_2"] == 0
    ref = runs["image_ref"]
    assert isinstance(ref, RunResult)
    root = runs["root"]
    assert isinstance(root, Path)
    (run_dir,) = (root / "2" / "image_fit").iterdir()  # one directory: rank 0's, shared
    two = open_results(run_dir)
    assert two.status == "finished"
    assert two.attrs["environment"]["world_size"] == 2
    assert two.summary["psnr"] == pytest.approx(ref.metrics["psnr"], abs=1e-3)
    assert two.summary["ssim"] == pytest.approx(ref.metrics["ssim"], abs=1e-4)
    one = open_results(ref.run_dir)
    steps_1, loss_1 = one.metric("loss")
    steps_2, loss_2 = two.metric("loss")  # the mean over both ranks' halves = the global mean
    assert np.array_equal(steps_1, steps_2)
    np.testing.assert_allclose(loss_2, loss_1, rtol=1e-4)
    assert loss_2[-1] < 0.5 * loss_2[0]  # and it trained
    assert [p.name for p in list_checkpoints(run_dir)] == ["step_000000040.pt", "step_000000060.pt"]


def test_checkpoint_of_two_ranks_resumes_on_one(runs: dict[str, object], tmp_path: Path) -> None:
    root = runs["root"]
    assert isinstance(root, Path)
    (run_dir,) = (root / "2" / "image_fit").iterdir()
    crashed = _as_crashed_after_first_checkpoint(run_dir, tmp_path / "2to1")
    state = torch.load(list_checkpoints(crashed)[0], weights_only=True)
    assert not any(k.startswith("module.") for k in state["experiment"]["model"])  # unwrapped
    resumed = resume_run(crashed)
    ref = runs["image_ref"]
    assert isinstance(ref, RunResult)
    assert resumed.metrics["psnr"] == pytest.approx(ref.metrics["psnr"], abs=1e-3)
    steps, _ = open_results(crashed).metric("loss")
    assert list(steps) == list(range(4, 60, 5))  # the steps after the checkpoint logged once


def test_checkpoint_of_one_process_resumes_on_two(runs: dict[str, object]) -> None:
    assert runs["code_1to2"] == 0
    ref = runs["mnist_ref"]
    assert isinstance(ref, RunResult)
    run_dir = runs["mnist_1to2"]
    assert isinstance(run_dir, Path)
    resumed = open_results(run_dir)
    assert resumed.status == "finished"
    assert resumed.attrs["environment"]["world_size"] == 2
    assert abs(resumed.summary["holdout_accuracy"] - ref.metrics["holdout_accuracy"]) <= 2 / 200
    assert resumed.summary["holdout_loss"] == pytest.approx(ref.metrics["holdout_loss"], rel=1e-2)
    assert [p.name for p in list_checkpoints(run_dir)] == [
        "step_000000020.pt",
        "step_000000040.pt",
    ]


def test_nproc_is_refused_for_an_experiment_without_ddp_support(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["run", "fields_image", "--preset", "tiny", "--runs-dir", str(tmp_path), "--nproc", "2"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "does not support data-parallel training" in err
    assert not any(tmp_path.iterdir())


def test_under_torchrun_variables_the_cli_joins_the_group_and_refuses_nproc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1"}
    for key, value in {**env, "MASTER_PORT": str(distributed.free_port())}.items():
        monkeypatch.setenv(key, value)
    code = main(
        ["run", "image_fit", "--preset", "tiny", "--runs-dir", str(tmp_path), "--nproc", "2"]
    )
    assert code == 2 and "under torchrun" in capsys.readouterr().err
    joined: list[str] = []
    monkeypatch.setattr(
        torch.distributed,
        "init_process_group",
        _recording(torch.distributed.init_process_group, joined),
    )
    code = main(["run", "image_fit", "--preset", "tiny", "steps=3", "--runs-dir", str(tmp_path)])
    assert code == 0 and joined == ["gloo"]
    assert not torch.distributed.is_initialized()  # left again at the end


def _recording(init: object, calls: list[str]) -> object:
    def record(*args: object, **kwargs: object) -> None:
        calls.append(str(kwargs.get("backend")))
        init(*args, **kwargs)  # type: ignore[operator]

    return record


def test_shard_keeps_this_ranks_contiguous_part(monkeypatch: pytest.MonkeyPatch) -> None:
    batch = torch.arange(12).reshape(6, 2)
    assert torch.equal(distributed.shard(batch), batch)  # one process: the identity
    assert distributed.reduce_mean({"a": torch.tensor(2.0), "b": 3}) == {"a": 2.0, "b": 3.0}
    monkeypatch.setattr(distributed, "world_size", lambda: 3)
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    assert distributed.shard(batch).tolist() == [[4, 5], [6, 7]]  # rows 2, 3 of 0..5
    with pytest.raises(InputError, match="does not divide over 3 ranks"):
        distributed.shard(batch, dim=1)
