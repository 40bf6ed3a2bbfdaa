"""Every registered experiment, no skip list: a tiny run, `neurosim show` on it (every figure
of the family written as a non-blank PNG), and an interrupted run that resumes to the same final
metrics (the crash-safety contract of every experiment family)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from experiments.cli import main
from experiments.registry import experiment_names, get_experiment
from experiments.results import open_results
from experiments.runner import make_config, resume_run, run_experiment
from neurosim.plotting.style import pyplot


class Interrupted(Exception):
    """Stands in for a crash in the middle of a run."""


@pytest.mark.parametrize("name", experiment_names())
def test_tiny_run_then_interrupted_run_resumes_identically(
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    png_check: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    steps = make_config(name, [], "tiny").steps
    every = max(1, steps // 2)
    overrides = [f"checkpoint_every={every}", "device=cpu"]
    reference = run_experiment(name, overrides, tmp_path / "ref", "tiny")
    assert reference.metrics, f"{name} reports no final metrics"
    assert all(math.isfinite(v) for v in reference.metrics.values()), reference.metrics
    assert open_results(reference.run_dir).status == "finished"

    assert main(["show", str(reference.run_dir)]) == 0
    assert "finished" in capsys.readouterr().out
    written = {p.stem for p in (reference.run_dir / "plots").glob("*.png")}
    family = set(get_experiment(name).figures(open_results(reference.run_dir)))
    pyplot().close("all")
    assert family <= written, f"{name}: figures not written: {family - written}"
    # bookkeeping series (which method / seed / task a step belongs to) are not drawn as curves
    from experiments.show import POSITION_METRICS

    assert not written & set(POSITION_METRICS), f"{name}: drew {written & set(POSITION_METRICS)}"
    for stem in written:
        png_check(reference.run_dir / "plots" / f"{stem}.png", min_size=(300, 200))

    cls = get_experiment(name)
    original = cls.step
    crash_at = min(every + 1, steps - 1)

    def crashing(self: Any, step: int) -> dict[str, float]:
        if step == crash_at:
            raise Interrupted
        return original(self, step)

    monkeypatch.setattr(cls, "step", crashing)
    with pytest.raises(Interrupted):
        run_experiment(name, overrides, tmp_path / "crash", "tiny")
    monkeypatch.setattr(cls, "step", original)
    (run_dir,) = (tmp_path / "crash" / name).iterdir()
    crashed = open_results(run_dir)  # an exception marks the run failed, with the reason
    assert crashed.status == "failed" and "Interrupted" in crashed.attrs["status_reason"]
    resumed = resume_run(run_dir)
    assert resumed.metrics == pytest.approx(reference.metrics, rel=1e-5, abs=1e-7)
