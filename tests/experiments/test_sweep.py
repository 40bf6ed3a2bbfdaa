"""Sweeps: grid expansion, the local process pool, Ray, and the collected table."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.cli import main
from experiments.config import ConfigError
from experiments.results import open_results
from experiments.show import show_run
from experiments.sweep import expand_grid, read_sweep, run_sweep, split_values


def test_split_values_respects_brackets_and_quotes() -> None:
    assert split_values("1,2,3") == ["1", "2", "3"]
    assert split_values("[1,2],[3]") == ["[1,2]", "[3]"]
    assert split_values("'a,b',c") == ["'a,b'", "c"]


def test_expand_grid_is_a_cartesian_product() -> None:
    grid = expand_grid(["a=1,2", "b=x,y,z"])
    assert len(grid) == 6
    assert grid[0] == ["a=1", "b=x"] and grid[-1] == ["a=2", "b=z"]
    assert expand_grid([]) == [[]]


def test_invalid_sweep_fails_before_running_anything(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown config key 'lrr'"):
        run_sweep("image_fit", ["lrr=1,2"], preset="tiny", runs_dir=tmp_path)
    assert not (tmp_path / "sweeps").exists()
    with pytest.raises(ConfigError, match="executor"):
        run_sweep("image_fit", ["optim.lr=1,2"], preset="tiny", runs_dir=tmp_path, executor="slurm")


def _check(result_rows: list[dict[str, object]], key: str, values: list[float]) -> None:
    assert sorted(float(str(r[key])) for r in result_rows) == sorted(values)
    for row in result_rows:
        assert open_results(Path(str(row["run_dir"]))).status == "finished"
        assert float(str(row["psnr"])) > 0


def test_local_pool_sweep_collects_one_table(tmp_path: Path) -> None:
    result = run_sweep(
        "image_fit",
        ["optim.lr=0.01,0.003"],
        ["steps=10"],
        preset="tiny",
        runs_dir=tmp_path,
        executor="local",
        workers=2,
    )
    _check(result.rows, "optim.lr", [0.01, 0.003])
    table = read_sweep(result.sweep_dir)
    assert [r["optim.lr"] for r in table] == [0.01, 0.003]
    assert "psnr" in show_run(result.sweep_dir)


def test_ray_sweep_on_a_local_instance(tmp_path: Path) -> None:
    result = run_sweep(
        "image_fit",
        ["hidden=8,16"],
        ["steps=5"],
        preset="tiny",
        runs_dir=tmp_path,
        executor="ray",
        workers=2,
    )
    _check(result.rows, "hidden", [8, 16])
    assert {float(str(r["params"])) for r in result.rows} == {
        float(str(r["params"])) for r in result.rows
    } and len({r["params"] for r in result.rows}) == 2


def test_cli_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "sweep",
            "image_fit",
            "--preset",
            "tiny",
            "size=16,24",
            "steps=5",
            "executor=serial",
            "--runs-dir",
            str(tmp_path),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "size" in out and "psnr" in out and "sweep:" in out
