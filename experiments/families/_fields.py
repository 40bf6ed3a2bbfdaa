"""What ``fields_image`` and ``fields_sdf`` share: the named-model table of optimizers, the
parameter groups of a field, the model build and the resume state.

Optimizers. A field has up to three parameter groups, each with its own
:class:`~experiments.trainer.OptimConfig`:

* ``encoding``: the encoding's trainable parameters (hash tables, RBF features, ...);
* ``cam``: the CAM grid (scale and shift), when the decoder is CAM-modulated;
* ``decoder``: everything else (the MLP or SIREN weights).

Their default learning rates depend on the model, so a config holds one :class:`ModelOptim`
per named model (``optim.hashgrid.encoding.lr``, ``optim.siren.decoder.lr``, ...), filled from
the encoding registry (:func:`fields.encodings.default_lrs`); the run uses ``optim.<model>``.
Shared defaults (:class:`FieldOptimConfig`): Adam with betas (0.9, 0.99) and eps 1e-15 as
Instant-NGP, and a cosine decay to 1% of the rate at the last step.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass, field, fields
from typing import Any, Literal

import torch
from torch import nn

from experiments.trainer import OptimConfig
from fields.cam import CAMDecoder
from fields.encodings import default_lrs, model_names
from fields.models import Field, build_field, sized_model
from neurosim.backend import InputError, seeded


@dataclass
class FieldOptimConfig(OptimConfig):
    """:class:`~experiments.trainer.OptimConfig` with the fields experiments' shared defaults:
    Adam (0.9, 0.99), eps 1e-15, cosine decay to ``min_lr_ratio`` = 1% at the last step."""

    betas: tuple[float, float] = (0.9, 0.99)
    eps: float = 1e-15
    schedule: Literal["constant", "cosine", "step", "exponential"] = "cosine"
    min_lr_ratio: float = 0.01


@dataclass
class ModelOptim:
    """The optimizers of one model's parameter groups (a group the model lacks is unused)."""

    encoding: FieldOptimConfig
    decoder: FieldOptimConfig
    cam: FieldOptimConfig


def model_optim(model: str, **lrs: float) -> ModelOptim:
    """The default :class:`ModelOptim` of a registered model (``lrs`` replace some rates)."""
    rates = {**default_lrs(model), **lrs}
    return ModelOptim(
        encoding=FieldOptimConfig(lr=rates["encoding"]),
        decoder=FieldOptimConfig(lr=rates["decoder"]),
        cam=FieldOptimConfig(lr=rates["cam"]),
    )


def custom_optim() -> ModelOptim:
    """Rates of the ``custom`` model: 1e-3 for encoding and decoder, 1e-2 for a CAM grid."""
    return ModelOptim(
        encoding=FieldOptimConfig(lr=1e-3),
        decoder=FieldOptimConfig(lr=1e-3),
        cam=FieldOptimConfig(lr=1e-2),
    )


BUILTIN_MODELS = ("ffn", "ffn_cam", "siren", "hashgrid", "neurbf")


class ModelChoices(Collection[str]):
    """The live set of valid ``model`` values: every registered named model and ``custom``
    (read when a config is checked, so a model registered later is admitted)."""

    def _names(self) -> list[str]:
        return [*model_names(), "custom"]

    def __contains__(self, value: object) -> bool:
        return value in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


MODEL_CHOICES = ModelChoices()


def registered_optims() -> dict[str, ModelOptim]:
    """Default sections of the registered models that are not built in."""
    return {m: model_optim(m) for m in model_names() if m not in BUILTIN_MODELS}


