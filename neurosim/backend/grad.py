"""Gradient transforms: functions applied to parameter gradients between backward and the step.

A *gradient transform* is a function ``fn(module, param_name, grad) -> new_grad`` attached to a
module (and optionally to some of its own parameters). It is stored on the module itself, never
in a global registry, so deleting the module deletes its transforms, and it travels with the
module through ``copy.deepcopy``. :func:`apply_grad_transforms` walks a model's submodules and
replaces each transformed parameter's ``.grad``. Call it after ``loss.backward()`` (and, with
data-parallel training, after the gradient all-reduce, i.e. after ``backward()`` of a
``DistributedDataParallel`` model) and before ``optimizer.step()``; the trainer in
``experiments.trainer`` does exactly that, and plain PyTorch code can too::

    proj = torch.eye(4) - basis.T @ basis           # project out span(basis) from the inputs
    handle = register_grad_transform(layer, lambda m, name, g: g @ proj, params=["weight"])
    loss.backward()
    apply_grad_transforms(model)                    # layer.weight.grad <- layer.weight.grad @ proj
    optimizer.step()
    handle.remove()

Learning rules without autograd (STDP, Hebbian updates, k-WTA boosting) may also write their
update into ``.grad`` (``param.grad = -delta``) so that an ordinary optimizer applies it; a
transform then sees that update like any other gradient.

Transforms of one parameter run in registration order. A transform must return a tensor of the
gradient's shape, dtype and device; :func:`apply_grad_transforms` checks the shape and says which
module and parameter broke it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from neurosim.backend.errors import InputError

GradTransform = Callable[[nn.Module, str, torch.Tensor], torch.Tensor]

_ATTR = "_neurosim_grad_transforms"
_ids = itertools.count()


@dataclass(frozen=True)
class _Entry:
    key: int
    fn: GradTransform
    params: tuple[str, ...]


class GradTransformHandle:
    """Returned by :func:`register_grad_transform`; :meth:`remove` detaches the transform."""

    def __init__(self, module: nn.Module, key: int) -> None:
        self._module = module
        self._key = key

    def remove(self) -> None:
        """Detach the transform from its module (a second call does nothing)."""
        entries: list[_Entry] = getattr(self._module, _ATTR, [])
        entries[:] = [e for e in entries if e.key != self._key]

    def __enter__(self) -> GradTransformHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def register_grad_transform(
    module: nn.Module, fn: GradTransform, params: Iterable[str] | None = None
) -> GradTransformHandle:
    """Attach ``fn(module, name, grad) -> grad`` to ``module``'s own parameters.

    Args:
        module: the module whose parameters are transformed.
        fn: the transform; it receives the module, the parameter's name within the module
            (``"weight"``) and its gradient, and returns the new gradient (same shape).
        params: names of ``module``'s *direct* parameters to transform (``["weight"]``);
            ``None`` means all of them.

    Returns:
        a handle whose ``remove()`` detaches the transform (also usable as a context manager).

    Raises:
        InputError: ``fn`` is not callable, or a name is not a direct parameter of ``module``.
    """
    if not isinstance(module, nn.Module):
        raise InputError(f"register_grad_transform needs an nn.Module, got {type(module).__name__}")
    if not callable(fn):
        raise InputError(f"gradient transform must be callable, got {type(fn).__name__}")
    own = dict(module.named_parameters(recurse=False))
    names = tuple(own) if params is None else tuple(params)
    if isinstance(params, str):
        raise InputError(f"params must be a list of parameter names, got the string {params!r}")
    missing = [n for n in names if n not in own]
    if missing:
        raise InputError(
            f"{type(module).__name__} has no direct parameter(s) {missing}; "
            f"its parameters are {sorted(own) or 'none'}"
        )
    entries: list[_Entry] | None = getattr(module, _ATTR, None)
    if entries is None:
        entries = []
        object.__setattr__(module, _ATTR, entries)
    key = next(_ids)
    entries.append(_Entry(key, fn, names))
    return GradTransformHandle(module, key)


def grad_transforms(module: nn.Module) -> list[tuple[GradTransform, tuple[str, ...]]]:
    """The transforms attached directly to ``module``: ``[(fn, param names), ...]``."""
    return [(e.fn, e.params) for e in getattr(module, _ATTR, [])]


def has_grad_transforms(model: nn.Module) -> bool:
    """Whether any submodule of ``model`` (itself included) has a gradient transform."""
    return any(getattr(m, _ATTR, None) for m in model.modules())


def apply_grad_transforms(model: nn.Module) -> int:
    """Replace ``.grad`` of every transformed parameter under ``model``; returns how many ran.

    Parameters whose ``.grad`` is ``None`` are skipped. Runs under ``torch.no_grad()``.
    """
    ran = 0
    with torch.no_grad():
        for module in model.modules():
            entries: list[_Entry] = getattr(module, _ATTR, [])
            if not entries:
                continue
            own = dict(module.named_parameters(recurse=False))
            for entry in list(entries):
                for name in entry.params:
                    param = own.get(name)
                    if param is None or param.grad is None:
                        continue
                    new = entry.fn(module, name, param.grad)
                    if not isinstance(new, torch.Tensor) or new.shape != param.grad.shape:
                        got = tuple(new.shape) if isinstance(new, torch.Tensor) else type(new)
                        raise InputError(
                            f"gradient transform {getattr(entry.fn, '__name__', entry.fn)!r} on "
                            f"{type(module).__name__}.{name} returned {got}; expected a tensor "
                            f"of the gradient's shape {tuple(param.grad.shape)}"
                        )
                    param.grad = new.to(param.grad.dtype)
                    ran += 1
    return ran
