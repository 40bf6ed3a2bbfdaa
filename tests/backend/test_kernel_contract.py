"""One contract test over every registered kernel and every backend that runs here.

For each operation in ``neurosim.backend.kernels`` (after importing every module of ``neurosim``
and ``fields`` so that all operations register) and each of its backends available on the
device, outputs and gradients (for every declared dtype) equal an independent reference: the
plain loops written from the equations in ``tests/reference_neurons.py`` and
``tests/reference_fields.py``, against which the torch reference itself is checked too. The hash
grid's independent reference (tiny-cuda-nn's rules, point by point) lives in
``tests/fields/test_hashgrid.py``; here its other backends are compared with its torch reference.
Bad input raises a clear ``InputError`` (value checks in debug mode), and unavailable backends
raise ``BackendUnavailableError`` naming why. Triton backends run on the CPU through the
interpreter (``TRITON_INTERPRET=1`` in conftest). torch.compile costs tens of seconds per compile
on the CPU, so compile backends have cases in fp32 only there (every dtype on CUDA). No case
returns before comparing numbers.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import pytest
import torch

import fields
import neurosim
from neurosim.backend import BackendUnavailableError, InputError, debug_checks, kernels
from tests.reference_fields import REFERENCES as FIELD_REFERENCES
from tests.reference_neurons import REFERENCES as NEURON_REFERENCES


def _import_everything() -> None:
    for package in (neurosim, fields):
        for info in pkgutil.walk_packages(package.__path__, prefix=package.__name__ + "."):
            if info.name.rsplit(".", 1)[-1].startswith("_"):
                continue  # private modules (e.g. Triton kernels) load lazily through the registry
            importlib.import_module(info.name)


_import_everything()
OPS = kernels.operations()
INDEPENDENT = {**NEURON_REFERENCES, **FIELD_REFERENCES}
DEVICES = [pytest.param("cpu", id="cpu"), pytest.param("cuda", id="cuda", marks=pytest.mark.gpu)]


def _runs_here(op_name: str, backend: str, device: str) -> bool:
    """Whether a case runs here: on the CPU only the backends available now (the others have
    their own test below); on CUDA every backend (the gpu marker skips them elsewhere)."""
    if device != "cpu":
        return True
    return kernels.availability(op_name, torch.device("cpu"))[backend] is None


def _cases() -> list[Any]:
    cases = []
    for op_name in OPS:
        op = kernels.operation(op_name)
        for backend in kernels.backends(op_name):
            if backend == "torch" and op_name not in INDEPENDENT:
                continue  # the reference is the comparison, not a case
            supported = op.backends[backend].dtypes
            for dtype in op.dtypes:
                if supported is not None and dtype not in supported:
                    continue
                for device in DEVICES:
                    if not _runs_here(op_name, backend, device.values[0]):
                        continue
                    if backend == "compile" and device.id == "cpu" and dtype != torch.float32:
                        continue  # one compile per op on the CPU keeps the suite fast
                    cases.append(
                        pytest.param(
                            op_name,
                            backend,
                            dtype,
                            device.values[0],
                            id=f"{op_name}-{backend}-{str(dtype)[6:]}-{device.id}",
                            marks=device.marks,
                        )
                    )
    return cases


def _clone(args: tuple[Any, ...], grad_args: tuple[int, ...]) -> list[Any]:
    out = []
    for i, a in enumerate(args):
        if isinstance(a, torch.Tensor):
            a = a.detach().clone()
            if i in grad_args and a.is_floating_point():
                a.requires_grad_(True)
        out.append(a)
    return out


def test_registry_is_populated() -> None:
    assert "leaky_scan" in OPS
    for op_name in OPS:
        assert kernels.backends(op_name)[-1] == "torch" or "torch" in kernels.backends(op_name)


def _expected(op_name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    if op_name in INDEPENDENT:
        return INDEPENDENT[op_name](*args, **kwargs)
    return kernels.call(op_name, *args, backend="torch", **kwargs)


def test_every_spiking_and_rbf_op_has_an_independent_reference() -> None:
    for op_name in ("lif_scan", "alif_scan", "leaky_scan", "rbf_features"):
        assert op_name in OPS and op_name in INDEPENDENT


@pytest.mark.parametrize(("op_name", "backend", "dtype", "device"), _cases())
def test_backend_matches_independent_reference(
    op_name: str, backend: str, dtype: torch.dtype, device: str
) -> None:
    dev = torch.device(device)
    op = kernels.operation(op_name)
    generator = torch.Generator().manual_seed(1234)
    args, kwargs = op.example(dev, dtype, generator)
    ref_args = _clone(args, op.grad_args)
    new_args = _clone(args, op.grad_args)
    expected = _expected(op_name, ref_args, kwargs)
    got = kernels.call(op_name, *new_args, backend=backend, **kwargs)
    rtol, atol = op.tolerance[dtype]
    expected_t = expected if isinstance(expected, (tuple, list)) else (expected,)
    got_t = got if isinstance(got, (tuple, list)) else (got,)
    assert len(expected_t) == len(got_t)
    for e, g in zip(expected_t, got_t, strict=True):
        assert g.dtype == e.dtype and g.shape == e.shape and g.device == e.device
        torch.testing.assert_close(g, e, rtol=rtol, atol=atol)
    if not op.grad_args:
        return  # an operation without gradients (e.g. a learning rule run under no_grad)
    # gradients: a fixed random cotangent on every floating output
    weights = [
        torch.randn(e.shape, generator=generator, dtype=torch.float64).to(dev, e.dtype)
        for e in expected_t
    ]
    loss_e = sum((e * w).sum() for e, w in zip(expected_t, weights, strict=True) if e.requires_grad)
    loss_g = sum((g * w).sum() for g, w in zip(got_t, weights, strict=True) if g.requires_grad)
    assert isinstance(loss_e, torch.Tensor) and isinstance(loss_g, torch.Tensor)
    loss_e.backward()
    loss_g.backward()
    for i in op.grad_args:
        ge, gg = ref_args[i].grad, new_args[i].grad
        assert ge is not None and gg is not None, f"argument {i} got no gradient"
        scale = max(1.0, float(ge.abs().max()))
        torch.testing.assert_close(gg, ge, rtol=rtol, atol=atol * scale)


@pytest.mark.parametrize("op_name", OPS)
def test_bad_input_is_a_clear_error(op_name: str) -> None:
    op = kernels.operation(op_name)
    cases = op.bad_inputs(torch.device("cpu"))
    assert cases, f"{op_name} declares no bad inputs to test"
    for args, kwargs, fragment in cases:
        with debug_checks(), pytest.raises(InputError, match=fragment):
            kernels.call(op_name, *args, backend="torch", **kwargs)


def test_unavailable_backends_say_why() -> None:
    """Backends that cannot run here (e.g. tinycudann without CUDA) raise a clear error."""
    cpu = torch.device("cpu")
    unavailable = [
        (op_name, backend, reason)
        for op_name in OPS
        for backend, reason in kernels.availability(op_name, cpu).items()
        if reason is not None
    ]
    for op_name, backend, reason in unavailable:
        with pytest.raises(BackendUnavailableError, match="unavailable"):
            kernels.resolve(op_name, backend, cpu)
        assert reason
    if not torch.cuda.is_available():
        assert any(backend == "tcnn" for _, backend, _ in unavailable)


@pytest.mark.parametrize("op_name", OPS)
def test_unknown_backend_lists_the_known_ones(op_name: str) -> None:
    with pytest.raises(InputError, match="torch"):
        kernels.resolve(op_name, "no_such_backend", torch.device("cpu"))


@pytest.mark.parametrize("op_name", OPS)
def test_auto_on_cpu_picks_something_and_says_so(op_name: str) -> None:
    picked = kernels.resolve(op_name, "auto", torch.device("cpu"))
    assert picked.backend in kernels.backends(op_name)
    assert op_name in picked.reason
