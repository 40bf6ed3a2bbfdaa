"""An ensemble of Diehl & Cook (2015) STDP networks simulated as one batched computation.

Each of the ``M`` modules is ``input (n_input Poisson neurons) -> excitatory layer (n_exc
conductance LIF with adaptive threshold) <-> inhibitory layer (n_exc)``
(:mod:`neurosim.functional.wta`), and learns its input->excitatory weights by unsupervised STDP
(:mod:`neurosim.functional.plasticity`) with per-neuron weight normalisation. All modules share
one tensor of weights ``weight [M, n_input, n_exc]`` and one of thresholds ``theta [M, n_exc]``,
so a training presentation advances every module at once (each on its own image), and a query
runs every module on the same image in one pass.

Stimulus protocol (per presentation, as Diehl & Cook and Hussaini et al.): the columns of
``weight`` are normalised to ``weight_sum``; every input pixel in ``[0, 1]`` fires as a Poisson
process of rate ``pixel * max_rate_hz`` for ``presentation_ms``; the network starts each
presentation at rest (the reference codes' 150 ms resting period between presentations is
replaced by this reset; ``theta`` is kept). Learning applies the STDP update of the whole
presentation at its end (``stdp_mode="presentation"``, fast) or after every step (``"online"``, as
Brian2 does; slower).

A presentation (learning or query) is the ``wta_present`` operation and the STDP update of a
presentation the ``stdp_window`` operation of the kernel registry: the ``torch`` reference
computes the input currents of many steps as one matrix product; the ``numba`` backend (the
``auto`` choice on the CPU, :mod:`neurosim.functional._numba_wta`) works from the input spikes
themselves (a few percent of the pixels fire per step), several times faster on the CPU.
``backend`` chooses; both draw the same Poisson inputs from the generator.

Example::

    net = DiehlCookEnsemble(n_modules=5, n_input=784, n_exc=400, generator=g)
    counts = net.learn(images_per_module, generator=g)     # [5, 784] -> spike counts [5, 400]
    responses = net.respond(query_images, generator=g)      # [B, 784] -> [B, 5, 400]
"""

from __future__ import annotations

import torch
from torch import nn

from neurosim.backend import InputError, check_tensor, kernels
from neurosim.functional.plasticity import (
    STDPParameters,
    STDPState,
    _normalize_columns,
    _stdp_step,
)
from neurosim.functional.wta import WTAParameters, WTAState, _wta_step, wta_run

STDP_MODES = ("presentation", "online")
WEIGHT_NORMS = ("l1", "l2")
INPUT_CODES = ("poisson", "regular")


