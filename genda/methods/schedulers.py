"""Noise schedules and samplers for diffusion models (diffusers-style scheduler objects).

The noise-prediction network knows nothing about schedules; a scheduler owns the
``betas``/``alphas_cumprod`` of the forward process, the timesteps a sampler visits and the
update ``step(noise_pred, t, x) -> x_prev``. Keeping them apart (as Hugging Face diffusers
does) lets one trained network be sampled by ancestral DDPM or by DDIM with any number of
steps, and makes the update rules unit-testable without a network.

Timesteps are 0-indexed, ``t in 0..T-1``: ``alphas_cumprod[t] = prod_{s<=t} (1 - beta_s)``,
so the network input at timestep ``t`` is Ho et al.'s ``x_{t+1}``; the sample after the last
step (``t = 0``) is the clean image ``x_0``.

References:
    Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020 (DDPM).
    Song, Meng & Ermon, "Denoising Diffusion Implicit Models", ICLR 2021 (DDIM).
"""

from __future__ import annotations

from typing import NamedTuple

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


class Scheduler:
    """Forward process ``q(x_t | x_0)`` plus the timesteps a sampler visits.

    Subclasses implement :meth:`step`. The spacing of :meth:`set_timesteps` is
    ``linspace(T-1, 0, steps)`` rounded, so every schedule starts at the noisiest timestep
    and ends at ``t = 0`` whatever ``steps`` is, and ``steps = T`` visits every timestep.
    """

    def __init__(
        self,
        num_train_timesteps: int = 500,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        clip_sample: bool = True,
    ) -> None:
        if num_train_timesteps < 2:
            raise ValueError(f"num_train_timesteps must be >= 2, got {num_train_timesteps}")
        if not 0.0 < beta_start < beta_end < 1.0:
            raise ValueError(f"need 0 < beta_start < beta_end < 1, got {beta_start}, {beta_end}")
        self.num_train_timesteps = num_train_timesteps
        self.betas = linear_betas(num_train_timesteps, beta_start, beta_end)
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
        raise NotImplementedError


class DDPMScheduler(Scheduler):
    """Ancestral sampling of Ho et al. (2020): ``x_{t-1} ~ q(x_{t-1} | x_t, x_0 = x0_hat)``.

    The posterior mean is computed from the predicted ``x_0`` (clipped), with the posterior
    variance ``beta_tilde_t = (1 - abar_prev) / (1 - abar_t) * beta_t`` (Ho et al.'s
    "fixed small" choice). For a strided schedule (fewer than ``T`` steps) the same formulas
    hold with ``beta_t := 1 - abar_t / abar_prev`` (Nichol & Dhariwal 2021's respacing).
    """

    def step(
        self,
        noise_pred: torch.Tensor,
        t: int,
        x: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> StepOutput:
        t = int(t)
        prev = self.previous_timestep(t)
        abar, abar_prev = self._abar(t), self._abar(prev)
        beta = 1 - abar / abar_prev
        x0 = self._pred_x0(noise_pred, t, x)
        mean = (abar_prev**0.5 * beta / (1 - abar)) * x0 + (
            (1 - beta) ** 0.5 * (1 - abar_prev) / (1 - abar)
        ) * x
        if prev < 0:
            return StepOutput(mean, x0)
        var = (1 - abar_prev) / (1 - abar) * beta
        z = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
        return StepOutput(mean + var**0.5 * z, x0)


class DDIMScheduler(Scheduler):
    """Song et al. (2021), eq. 12: a non-Markovian reverse process with the DDPM marginals.

    ``x_prev = sqrt(abar_prev) x0_hat + sqrt(1 - abar_prev - sigma^2) eps + sigma z`` with
    ``sigma = eta * sqrt((1 - abar_prev)/(1 - abar_t)) * sqrt(1 - abar_t/abar_prev)``.
    ``eta = 0`` is deterministic (an ODE discretisation: the same noise gives the same image,
    and few steps suffice); ``eta = 1`` with all ``T`` steps is DDPM ancestral sampling.
    """

    def __init__(
        self,
        num_train_timesteps: int = 500,
        beta_start: float = 1e-4,
        beta_end: float = 0.02,
        clip_sample: bool = True,
        eta: float = 0.0,
    ) -> None:
        super().__init__(num_train_timesteps, beta_start, beta_end, clip_sample)
        if eta < 0:
            raise ValueError(f"DDIM eta must be >= 0, got {eta}")
        self.eta = eta

    def step(
        self,
        noise_pred: torch.Tensor,
        t: int,
        x: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> StepOutput:
        t = int(t)
        prev = self.previous_timestep(t)
        abar, abar_prev = self._abar(t), self._abar(prev)
        x0 = self._pred_x0(noise_pred, t, x)
        # Re-derive eps from the (possibly clipped) x0 so x0 and eps stay consistent.
        eps = (x - abar**0.5 * x0) / (1 - abar) ** 0.5 if self.clip_sample else noise_pred
        sigma = self.eta * ((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev)) ** 0.5
        out = abar_prev**0.5 * x0 + max(1 - abar_prev - sigma**2, 0.0) ** 0.5 * eps
        if sigma > 0 and prev >= 0:
            out = out + sigma * torch.randn(
                x.shape, generator=generator, device=x.device, dtype=x.dtype
            )
        return StepOutput(out, x0)


SCHEDULERS: dict[str, type[Scheduler]] = {"ddpm": DDPMScheduler, "ddim": DDIMScheduler}
