"""Noise schedules and samplers for diffusion models (diffusers-style scheduler objects).

The noise-prediction network knows nothing about schedules; a scheduler owns the
``betas``/``alphas_cumprod`` of the forward process, the timesteps a sampler visits and the
update ``step(noise_pred, t, x) -> x_prev``. Keeping them apart (as Hugging Face diffusers
does) lets one trained network be sampled by ancestral DDPM or by DDIM with any number of
steps, and makes the update rules unit-testable without a network. Schedulers are not
methods: they sit beside the networks, and a new one is a class plus an entry in
:data:`SCHEDULERS` (its extra options in ``options``); a new variance schedule is a function
plus an entry in :data:`BETA_SCHEDULES`. Every list of choices is read from these registries.

Timesteps are 0-indexed, ``t in 0..T-1``: ``alphas_cumprod[t] = prod_{s<=t} (1 - beta_s)``,
so the network input at timestep ``t`` is Ho et al.'s ``x_{t+1}``; the sample after the last
step (``t = 0``) is the clean image ``x_0``.

References:
    Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020 (DDPM).
    Song, Meng & Ermon, "Denoising Diffusion Implicit Models", ICLR 2021 (DDIM).
    Nichol & Dhariwal, "Improved Denoising Diffusion Probabilistic Models", ICML 2021 (cosine).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import torch


class StepOutput(NamedTuple):
    """Result of one reverse step: the less noisy sample and the predicted clean image."""

    prev_sample: torch.Tensor
    pred_original_sample: torch.Tensor


def linear_betas(
    num_train_timesteps: int, beta_start: float = 1e-4, beta_end: float = 0.02
) -> torch.Tensor:
    """The linear variance schedule of Ho et al. (2020), in float64 for exact products."""
    return torch.linspace(beta_start, beta_end, num_train_timesteps, dtype=torch.float64)


def cosine_betas(num_train_timesteps: int, *_: float, s: float = 0.008) -> torch.Tensor:
    """Nichol & Dhariwal's cosine schedule: ``abar(t) = cos^2((t/T + s)/(1 + s) * pi/2)``,
    betas clipped at 0.999. It destroys information more evenly over ``t`` than the linear
    one, whose last steps are nearly pure noise (the linear ``beta_start``/``beta_end`` are
    ignored)."""
    t = torch.arange(num_train_timesteps + 1, dtype=torch.float64) / num_train_timesteps
    abar = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    return (1 - abar[1:] / abar[:-1]).clamp(max=0.999)


BETA_SCHEDULES: dict[str, Callable[..., torch.Tensor]] = {
    "linear": linear_betas,
    "cosine": cosine_betas,
}


class Scheduler:
    """Forward process ``q(x_t | x_0)`` plus the timesteps a sampler visits.

    Subclasses implement :meth:`step`. The spacing of :meth:`set_timesteps` is
    ``linspace(T-1, 0, steps)`` rounded, so every schedule starts at the noisiest timestep
    and ends at ``t = 0`` whatever ``steps`` is, and ``steps = T`` visits every timestep.
    """

    options: ClassVar[tuple[str, ...]] = ()  # extra keyword options this sampler takes

    def __init__(
        self,
        num_train_timesteps: int = 500,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        clip_sample: bool = True,
        beta_schedule: str = "linear",
    ) -> None:
        if num_train_timesteps < 2:
            raise ValueError(f"num_train_timesteps must be >= 2, got {num_train_timesteps}")
        if not 0.0 < beta_start < beta_end < 1.0:
            raise ValueError(f"need 0 < beta_start < beta_end < 1, got {beta_start}, {beta_end}")
        if beta_schedule not in BETA_SCHEDULES:
            raise ValueError(
                f"beta schedule must be one of {', '.join(BETA_SCHEDULES)}, got {beta_schedule!r}"
            )
        self.num_train_timesteps = num_train_timesteps
        self.betas = BETA_SCHEDULES[beta_schedule](num_train_timesteps, beta_start, beta_end)
        self.alphas = 1.0 - self.betas
        self.alphas_cumprod = torch.cumprod(self.alphas, dim=0)
        # Clipping the predicted x_0 to the data range [-1, 1] (as Ho et al.'s code does)
        # removes the worst outliers of a partly trained network.
        self.clip_sample = clip_sample
        self.timesteps = torch.arange(num_train_timesteps - 1, -1, -1)

    # -- forward process --------------------------------------------------------------------
    def add_noise(self, x0: torch.Tensor, noise: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) noise`` for per-sample timesteps ``t``."""
        abar = self.alphas_cumprod.to(x0.device)[t].to(x0.dtype).view(-1, *([1] * (x0.dim() - 1)))
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    # -- reverse process --------------------------------------------------------------------
    def default_steps(self, configured: int) -> int:
        """Sampling steps when the caller names none: the model's configured number."""
        return configured

    def set_timesteps(self, num_inference_steps: int | None = None) -> torch.Tensor:
        """Choose ``num_inference_steps`` timesteps (``None`` = all ``T``), noisiest first."""
        T = self.num_train_timesteps
        steps = T if num_inference_steps is None else int(num_inference_steps)
        if not 1 <= steps <= T:
            raise ValueError(
                f"sampling steps must be in 1..{T} (the model's training timesteps), got {steps}"
            )
        self.timesteps = torch.linspace(T - 1, 0, steps, dtype=torch.float64).round().long()
        return self.timesteps

    def previous_timestep(self, t: int) -> int:
        """The timestep visited after ``t`` (``-1`` after the last step: the clean image)."""
        later = self.timesteps[self.timesteps < t]
        return int(later[0]) if len(later) else -1

    def _abar(self, t: int) -> float:
        return float(self.alphas_cumprod[t]) if t >= 0 else 1.0

    def _pred_x0(self, noise_pred: torch.Tensor, t: int, x: torch.Tensor) -> torch.Tensor:
        abar = self._abar(t)
        x0 = (x - (1 - abar) ** 0.5 * noise_pred) / abar**0.5
        return x0.clamp(-1, 1) if self.clip_sample else x0

    def step(
        self,
        noise_pred: torch.Tensor,
        t: int,
        x: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> StepOutput:
        """One reverse step from timestep ``t`` to the next one visited."""
        t = int(t)
        prev = self.previous_timestep(t)
        x0 = self._pred_x0(noise_pred, t, x)
        noise = lambda: torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)  # noqa: E731
        out = self.update(x, noise_pred, x0, self._abar(t), self._abar(prev), prev < 0, noise)
        return StepOutput(out, x0)

    def update(
        self,
        x: torch.Tensor,
        noise_pred: torch.Tensor,
        x0: torch.Tensor,
        abar: float,
        abar_prev: float,
        last: bool,
        noise: Callable[[], torch.Tensor],
    ) -> torch.Tensor:
        """The sampler's rule for ``x_prev`` (``last``: the step to the clean image;
        ``noise()`` draws fresh Gaussian noise shaped like ``x``)."""
        raise NotImplementedError


