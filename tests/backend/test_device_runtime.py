"""Device, precision, seeding and the Runtime policy."""

from __future__ import annotations

import pytest
import torch

from neurosim.backend import (
    BackendUnavailableError,
    InputError,
    Runtime,
    autocast,
    resolve_device,
    resolve_dtype,
    seed_everything,
)


def test_resolve_device_auto_and_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device(None).type == expected
    assert resolve_device("CPU") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("spec", ["gpu0", "tpu", "cuda:x"])
def test_resolve_device_rejects_unknown(spec: str) -> None:
    with pytest.raises(InputError, match="expected"):
        resolve_device(spec)


def test_resolve_device_rejects_wrong_type() -> None:
    with pytest.raises(InputError, match="string or torch.device"):
        resolve_device(3)  # type: ignore[arg-type]


def test_cuda_without_gpu_says_why() -> None:
    if torch.cuda.is_available():
        with pytest.raises(BackendUnavailableError, match="only"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
    else:
        with pytest.raises(BackendUnavailableError, match="no CUDA device"):
            resolve_device("cuda")


def test_precision_names() -> None:
    assert resolve_dtype("bf16") is torch.bfloat16
    assert resolve_dtype("fp16") is torch.float16
    with pytest.raises(InputError, match="fp32"):
        resolve_dtype("fp8")


def test_autocast_bf16_changes_matmul_dtype_and_fp32_does_not() -> None:
    a = torch.randn(4, 4)
    with autocast(torch.device("cpu"), "bf16"):
        assert (a @ a).dtype is torch.bfloat16
    with autocast(torch.device("cpu"), "fp32"):
        assert (a @ a).dtype is torch.float32


def test_runtime_seeds_reproducibly() -> None:
    r1 = Runtime.create("cpu", seed=7)
    a = torch.randn(5, generator=r1.generator), torch.randn(3)
    r2 = Runtime.create("cpu", seed=7)
    b = torch.randn(5, generator=r2.generator), torch.randn(3)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    r3 = Runtime.create("cpu", seed=8)
    assert not torch.equal(a[0], torch.randn(5, generator=r3.generator))


def test_runtime_deterministic_mode_toggles_torch() -> None:
    Runtime.create("cpu", deterministic=True)
    assert torch.are_deterministic_algorithms_enabled()
    Runtime.create("cpu", deterministic=False)
    assert not torch.are_deterministic_algorithms_enabled()


def test_runtime_describe_is_plain_data() -> None:
    info = Runtime.create("cpu", precision="bf16").describe()
    assert info["device"] == "cpu" and info["precision"] == "bf16"
    assert info["torch"] == torch.__version__


def test_runtime_rejects_bad_precision_and_seed() -> None:
    with pytest.raises(InputError, match="precision"):
        Runtime.create("cpu", precision="float32")
    with pytest.raises(InputError, match="seed"):
        seed_everything("1")  # type: ignore[arg-type]
