"""Golden values for ``fields_image`` and ``fields_sdf`` from independent plain-PyTorch runs.

Each test runs a tiny configuration through the experiment (runner, trainer, parameter groups,
schedules, sampling, metrics) and the same training written out here in plain PyTorch (Adam per
group with the documented betas/eps, the cosine-to-1% schedule by its formula, the batch draws,
the loss, the metric by its definition), then compares the final metrics. The learning rates
of the groups differ, so swapped group rates, a changed schedule or loss, a sampler drawn
differently, or a metric computed with the wrong sign all fail here.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data, transform, util

from experiments.families.fields_image import FieldsImage
from experiments.families.fields_sdf import FieldsSdf
from experiments.runner import make_config
from fields.encodings import default_lrs
from fields.models import build_field
from neurosim.backend import Runtime

SEED = 3
GRID = {
    "type": "hashgrid",
    "n_levels": 2,
    "n_features_per_level": 2,
    "log2_hashmap_size": 6,
    "base_resolution": 4,
    "per_level_scale": 2.0,
}
MLP = {"type": "mlp", "hidden": 8, "layers": 3}
RATES = {"encoding": 0.03, "decoder": 0.002, "cam": 0.01}


def _flow(spec: dict[str, object]) -> str:
    """A spec as a YAML flow mapping for a ``key=value`` override."""
    return "{" + ", ".join(f"{k}: {v}" for k, v in spec.items()) + "}"


def _overrides(steps: int, **extra: object) -> list[str]:
    rates = [f"optim.custom.{group}.lr={lr}" for group, lr in RATES.items()]
    return [
        "model=custom",
        f"encoding={_flow(GRID)}",
        f"decoder={_flow(MLP)}",
        f"steps={steps}",
        f"seed={SEED}",
        *rates,
        *(f"{k}={v}" for k, v in extra.items()),
    ]


def _plain_training(
    model: torch.nn.Module,
    groups: dict[str, list[torch.nn.Parameter]],
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    batch: int,
    loss_fn: str,
) -> float:
    """Adam (0.9, 0.99, eps 1e-15) per group, lr * (0.01 + 0.99 (1 + cos(pi t / T)) / 2),
    ``batch`` rows drawn with ``randint`` from a generator seeded ``SEED + 1``."""
    optimizers = {
        name: torch.optim.Adam(params, lr=RATES[name], betas=(0.9, 0.99), eps=1e-15)
        for name, params in groups.items()
    }
    sampler = torch.Generator().manual_seed(SEED + 1)
    loss = torch.zeros(())
    for step in range(steps):
        factor = 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * step / steps))
        idx = torch.randint(0, x.shape[0], (batch,), generator=sampler)
        pred = model(x[idx]).float()
        err = pred - y[idx] if loss_fn == "l2" else pred[:, 0] - y[idx]
        loss = err.pow(2).mean() if loss_fn == "l2" else err.abs().mean()
        for opt in optimizers.values():
            opt.zero_grad()
        loss.backward()
        for name, opt in optimizers.items():
            for group in opt.param_groups:
                group["lr"] = RATES[name] * factor
            opt.step()
    return float(loss.detach())


def test_image_metrics_equal_a_plain_pytorch_run(tmp_path: Path) -> None:
    steps, size, batch = 12, 16, 64
    cfg = make_config(
        "fields_image",
        _overrides(steps, image="camera", size=size, batch_size=batch, cam="{resolution: 3}"),
        "tiny",
    )
    exp = FieldsImage(cfg, Runtime.create("cpu", seed=SEED))
    exp.setup()
    last = {}
    for step in range(steps):
        last = exp.step(step)
    got = exp.evaluate()
    assert {k: last[f"lr_{k}"] for k in RATES} == pytest.approx(
        {
            k: v * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * (steps - 1) / steps)))
            for k, v in RATES.items()
        }
    )

    # the same run, written out: image, pixel centres, model, groups, training, PSNR
    image = util.img_as_float32(data.camera())[..., None]
    image = np.clip(transform.resize(image, (size, size), anti_aliasing=True), 0, 1)
    target = torch.from_numpy(image.astype(np.float32)).reshape(-1, 1)
    centres = (torch.arange(size) + 0.5) / size
    coords = torch.stack(torch.meshgrid(centres, centres, indexing="ij"), -1).reshape(-1, 2)
    model = build_field(
        2, 1, GRID, MLP, {"resolution": 3}, generator=torch.Generator().manual_seed(SEED)
    )
    enc = list(model.encoding.parameters())
    cam = list(model.decoder.cam.parameters())  # type: ignore[union-attr]
    dec = [p for p in model.parameters() if all(p is not q for q in enc + cam)]
    loss = _plain_training(
        model, {"encoding": enc, "decoder": dec, "cam": cam}, coords, target, steps, batch, "l2"
    )
    with torch.no_grad():
        pred = model(coords).clamp(0, 1)
    want_psnr = 10 * math.log10(1.0 / float((pred - target).pow(2).mean()))

    assert float(last["loss"]) == pytest.approx(loss, rel=1e-5)
    assert got["psnr"] == pytest.approx(want_psnr, abs=1e-4)
    assert got["params"] == sum(p.numel() for p in model.parameters())


def test_sdf_iou_equals_a_plain_pytorch_run_on_a_sphere() -> None:
    """The generated sphere (radius 0.4 around the cube's centre after normalisation): IoU of
    the fitted field's inside (negative SDF) with the mesh's inside, recomputed here."""
    steps, batch = 40, 128
    cfg = make_config(
        "fields_sdf",
        _overrides(
            steps,
            mesh="builtin:sphere",
            batch_size=batch,
            n_surface=512,
            n_uniform=512,
            iou_points=1500,
            mc_resolution=12,
            metric_samples=100,
        ),
        "tiny",
    )
    exp = FieldsSdf(cfg, Runtime.create("cpu", seed=SEED))
    exp.setup()
    # the data the experiment trains on, checked against the analytic sphere
    dist = (exp.points - 0.5).norm(dim=1) - 0.4
    torch.testing.assert_close(exp.sdf, dist, atol=2e-3, rtol=0)
    far = ((exp.iou_x - 0.5).norm(dim=1) - 0.4).abs() > 0.01
    assert bool((exp.inside[far] == ((exp.iou_x[far] - 0.5).norm(dim=1) < 0.4)).all())
    last = {}
    for step in range(steps):
        last = exp.step(step)
    got = exp.evaluate()

    model = build_field(3, 1, GRID, MLP, None, generator=torch.Generator().manual_seed(SEED))
    enc = list(model.encoding.parameters())
    dec = list(model.decoder.parameters())
    loss = _plain_training(
        model, {"encoding": enc, "decoder": dec}, exp.points, exp.sdf, steps, batch, "l1"
    )
    with torch.no_grad():
        pred_inside = model(exp.iou_x)[:, 0] < 0  # a signed distance is negative inside
    inter = int((pred_inside & exp.inside).sum())
    union = int((pred_inside | exp.inside).sum())

    assert float(last["loss"]) == pytest.approx(loss, rel=1e-5)
    assert got["iou"] == pytest.approx(inter / union, abs=1e-9)
    assert got["iou"] > 0.6  # learned the sphere (a flipped sign scores near 0)


def test_default_learning_rates_are_the_documented_ones() -> None:
    """The registry's rates, as docs/fields.md lists them (by hand)."""
    assert default_lrs("ffn") == {"encoding": 1e-3, "decoder": 1e-3, "cam": 1e-2}
    assert default_lrs("ffn_cam") == {"encoding": 1e-3, "decoder": 1e-3, "cam": 1e-2}
    assert default_lrs("hashgrid") == {"encoding": 1e-2, "decoder": 1e-2, "cam": 1e-1}
    assert default_lrs("neurbf") == {"encoding": 5e-3, "decoder": 1e-2, "cam": 1e-1}
    cfg = make_config("fields_sdf", ["model=neurbf"])
    assert cfg.optim.neurbf.encoding.lr == 5e-3 and cfg.optim.neurbf.decoder.lr == 1e-2  # type: ignore[attr-defined]
