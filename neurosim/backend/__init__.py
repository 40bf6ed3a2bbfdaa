"""The shared tensor backend: device/precision/seed policy and the kernel registry.

``fields`` imports only this package; everything here is free of model code.
"""

from neurosim.backend import memory
from neurosim.backend.checks import check_same_device, check_tensor, is_finite
from neurosim.backend.debug import debug_checks, debug_enabled, set_debug_checks
from neurosim.backend.device import PRECISIONS, autocast, resolve_device, resolve_dtype
from neurosim.backend.errors import BackendUnavailableError, InputError, NeurosimError
from neurosim.backend.grad import (
    GradTransform,
    apply_grad_transforms,
    has_grad_transforms,
    register_grad_transform,
)
from neurosim.backend.registry import (
    Backend,
    KernelRegistry,
    Operation,
    Selection,
    compile_available,
    compile_backend,
    kernels,
    module_missing,
    numba_backend,
    triton_available,
    triton_backend,
)
from neurosim.backend.runtime import Runtime
from neurosim.backend.seed import seed_everything, seeded, set_deterministic

__all__ = [
    "PRECISIONS",
    "Backend",
    "BackendUnavailableError",
    "GradTransform",
    "InputError",
    "KernelRegistry",
    "NeurosimError",
    "Operation",
    "Runtime",
    "Selection",
    "apply_grad_transforms",
    "autocast",
    "check_same_device",
    "check_tensor",
    "compile_available",
    "compile_backend",
    "debug_checks",
    "debug_enabled",
    "has_grad_transforms",
    "is_finite",
    "kernels",
    "memory",
    "module_missing",
    "numba_backend",
    "register_grad_transform",
    "resolve_device",
    "resolve_dtype",
    "seed_everything",
    "seeded",
    "set_debug_checks",
    "set_deterministic",
    "triton_available",
    "triton_backend",
]
