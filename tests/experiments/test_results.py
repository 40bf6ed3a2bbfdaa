"""The HDF5 results file: layout, atomic writes, and clear errors for bad files."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from experiments.results import FORMAT, ResultsError, ResultsWriter, open_results


def test_write_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "results.h5"
    writer = ResultsWriter(path, attrs={"experiment": "demo", "environment": {"device": "cpu"}})
    for step in range(5):
        writer.log(step, {"loss": 1.0 / (step + 1), "acc": step / 10})
    writer.log(5, {"loss": 0.1})
    writer.save_array("raster", np.eye(3, dtype=np.uint8))
    writer.finish({"acc": 0.9})
    results = open_results(path)
    steps, loss = results.metric("loss")
    assert steps.tolist() == [0, 1, 2, 3, 4, 5]
    assert loss[-1] == pytest.approx(0.1)
    assert results.metric("acc")[0].tolist() == [0, 1, 2, 3, 4]
    assert np.array_equal(results.arrays["raster"], np.eye(3))
    assert results.summary == {"acc": pytest.approx(0.9)}
    assert results.status == "finished"
    assert results.attrs["environment"] == {"device": "cpu"}
    assert results.attrs["format"] == FORMAT
    with pytest.raises(ResultsError, match="no metric 'lost'.*acc, loss"):
        results.metric("lost")


def test_truncate_drops_rows_from_a_step(tmp_path: Path) -> None:
    writer = ResultsWriter(tmp_path / "r.h5")
    for step in range(10):
        writer.log(step, {"x": float(step)})
    writer.flush()
    writer.truncate(6)
    assert open_results(tmp_path / "r.h5").metric("x")[0].tolist() == list(range(6))


def test_buffered_rows_are_flushed_by_time(tmp_path: Path) -> None:
    writer = ResultsWriter(tmp_path / "r.h5", flush_seconds=0.0)
    writer.log(0, {"x": 1.0})
    assert open_results(tmp_path / "r.h5").metric("x")[1].tolist() == [1.0]


def test_no_temporary_file_is_left(tmp_path: Path) -> None:
    writer = ResultsWriter(tmp_path / "r.h5")
    writer.log(0, {"x": 1.0})
    writer.flush()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.h5"]


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ResultsError, match="does not exist"):
        open_results(tmp_path / "nope.h5")


def test_corrupt_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "results.h5"
    ResultsWriter(path).log(0, {"x": 1.0})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])  # truncated mid-file
    with pytest.raises(ResultsError, match="corrupt"):
        open_results(path)
    path.write_bytes(b"this is not hdf5 at all" * 10)
    with pytest.raises(ResultsError, match="not an HDF5 file"):
        open_results(path)


def test_foreign_hdf5_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.h5"
    with h5py.File(path, "w") as handle:
        handle["data"] = np.arange(3)
    with pytest.raises(ResultsError, match="not a neurosim results file"):
        open_results(path)
    with pytest.raises(ResultsError, match="not a neurosim results file"):
        ResultsWriter(path)  # never appends into someone else's file


def test_newer_format_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "r.h5"
    ResultsWriter(path)
    with h5py.File(path, "r+") as handle:
        handle.attrs["format_version"] = 99
    with pytest.raises(ResultsError, match="newer"):
        open_results(path)
