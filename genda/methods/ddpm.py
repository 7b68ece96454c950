"""Conditional DDPM with classifier-free guidance.

Training (Ho, Jain & Abbeel, "Denoising Diffusion Probabilistic Models", NeurIPS 2020,
Algorithm 1): draw ``t ~ U{0..T-1}`` and ``eps ~ N(0, I)``, form
``x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps`` and regress the network's noise
prediction on ``eps`` (the "simple" MSE loss). With probability ``p_uncond`` the label is
replaced by the null context, so one network learns both ``eps(x_t, t, y)`` and
``eps(x_t, t, null)`` (Ho & Salimans, "Classifier-Free Diffusion Guidance", 2022).

Sampling mixes the two predictions, ``eps = (1 + w) eps(x, t, y) - w eps(x, t, null)``
(``w = 0``: plain conditional sampling), computed in *one* batched forward of the
concatenated conditional and null halves, and hands ``eps`` to a scheduler from
:mod:`genda.schedulers`: ancestral DDPM or DDIM (Song, Meng & Ermon, ICLR 2021),
which reaches similar quality in 5-20x fewer steps.

An exponential moving average of the weights (kept as the frozen network ``ema``) is used
for sampling, as in Ho et al.; it is a plain entry of ``self.nets`` so checkpoints carry it.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from genda.config import ConfigError, bounded, choice
from genda.data.formats import ATTR_DIR
from genda.methods.base import Batch, set_requires_grad, unwrap
from genda.methods.generative import GenerativeMethod
from genda.methods.losses import ema_update, warmup_decay
from genda.nets.unet import UNet
from genda.schedulers import BETA_SCHEDULES, SCHEDULERS, Scheduler, make_scheduler


@dataclass
class DDPMHparams:
    timesteps: int = bounded(500, 10, 4000, "T: diffusion steps of the forward process")
    beta_schedule: str = choice(
        "linear", list(BETA_SCHEDULES), "variance schedule of the forward process"
    )
    beta_start: float = bounded(1e-4, 1e-6, 0.1, "first beta of the linear schedule")
    beta_end: float = bounded(0.02, 1e-4, 0.5, "last beta of the linear schedule")
    width: int = bounded(32, 4, 512, "U-Net channels at full resolution (64 for 64-px faces)")
    levels: int = bounded(2, 1, 4, "U-Net downsamplings (2: 28->14->7; 3 for 64 px)")
    attention: bool = True  # self-attention at the lowest U-Net resolution
    dropout: float = bounded(0.0, 0.0, 0.9)
    p_uncond: float = bounded(0.1, 0.0, 1.0, "label dropout to the null context (CFG training)")
    lr: float = bounded(1e-3, 0.0, 1.0, "AdamW learning rate")
    warmup: int = bounded(100, 0, None, "linear learning-rate warm-up steps, then cosine decay")
    weight_decay: float = bounded(0.0, 0.0, 1.0)
    grad_clip: float = bounded(1.0, 0.0, None, "max gradient norm (0 = off)")
    ema: float = bounded(0.999, 0.0, 1.0, "EMA decay of the sampling weights (0 = no EMA)")
    guidance: float = bounded(2.0, 0.0, 100.0, "default CFG weight w (0 = no guidance)")
    sampler: str = choice("ddim", list(SCHEDULERS), "default sampler (genda/schedulers.py)")
    sample_steps: int = bounded(50, 1, 4000, "default DDIM sampling steps (<= timesteps)")
    # 1 (stochastic) by default: on a briefly trained digits model, deterministic DDIM
    # (eta = 0) gave far less accurate digits than eta = 1 (it needs a well-trained net).
    eta: float = bounded(1.0, 0.0, 1.0, "DDIM noise: 0 deterministic (Song et al.), 1 stochastic")
    clip_sample: bool = True  # clip the predicted x_0 to [-1, 1] at each step


class DDPM(GenerativeMethod):
    """Class- or attribute-conditional DDPM (unconditional when the data has no labels)."""

    name = "ddpm"
    Hparams = DDPMHparams
    streams = ("source",)
    progress_options = {"sampler": "ddim", "steps": 10}  # a frame: a rough look, not a score
    # ~3,300 steps on the 1,437 embedded digits at batch 128; pass --steps for short runs.
    # channels_last only in fp32: it speeds the U-Net's fp32 steps up but slows them down
    # under bf16 autocast (benchmarks/README.md, "gen_pipeline.py").
    defaults = {"train": {"epochs": 300.0, "channels_last": "fp32"}}

    def __init__(self, hp: DDPMHparams, info) -> None:
        super().__init__(hp, info)
        if hp.beta_start >= hp.beta_end:
            raise ConfigError(
                f"hparams.beta_start ({hp.beta_start}) must be < hparams.beta_end ({hp.beta_end})"
            )
        if hp.sample_steps > hp.timesteps:
            raise ConfigError(
                f"hparams.sample_steps: {hp.sample_steps} is more than "
                f"hparams.timesteps ({hp.timesteps})"
            )
        k = info.num_classes
        if k == 0:
            self.conditioning = "none"
        elif all(ATTR_DIR.match(c) for c in info.classes) and k == 2:
            self.conditioning = "attribute"  # data.attribute turned into classes A=0 / A=1
        else:
            self.conditioning = "class"
        self.nets["unet"] = UNet(info.channels, k, hp.width, hp.levels, hp.attention, hp.dropout)
        if hp.ema > 0:
            ema = copy.deepcopy(self.nets["unet"])
            set_requires_grad(ema, False)  # frozen: the engine leaves it unwrapped (no DDP)
            self.nets["ema"] = ema.eval()
        self.noise_schedule = self.scheduler("ddpm")  # the forward process used in training

    @property
    def null_label(self) -> int:
        return self.info.num_classes

    def scheduler(self, sampler: str | Scheduler = "ddpm", eta: float | None = None) -> Scheduler:
        """A fresh registered scheduler (or the given object, checked) for this model's
        forward process."""
        hp = self.hp
        sched = make_scheduler(
            sampler,
            hp.timesteps,
            hp.beta_start,
            hp.beta_end,
            hp.clip_sample,
            hp.beta_schedule,
            eta=hp.eta if eta is None else eta,
        )
        if isinstance(sampler, Scheduler) and hasattr(self, "noise_schedule"):
            ours = self.noise_schedule.alphas_cumprod
            if len(sched.alphas_cumprod) != len(ours) or not torch.allclose(
                sched.alphas_cumprod, ours
            ):
                raise ValueError(
                    "the scheduler's noise schedule differs from the one the model was trained "
                    f"with ({hp.timesteps} timesteps, {hp.beta_schedule} betas)"
                )
        return sched

    # -- training ---------------------------------------------------------------------------
    def configure(self, total_steps: int) -> None:
        hp = self.hp
        opt = torch.optim.AdamW(
            self.nets["unet"].parameters(), lr=hp.lr, weight_decay=hp.weight_decay
        )
        self.optimizers["main"] = opt
        warm = min(hp.warmup, max(total_steps // 10, 1))

        def lr_at(step: int) -> float:
            # Linear warm-up then cosine decay to 10%: stable early steps, annealed end.
            if step < warm:
                return (step + 1) / warm
            p = (step - warm) / max(total_steps - warm, 1)
            return 0.1 + 0.45 * (1 + math.cos(math.pi * min(p, 1.0)))

        self.schedulers["main"] = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)

    def train_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        x, y = batch["source"]
        x0 = self.prepare(x)
        n = len(x0)
        y = torch.where(y < 0, self.null_label, y)  # unlabelled images: null context
        drop = torch.rand(n, device=x0.device) < self.hp.p_uncond
        y = torch.where(drop, self.null_label, y)
        t = torch.randint(0, self.hp.timesteps, (n,), device=x0.device)
        noise = torch.randn_like(x0)
        x_t = self.noise_schedule.add_noise(x0, noise, t)
        loss = F.mse_loss(self.nets["unet"](x_t, t, y), noise)
        opt = self.optimizers["main"]
        opt.zero_grad(set_to_none=True)
        self.backward(loss)
        if self.hp.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.nets["unet"].parameters(), self.hp.grad_clip)
        opt.step()
        self.schedulers["main"].step()
        if "ema" in self.nets:
            self._update_ema(step)
        return {"loss/mse": loss.detach()}

    def _update_ema(self, step: int) -> None:
        decay = warmup_decay(self.hp.ema, step)
        ema_update(self.nets["ema"], unwrap(self.nets["unet"]), decay, copy_buffers=True)

    # -- sampling ---------------------------------------------------------------------------
    def _check_options(
        self,
        steps: int | None,
        guidance: float | None,
        sampler: str | Scheduler | None,
        eta: float | None,
    ) -> tuple[int, float, Scheduler]:
        hp, T = self.hp, self.hp.timesteps
        sched = self.scheduler(hp.sampler if sampler is None else sampler, eta)
        if steps is None:
            steps = sched.default_steps(hp.sample_steps)
        if isinstance(steps, bool) or int(steps) != steps or not 1 <= steps <= T:
            raise ValueError(
                f"steps must be an integer in 1..{T} (the model's training timesteps), got {steps}"
            )
        guidance = hp.guidance if guidance is None else float(guidance)
        if not guidance >= 0:  # also rejects NaN
            raise ValueError(f"guidance weight must be >= 0 (0 = no guidance), got {guidance}")
        return int(steps), guidance, sched

    def sample(
        self,
        n: int,
        labels: torch.Tensor | None = None,
        steps: int | None = None,
        guidance: float | None = None,
        sampler: str | Scheduler | None = None,
        eta: float | None = None,
        return_trajectory_at: Sequence[int] | None = None,
        batch_size: int = 500,
    ) -> Any:
        """Generate ``n`` images, float ``[n, C, H, W]`` in [-1, 1], from the global torch RNG.

        Args:
            labels: class (or attribute 0/1) per image; ``None`` cycles through the classes.
            steps: sampler steps in ``1..T`` (default ``hparams.sample_steps`` for DDIM,
                ``T`` for DDPM; fewer DDPM steps use a respaced schedule).
            guidance: CFG weight ``w >= 0`` (default ``hparams.guidance``).
            sampler: a registered name (:data:`genda.schedulers.SCHEDULERS`: ``"ddim"``,
                ``"ddpm"``; default ``hparams.sampler``) or a scheduler object with this
                model's noise schedule.
            eta: DDIM noise scale (default ``hparams.eta``).
            return_trajectory_at: diffusion times in ``0..T`` (``T`` = pure noise, ``0`` = the
                final image) at which to record the samples; each snaps to the nearest time the
                sampler visits. Then ``(images, [(time, images_at_time), ...])`` is returned.
            batch_size: images per network call (bounds memory for large ``n``).
        """
        steps, w, sched = self._check_options(steps, guidance, sampler, eta)
        labels = self.check_labels(labels, n)
        T = self.hp.timesteps
        want: list[int] = []
        if return_trajectory_at is not None:
            want = [int(a) for a in return_trajectory_at]
            if any(not 0 <= a <= T for a in want):
                raise ValueError(f"return_trajectory_at times must be in 0..{T}, got {want}")
        outs, trajs = [], []
        for i in range(0, n, batch_size):
            y = None if labels is None else labels[i : i + batch_size]
            x, traj = self._sample_batch(min(batch_size, n - i), y, steps, w, sched, want)
            outs.append(x)
            trajs.append(traj)
        images = torch.cat(outs)
        if return_trajectory_at is None:
            return images
        return images, [
            (tm, torch.cat([tr[j][1] for tr in trajs])) for j, (tm, _) in enumerate(trajs[0])
        ]

    @torch.no_grad()
    def _sample_batch(
        self,
        n: int,
        labels: torch.Tensor | None,
        steps: int,
        w: float,
        sched: Scheduler,
        want: list[int],
    ) -> tuple[torch.Tensor, list[tuple[int, torch.Tensor]]]:
        net = self.nets["ema"] if "ema" in self.nets else self.nets["unet"]
        dev = self.device
        timesteps = sched.set_timesteps(steps).tolist()
        # Visited diffusion times: network input at timestep t is x_{t+1}; the output is x_0.
        visited = [t + 1 for t in timesteps] + [0]
        snap = {a: min(visited, key=lambda v: (abs(v - a), v)) for a in want}
        record: dict[int, torch.Tensor] = {}
        c, s = self.info.channels, self.info.size
        x = torch.randn(n, c, s, s, device=dev)
        null = torch.full((n,), self.null_label, device=dev, dtype=torch.long)
        y = null if labels is None else labels.to(dev)
        guided = w > 0 and labels is not None
        y_in = torch.cat([y, null]) if guided else y
        for t in timesteps:
            if t + 1 in snap.values():
                record[t + 1] = x.cpu()
            tt = torch.full((len(y_in),), t, device=dev, dtype=torch.long)
            if guided:
                eps_c, eps_u = net(torch.cat([x, x]), tt, y_in).chunk(2)
                eps = (1 + w) * eps_c - w * eps_u
            else:
                eps = net(x, tt, y_in)
            x = sched.step(eps, t, x).prev_sample
        x = x.clamp(-1, 1)
        record[0] = x.cpu()
        return x, [(snap[a], record[snap[a]]) for a in want]

    # -- evaluation -------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, data: Any, run_dir: Path | None = None) -> dict[str, Any]:
        """Figures: 10 samples per class (rows = classes) and one reverse-process strip."""
        if run_dir is None:
            return {}
        from genda.viz import plot_strip, save_grid

        k = self.info.num_classes if self.conditioning != "none" else 0
        imgs, nrow = self.grid()
        save_grid(imgs, run_dir / "samples.png", nrow=nrow)
        T = self.hp.timesteps
        times = sorted(
            {T, *(round(T * f) for f in (0.8, 0.6, 0.4, 0.3, 0.2, 0.1, 0.05)), 0}, reverse=True
        )
        one = torch.zeros(1, dtype=torch.long, device=self.device) if k else None
        _, traj = self.sample(1, one, sampler="ddpm", return_trajectory_at=times)
        strip = torch.cat([x for _, x in traj])
        plot_strip(
            strip,
            [f"t={tm}" for tm in (tm for tm, _ in traj)],
            run_dir / "reverse_process.png",
            row_labels=[self.info.classes[0]] if k else None,
        )
        grid_title = "Samples (10 per class, rows = classes)" if k else "Samples"
        return {
            "figures": {
                grid_title: "figures/samples.png",
                "Reverse diffusion (DDPM ancestral)": "figures/reverse_process.png",
            }
        }
