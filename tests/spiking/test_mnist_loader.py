"""MNIST IDX loader: real data, corrupt files, split helper, spike encodings."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import pytest
import torch

from experiments.data import dataset_path
from neurosim.backend import InputError, debug_checks
from neurosim.datasets.mnist import MNIST_LAYOUT, load_mnist, split_indices
from neurosim.functional.encoding import direct_encode, latency_encode, rate_encode


def _write_idx(path: Path, magic: int, dims: tuple[int, ...], payload: bytes) -> None:
    data = struct.pack(f">i{len(dims)}i", magic, *dims) + payload
    with gzip.open(path, "wb") as fh:
        fh.write(data)


def _fake(
    tmp_path: Path, n: int = 5, label_n: int | None = None, labels: bytes | None = None
) -> Path:
    pixels = bytes((i * 7) % 256 for i in range(n * 784))
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", 2051, (n, 28, 28), pixels)
    label_n = n if label_n is None else label_n
    payload = labels if labels is not None else bytes(i % 10 for i in range(label_n))
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", 2049, (label_n,), payload)
    return tmp_path


def test_real_mnist_test_split_loads() -> None:
    split = load_mnist(dataset_path("mnist", layout=MNIST_LAYOUT), "t10k")
    assert split.images.shape == (10000, 28, 28) and split.images.dtype == torch.uint8
    assert split.labels.shape == (10000,) and split.labels.dtype == torch.int64
    counts = torch.bincount(split.labels, minlength=10)
    assert counts.numel() == 10 and bool((counts > 800).all())  # every digit present
    assert int(split.images.max()) == 255 and int(split.images.min()) == 0


def test_fake_files_round_trip(tmp_path: Path) -> None:
    split = load_mnist(_fake(tmp_path, n=3))
    assert split.images.shape == (3, 28, 28)
    assert split.images.flatten()[:3].tolist() == [0, 7, 14]
    assert split.labels.tolist() == [0, 1, 2]


def test_uncompressed_files_accepted(tmp_path: Path) -> None:
    _fake(tmp_path, n=2)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        gz = tmp_path / f"{name}.gz"
        (tmp_path / name).write_bytes(gzip.decompress(gz.read_bytes()))
        gz.unlink()
    assert load_mnist(tmp_path).labels.tolist() == [0, 1]


@pytest.mark.parametrize(
    "breakage, message",
    [
        ("missing_folder", "not found"),
        ("missing_labels", "t10k-labels-idx1-ubyte"),
        ("bad_magic", "magic number"),
        ("truncated", "truncated"),
        ("count_mismatch", "labels"),
        ("bad_label", "expected 0..9"),
        ("not_gzip", "corrupt"),
        ("bad_split", "split must be"),
    ],
)
def test_corrupt_or_missing_files_raise_clear_errors(
    tmp_path: Path, breakage: str, message: str
) -> None:
    root = tmp_path
    split = "t10k"
    if breakage == "missing_folder":
        root = tmp_path / "nope"
    else:
        _fake(tmp_path, n=4)
    images = tmp_path / "t10k-images-idx3-ubyte.gz"
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    if breakage == "missing_labels":
        labels.unlink()
    elif breakage == "bad_magic":
        _write_idx(images, 2049, (4, 28, 28), bytes(4 * 784))
    elif breakage == "truncated":
        _write_idx(images, 2051, (4, 28, 28), bytes(3 * 784))
    elif breakage == "count_mismatch":
        _write_idx(labels, 2049, (3,), bytes(3))
    elif breakage == "bad_label":
        _write_idx(labels, 2049, (4,), bytes([1, 2, 3, 11]))
    elif breakage == "not_gzip":
        images.write_bytes(b"this is not gzip data at all")
    elif breakage == "bad_split":
        split = "validation"
    with pytest.raises(InputError, match=message) as info:
        load_mnist(root, split)
    if breakage in ("missing_folder", "missing_labels", "bad_magic", "not_gzip"):
        assert "expected layout" in str(info.value)


def test_split_indices_disjoint_seeded() -> None:
    train, held = split_indices(100, 20, seed=3)
    assert len(train) == 80 and len(held) == 20
    assert set(train.tolist()).isdisjoint(held.tolist())
    assert sorted(train.tolist() + held.tolist()) == list(range(100))
    again, _ = split_indices(100, 20, seed=3)
    other, _ = split_indices(100, 20, seed=4)
    assert torch.equal(train, again) and not torch.equal(train, other)
    with pytest.raises(InputError, match="n_holdout"):
        split_indices(10, 10, seed=0)


def test_rate_encode_statistics_and_determinism() -> None:
    x = torch.tensor([0.0, 0.25, 1.0])
    s = rate_encode(x, 4000, generator=torch.Generator().manual_seed(0))
    assert s.shape == (4000, 3)
    assert set(s.unique().tolist()) <= {0.0, 1.0}
    rates = s.mean(0)
    assert rates[0] == 0 and rates[2] == 1 and abs(float(rates[1]) - 0.25) < 0.03
    s2 = rate_encode(x, 4000, generator=torch.Generator().manual_seed(0))
    assert torch.equal(s, s2)


def test_latency_and_direct_encode() -> None:
    x = torch.tensor([[1.0, 0.5, 0.0]])
    s = latency_encode(x, 5)
    assert s.shape == (5, 1, 3)
    assert s[:, 0, 0].tolist() == [1, 0, 0, 0, 0]
    assert s[:, 0, 1].tolist() == [0, 0, 1, 0, 0]
    assert s[:, 0, 2].sum() == 0
    d = direct_encode(x, 3)
    assert d.shape == (3, 1, 3) and torch.equal(d[2], x)


@pytest.mark.parametrize("fn", [rate_encode, latency_encode])
def test_encoders_reject_bad_input(fn: object) -> None:
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        fn(torch.tensor([2.0]), 3)  # type: ignore[operator]  # CPU: always range-checked
    with debug_checks(), pytest.raises(InputError, match="non-finite"):
        fn(torch.tensor([float("nan")]), 3)  # type: ignore[operator]
    with pytest.raises(InputError, match="steps"):
        fn(torch.tensor([0.5]), 0)  # type: ignore[operator]
