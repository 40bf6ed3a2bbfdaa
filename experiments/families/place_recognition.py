"""Place recognition with ensembles of region-specific, regularised STDP networks.

Hussaini, Milford & Fischer (ICRA 2023) on the tensor backend (:mod:`neurosim.place`):

1. Frames -> grayscale -> resize (``height x width``) -> patch normalisation (``patch``) ->
   input intensities (``encoding``: ``offset`` is the paper's ``(1 + z) / 2``; ``on`` keeps the
   positive part ``max(z, 0)`` of the normalised contrast, so the flat half of each image is
   silent; see ``docs/place_recognition.md`` for why it is the default).
2. The reference places are split into regions of about ``places_per_module`` places
   (``assignment``: contiguous blocks or shuffled); one Diehl & Cook module of ``n_exc``
   excitatory + ``n_exc`` inhibitory neurons per region, all simulated as one batched tensor
   computation. **One runner step is one epoch**: every module sees each of its places once (in
   a fresh random order), learning by STDP with weight normalisation and adaptive thresholds.
3. Evaluation: every module runs on the whole reference traverse (neuron labels, hyperactive
   counts, each neuron's mean response), then on every query, with the thresholds frozen at the
   learned values or, with ``query_threshold=mean``, at their mean for every neuron; with
   ``score_norm=reference_mean`` each neuron's response is divided by its mean reference
   response before the place scores. The hyperactive-neuron threshold is chosen (best
   ``(R@1, PR-AUC)``) on a calibration set: by default a second pass over the reference
   traverse (each reference place retrieved among the others; no query involved, so every
   query is a test query), or with ``calibration=queries`` a random share of the queries
   (``calibration_fraction``, ``split_seed``) left out of the test. Every reported metric is
   measured on the test queries: the ensemble with and without regularisation, SAD on the same
   preprocessed images, SAD on plain grayscale of the same size, and optionally the
   ``vprtempo`` package.

Metrics (:mod:`neurosim.metrics.place`): ``recall@N`` with the dataset's ground-truth
tolerance, ``pr_auc`` = best-match average precision (the single-match VPR precision-recall
curve; this reproduces the issue author's SAD numbers on Corridor exactly), ``recall@100p``.
Summary keys are ``<method>/<metric>`` with methods ``snn``, ``snn_reg``, ``sad``,
``sad_gray`` and ``vprtempo``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from experiments.base import Experiment, RunConfig
from experiments.config import MAX_SEED, ConfigRangeError, bounded, one_of
from experiments.data import data_root
from experiments.registry import register
from neurosim.datasets.place import (
    PlaceDataset,
    generated_route,
    load_corridor,
    load_nordland,
    load_place_folder,
    load_robotcar,
)
from neurosim.functional.conductance import ConductanceLIFParameters
from neurosim.functional.plasticity import STDPParameters
from neurosim.functional.wta import INTEGRATORS, WTAParameters
from neurosim.metrics.place import ground_truth_matrix, place_metrics
from neurosim.place import (
    ModularPlaceNet,
    choose_threshold,
    equalised_thresholds,
    hyperactive_candidates,
    match_rate,
    preprocess,
    sad_similarity,
    sequence_match,
    split_regions,
    training_schedule,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from experiments.results import Results

DATASETS = ("route", "corridor", "folder", "nordland", "robotcar")
ENCODINGS = ("on", "offset", "onoff")
METHODS = ("snn", "snn_reg", "sad", "sad_gray", "vprtempo")


@dataclass
class PlaceRecognitionConfig(RunConfig):
    """Configuration of :class:`PlaceRecognition` (module docstring).

    Attributes:
        dataset: ``route`` (generated, embedded), ``corridor`` (``<data_root>/vpr/corridor``),
            ``folder`` (generic layout at ``dataset_path``), ``nordland`` or ``robotcar``
            (published layouts at ``dataset_path``).
        dataset_path: folder of ``folder`` / ``nordland`` / ``robotcar``.
        route_places: places of the generated route.
        route_seed: seed of the route's query changes.
        max_places: keep only the first this many places of a real dataset (0 = all).
        height, width: image size after resizing.
        patch: patch-normalisation window (0 = none).
        encoding: ``on`` or ``offset`` (module docstring).
        places_per_module: target region size (the reference: 25).
        n_exc: excitatory (= inhibitory) neurons per module (the reference: 400; 100 learns
            better in the few epochs used here, see ``docs/place_recognition.md``).
        assignment: ``contiguous`` or ``shuffled`` regions.
        presentation_ms, dt_ms, max_rate_hz: stimulus duration, time step, rate of intensity 1.
        query_rate_hz: rate of intensity 1 when recording the reference and answering queries,
            with the thresholds frozen (0: ``max_rate_hz``); more input spikes, less noise.
        theta_plus: threshold increase per spike while learning (mV).
        weight_sum: column sum of the normalised input weights.
        nu_post, nu_pre: STDP potentiation and depression rates (Diehl & Cook: 0.01, 1e-4;
            0.05 learns templates in a few epochs).
        triplet: Diehl & Cook's triplet potentiation (needs earlier post spikes) or the pair rule.
        integrator: ``exponential`` (stable) or ``euler`` membrane update.
        stdp_mode: ``presentation`` (update once per stimulus) or ``online`` (every step).
        query_ms: presentation of each image when recording the reference traverse and
            answering queries (0: ``presentation_ms``); longer: more spikes, less noise.
        query_threshold: the excitatory thresholds used when recording the reference traverse
            and answering queries: ``learned`` (each neuron's adaptive threshold, as Diehl &
            Cook), ``mean`` (every neuron gets the mean learned threshold;
            :func:`neurosim.place.equalised_thresholds`) or ``rate`` (every neuron gets one
            threshold, set by bisection, :func:`neurosim.place.match_rate`, so that the
            excitatory neurons fire at ``query_target_hz`` on average over every third
            reference image, with the query settings below; no query is used).
        query_target_hz: the mean excitatory firing rate ``query_threshold=rate`` aims for.
        query_code: input spike trains when recording and querying: ``poisson`` (as in
            learning) or ``regular`` (each pixel fires regularly at its rate, random phase;
            :func:`neurosim.plasticity.ensemble.regular_spikes`).
        query_inhibition: factor on the lateral inhibition weight when recording and querying
            (1: as in learning; 0: none, every neuron's count grades its own input drive).
        query_weight_norm: the input weights when recording and querying: ``learned`` (as
            normalised in learning) or ``l2`` (every neuron's normalised weights rescaled to
            the same Euclidean length, their mean: each neuron's drive ranks images by cosine
            similarity; :meth:`neurosim.plasticity.DiehlCookEnsemble.query_weights`).
        weight_norm: the weight normalisation during learning: ``l1`` (Diehl & Cook: fixed
            sum ``weight_sum``) or ``l2`` (fixed Euclidean length ``weight_sum``).
        score_norm: ``none`` or ``reference_mean``: divide each neuron's response by its mean
            response over the recorded reference traverse before the place scores
            (:func:`neurosim.place.normalise_by_reference`).
        score_center: subtract each query's mean place score from its scores
            (:func:`neurosim.place.center_scores`): the best match is unchanged, the confidence
            of a query is how far its best place stands out from its average place (PR curves).
        calibration: how the hyperactive-neuron threshold is chosen: ``reference`` (a second
            pass over the reference traverse, scored as retrieval of each reference place among
            the others with tolerance 1; no query is used, every query is a test query) or
            ``queries`` (a random ``calibration_fraction`` of the queries, left out of the test).
        calibration_fraction: share of the queries used when ``calibration=queries``.
        split_seed: seed of the calibration / test split.
        sequence_length: sequence matching over this many queries (1 = off).
        batch_size: queries simulated together.
        vprtempo: also train and test the ``vprtempo`` package (VPRTempo 1.1.10) on the same
            images and split.
        vprtempo_epochs: its training epochs (paper: 4).
        steps: training epochs (one runner step each).
    """

    dataset: str = one_of("route", DATASETS)
    dataset_path: str = ""
    route_places: int = bounded(120, ge=2)
    route_seed: int = bounded(0, ge=0, le=MAX_SEED)
    max_places: int = bounded(0, ge=0)
    height: int = bounded(48, ge=4)
    width: int = bounded(64, ge=4)
    patch: int = bounded(7, ge=0)
    encoding: str = one_of("on", ENCODINGS)
    places_per_module: int = bounded(25, ge=1)
    n_exc: int = bounded(100, ge=1)
    assignment: str = one_of("contiguous", ("contiguous", "shuffled"))
    presentation_ms: float = bounded(200.0, gt=0)
    dt_ms: float = bounded(1.0, gt=0, le=1.0)
    max_rate_hz: float = bounded(63.75, gt=0)
    query_rate_hz: float = bounded(0.0, ge=0)
    theta_plus: float = bounded(0.5, ge=0)
    weight_sum: float = bounded(40.0, gt=0)
    nu_post: float = bounded(0.05, ge=0)
    nu_pre: float = bounded(1e-4, ge=0)
    triplet: bool = False
    integrator: str = one_of("exponential", INTEGRATORS)
    stdp_mode: str = one_of("presentation", ("presentation", "online"))
    query_ms: float = bounded(0.0, ge=0)
    query_threshold: str = one_of("learned", ("learned", "mean", "rate"))
    query_target_hz: float = bounded(7.0, gt=0)
    query_code: str = one_of("poisson", ("poisson", "regular"))
    query_inhibition: float = bounded(1.0, ge=0)
    query_weight_norm: str = one_of("learned", ("learned", "l2"))
    weight_norm: str = one_of("l1", ("l1", "l2"))
    score_norm: str = one_of("none", ("none", "reference_mean"))
    score_center: bool = False
    calibration: str = one_of("reference", ("reference", "queries"))
    calibration_fraction: float = bounded(0.2, gt=0, lt=1)
    split_seed: int = bounded(0, ge=0, le=MAX_SEED)
    sequence_length: int = bounded(1, ge=1)
    batch_size: int = bounded(16, ge=1)
    vprtempo: bool = False
    vprtempo_epochs: int = bounded(4, ge=1)
    steps: int = 6
    log_every: int = 1
    checkpoint_every: int = 3

    def validate(self) -> None:
        """Patch windows are odd; the rate must fit one spike per step."""
        if self.patch and self.patch % 2 == 0:
            raise ConfigRangeError("patch", self.patch, "0 or an odd integer")
        for key in ("max_rate_hz", "query_rate_hz"):
            if getattr(self, key) * self.dt_ms / 1000.0 > 1.0:
                raise ConfigRangeError(
                    key, getattr(self, key), f"<= {1000.0 / self.dt_ms} (1 spike per step)"
                )
        if self.dataset in ("folder", "nordland", "robotcar") and not self.dataset_path:
            raise ConfigRangeError(
                "dataset_path", self.dataset_path, f"a folder for dataset={self.dataset}"
            )


def load_dataset(c: PlaceRecognitionConfig) -> PlaceDataset:
    """The dataset named by the config (module docstring of :mod:`neurosim.datasets.place`)."""
    limit = c.max_places or None
    if c.dataset == "route":
        return generated_route(c.route_places, seed=c.route_seed)
    if c.dataset == "corridor":
        data = load_corridor(data_root(c.data_root))
    elif c.dataset == "folder":
        data = load_place_folder(c.dataset_path, limit=limit)
    elif c.dataset == "nordland":
        data = load_nordland(c.dataset_path, n_places=limit)
    else:
        data = load_robotcar(c.dataset_path, n_places=limit)
    if limit and len(data.reference) > limit:
        keep = [[r for r in m if r < limit] for m in data.matches[:limit]]
        data = PlaceDataset(data.name, data.reference[:limit], data.query[:limit], keep)
    return data


def encode_images(frames: torch.Tensor, c: PlaceRecognitionConfig) -> torch.Tensor:
    """Frames -> ``[N, height * width]`` input intensities in ``[0, 1]``."""
    x = preprocess(frames, (c.height, c.width), c.patch or None)
    x = x.reshape(x.shape[0], -1)
    if c.encoding == "on" and c.patch:
        x = (2.0 * x - 1.0).clamp_(min=0.0)
    elif c.encoding == "onoff" and c.patch:
        z = 2.0 * x - 1.0
        x = torch.cat([z.clamp(min=0.0), (-z).clamp_(min=0.0)], dim=1)
    return x.float()


def _numpy(x: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def score_similarity(
    similarity: torch.Tensor | np.ndarray,
    ground_truth: np.ndarray,
    sequence_length: int = 1,
    rows: np.ndarray | None = None,
) -> dict[str, float]:
    """The experiment's metrics of a ``[queries, references]`` similarity: sequence matching
    over ``sequence_length`` queries (when > 1), then ``place_metrics`` at N = 1, 5, 10 on the
    query ``rows`` (all when None). Also scores a peer's saved output
    (``benchmarks/place_similarity.py``)."""
    s = similarity.cpu().numpy() if isinstance(similarity, torch.Tensor) else similarity
    if sequence_length > 1:
        s = sequence_match(torch.as_tensor(s), sequence_length).numpy()
    if rows is not None:
        s, ground_truth = s[rows], ground_truth[rows]
    return place_metrics(s, ground_truth, (1, 5, 10))


def split_queries(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint ``(calibration, test)`` query indices (sorted), ``round(fraction * n)`` of them
    (at least 1) for calibration."""
    perm = np.random.default_rng(seed).permutation(n)
    k = min(max(1, round(fraction * n)), n - 1)
    return np.sort(perm[:k]), np.sort(perm[k:])


@register
class PlaceRecognition(Experiment[PlaceRecognitionConfig]):
    """Modular STDP ensembles for visual place recognition vs SAD (and VPRTempo)."""

    name = "place_recognition"
    config_class = PlaceRecognitionConfig
    description = (
        "ensemble of region-specific, regularised Diehl & Cook STDP networks for place "
        "recognition; R@1/R@5/PR-AUC vs SAD and VPRTempo"
    )

    def setup(self) -> None:
        """Load and preprocess the traverses, split the regions, build the ensemble."""
        c = self.config
        device = self.runtime.device
        self.data = load_dataset(c)
        self.reference = encode_images(self.data.reference, c).to(device)
        self.query = encode_images(self.data.query, c).to(device)
        self.generator = torch.Generator(device=device).manual_seed(self.runtime.seed)
        cpu = torch.Generator().manual_seed(self.runtime.seed)
        n_places = len(self.reference)
        self.regions = split_regions(
            n_places, c.places_per_module, assignment=c.assignment, generator=cpu
        )
        self.schedule = training_schedule(self.regions, c.steps, generator=cpu)
        self.per_epoch = max(len(r) for r in self.regions)
        wta = WTAParameters(
            exc=ConductanceLIFParameters.diehl_cook_excitatory(dt=c.dt_ms, theta_plus=c.theta_plus),
            inh=ConductanceLIFParameters.diehl_cook_inhibitory(dt=c.dt_ms),
            integrator=c.integrator,
        )
        stdp = STDPParameters.diehl_cook(
            dt=c.dt_ms, nu_post=c.nu_post, nu_pre=c.nu_pre, triplet=c.triplet
        )
        self.model = ModularPlaceNet(
            self.regions,
            n_places,
            self.reference.shape[1],
            c.n_exc,
            generator=self.generator,
            device=device,
            wta=wta,
            stdp=stdp,
            weight_sum=c.weight_sum,
            weight_norm=c.weight_norm,
            presentation_ms=c.presentation_ms,
            max_rate_hz=c.max_rate_hz,
            stdp_mode=c.stdp_mode,
        )
        self.train_seconds = 0.0
        self.timing: dict[str, float] = {}

    def step(self, step: int) -> dict[str, float | torch.Tensor]:
        """One epoch: ``max region size`` presentations, every module on its own place."""
        start = time.perf_counter()
        spikes = torch.zeros((), device=self.runtime.device)
        for k in range(step * self.per_epoch, (step + 1) * self.per_epoch):
            spikes = (
                spikes
                + self.model.train_step(
                    self.reference, self.schedule[k], generator=self.generator
                ).sum()
            )
        if self.runtime.device.type == "cuda":
            torch.cuda.synchronize(self.runtime.device)
        self.train_seconds += time.perf_counter() - start
        n = self.per_epoch * len(self.regions)
        return {
            "spikes_per_presentation": spikes / n,
            "theta_mean_mv": self.model.net.theta.mean(),
            "epoch_seconds": time.perf_counter() - start,
        }

    # ------------------------------------------------------------------ evaluation
    def _metrics(self, similarity: torch.Tensor | np.ndarray, rows: np.ndarray) -> dict[str, float]:
        return score_similarity(
            similarity, self.data.ground_truth(), self.config.sequence_length, rows
        )

    def _rate_matched_theta(self, options: dict[str, Any]) -> torch.Tensor:
        """One threshold for every neuron, so that the excitatory neurons fire at
        ``query_target_hz`` on average over every third reference image (config docstring)."""
        c = self.config
        net = self.model.net
        images = self.reference[::3]
        seconds = (c.query_ms or c.presentation_ms) / 1000.0
        seed = self.runtime.seed + 2

        def rate(value: float) -> float:
            gen = torch.Generator(device=self.runtime.device).manual_seed(seed)
            theta = torch.full_like(net.theta, value)
            counts = net.respond(images, generator=gen, theta=theta, **options)
            return float(counts.mean()) / seconds

        high = max(1.5 * float(net.theta.mean()), 1.0)
        return torch.full_like(net.theta, match_rate(rate, c.query_target_hz, 0.0, high))

    @torch.no_grad()
    def evaluate(self) -> dict[str, float]:
        """Record, calibrate the hyperactive threshold, test every method on the test queries."""
        c = self.config
        gen = torch.Generator(device=self.runtime.device).manual_seed(self.runtime.seed + 1)
        rate = c.query_rate_hz or None
        normalise = c.score_norm == "reference_mean"
        t0 = time.perf_counter()
        options: dict[str, Any] = {
            "batch_size": c.batch_size,
            "max_rate_hz": rate,
            "presentation_ms": c.query_ms or None,
            "code": c.query_code,
            "w_inh_exc": c.query_inhibition * self.model.net.wta.w_inh_exc,
            "weight_norm": "l2" if c.query_weight_norm == "l2" else None,
        }
        theta: torch.Tensor | None = None
        if c.query_threshold == "mean":
            theta = equalised_thresholds(self.model.net.theta)
        elif c.query_threshold == "rate":
            theta = self._rate_matched_theta(options)
            self.timing["threshold_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
        options["theta"] = theta
        self.model.record(self.reference, generator=gen, **options)
        t1 = time.perf_counter()

        def respond(images: torch.Tensor) -> torch.Tensor:
            return self.model.net.respond(images, generator=gen, **options)

        responses = respond(self.query)
        if self.runtime.device.type == "cuda":
            torch.cuda.synchronize(self.runtime.device)
        t2 = time.perf_counter()
        if c.calibration == "queries":
            calibration, test = split_queries(len(self.query), c.calibration_fraction, c.split_seed)
            cal_responses, cal_truth = responses[calibration], self.data.ground_truth()[calibration]
        else:
            test = np.arange(len(self.query))
            cal_responses = respond(self.reference)
            cal_truth = ground_truth_matrix(len(self.reference), len(self.reference), tolerance=1)

        def calibrate(threshold: int | None) -> tuple[float, float]:
            scores = self.model.scores(
                cal_responses, threshold, normalise=normalise, center=c.score_center
            )
            m = place_metrics(scores.cpu().numpy(), cal_truth)
            return m["recall@1"], m["pr_auc"]

        candidates = hyperactive_candidates(len(self.reference))
        threshold, _ = choose_threshold(candidates, calibrate)
        similarities: dict[str, torch.Tensor | np.ndarray] = {
            "snn": self.model.scores(responses, normalise=normalise, center=c.score_center),
            "snn_reg": self.model.scores(
                responses, threshold, normalise=normalise, center=c.score_center
            ),
            "sad": sad_similarity(self.query, self.reference),
        }
        gray = preprocess(self.data.reference, (c.height, c.width), None)
        similarities["sad_gray"] = sad_similarity(
            preprocess(self.data.query, (c.height, c.width), None), gray
        )
        if c.vprtempo:
            from experiments.vprtempo_peer import vprtempo_similarity

            t3 = time.perf_counter()
            peer: dict[str, float] = {}
            similarities["vprtempo"] = vprtempo_similarity(
                self.data.reference,
                self.data.query,
                regions=[torch.arange(len(self.reference))],
                epochs=c.vprtempo_epochs,
                seed=self.runtime.seed,
                timing=peer,
            )
            self.timing["vprtempo_total_s"] = time.perf_counter() - t3
            self.timing["vprtempo_train_s"] = peer["train_s"]
            self.timing["vprtempo_queries_per_s"] = len(self.query) / max(peer["query_s"], 1e-9)
        out: dict[str, float] = {}
        for method, sim in similarities.items():
            for key, value in self._metrics(sim, test).items():
                out[f"{method}/{key}"] = value
        out["hyperactive_threshold"] = float(threshold) if threshold is not None else 0.0
        out["silenced_fraction"] = (
            float((self.model.activity >= threshold).float().mean()) if threshold else 0.0
        )
        out["n_modules"] = float(len(self.regions))
        out["n_places"] = float(len(self.reference))
        out["n_test_queries"] = float(len(test))
        self.timing.update(
            train_s=self.train_seconds,
            record_s=t1 - t0,
            query_s=t2 - t1,
            queries_per_s=len(self.query) / max(t2 - t1, 1e-9),
            load_average_1min=os.getloadavg()[0],
        )
        if self.results is not None:
            # timings vary from run to run: kept as attributes, not in the compared summary
            self.results.set_attrs({"timing": dict(self.timing)})
        self._arrays = {
            "similarity_snn_reg": _numpy(similarities["snn_reg"]),
            "similarity_sad": _numpy(similarities["sad"]),
            "ground_truth": self.data.ground_truth().astype(np.uint8),
            "test_queries": test.astype(np.int64),
            "hyperactive_counts": self.model.activity.cpu().numpy().astype(np.int64),
            "query_responses_sum": responses.sum(0).cpu().numpy().astype(np.float32),
            "query_responses": responses.cpu().numpy().astype(np.float32),
            "neuron_labels": self.model.labels.cpu().numpy().astype(np.int64),
            "reference_mean": self.model.reference_mean.cpu().numpy().astype(np.float32),
        }
        if "vprtempo" in similarities:
            self._arrays["similarity_vprtempo"] = _numpy(similarities["vprtempo"])
        return out

    def artifacts(self) -> dict[str, np.ndarray]:
        """Similarity matrices, ground truth, the test split, per-neuron reference activity,
        labels and mean reference response, and the query responses ``[Q, M, N]``."""
        return dict(getattr(self, "_arrays", {}))

    def state_dict(self) -> dict[str, Any]:
        """Weights, thresholds, the training generator and the training time so far."""
        return {
            "model": self.model.state_dict(),
            "generator": self.generator.get_state(),
            "train_seconds": self.train_seconds,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (after :meth:`setup`)."""
        self.model.load_state_dict(state["model"])
        self.generator.set_state(state["generator"])
        self.train_seconds = float(state["train_seconds"])

    @classmethod
    def figures(cls, results: Results) -> dict[str, Figure]:
        """PR curves, similarity matrices and the per-module activity histogram."""
        from neurosim.plotting.place import (
            plot_firing_histogram,
            plot_pr_curves,
            plot_similarity_matrix,
        )

        arrays = results.arrays
        if "ground_truth" not in arrays:
            return {}
        run = str(results.path.parent.name)
        gt = arrays["ground_truth"].astype(bool)
        test = arrays.get("test_queries", np.arange(len(gt)))
        curves = {
            name.removeprefix("similarity_"): arrays[name][test]
            for name in sorted(arrays)
            if name.startswith("similarity_")
        }
        figs = {
            "pr_curves": plot_pr_curves(curves, gt[test], title=f"place_recognition {run}"),
            "similarity_snn": plot_similarity_matrix(
                arrays["similarity_snn_reg"], gt, title=f"SNN ensemble (regularised), {run}"
            ),
            "similarity_sad": plot_similarity_matrix(
                arrays["similarity_sad"], gt, title=f"SAD, {run}"
            ),
        }
        if "hyperactive_counts" in arrays:
            counts = arrays["hyperactive_counts"]
            figs["module_activity"] = plot_firing_histogram(
                counts, title=f"reference places each neuron fires for, {run}"
            )
        return figs