@dataclass
class FieldsOptim:
    """One :class:`ModelOptim` per named model (defaults from the encoding registry) and the
    ``custom`` model; the run uses the section of its ``model``."""

    ffn: ModelOptim = field(default_factory=lambda: model_optim("ffn"))
    ffn_cam: ModelOptim = field(default_factory=lambda: model_optim("ffn_cam"))
    siren: ModelOptim = field(default_factory=lambda: model_optim("siren"))
    hashgrid: ModelOptim = field(default_factory=lambda: model_optim("hashgrid"))
    neurbf: ModelOptim = field(default_factory=lambda: model_optim("neurbf"))
    custom: ModelOptim = field(default_factory=custom_optim)
    registered: dict[str, ModelOptim] = field(default_factory=lambda: registered_optims())
    """Sections of models registered beyond the built-in ones (filled from the registry when
    the config is made; override a whole entry, e.g. ``optim.registered={mymodel: {...}}``)."""

    def for_model(self, model: str) -> ModelOptim:
        """The section of ``model`` (an :class:`InputError` for a model without one)."""
        known = [*model_names(), "custom"]
        if model not in known:
            raise InputError(f"unknown model {model!r}; expected one of {known}")
        section = getattr(self, model, None)
        if not isinstance(section, ModelOptim):
            section = self.registered.get(model)
        if not isinstance(section, ModelOptim):
            raise InputError(
                f"model {model!r} has no optimizer section optim.{model} (sections: "
                f"{[f.name for f in fields(self)]}); add one to the config class, or use "
                "model=custom with its specs"
            )
        return section


def parameter_groups(
    model: Field, optim: ModelOptim
) -> dict[str, tuple[list[nn.Parameter], OptimConfig]]:
    """``{"encoding", "decoder", "cam"}`` groups of a field's trainable parameters (empty groups
    left out), each with its :class:`OptimConfig` from ``optim``."""
    encoding = [p for p in model.encoding.parameters() if p.requires_grad]
    cam = (
        [p for p in model.decoder.cam.parameters() if p.requires_grad]
        if isinstance(model.decoder, CAMDecoder)
        else []
    )
    taken = {id(p) for p in encoding + cam}
    decoder = [p for p in model.parameters() if p.requires_grad and id(p) not in taken]
    groups: dict[str, tuple[list[nn.Parameter], OptimConfig]] = {}
    for name, params, cfg in (
        ("decoder", decoder, optim.decoder),
        ("encoding", encoding, optim.encoding),
        ("cam", cam, optim.cam),
    ):
        if params:
            groups[name] = (params, cfg)
    return groups


def build_named_field(
    model: str,
    budget: int,
    in_dim: int,
    out_dim: int,
    options: dict[str, Any],
    custom: dict[str, Any],
    generator: torch.Generator,
    seed: int,
) -> Field:
    """A named baseline at ``budget`` or, for ``custom``, the given specs, initialised from
    ``generator`` under :func:`neurosim.backend.seeded` ``(seed)`` (so a module that draws
    from torch's global RNG can neither change it nor depend on its state)."""
    with seeded(seed):
        if model == "custom":
            return build_field(
                in_dim,
                out_dim,
                custom.get("encoding") or None,
                custom.get("decoder") or None,
                custom.get("cam") or None,
                generator,
            )
        if model not in model_names():
            raise InputError(
                f"unknown model {model!r}; expected one of {[*model_names(), 'custom']}"
            )
        spec = sized_model(model, budget, in_dim, out_dim, **options)
        return build_field(in_dim, out_dim, **spec, generator=generator)


class FieldFitState:
    """Resume state shared by the field-fitting experiments: the field, the sample generator
    and (for NeuRBF) the centres its neighbour table was built from. The optimizers are the
    trainer's, which the runner checkpoints itself."""

    model: Field
    sampler: torch.Generator

    def state_dict(self) -> dict[str, Any]:
        rbf = self.model.rbf
        return {
            "model": self.model.state_dict(),
            "sampler": self.sampler.get_state(),
            "table_centers": None if rbf is None else rbf.table_centers,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.sampler.set_state(state["sampler"])
        rbf = self.model.rbf
        if rbf is not None:
            rbf.refresh_neighbors(state.get("table_centers"))