class DDPMScheduler(Scheduler):
    """Ancestral sampling of Ho et al. (2020): ``x_{t-1} ~ q(x_{t-1} | x_t, x_0 = x0_hat)``.

    The posterior mean is computed from the predicted ``x_0`` (clipped), with the posterior
    variance ``beta_tilde_t = (1 - abar_prev) / (1 - abar_t) * beta_t`` (Ho et al.'s
    "fixed small" choice). For a strided schedule (fewer than ``T`` steps) the same formulas
    hold with ``beta_t := 1 - abar_t / abar_prev`` (Nichol & Dhariwal 2021's respacing).
    """

    def default_steps(self, configured: int) -> int:
        return self.num_train_timesteps  # ancestral sampling is defined on every timestep

    def update(self, x, noise_pred, x0, abar, abar_prev, last, noise) -> torch.Tensor:
        beta = 1 - abar / abar_prev
        mean = (abar_prev**0.5 * beta / (1 - abar)) * x0 + (
            (1 - beta) ** 0.5 * (1 - abar_prev) / (1 - abar)
        ) * x
        if last:
            return mean
        var = (1 - abar_prev) / (1 - abar) * beta
        return mean + var**0.5 * noise()


class DDIMScheduler(Scheduler):
    """Song et al. (2021), eq. 12: a non-Markovian reverse process with the DDPM marginals.

    ``x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps + sigma z`` with
    ``sigma = eta * sqrt((1 - abar_prev)/(1 - abar_t)) * sqrt(1 - abar_t/abar_prev)``.
    ``eta = 0`` is deterministic (an ODE discretisation: the same noise gives the same image,
    and few steps suffice); ``eta = 1`` with all ``T`` steps is DDPM ancestral sampling.
    """

    options = ("eta",)

    def __init__(self, *args: Any, eta: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not 0 <= eta <= 1:  # also rejects NaN
            raise ValueError(f"DDIM eta must be in [0, 1], got {eta}")
        self.eta = eta

    def update(self, x, noise_pred, x0, abar, abar_prev, last, noise) -> torch.Tensor:
        # Re-derive eps from the (possibly clipped) x0 so x0 and eps stay consistent.
        eps = (x - abar**0.5 * x0) / (1 - abar) ** 0.5 if self.clip_sample else noise_pred
        sigma = self.eta * ((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)) ** 0.5
        out = abar_prev**0.5 * x0 + max(1 - abar_prev - sigma**2, 0.0) ** 0.5 * eps
        return out + sigma * noise() if sigma > 0 and not last else out


SCHEDULERS: dict[str, type[Scheduler]] = {"ddim": DDIMScheduler, "ddpm": DDPMScheduler}


def make_scheduler(sampler: str | Scheduler, *args: Any, **options: Any) -> Scheduler:
    """``sampler`` itself when it is a scheduler object, else a new registered one built with
    ``args`` (``Scheduler``'s) and those of ``options`` it takes (e.g. DDIM's ``eta``)."""
    if isinstance(sampler, Scheduler):
        return sampler
    if sampler not in SCHEDULERS:
        raise ValueError(f"sampler must be one of {', '.join(SCHEDULERS)}, got {sampler!r}")
    cls = SCHEDULERS[sampler]
    return cls(*args, **{k: v for k, v in options.items() if k in cls.options})
