"""``sdr_theory``: the curves of Ahmad & Hawkins (2016), exact, with a Monte-Carlo check.

Setup computes, with the exact arithmetic of :mod:`neurosim.sdr.theory`:

* **error vs threshold** for a segment of ``s`` synapses on a population of ``n`` cells with
  ``a`` active: the false-match rate ``P_fm(theta)`` and, for each level in ``noise`` (fraction
  of the pattern's ``a`` cells replaced), the false-negative rate and the error-minimising
  threshold;
* **false match vs population size**: ``P_fm`` at ``(s_vs_n, theta_vs_n)`` for each ``a`` in
  ``a_values`` over ``n_points`` sizes from ``n_min`` to ``n_max`` (geometric);
* **union capacity**: ``P_fm`` of a segment storing ``M = 1..max_patterns`` patterns of
  ``union_s`` synapses (the paper's expected-union estimate), for each ``n`` in ``union_n``
  with ``union_a`` active cells, and the largest ``M`` that keeps ``P_fm`` at or below
  ``union_max_false_match``;
* ``check_points``: ``[n, a, s, theta]`` rows whose ``log10 P_fm`` goes to the summary (the
  defaults are the paper's quoted values).

Each ``step`` then draws ``trials_per_step`` more Monte-Carlo trials (:mod:`neurosim.sdr.simulate`,
on the run's device, one explicit generator saved in checkpoints) of: random segments against
random patterns at ``(n, a, s)``; the noisy stored pattern at ``mc_noise``; and unions of
``mc_union_m`` patterns at ``union_n[0]``. The evaluation compares every rate that is
measurable (at least 20 expected events either way) with the exact value and counts those
outside the 99.99% Wilson interval (``mc_outside_ci``, expected 0).

Summary: ``log10_false_match_n<n>_a<a>_s<s>_theta<theta>`` per check point,
``optimal_theta_noise<pct>`` / ``min_error_noise<pct>`` per noise level, ``union_capacity_n<n>``,
``mc_checked``, ``mc_outside_ci``, ``mc_max_abs_z``, ``mc_trials``. Arrays: the curves
(``theta``, ``false_match``, ``false_negative_noise<pct>``, ``n_values``,
``false_match_vs_n_a<a>``, ``union_m``, ``union_false_match_n<n>``) and the Monte-Carlo
histograms and rates (``mc_*``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from experiments.base import Experiment, RunConfig
from experiments.registry import register
from neurosim.backend import InputError
from neurosim.sdr.simulate import (
    binomial_interval,
    simulate_match_overlaps,
    simulate_noise_overlaps,
    simulate_union_overlaps,
    tail_count,
)
from neurosim.sdr.theory import (
    error_curve,
    false_match_probability,
    log10_false_match_probability,
    noise_cells,
    optimal_threshold,
    union_capacity,
    union_false_match_probability,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from experiments.results import Results

CONFIDENCE = 0.9999
MIN_EVENTS = 20


def _pct(noise: float) -> str:
    return f"{round(100 * noise):d}"


@dataclass
class SdrTheoryConfig(RunConfig):
    """Configuration of :class:`SdrTheory` (see the module docstring for each quantity)."""

    n: int = 2048
    a: int = 128
    s: int = 30
    noise: list[float] = field(default_factory=lambda: [0.1, 0.3, 0.5])
    n_min: int = 512
    n_max: int = 100_000
    n_points: int = 25
    a_values: list[int] = field(default_factory=lambda: [64, 128, 256])
    s_vs_n: int = 24
    theta_vs_n: int = 12
    union_n: list[int] = field(default_factory=lambda: [2048, 8192, 32768])
    union_a: int = 64
    union_s: int = 24
    union_theta: int = 12
    max_patterns: int = 200
    union_max_false_match: float = 1e-9
    check_points: list[list[int]] = field(
        default_factory=lambda: [
            [10_000, 300, 24, 12],
            [100_000, 2000, 6, 6],
            [100_000, 2000, 8, 8],
            [100_000, 2000, 10, 10],
            [200_000, 2000, 10, 10],
        ]
    )
    trials_per_step: int = 20_000
    mc_noise: float = 0.5
    mc_union_m: list[int] = field(default_factory=lambda: [5, 10, 20, 40])
    steps: int = 10
    log_every: int = 1
    checkpoint_every: int = 5


def validate(c: SdrTheoryConfig) -> None:
    """Range checks (an :class:`InputError` naming the key)."""

    def bad(key: str, value: Any, expected: str) -> InputError:
        return InputError(f"sdr_theory {key} = {value!r}; expected {expected}")

    if not 1 <= c.s <= c.a <= c.n:
        raise bad("(n, a, s)", (c.n, c.a, c.s), "1 <= s <= a <= n")
    if not c.noise or any(not 0 <= x <= 1 for x in c.noise):
        raise bad("noise", c.noise, "a non-empty list of fractions in [0, 1]")
    if not 0 <= c.mc_noise <= 1 or noise_cells(c.a, noise=c.mc_noise) > c.n - c.a:
        raise bad("mc_noise", c.mc_noise, "a fraction in [0, 1] with round(noise a) <= n - a")
    if not (1 <= c.n_min <= c.n_max and c.n_points >= 2):
        raise bad("n_min / n_max / n_points", (c.n_min, c.n_max, c.n_points),
                  "1 <= n_min <= n_max and n_points >= 2")  # fmt: skip
    if not c.a_values or min(c.a_values) < 1 or max(c.a_values) > c.n_min:
        raise bad("a_values", c.a_values, f"active counts in 1..n_min = 1..{c.n_min}")
    if not 1 <= c.theta_vs_n <= c.s_vs_n <= c.n_min:
        raise bad("(s_vs_n, theta_vs_n)", (c.s_vs_n, c.theta_vs_n), "1 <= theta <= s <= n_min")
    if not c.union_n or min(c.union_n) < max(c.union_a, c.union_s):
        raise bad("union_n", c.union_n, "sizes >= union_a and union_s")
    if not 1 <= c.union_theta <= c.union_a or c.union_s < 1 or c.max_patterns < 1:
        raise bad("union_theta / union_s / max_patterns", (c.union_theta, c.union_s,
                  c.max_patterns), "1 <= union_theta <= union_a, union_s >= 1, max_patterns >= 1")  # fmt: skip
    if not 0 < c.union_max_false_match < 1:
        raise bad("union_max_false_match", c.union_max_false_match, "a probability in (0, 1)")
    for row in c.check_points:
        if len(row) != 4:
            raise bad("check_points", row, "rows [n, a, s, theta]")
    if c.trials_per_step < 1 or any(m < 1 for m in c.mc_union_m):
        raise bad("trials_per_step / mc_union_m", (c.trials_per_step, c.mc_union_m), "all >= 1")


@register
class SdrTheory(Experiment[SdrTheoryConfig]):
    """Exact SDR false-match / noise / union curves and their Monte-Carlo check."""

    name = "sdr_theory"
    config_class = SdrTheoryConfig
    description = "SDR theory (Ahmad & Hawkins 2016): exact error curves + Monte-Carlo check"

    def setup(self) -> None:
        """Exact curves (cheap) and the Monte-Carlo generator and histograms."""
        c = self.config
        validate(c)
        self.curves: dict[str, np.ndarray] = {}
        self.summary: dict[str, float] = {}
        self._threshold_curves()
        self._size_curves()
        self._union_curves()
        for n, a, s, theta in c.check_points:
            key = f"log10_false_match_n{n}_a{a}_s{s}_theta{theta}"
            self.summary[key] = log10_false_match_probability(n, a, s, theta)
        self.generator = torch.Generator(device=self.runtime.device).manual_seed(c.seed)
        self.v = noise_cells(c.a, noise=c.mc_noise)
        self.match_counts = np.zeros(c.s + 1, dtype=np.int64)
        self.noise_counts = np.zeros(c.s + 1, dtype=np.int64)
        self.union_counts = np.zeros((len(c.mc_union_m), c.union_a + 1), dtype=np.int64)
        self.trials = 0
        self.fire_theory = 1.0 - error_curve(c.n, c.a, c.s, v=self.v).false_negative
        self.union_theory = [
            union_false_match_probability(
                c.union_n[0], c.union_a, c.union_s, c.union_theta, m, method="exact"
            )
            for m in c.mc_union_m
        ]

    def _threshold_curves(self) -> None:
        c = self.config
        self.curves["noise_levels"] = np.asarray(c.noise, dtype=np.float64)
        best = []
        for noise in c.noise:
            curve = error_curve(c.n, c.a, c.s, noise=noise)
            self.curves["theta"] = curve.theta
            self.curves["false_match"] = curve.false_match
            self.curves[f"false_negative_noise{_pct(noise)}"] = curve.false_negative
            choice = optimal_threshold(c.n, c.a, c.s, noise=noise)
            best.append(choice.theta)
            self.summary[f"optimal_theta_noise{_pct(noise)}"] = float(choice.theta)
            self.summary[f"min_error_noise{_pct(noise)}"] = choice.error
        self.curves["optimal_theta"] = np.asarray(best, dtype=np.int64)

    def _size_curves(self) -> None:
        c = self.config
        ns = np.unique(np.round(np.geomspace(c.n_min, c.n_max, c.n_points)).astype(np.int64))
        self.curves["n_values"] = ns
        for a in c.a_values:
            self.curves[f"false_match_vs_n_a{a}"] = np.array(
                [false_match_probability(int(n), a, c.s_vs_n, c.theta_vs_n) for n in ns]
            )

    def _union_curves(self) -> None:
        c = self.config
        ms = np.arange(1, c.max_patterns + 1)
        self.curves["union_m"] = ms
        for n in c.union_n:
            self.curves[f"union_false_match_n{n}"] = np.array(
                [
                    union_false_match_probability(n, c.union_a, c.union_s, c.union_theta, int(m))
                    for m in ms
                ]
            )
            self.summary[f"union_capacity_n{n}"] = float(
                union_capacity(
                    n,
                    c.union_a,
                    c.union_s,
                    c.union_theta,
                    c.union_max_false_match,
                    m_max=100 * c.max_patterns,
                )
            )

    # ------------------------------------------------------------------ Monte Carlo
    def step(self, step: int) -> dict[str, float]:
        """One batch of Monte-Carlo trials for each simulated situation."""
        c = self.config
        g = self.generator
        trials = c.trials_per_step
        self.match_counts += simulate_match_overlaps(c.n, c.a, c.s, trials, generator=g)
        self.noise_counts += simulate_noise_overlaps(c.n, c.a, c.s, self.v, trials, generator=g)
        for i, m in enumerate(c.mc_union_m):
            self.union_counts[i] += simulate_union_overlaps(
                c.union_n[0], c.union_a, c.union_s, m, trials, generator=g
            )
        self.trials += trials
        checks = [row for row in self._checks() if row[-1]]
        return {
            "mc_trials": float(self.trials),
            "mc_max_abs_z": max((abs(row[6]) for row in checks), default=0.0),
        }

    def _checks(self) -> list[tuple[str, int, float, float, float, float, float, bool]]:
        """``(kind, x, theory, rate, low, high, z, measurable)`` of every simulated rate."""
        c = self.config
        out: list[tuple[str, int, float, float, float, float, float, bool]] = []
        if self.trials == 0:
            return out
        n_trials = self.trials
        fire = self.fire_theory

        def add(kind: str, x: int, p: float, k: int) -> None:
            lo, hi = binomial_interval(k, n_trials, CONFIDENCE)
            sd = math.sqrt(max(p * (1 - p), 1e-300) / n_trials)
            measurable = p * n_trials >= MIN_EVENTS and (1 - p) * n_trials >= MIN_EVENTS
            out.append((kind, x, p, k / n_trials, lo, hi, (k / n_trials - p) / sd, measurable))

        for theta in range(1, c.s + 1):
            add("match", theta, float(self.curves["false_match"][theta - 1]),
                tail_count(self.match_counts, theta))  # fmt: skip
            add("noise", theta, float(fire[theta - 1]), tail_count(self.noise_counts, theta))
        for i, m in enumerate(c.mc_union_m):
            p = self.union_theory[i]
            add("union", m, p, tail_count(self.union_counts[i], c.union_theta))
        return out

    def evaluate(self) -> dict[str, float]:
        """The summary of the module docstring."""
        checks = [row for row in self._checks() if row[-1]]
        outside = sum(1 for _, _, p, _, lo, hi, _, _ in checks if not lo <= p <= hi)
        return {
            **self.summary,
            "mc_trials": float(self.trials),
            "mc_checked": float(len(checks)),
            "mc_outside_ci": float(outside),
            "mc_max_abs_z": max((abs(row[6]) for row in checks), default=0.0),
        }

    def artifacts(self) -> dict[str, np.ndarray]:
        c = self.config
        arrays = dict(self.curves)
        arrays["mc_match_counts"] = self.match_counts
        arrays["mc_noise_counts"] = self.noise_counts
        arrays["mc_union_m"] = np.asarray(c.mc_union_m, dtype=np.int64)
        for i, m in enumerate(c.mc_union_m):  # 1-D each (a 2-D array would be shown as an image)
            arrays[f"mc_union_counts_m{m}"] = self.union_counts[i]
        rows = self._checks()
        for kind in ("match", "noise", "union"):
            sel = [r for r in rows if r[0] == kind]
            if not sel:
                continue
            arrays[f"mc_{kind}_x"] = np.array([r[1] for r in sel], dtype=np.int64)
            for j, name in ((2, "theory"), (3, "rate"), (4, "low"), (5, "high")):
                arrays[f"mc_{kind}_{name}"] = np.array([r[j] for r in sel], dtype=np.float64)
        return arrays

    def state_dict(self) -> dict[str, Any]:
        return {
            "generator": self.generator.get_state(),
            "match_counts": torch.from_numpy(self.match_counts.copy()),
            "noise_counts": torch.from_numpy(self.noise_counts.copy()),
            "union_counts": torch.from_numpy(self.union_counts.copy()),
            "trials": self.trials,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])
        self.match_counts = state["match_counts"].numpy().copy()
        self.noise_counts = state["noise_counts"].numpy().copy()
        self.union_counts = state["union_counts"].numpy().copy()
        self.trials = int(state["trials"])

    @classmethod
    def figures(cls, results: Results) -> dict[str, Figure]:
        """Error vs threshold, false match vs n, union capacity, Monte Carlo vs theory."""
        from neurosim.plotting.sdr import (
            plot_error_vs_threshold,
            plot_false_match_vs_n,
            plot_simulation_check,
            plot_union_capacity,
        )

        arrays = results.arrays
        cfg = results.attrs.get("config", {})
        cfg = cfg if isinstance(cfg, dict) else {}
        run = results.path.parent.name
        figures: dict[str, Figure] = {}
        if "theta" in arrays:
            levels = [float(x) for x in arrays["noise_levels"]]
            fn = {f"{_pct(x)}% noise": arrays[f"false_negative_noise{_pct(x)}"] for x in levels}
            best = {f"{_pct(x)}% noise": int(t) for x, t in zip(levels, arrays["optimal_theta"],
                                                                 strict=True)}  # fmt: skip
            what = f"n={cfg.get('n')}, a={cfg.get('a')}, s={cfg.get('s')}"
            figures["error_vs_threshold"] = plot_error_vs_threshold(
                arrays["theta"], arrays["false_match"], fn, optimum=best,
                title=f"segment errors vs threshold ({what}), run {run}",
            )  # fmt: skip
        size_keys = sorted(k for k in arrays if k.startswith("false_match_vs_n_a"))
        if size_keys and "n_values" in arrays:
            curves = {f"a = {k.removeprefix('false_match_vs_n_a')}": arrays[k] for k in size_keys}
            what = f"s={cfg.get('s_vs_n')}, theta={cfg.get('theta_vs_n')}"
            figures["false_match_vs_n"] = plot_false_match_vs_n(
                arrays["n_values"], curves, title=f"false match vs n ({what}), run {run}"
            )
        union_keys = [k for k in arrays if k.startswith("union_false_match_n")]
        if union_keys and "union_m" in arrays:
            curves = {f"n = {k.removeprefix('union_false_match_n')} (theory, expected union)":
                      arrays[k] for k in union_keys}  # fmt: skip
            simulated = None
            if "mc_union_x" in arrays:
                rate, lo, hi = (
                    arrays["mc_union_rate"],
                    arrays["mc_union_low"],
                    arrays["mc_union_high"],
                )
                first = (cfg.get("union_n") or ["?"])[0]
                simulated = {f"n = {first} Monte Carlo": (arrays["mc_union_x"], rate,
                             np.clip(np.vstack([rate - lo, hi - rate]), 0, None))}  # fmt: skip
            what = f"a={cfg.get('union_a')}, s={cfg.get('union_s')}, theta={cfg.get('union_theta')}"
            figures["union_capacity"] = plot_union_capacity(
                arrays["union_m"], curves, simulated=simulated,  # type: ignore[arg-type]
                title=f"union of M patterns on one segment ({what}), run {run}",
            )  # fmt: skip
        for kind, what in (("match", "false match"), ("noise", "segment fires under noise")):
            if f"mc_{kind}_x" in arrays:
                figures[f"monte_carlo_{kind}"] = plot_simulation_check(
                    arrays[f"mc_{kind}_x"], arrays[f"mc_{kind}_theory"], arrays[f"mc_{kind}_rate"],
                    arrays[f"mc_{kind}_low"], arrays[f"mc_{kind}_high"],
                    title=f"{what}: Monte Carlo vs exact, run {run}",
                )  # fmt: skip
        return figures