def poisson_spikes(
    intensity: torch.Tensor,
    steps: int,
    *,
    max_rate_hz: float,
    dt_ms: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Poisson (Bernoulli per step) spike trains ``[T, *S]``: each element of ``intensity``
    (in ``[0, 1]``) fires with probability ``intensity * max_rate_hz * dt_ms / 1000`` per step.

    Unchecked fast path (no host sync): callers validate ``intensity`` once. On the CPU the
    trains are drawn by numba with geometric gaps between an input's spikes (one random number
    per spike instead of one per step and input; :func:`neurosim.functional._numba_wta.
    bernoulli_trains`), seeded by one draw from ``generator``; elsewhere by ``torch.rand`` from
    ``generator`` (on its own device; moved to ``intensity``'s device if different). Both are
    the same Bernoulli process; a seeded ``generator`` reproduces the trains on one device.
    """
    return _poisson_mask(intensity, steps, max_rate_hz, dt_ms, generator).to(intensity.dtype)


def _poisson_mask(
    intensity: torch.Tensor,
    steps: int,
    max_rate_hz: float,
    dt_ms: float,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """:func:`poisson_spikes` as a boolean tensor (a quarter of the memory)."""
    p = intensity * (max_rate_hz * dt_ms / 1000.0)
    if intensity.device.type == "cpu" and (generator is None or generator.device.type == "cpu"):
        from neurosim.functional._numba_wta import bernoulli_trains

        return bernoulli_trains(p, steps, generator)
    shape = (steps, *intensity.shape)
    if generator is not None and generator.device != intensity.device:
        u = torch.rand(shape, generator=generator, dtype=intensity.dtype).to(intensity.device)
    else:
        u = torch.rand(shape, generator=generator, dtype=intensity.dtype, device=intensity.device)
    return u < p


def regular_spikes(
    intensity: torch.Tensor,
    steps: int,
    *,
    max_rate_hz: float,
    dt_ms: float,
    phase: torch.Tensor,
    start: int = 0,
) -> torch.Tensor:
    """Regular (deterministic, phase-shifted) spike trains ``[T, *S]`` at the same rates as
    :func:`poisson_spikes`: element ``k`` with per-step probability ``p_k`` fires at step ``t``
    when ``floor(phase_k + (t + 1) p_k)`` exceeds ``floor(phase_k + t p_k)``, so it fires
    every ``1 / p_k`` steps, first after ``(1 - phase_k) / p_k`` steps. ``phase`` (in
    ``[0, 1)``, shaped like ``intensity``) staggers the inputs; ``start`` is the first step's
    index (to continue a train in chunks). Example: ``p = 0.25``, ``phase = 0`` -> spikes at
    steps 3, 7, 11, ...
    """
    mask = _regular_mask(intensity, steps, max_rate_hz, dt_ms, phase, start)
    return mask.to(intensity.dtype)


def _regular_mask(
    intensity: torch.Tensor,
    steps: int,
    max_rate_hz: float,
    dt_ms: float,
    phase: torch.Tensor,
    start: int = 0,
) -> torch.Tensor:
    """:func:`regular_spikes` as a boolean tensor (numba on the CPU: same arithmetic, one pass)."""
    p = intensity * (max_rate_hz * dt_ms / 1000.0)
    if intensity.device.type == "cpu" and intensity.dtype in (torch.float32, torch.float64):
        from neurosim.functional._numba_wta import regular_trains

        return regular_trains(p, phase.to(intensity.dtype), steps, start)
    t = torch.arange(start, start + steps + 1, dtype=intensity.dtype, device=intensity.device)
    acc = torch.floor(phase.unsqueeze(0) + t.view(-1, *([1] * intensity.dim())) * p.unsqueeze(0))
    return acc[1:] > acc[:-1]


class DiehlCookEnsemble(nn.Module):
    """``M`` Diehl & Cook STDP networks with batched simulation (module docstring).

    Args:
        n_modules: ``M``.
        n_input: input neurons (pixels) per module.
        n_exc: excitatory (and inhibitory) neurons per module (reference: 400).
        wta: neuron and lateral-connection parameters (Diehl & Cook by default; the
            excitatory ``theta_plus`` applies while learning, ``theta`` is frozen in
            :meth:`respond`).
        stdp: STDP parameters (``dt`` must equal the neurons' ``dt``).
        weight_sum: target column norm of the normalised input weights: their sum for
            ``weight_norm="l1"`` (Diehl & Cook: 78 for 784 inputs; scaled here as
            ``0.1 * n_input`` when ``None``), their Euclidean length for ``"l2"`` (then
            ``None`` means ``0.1 * sqrt(n_input)``).
        weight_norm: ``"l1"`` (Diehl & Cook: each neuron's input weights sum to
            ``weight_sum``) or ``"l2"`` (each neuron's input weight vector has length
            ``weight_sum``, so its drive ranks inputs by cosine similarity with its weights;
            :func:`~neurosim.functional.plasticity.normalize_columns` with ``p=2``).
        init_scale: initial weights are ``init_scale * U(0.01, 1.01)`` (Diehl & Cook: 0.3).
        presentation_ms: duration of one stimulus (reference: 350 ms).
        max_rate_hz: rate of a pixel of intensity 1 (reference: 255 / 4 = 63.75 Hz).
        stdp_mode: ``"presentation"`` or ``"online"`` (module docstring).
        generator: draws the initial weights (a CPU or device generator; required for
            reproducibility).
        device, dtype: where the weights live.
        backend: kernel backend of the presentations and STDP updates (``"auto"``: numba on
            the CPU where it imports, else torch; ``"torch"``; ``"numba"``).
    """

    weight: torch.Tensor
    theta: torch.Tensor

    def __init__(
        self,
        n_modules: int,
        n_input: int,
        n_exc: int = 400,
        *,
        wta: WTAParameters | None = None,
        stdp: STDPParameters | None = None,
        weight_sum: float | None = None,
        weight_norm: str = "l1",
        init_scale: float = 0.3,
        presentation_ms: float = 350.0,
        max_rate_hz: float = 63.75,
        stdp_mode: str = "presentation",
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float32,
        backend: str = "auto",
    ) -> None:
        super().__init__()
        self.backend = backend
        for label, size in (("n_modules", n_modules), ("n_input", n_input), ("n_exc", n_exc)):
            if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                raise InputError(f"DiehlCookEnsemble {label} must be a positive int, got {size!r}")
        self.wta = (wta or WTAParameters()).validate()
        self.stdp = (stdp or STDPParameters.diehl_cook(dt=self.wta.exc.dt)).validate()
        if self.stdp.dt != self.wta.exc.dt:
            raise InputError(
                f"DiehlCookEnsemble: STDP dt={self.stdp.dt} ms must equal the neurons' "
                f"dt={self.wta.exc.dt} ms"
            )
        if stdp_mode not in STDP_MODES:
            raise InputError(f"stdp_mode must be one of {STDP_MODES}, got {stdp_mode!r}")
        checks: tuple[tuple[str, float], ...] = (
            ("presentation_ms", presentation_ms),
            ("max_rate_hz", max_rate_hz),
            ("init_scale", init_scale),
        )
        for name, value in checks:
            if not value > 0:
                raise InputError(f"DiehlCookEnsemble {name} must be positive, got {value!r}")
        self.steps = max(1, round(presentation_ms / self.wta.exc.dt))
        self.max_rate_hz = float(max_rate_hz)
        if weight_norm not in WEIGHT_NORMS:
            raise InputError(f"weight_norm must be one of {WEIGHT_NORMS}, got {weight_norm!r}")
        self.weight_norm = weight_norm
        self._norm_p = 1 if weight_norm == "l1" else 2
        default_sum = 0.1 * (n_input if weight_norm == "l1" else n_input**0.5)
        self.weight_sum = default_sum if weight_sum is None else float(weight_sum)
        if not self.weight_sum > 0:
            raise InputError(f"weight_sum must be positive, got {weight_sum!r}")
        self.stdp_mode = stdp_mode
        self.n_modules, self.n_input, self.n_exc = n_modules, n_input, n_exc
        shape = (n_modules, n_input, n_exc)
        if generator is not None and generator.device.type != torch.device(device or "cpu").type:
            init = torch.rand(shape, generator=generator, dtype=dtype)
        else:
            init = torch.rand(shape, generator=generator, dtype=dtype, device=device)
        weight = (init + 0.01) * init_scale
        self.register_buffer("weight", weight.to(device))
        self.register_buffer("theta", torch.zeros(n_modules, n_exc, dtype=dtype, device=device))

    # ------------------------------------------------------------------ helpers
    @property
    def dt(self) -> float:
        """Simulation step (ms)."""
        return self.wta.exc.dt

    def _check_images(self, images: torch.Tensor, name: str, ndim: tuple[int, ...]) -> None:
        check_tensor(images, name, ndim=ndim, device=self.weight.device)
        if images.shape[-1] != self.n_input:
            raise InputError(
                f"{name} has {images.shape[-1]} inputs in its last dimension; the ensemble "
                f"expects n_input={self.n_input}"
            )
        if images.numel() and (float(images.min()) < 0.0 or float(images.max()) > 1.0):
            raise InputError(f"{name} must hold intensities in [0, 1]")

    def normalize_(self) -> None:
        """Scale every excitatory neuron's input weights to norm ``weight_sum`` (their sum, or
        their Euclidean length for ``weight_norm="l2"``; in place)."""
        self.weight.copy_(_normalize_columns(self.weight, self.weight_sum, self._norm_p))

    # ------------------------------------------------------------------ learning
    @torch.no_grad()
    def learn(self, images: torch.Tensor, *, generator: torch.Generator | None) -> torch.Tensor:
        """One training presentation: module ``m`` sees ``images[m]`` (``[M, n_input]`` in
        ``[0, 1]``; an all-zero row leaves its module unchanged, so modules with fewer places can
        idle). Normalises the weights, simulates with adaptive thresholds, applies STDP.

        Returns the excitatory spike counts ``[M, n_exc]``.
        """
        self._check_images(images, "DiehlCookEnsemble.learn images [M, n_input]", (2,))
        if images.shape[0] != self.n_modules:
            raise InputError(
                f"learn images have {images.shape[0]} rows; expected one per module "
                f"({self.n_modules})"
            )
        self.normalize_()
        images = images.to(self.weight.dtype)
        # [T, M, n_in] boolean spikes (the kernels read them as 0/1; a quarter of the memory)
        pre = _poisson_mask(images, self.steps, self.max_rate_hz, self.dt, generator)
        if self.stdp_mode == "presentation":
            spikes, theta = kernels.call(
                "wta_present",
                pre.unsqueeze(1),  # [T, 1, M, n_in]: one image per module
                self.weight,
                self.theta.unsqueeze(0),
                self.wta,
                backend=self.backend,
            )
            post = spikes[:, 0]
            trace = STDPState.zeros(pre[0].to(post.dtype), post[0])
            dw, *_ = kernels.call("stdp_window", pre, post, *trace, self.stdp, backend=self.backend)
            self.weight.add_(dw).clamp_(0.0, self.stdp.w_max)
            self.theta.copy_(theta[0])
            return post.sum(0)
        pre = pre.to(self.weight.dtype)
        like = self.theta
        state = WTAState.rest(like, self.wta, theta=self.theta)
        trace = STDPState.zeros(pre[0], like)
        post = torch.empty(self.steps, *like.shape, dtype=like.dtype, device=like.device)
        for t in range(self.steps):
            current = torch.einsum("mi,min->mn", pre[t], self.weight)
            post[t], state = _wta_step(current, state, self.wta)
            dw, trace = _stdp_step(pre[t], post[t], trace, self.stdp)
            self.weight.add_(dw).clamp_(0.0, self.stdp.w_max)
        self.theta.copy_(state.exc.theta)
        return post.sum(0)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def query_weights(self, weight_norm: str | None = None) -> torch.Tensor:
        """The input weights ``[M, n_input, n_exc]`` as :meth:`respond` uses them.

        Every presentation sees normalised weights (learning normalises before each one, and
        its last STDP update is not yet normalised). ``weight_norm="l2"`` then rescales each
        neuron's weights to the mean Euclidean length of all neurons' normalised weights
        (equal lengths: the drive ``w . x`` is ``|w| |x| cos(w, x)`` with the same ``|w|`` for
        every neuron, so neurons rank an image by cosine similarity); ``None`` keeps them.
        """
        weight = _normalize_columns(self.weight, self.weight_sum, self._norm_p)
        if weight_norm is None:
            return weight
        if weight_norm != "l2":
            raise InputError(f"query weight_norm must be None or 'l2', got {weight_norm!r}")
        length = weight.square().sum(dim=-2).sqrt().mean()
        return _normalize_columns(weight, length, 2)

    @torch.no_grad()
    def respond(
        self,
        images: torch.Tensor,
        *,
        generator: torch.Generator | None,
        batch_size: int = 128,
        time_chunk: int = 64,
        max_rate_hz: float | None = None,
        theta: torch.Tensor | None = None,
        presentation_ms: float | None = None,
        code: str = "poisson",
        w_inh_exc: float | None = None,
        weight_norm: str | None = None,
    ) -> torch.Tensor:
        """Spike counts of every module's excitatory neurons for each image, thresholds frozen.

        Args:
            images: ``[B, n_input]`` (every module sees the same image, one shared Poisson
                input layer) or ``[B, M, n_input]`` (one image per module), in ``[0, 1]``.
            generator: draws the Poisson inputs.
            batch_size: images simulated together (bounds memory).
            time_chunk: steps simulated per chunk off the CPU (below).
            max_rate_hz: input rate of intensity 1 for these queries (default: the training
                rate).
            theta: thresholds to use in place of the learned :attr:`theta` (broadcast to
                ``[M, n_exc]``; e.g. the learned thresholds' mean, see
                :func:`neurosim.place.equalised_thresholds`); default: the learned ones.
            presentation_ms: how long each image is shown (default: the training
                presentation); longer gives more spikes, less Poisson noise.
            code: input spike trains: ``"poisson"`` (as in learning) or ``"regular"``
                (:func:`regular_spikes`, each pixel at its rate with a random phase drawn from
                ``generator``: no rate noise).
            w_inh_exc: lateral inhibition weight for these queries (default: the learning
                one, ``wta.w_inh_exc``); weaker inhibition lets more neurons fire, so the
                counts grade the input drive more finely.

        On the CPU a whole presentation of at most about 16 MB of input spikes is drawn and
        simulated at once (the ``wta_present`` operation, numba by default). On other devices
        (the torch reference) the input spikes are drawn ``time_chunk`` steps at a time, the
        state carried between chunks, so that ``batch_size`` images (hundreds on a GPU) run
        together in bounded memory; regular trains are the same either way, Poisson trains the
        same process (drawn in another order).

        Returns:
            ``[B, M, n_exc]`` spike counts (float).
        """
        self._check_images(images, "DiehlCookEnsemble.respond images", (2, 3))
        shared = images.dim() == 2
        if not shared and images.shape[1] != self.n_modules:
            raise InputError(
                f"respond images [B, M, n_input] have M={images.shape[1]}; the ensemble has "
                f"{self.n_modules} modules"
            )
        if batch_size < 1 or time_chunk < 1:
            raise InputError("batch_size and time_chunk must be positive")
        rate = self.max_rate_hz if max_rate_hz is None else float(max_rate_hz)
        if not 0 < rate * self.dt / 1000.0 <= 1.0:
            raise InputError(f"respond max_rate_hz={rate} must be positive, at most 1 per step")
        if presentation_ms is None:
            n_steps = self.steps
        elif presentation_ms > 0:
            n_steps = max(1, round(presentation_ms / self.dt))
        else:
            raise InputError(f"respond presentation_ms must be positive, got {presentation_ms!r}")
        if theta is None:
            theta = self.theta
        else:
            check_tensor(theta, "respond theta", device=self.weight.device)
            try:
                theta = torch.broadcast_to(theta.to(self.theta.dtype), self.theta.shape)
            except RuntimeError as exc:
                raise InputError(
                    f"respond theta of shape {tuple(theta.shape)} does not broadcast to "
                    f"[M, n_exc] = {tuple(self.theta.shape)}"
                ) from exc
        images = images.to(self.weight.dtype)
        if code not in INPUT_CODES:
            raise InputError(f"respond code must be one of {INPUT_CODES}, got {code!r}")
        frozen = self.wta._replace(exc=self.wta.exc._replace(theta_plus=0.0))
        if w_inh_exc is not None:
            if not w_inh_exc >= 0:
                raise InputError(f"respond w_inh_exc must be >= 0, got {w_inh_exc!r}")
            frozen = frozen._replace(w_inh_exc=float(w_inh_exc))
        # every presentation sees normalised weights (learn normalises before each one, and
        # its last STDP update is not yet normalised); optionally at equal Euclidean lengths
        weight = self.query_weights(weight_norm)
        if images.device.type != "cpu":
            return self._respond_streaming(
                images, weight, theta, frozen, n_steps, rate, code, generator, batch_size,
                time_chunk, shared,
            )  # fmt: skip
        # the input spikes of a whole presentation are drawn at once (one byte per input, step
        # and image, from random numbers of four): at most about 16 MB of them per call
        per_image = n_steps * self.n_input * (1 if shared else self.n_modules)
        step = max(1, min(batch_size, (16 << 20) // max(per_image, 1)))
        out = []
        for start in range(0, images.shape[0], step):
            chunk = images[start : start + step]
            if code == "regular":
                phase = torch.rand(chunk.shape, generator=generator, dtype=chunk.dtype)
                pre = _regular_mask(chunk, n_steps, rate, self.dt, phase.to(chunk.device))
            else:
                pre = _poisson_mask(chunk, n_steps, rate, self.dt, generator)
            if shared:
                pre = pre.unsqueeze(2)  # [T, b, 1, n_in]: every module sees the same image
            counts, _ = kernels.call(
                "wta_present",
                pre,
                weight,
                theta.unsqueeze(0),
                frozen,
                True,
                backend=self.backend,
                time_chunk=time_chunk,
            )
            out.append(counts)
        return torch.cat(out)

    def _respond_streaming(
        self,
        images: torch.Tensor,
        weight: torch.Tensor,
        theta: torch.Tensor,
        frozen: WTAParameters,
        n_steps: int,
        rate: float,
        code: str,
        generator: torch.Generator | None,
        batch_size: int,
        time_chunk: int,
        shared: bool,
    ) -> torch.Tensor:
        """:meth:`respond` in chunks of ``time_chunk`` steps (the state carried): the input
        spikes and currents of one chunk of ``batch_size`` images at a time."""
        flat = weight.permute(1, 0, 2).reshape(self.n_input, -1)  # [n_in, M * N]
        out = []
        for start in range(0, images.shape[0], batch_size):
            chunk = images[start : start + batch_size]
            b = chunk.shape[0]
            like = theta.expand(b, -1, -1)
            state = WTAState.rest(like, frozen, theta=theta)
            counts = torch.zeros_like(like)
            phase = None
            if code == "regular":
                phase = torch.rand(chunk.shape, generator=generator, dtype=chunk.dtype)
                phase = phase.to(chunk.device)
            for t0 in range(0, n_steps, time_chunk):
                steps = min(time_chunk, n_steps - t0)
                if phase is not None:
                    mask = _regular_mask(chunk, steps, rate, self.dt, phase, t0)
                else:
                    mask = _poisson_mask(chunk, steps, rate, self.dt, generator)
                pre = mask.to(weight.dtype)
                if shared:
                    current = (pre @ flat).view(steps, b, self.n_modules, self.n_exc)
                else:
                    current = torch.einsum("tbmi,min->tbmn", pre, weight)
                spikes, state = wta_run(current, state, frozen)
                counts += spikes.sum(0)
            out.append(counts)
        return torch.cat(out)
