"""One trainer for every gradient-trained experiment.

A family builds its model and names its parameter groups; the :class:`Trainer` owns the rest of
an optimisation step::

    zero_grad -> for each micro-batch: forward (autocast) + backward (fp16: scaled)
              -> [data-parallel all-reduce, done by DDP inside backward]
              -> fp16: unscale -> callbacks AFTER_BACKWARD -> gradient transforms
              -> clip -> optimizer.step per group -> schedules -> AFTER_STEP

(the loss's finiteness is recorded on the device after the backward; see
:attr:`TrainerConfig.check_finite` for when it is read)

Usage inside an experiment (see ``experiments/families/image_fit.py``)::

    self.trainer = Trainer(
        self.model,
        {"encoding": (enc.parameters(), cfg.optim.encoding),
         "decoder": (dec.parameters(), cfg.optim.decoder)},
        self.runtime, total_steps=cfg.steps, config=cfg.trainer)
    ...
    def step(self, step):
        return self.trainer.train_step(step, self.loss)   # self.loss(micro) -> loss or (loss, metrics)

The runner saves ``trainer.state_dict()`` (optimizers, schedules, scaler) with every checkpoint
of an experiment that has a ``trainer`` attribute, and restores it on resume; it turns
:class:`DivergedError` into a run marked ``diverged`` with a non-zero exit.

Each group's :class:`OptimConfig` is a config section with its real defaults, so
``neurosim config`` shows the learning rates that will run and overrides such as
``optim.decoder.lr=3e-3`` or ``optim.decoder.schedule=cosine`` change them.

Gradient transforms (:mod:`neurosim.backend.grad`) registered on the model's modules run after
the AFTER_BACKWARD callbacks and before clipping, so a projection (HLOP) or a mask acts on the
all-reduced, unscaled gradient that the optimizer will use.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

import torch
from torch import nn

from experiments.config import Checked, ConfigRangeError, bounded, check_config, one_of
from neurosim.backend import InputError, NeurosimError, Runtime, apply_grad_transforms

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "cosine", "step", "exponential")


class DivergedError(NeurosimError, RuntimeError):
    """Training produced a non-finite loss; ``step`` is the step where it was first seen."""

    def __init__(self, step: int, detail: str) -> None:
        super().__init__(f"training diverged at step {step}: {detail}")
        self.step = step
        self.detail = detail


@dataclass
class OptimConfig(Checked):
    """Optimizer and learning-rate schedule of one parameter group.

    Attributes:
        optimizer: ``adam``, ``adamw`` or ``sgd``.
        lr: peak learning rate (after warm-up).
        weight_decay: L2 penalty (``adam``, ``sgd``) or decoupled decay (``adamw``).
        betas: Adam's moment decays.
        eps: Adam's denominator epsilon.
        momentum: SGD momentum.
        nesterov: SGD Nesterov momentum.
        schedule: ``constant``; ``cosine`` (from ``lr`` to ``lr * min_lr_ratio`` at the last
            step); ``step`` (times ``gamma`` every ``step_size`` steps); ``exponential``
            (``lr * gamma ** (step / step_size)``).
        warmup_steps: linear warm-up over this many steps first (``lr * (step + 1) / warmup``).
        min_lr_ratio: floor of the cosine schedule, as a fraction of ``lr``.
        step_size: steps per decay of ``step`` and ``exponential``.
        gamma: decay factor of ``step`` and ``exponential``.
    """

    optimizer: Literal["adam", "adamw", "sgd"] = one_of("adam", OPTIMIZERS)
    lr: float = bounded(1e-3, gt=0)
    weight_decay: float = bounded(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = bounded(1e-8, gt=0)
    momentum: float = bounded(0.0, ge=0, lt=1)
    nesterov: bool = False
    schedule: Literal["constant", "cosine", "step", "exponential"] = one_of("constant", SCHEDULES)
    warmup_steps: int = bounded(0, ge=0)
    min_lr_ratio: float = bounded(0.0, ge=0, le=1)
    step_size: int = bounded(1000, ge=1)
    gamma: float = bounded(0.1, gt=0, le=1)

    def validate(self) -> None:
        """Cross-field checks: two Adam betas in [0, 1); Nesterov only for SGD with momentum."""
        if len(self.betas) != 2 or not all(
            isinstance(b, (int, float)) and 0 <= b < 1 for b in self.betas
        ):
            raise ConfigRangeError("betas", self.betas, "two numbers in [0, 1)")
        if self.nesterov and (self.optimizer != "sgd" or self.momentum <= 0):
            raise ConfigRangeError(
                "nesterov", self.nesterov, "false unless optimizer=sgd with momentum > 0"
            )


def validate_optim(cfg: OptimConfig, where: str = "optim") -> None:
    """Check an :class:`OptimConfig` again (it may have been changed after construction);
    raises :class:`~experiments.config.ConfigRangeError` naming the key under ``where``."""
    try:
        check_config(cfg)
    except ConfigRangeError as exc:
        raise exc.prefixed(f"{where}.") from None


@dataclass
class TrainerConfig(Checked):
    """How the trainer steps (shared by every gradient-trained family).

    Attributes:
        grad_clip: clip the global gradient norm of all groups to this value (0 = off).
        accumulate: micro-batches whose gradients are summed into one optimizer step; the
            family's loss function is called once per micro-batch with its index.
        check_finite: stop with :class:`DivergedError` when the loss is NaN or infinite. The
            test itself is a device operation that records the first such step; it is read
            (a host sync) by :meth:`Trainer.raise_if_diverged`: after every step on the CPU
            (where reading costs nothing, so the optimizer never steps on a non-finite loss),
            and on an accelerator when the runner logs, checkpoints or finishes (so a step
            never waits for the device). Either way the error names the exact first step.
    """

    grad_clip: float = bounded(0.0, ge=0)
    accumulate: int = bounded(1, ge=1)
    check_finite: bool = True


def lr_factor(cfg: OptimConfig, step: int, total_steps: int) -> float:
    """Multiplier of ``cfg.lr`` at optimizer step ``step`` (0-based) of ``total_steps``.

    Examples:
        >>> cfg = OptimConfig(schedule="cosine", warmup_steps=2, min_lr_ratio=0.0)
        >>> [round(lr_factor(cfg, s, 6), 3) for s in range(6)]
        [0.5, 1.0, 1.0, 0.854, 0.5, 0.146]
    """
    warm = cfg.warmup_steps
    if step < warm:
        return (step + 1) / warm
    if cfg.schedule == "constant":
        return 1.0
    if cfg.schedule == "cosine":
        progress = min(1.0, (step - warm) / max(1, total_steps - warm))
        floor = cfg.min_lr_ratio
        return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
    if cfg.schedule == "step":
        return float(cfg.gamma ** ((step - warm) // cfg.step_size))
    return float(cfg.gamma ** ((step - warm) / cfg.step_size))


def build_optimizer(params: Iterable[nn.Parameter], cfg: OptimConfig) -> torch.optim.Optimizer:
    """The torch optimizer an :class:`OptimConfig` describes."""
    params = list(params)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params,
            lr=cfg.lr,
            momentum=cfg.momentum,
            nesterov=cfg.nesterov,
            weight_decay=cfg.weight_decay,
        )
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(params, lr=cfg.lr, betas=cfg.betas, eps=cfg.eps, weight_decay=cfg.weight_decay)


class CallbackLocation(str, Enum):
    """Where in training a callback runs."""

    BEFORE_STEP = "before_step"
    """Before the forward pass of a training step."""
    AFTER_BACKWARD = "after_backward"
    """Gradients are final (all-reduced, unscaled); before gradient transforms and the step."""
    AFTER_STEP = "after_step"
    """After the optimizer and schedule steps."""
    END_OF_EPOCH = "end_of_epoch"
    END_OF_TASK = "end_of_task"
    EVAL = "eval"


@dataclass
class TrainingCallback:
    """``fn(step)`` run at ``location`` every ``every`` steps (for step-bound locations)."""

    location: CallbackLocation
    fn: Callable[[int], None]
    every: int = 1


LossOutput = torch.Tensor | tuple[torch.Tensor, Mapping[str, Any]]


@dataclass
class _Group:
    name: str
    params: list[nn.Parameter]
    config: OptimConfig
    optimizer: torch.optim.Optimizer = field(repr=False)


class Trainer:
    """Owns the optimisation step of a model (see the module docstring).

    Args:
        model: the module being trained. With ``torch.distributed`` initialised and more than
            one rank, it is wrapped in ``DistributedDataParallel`` (``trainer.model``); the
            unwrapped module stays ``trainer.module``.
        groups: ``name -> (parameters, OptimConfig)``; every trainable parameter of ``model``
            must be in exactly one group, so none is silently left untrained.
        runtime: device and precision (autocast; fp16 adds a gradient scaler).
        total_steps: optimizer steps of the whole run (for the schedules).
        config: :class:`TrainerConfig` (clipping, accumulation, divergence check).
        callbacks: :class:`TrainingCallback` s.
        ddp: wrap in DistributedDataParallel; ``None`` = when a process group with more than
            one rank exists.
    """

    def __init__(
        self,
        model: nn.Module,
        groups: Mapping[str, tuple[Iterable[nn.Parameter], OptimConfig]],
        runtime: Runtime,
        *,
        total_steps: int,
        config: TrainerConfig | None = None,
        callbacks: Sequence[TrainingCallback] = (),
        ddp: bool | None = None,
    ) -> None:
        if total_steps < 1:
            raise InputError(f"total_steps must be >= 1, got {total_steps}")
        if not groups:
            raise InputError("Trainer needs at least one parameter group")
        self.runtime = runtime
        self.config = config or TrainerConfig()
        self.total_steps = total_steps
        self.module = model
        self.groups: dict[str, _Group] = {}
        seen: dict[int, str] = {}
        for name, (params, cfg) in groups.items():
            validate_optim(cfg, f"optim.{name}")
            plist = [p for p in params if p.requires_grad]
            for p in plist:
                if id(p) in seen:
                    raise InputError(f"a parameter is in both groups {seen[id(p)]!r} and {name!r}")
                seen[id(p)] = name
            if not plist:
                raise InputError(f"parameter group {name!r} has no trainable parameters")
            self.groups[name] = _Group(name, plist, cfg, build_optimizer(plist, cfg))
        stray = [n for n, p in model.named_parameters() if p.requires_grad and id(p) not in seen]
        if stray:
            raise InputError(
                f"trainable parameters {stray[:5]}{'...' if len(stray) > 5 else ''} are in no "
                f"parameter group (groups: {list(self.groups)}); add them or set requires_grad=False"
            )
        self.callbacks: list[TrainingCallback] = list(callbacks)
        self.scaler = torch.amp.GradScaler(runtime.device.type, enabled=runtime.precision == "fp16")
        self.steps_done = 0
        self._first_bad: torch.Tensor | None = None  # first non-finite step, -1: none (device)
        self._bad_loss: torch.Tensor | None = None
        self.check_each_step = runtime.device.type == "cpu"
        """Read the finiteness record after every step (default: on the CPU, where reading costs
        nothing); otherwise it is read by :meth:`raise_if_diverged` (the runner calls it when it
        logs, checkpoints and finishes)."""
        self.model: nn.Module = model
        from experiments import distributed

        if ddp is None:
            ddp = distributed.world_size() > 1
        if ddp:
            self.model = distributed.wrap_ddp(model, runtime.device)

    # -- callbacks ---------------------------------------------------------------------------
    def add_callback(
        self, location: CallbackLocation | str, fn: Callable[[int], None], every: int = 1
    ) -> TrainingCallback:
        """Register ``fn(step)`` at ``location``; returns the callback."""
        callback = TrainingCallback(CallbackLocation(location), fn, every)
        self.callbacks.append(callback)
        return callback

    def run_callbacks(self, location: CallbackLocation | str, step: int) -> None:
        """Run the callbacks of ``location`` (families call END_OF_EPOCH/TASK and EVAL)."""
        location = CallbackLocation(location)
        for callback in self.callbacks:
            if callback.location == location and step % max(callback.every, 1) == 0:
                callback.fn(step)

    # -- the step ----------------------------------------------------------------------------
    def lr(self, group: str) -> float:
        """The learning rate group ``group`` uses at the next step."""
        g = self.groups[group]
        return g.config.lr * lr_factor(g.config, self.steps_done, self.total_steps)

    def zero_grad(self) -> None:
        for g in self.groups.values():
            g.optimizer.zero_grad(set_to_none=True)

    def _parameters(self) -> list[nn.Parameter]:
        return [p for g in self.groups.values() for p in g.params]

    def train_step(
        self, step: int, compute_loss: Callable[[int], LossOutput]
    ) -> dict[str, torch.Tensor | float]:
        """One optimizer step; ``compute_loss(micro)`` returns a loss or ``(loss, metrics)``.

        ``compute_loss`` is called ``config.accumulate`` times (``micro = 0, 1, ...``) under the
        runtime's autocast; each loss is divided by ``accumulate`` before its backward, so the
        summed gradient is the mean over micro-batches. Returns ``{"loss": mean loss, **metrics
        of the last micro-batch, "lr_<group>": rate used}``: the loss and the family's metrics
        as detached 0-dim tensors on the device (``float(m["loss"])`` reads one; the runner
        reads them only on logged steps, all at once), the rates as Python floats. Nothing in a
        step forces a host-device sync on an accelerator with fp32/bf16 (fp16's gradient scaler
        reads its overflow flag).

        Raises:
            DivergedError: the loss was NaN or infinite (when ``config.check_finite``; on the
                CPU at once, elsewhere at the next :meth:`raise_if_diverged`).
        """
        self.run_callbacks(CallbackLocation.BEFORE_STEP, step)
        self.zero_grad()
        accumulate = self.config.accumulate
        total = torch.zeros((), device=self.runtime.device)
        extra: dict[str, Any] = {}
        for micro in range(accumulate):
            last = micro == accumulate - 1
            no_sync = getattr(self.model, "no_sync", None)
            context = no_sync() if (no_sync is not None and not last) else contextlib.nullcontext()
            with context:
                with self.runtime.autocast():
                    out = compute_loss(micro)
                loss, metrics = (out, {}) if isinstance(out, torch.Tensor) else out
                if loss.dim() != 0:
                    raise InputError(
                        f"the loss must be a scalar tensor, got shape {tuple(loss.shape)}"
                    )
                self.scaler.scale(loss.float() / accumulate).backward()
            total = total + loss.detach().float()
            extra = dict(metrics)
        mean_loss = total / accumulate
        if self.config.check_finite:
            self._record_finite(step, mean_loss)
            if self.check_each_step:
                self.raise_if_diverged()
        for g in self.groups.values():
            self.scaler.unscale_(g.optimizer)
        self.run_callbacks(CallbackLocation.AFTER_BACKWARD, step)
        apply_grad_transforms(self.module)
        if self.config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self._parameters(), self.config.grad_clip)
        rates: dict[str, float] = {}
        for g in self.groups.values():
            rate = g.config.lr * lr_factor(g.config, self.steps_done, self.total_steps)
            for pg in g.optimizer.param_groups:
                pg["lr"] = rate
            rates[f"lr_{g.name}"] = rate
            self.scaler.step(g.optimizer)
        self.scaler.update()
        self.steps_done += 1
        self.run_callbacks(CallbackLocation.AFTER_STEP, step)
        result: dict[str, torch.Tensor | float] = {"loss": mean_loss}
        for key, value in extra.items():
            result[key] = value.detach() if isinstance(value, torch.Tensor) else float(value)
        result.update(rates)
        return result

    # -- divergence --------------------------------------------------------------------------
    def _record_finite(self, step: int, loss: torch.Tensor) -> None:
        """Remember the first step whose loss is not finite (device operations only)."""
        if self._first_bad is None:
            self._first_bad = torch.full((), -1, dtype=torch.int64, device=loss.device)
            self._bad_loss = torch.zeros((), dtype=torch.float32, device=loss.device)
        new = (~torch.isfinite(loss)) & (self._first_bad < 0)
        self._first_bad = torch.where(new, step, self._first_bad)
        assert self._bad_loss is not None
        self._bad_loss = torch.where(new, loss.float(), self._bad_loss)

    def raise_if_diverged(self) -> None:
        """Raise :class:`DivergedError` naming the first step whose loss was not finite.

        One host sync; with several data-parallel ranks a collective (every rank must call it
        at the same point, and every rank raises with the earliest step of any rank).
        """
        if self._first_bad is None:
            return
        from experiments import distributed

        if distributed.world_size() > 1:
            never = torch.iinfo(torch.int64).max
            first = torch.where(self._first_bad < 0, never, self._first_bad)
            torch.distributed.all_reduce(first, op=torch.distributed.ReduceOp.MIN)
            step = int(first)
            if step != never:
                raise DivergedError(step, "the loss is not finite (on at least one rank)")
            return
        step = int(self._first_bad)
        if step >= 0:
            assert self._bad_loss is not None
            raise DivergedError(step, f"loss is {float(self._bad_loss)}")

    # -- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Optimizer states per group, the step counter and the fp16 scaler."""
        return {
            "steps_done": self.steps_done,
            "optimizers": {name: g.optimizer.state_dict() for name, g in self.groups.items()},
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict`; a group missing from ``state`` is an :class:`InputError`."""
        optimizers = state["optimizers"]
        missing = sorted(set(self.groups) - set(optimizers))
        if missing:
            raise InputError(
                f"trainer state lacks parameter group(s) {missing} (it has {sorted(optimizers)})"
            )
        for name, g in self.groups.items():
            g.optimizer.load_state_dict(optimizers[name])
        self.steps_done = int(state["steps_done"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
