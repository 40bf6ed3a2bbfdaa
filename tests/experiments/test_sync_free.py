"""A training step that does not wait for the device.

The trainer returns the step's loss and metrics as device tensors and records a non-finite loss
on the device; the record is read (one host sync) every step on the CPU, and only when the
runner logs, checkpoints or finishes on an accelerator. Deferred reading must still name the
exact first step and must never log or checkpoint a non-finite value. On CUDA a whole step of
``image_fit`` and ``snn_mnist`` runs under ``torch.cuda.set_sync_debug_mode("error")``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from experiments.checkpoint import list_checkpoints
from experiments.distributed import reduce_mean
from experiments.families.image_fit import ImageFit
from experiments.registry import get_experiment
from experiments.results import open_results
from experiments.runner import make_config, run_experiment
from experiments.trainer import DivergedError, OptimConfig, Trainer
from neurosim.backend import Runtime


def test_deferred_check_names_the_exact_first_step() -> None:
    model = nn.Linear(2, 1)
    trainer = Trainer(
        model,
        {"m": (model.parameters(), OptimConfig(optimizer="sgd", lr=0.1))},
        Runtime.create("cpu", seed=0),
        total_steps=8,
    )
    trainer.check_each_step = False  # as on an accelerator
    x = torch.ones(4, 2)
    losses = []
    for step in range(8):
        scale = math.inf if step == 5 else 1.0  # step 5's loss is infinite, later ones NaN
        metrics = trainer.train_step(step, lambda micro, s=scale: model(x).pow(2).mean() * s)
        assert isinstance(metrics["loss"], torch.Tensor)  # not read back during the step
        losses.append(float(metrics["loss"]))
    assert all(math.isfinite(v) for v in losses[:5]) and not math.isfinite(losses[5])
    with pytest.raises(DivergedError, match=r"step 5: loss is inf"):
        trainer.raise_if_diverged()


@pytest.fixture
def deferred(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every trainer built in the test reads its finiteness record only when asked."""
    original = Trainer.__init__

    def init(self: Trainer, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.check_each_step = False

    monkeypatch.setattr(Trainer, "__init__", init)
    yield


def _diverging(tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> tuple[int, Path]:
    """image_fit tiny whose loss turns NaN at step 13 (logged: 4, 9, 14; checkpoint: 10)."""
    original = ImageFit.loss

    def poisoned(self: ImageFit, micro: int) -> torch.Tensor:
        loss = original(self, micro)
        assert self.trainer is not None
        return loss * float("nan") if self.trainer.steps_done == 13 else loss

    monkeypatch.setattr(ImageFit, "loss", poisoned)
    overrides = ["log_every=5", "checkpoint_every=10", "device=cpu"]
    with pytest.raises(DivergedError):
        run_experiment("image_fit", overrides, run_dir=tmp_path / name, preset="tiny")
    results = open_results(tmp_path / name)
    assert results.status == "diverged"
    return int(results.attrs["status_step"]), tmp_path / name


def test_the_runner_marks_the_same_step_when_the_check_is_deferred(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    assert _diverging(tmp_path, "eager", monkeypatch)[0] == 13
    request.getfixturevalue("deferred")
    step, run_dir = _diverging(tmp_path, "deferred", monkeypatch)
    assert step == 13  # read at the next logged step (14), yet the exact step
    results = open_results(run_dir)
    steps, values = results.metric("loss")
    assert list(steps) == [4, 9] and np.isfinite(values).all()  # step 14's NaN not logged
    (checkpoint,) = list_checkpoints(run_dir)  # step 10's; none written after step 13
    state = torch.load(checkpoint, weights_only=True)
    assert state["step"] == 10
    assert all(torch.isfinite(v).all() for v in state["experiment"]["model"].values())


@pytest.mark.gpu
@pytest.mark.parametrize(
    ("name", "overrides"),
    [("image_fit", ["batch_size=256"]), ("snn_mnist", ["encoding=direct", "max_shift=2"])],
)
def test_a_cuda_training_step_does_not_sync(name: str, overrides: list[str]) -> None:
    config = make_config(name, [*overrides, "device=cuda"], "tiny")
    experiment = get_experiment(name)(config, Runtime.create("cuda", seed=0))
    experiment.setup()
    experiment.step(0)  # first call: cuBLAS handles, allocator growth, lazy initialisation
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        metrics = [experiment.step(step) for step in (1, 2)]
    finally:
        torch.cuda.set_sync_debug_mode("default")
    values = reduce_mean(metrics[-1])  # reading them afterwards is the runner's one sync
    assert all(math.isfinite(v) for v in values.values()) and values["loss"] > 0
    assert experiment.trainer is not None
    experiment.trainer.raise_if_diverged()  # nothing recorded
