"""The shared trainer: schedules, gradient transforms, accumulation, divergence, state."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from experiments.cli import main
from experiments.results import open_results
from experiments.trainer import (
    CallbackLocation,
    DivergedError,
    OptimConfig,
    Trainer,
    TrainerConfig,
    lr_factor,
)
from neurosim.backend import InputError, Runtime, apply_grad_transforms, register_grad_transform


def _runtime() -> Runtime:
    return Runtime.create("cpu", "fp32", seed=0)


def test_schedules_match_hand_computed_values() -> None:
    # cosine with warm-up 2 over 6 steps: warm-up (s+1)/2, then 0.5(1+cos(pi*(s-2)/4))
    cos = OptimConfig(schedule="cosine", warmup_steps=2)
    expected = [
        0.5,
        1.0,
        1.0,
        0.5 * (1 + math.cos(math.pi / 4)),
        0.5,
        0.5 * (1 - math.cos(math.pi / 4)),
    ]
    assert [lr_factor(cos, s, 6) for s in range(6)] == pytest.approx(expected)
    floor = OptimConfig(schedule="cosine", min_lr_ratio=0.01)
    assert lr_factor(floor, 10, 10) == pytest.approx(0.01)
    step = OptimConfig(schedule="step", step_size=3, gamma=0.5)
    assert [lr_factor(step, s, 10) for s in (0, 2, 3, 5, 6, 9)] == [1, 1, 0.5, 0.5, 0.25, 0.125]
    exp = OptimConfig(schedule="exponential", step_size=10, gamma=0.1)
    assert lr_factor(exp, 5, 100) == pytest.approx(0.1**0.5)
    assert lr_factor(OptimConfig(), 123, 200) == 1.0


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"lr": -1.0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"lr": float("inf")}, "lr"),
        ({"lr": 0.0}, "lr"),
        ({"weight_decay": -0.1}, "weight_decay"),
        ({"betas": (0.9, 1.0)}, "betas"),
        ({"momentum": 1.5}, "momentum"),
        ({"gamma": 0.0}, "gamma"),
        ({"warmup_steps": -1}, "warmup_steps"),
        ({"nesterov": True}, "nesterov"),
    ],
)
def test_impossible_optimizer_values_are_refused(kwargs: dict[str, object], key: str) -> None:
    with pytest.raises(InputError, match=key):
        OptimConfig(**kwargs)  # type: ignore[arg-type]


def test_projection_hook_keeps_outputs_on_protected_inputs_to_first_order() -> None:
    torch.manual_seed(0)
    layer = nn.Linear(8, 5, bias=False)
    protected = torch.randn(3, 8)  # inputs whose outputs must not change
    other = torch.randn(4, 8)
    # orthonormal basis of span(protected) from a QR decomposition (independent of the code)
    q, _ = torch.linalg.qr(protected.T)
    projector = torch.eye(8) - q @ q.T
    register_grad_transform(layer, lambda m, n, g: g @ projector, params=["weight"])
    trainer = Trainer(
        layer,
        {"w": (layer.parameters(), OptimConfig(optimizer="sgd", lr=0.5))},
        _runtime(),
        total_steps=3,
    )
    before_p, before_o = layer(protected).detach(), layer(other).detach()
    data = torch.randn(16, 8)
    for step in range(3):
        trainer.train_step(step, lambda micro: (layer(data) - 1.0).pow(2).mean())
    assert torch.allclose(layer(protected), before_p, atol=1e-5)
    assert (layer(other) - before_o).abs().max() > 1e-2  # it did learn elsewhere


def test_transform_runs_after_backward_callbacks_and_in_plain_pytorch() -> None:
    layer = nn.Linear(2, 1)
    order: list[str] = []

    def halve(module: nn.Module, name: str, grad: torch.Tensor) -> torch.Tensor:
        order.append(f"transform:{name}")
        return grad * 0.5

    handle = register_grad_transform(layer, halve)
    layer(torch.ones(1, 2)).sum().backward()
    raw = layer.weight.grad.clone()
    assert apply_grad_transforms(layer) == 2
    assert torch.equal(layer.weight.grad, raw * 0.5)
    handle.remove()
    assert apply_grad_transforms(layer) == 0

    register_grad_transform(layer, halve, params=["weight"])
    trainer = Trainer(
        layer, {"all": (layer.parameters(), OptimConfig())}, _runtime(), total_steps=1
    )
    trainer.add_callback(CallbackLocation.AFTER_BACKWARD, lambda s: order.append("callback"))
    order.clear()
    trainer.train_step(0, lambda micro: layer(torch.ones(1, 2)).sum())
    assert order == ["callback", "transform:weight"]


def test_transform_errors_name_the_parameter() -> None:
    layer = nn.Linear(2, 1)
    with pytest.raises(InputError, match="no direct parameter"):
        register_grad_transform(layer, lambda m, n, g: g, params=["weights"])
    register_grad_transform(layer, lambda m, n, g: g[:0], params=["weight"])
    layer(torch.ones(1, 2)).sum().backward()
    with pytest.raises(InputError, match=r"Linear\.weight"):
        apply_grad_transforms(layer)


def test_accumulation_equals_one_large_batch() -> None:
    data = torch.randn(8, 3)
    target = torch.randn(8, 1)

    def run(accumulate: int) -> torch.Tensor:
        torch.manual_seed(1)
        model = nn.Linear(3, 1)
        trainer = Trainer(
            model,
            {"m": (model.parameters(), OptimConfig(optimizer="sgd", lr=0.1, momentum=0.5))},
            _runtime(),
            total_steps=4,
            config=TrainerConfig(accumulate=accumulate),
        )
        size = 8 // accumulate
        for step in range(4):
            trainer.train_step(
                step,
                lambda micro: nn.functional.mse_loss(
                    model(data[micro * size : (micro + 1) * size]),
                    target[micro * size : (micro + 1) * size],
                ),
            )
        return model.weight.detach().clone()

    assert torch.allclose(run(1), run(2), atol=1e-6)
    assert torch.allclose(run(1), run(4), atol=1e-6)


def test_groups_get_their_own_rates_and_every_parameter_is_in_one() -> None:
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    with pytest.raises(InputError, match="in no parameter group"):
        Trainer(model, {"a": (model[0].parameters(), OptimConfig())}, _runtime(), total_steps=1)
    trainer = Trainer(
        model,
        {
            "a": (model[0].parameters(), OptimConfig(lr=1e-2, schedule="cosine")),
            "b": (model[1].parameters(), OptimConfig(lr=1e-3)),
        },
        _runtime(),
        total_steps=2,
    )
    metrics = trainer.train_step(0, lambda micro: model(torch.ones(1, 2)).sum())
    assert metrics["lr_a"] == pytest.approx(1e-2) and metrics["lr_b"] == pytest.approx(1e-3)
    assert trainer.lr("a") == pytest.approx(1e-2 * 0.5)  # half-way through the cosine


def test_non_finite_loss_stops_with_the_step() -> None:
    model = nn.Linear(2, 1)
    trainer = Trainer(model, {"m": (model.parameters(), OptimConfig())}, _runtime(), total_steps=5)
    with pytest.raises(DivergedError, match="step 3"):
        trainer.train_step(3, lambda micro: model(torch.ones(1, 2)).sum() * float("nan"))


def test_state_round_trip_continues_identically() -> None:
    def make() -> tuple[nn.Module, Trainer]:
        torch.manual_seed(0)
        model = nn.Linear(4, 1)
        cfg = OptimConfig(lr=1e-2, schedule="cosine", warmup_steps=2)
        return model, Trainer(model, {"m": (model.parameters(), cfg)}, _runtime(), total_steps=6)

    data = torch.randn(5, 4)
    model_a, a = make()
    for s in range(6):
        a.train_step(s, lambda micro: model_a(data).pow(2).mean())
    model_b, b = make()
    for s in range(3):
        b.train_step(s, lambda micro: model_b(data).pow(2).mean())
    state, weights = b.state_dict(), {k: v.clone() for k, v in model_b.state_dict().items()}
    model_c, c = make()
    model_c.load_state_dict(weights)
    c.load_state_dict(state)
    for s in range(3, 6):
        c.train_step(s, lambda micro: model_c(data).pow(2).mean())
    assert torch.equal(model_a.weight, model_c.weight)


def test_fp16_uses_a_gradient_scaler() -> None:
    runtime = Runtime.create("cpu", "fp16", seed=0)
    model = nn.Linear(4, 1)
    trainer = Trainer(model, {"m": (model.parameters(), OptimConfig())}, runtime, total_steps=1)
    assert trainer.scaler.is_enabled()
    before = model.weight.detach().clone()
    for step in range(5):  # an overflowing first step is skipped and the scale lowered
        trainer.train_step(step, lambda micro: model(torch.ones(2, 4)).float().pow(2).mean())
    assert not torch.equal(before, model.weight)
    assert trainer.state_dict()["scaler"]["scale"] > 0


def test_a_diverging_run_is_marked_and_exits_non_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["run", "image_fit", "--preset", "tiny", "optim.lr=1e12", "--run-dir", str(tmp_path / "r")]
    )
    assert code != 0
    assert "diverged at step" in capsys.readouterr().err
    results = open_results(tmp_path / "r")
    assert results.status == "diverged"
    assert results.attrs["status_step"] >= 0
