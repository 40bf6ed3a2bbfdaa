"""``neurosim show`` on tiny runs of image_fit and snn_mnist, and on a sweep: the expected PNG
files are written, each a valid image, and the figures hold the stored data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from experiments.cli import main
from experiments.registry import get_experiment
from experiments.results import open_results
from experiments.runner import run_experiment
from experiments.show import plot_metric, plot_run_curves, plot_sweep, show_run
from experiments.sweep import read_sweep, run_sweep
from neurosim.backend import InputError
from neurosim.plotting.style import pyplot


@pytest.fixture(autouse=True)
def _close_figures():  # type: ignore[no-untyped-def]
    yield
    pyplot().close("all")


def test_show_image_fit_writes_curves_arrays_and_reconstruction(tmp_path: Path, png_check) -> None:  # type: ignore[no-untyped-def]
    run = run_experiment("image_fit", ["steps=20"], runs_dir=tmp_path, preset="tiny").run_dir
    text = show_run(run)
    assert "psnr" in text and "finished" in text
    plots = run / "plots"
    expected = {"loss", "psnr", "learning_rate", "prediction", "target", "reconstruction"}
    assert {p.stem for p in plots.glob("*.png")} == expected
    for name in expected:
        png_check(plots / f"{name}.png", min_size=(350, 250))
    png_check(plots / "reconstruction.png", min_size=(800, 250))  # three panels side by side

    results = open_results(run)
    curves = plot_run_curves(results)
    steps, psnr = results.metric("psnr")
    line = curves["psnr"].axes[0].lines[0]
    np.testing.assert_array_equal(line.get_xdata(), steps)
    np.testing.assert_array_equal(line.get_ydata(), psnr)
    assert curves["psnr"].axes[0].get_ylabel() == "psnr (dB)"
    assert results.run_label in curves["loss"].axes[0].get_title()
    recon = get_experiment("image_fit").figures(results)["reconstruction"]
    error = np.abs(results.arrays["prediction"] - results.arrays["target"]).mean(-1)
    np.testing.assert_allclose(recon.axes[2].images[0].get_array(), error, rtol=1e-6)
    with pytest.raises(InputError, match="no metric 'nope'"):
        plot_run_curves(results, metrics=["nope"])


def test_show_snn_mnist_draws_the_recorded_spikes(tmp_path: Path, png_check) -> None:  # type: ignore[no-untyped-def]
    run = run_experiment("snn_mnist", ["steps=10"], runs_dir=tmp_path, preset="tiny").run_dir
    assert main(["show", str(run)]) == 0
    plots = run / "plots"
    family = {"hidden_raster", "readout_traces", "hidden_rate_histogram"}
    curves = {"loss", "batch_accuracy", "hidden_rate", "epoch", "learning_rate"}
    assert {p.stem for p in plots.glob("*.png")} == family | curves
    for name in family | curves:
        png_check(plots / f"{name}.png", min_size=(350, 250))

    results = open_results(run)
    spikes = results.arrays["holdout_hidden_spikes"]  # [T, digits, hidden], tiny: 4 digits
    v_out = results.arrays["holdout_readout_v"]
    figures = get_experiment("snn_mnist").figures(results)
    raster = figures["hidden_raster"].axes[0]
    assert len(raster.collections[0].get_offsets()) == int(spikes.sum()) > 0
    traces = [ln for ln in figures["readout_traces"].axes[0].lines if ln.get_label() != "threshold"]
    assert len(traces) == 10
    for digit, line in enumerate(traces):
        np.testing.assert_allclose(line.get_ydata(), v_out[:, 0, digit])
    label = int(results.arrays["holdout_labels"][0])
    assert traces[label].get_label() == f"class {label} (true)"
    histogram = figures["hidden_rate_histogram"].axes[0]
    assert sum(p.get_height() for p in histogram.patches) == spikes.shape[2]  # every neuron


def test_show_sweep_writes_table_and_comparison_plot(tmp_path: Path, png_check, capsys) -> None:  # type: ignore[no-untyped-def]
    sweep = run_sweep(
        "image_fit",
        ["hidden=8,16", "optim.lr=0.01,0.003"],
        ["steps=5", "size=16"],
        preset="tiny",
        runs_dir=tmp_path,
        executor="serial",
        announce=False,
    ).sweep_dir
    text = show_run(sweep)
    assert "4 finished" in text and "comparison plot written" in text
    png_check(sweep / "plots" / "sweep_psnr.png", min_size=(400, 250))
    rows = read_sweep(sweep)
    ax = plot_sweep(sweep, "psnr").axes[0]
    assert ax.get_xlabel() == "hidden (swept)" and ax.get_ylabel() == "psnr (dB)"
    lines = {ln.get_label(): ln for ln in ax.lines}
    assert set(lines) == {"optim.lr=0.01", "optim.lr=0.003"}
    for lr, line in lines.items():
        by_hidden = {r["hidden"]: r["psnr"] for r in rows if f"optim.lr={r['optim.lr']}" == lr}
        np.testing.assert_allclose(line.get_xdata(), [8, 16])
        np.testing.assert_allclose(line.get_ydata(), [by_hidden[8], by_hidden[16]])

    assert main(["show", str(sweep), "--metric", "ssim"]) == 0
    png_check(sweep / "plots" / "sweep_ssim.png", min_size=(400, 250))
    capsys.readouterr()
    assert main(["show", str(sweep), "--metric", "nope"]) == 2
    assert "no metric 'nope'; it has: psnr, ssim, params" in capsys.readouterr().err

    runs = [Path(str(r["run_dir"])) for r in rows[:2]]
    overlay = plot_metric(runs, "psnr", labels=["a", "b"]).axes[0]
    assert [ln.get_label() for ln in overlay.lines] == ["a", "b"]
    np.testing.assert_array_equal(
        overlay.lines[1].get_ydata(), open_results(runs[1]).metric("psnr")[1]
    )
