"""DCGAN ("model A"): the reference GAN every other generative model here is compared with.

Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks", ICLR 2016. Networks: :mod:`genda.nets.gan` (noise 100,
transposed convs + BatchNorm, N(0, 0.02) init). Training as in the paper: Adam, lr 2e-4,
betas (0.5, 0.999), binary cross-entropy with the non-saturating generator loss
(Goodfellow et al., 2014: the generator maximises log D(G(z))).

One engine step = one discriminator update then one generator update on the same fakes.
:class:`DCGAN` holds the machinery the improved GAN (:mod:`genda.methods.gan`) and ACGAN
(:mod:`genda.methods.acgan`) share; they override the networks and the loss hooks
:meth:`DCGAN.d_loss` / :meth:`DCGAN.g_loss` only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genda.config import ConfigError, bounded
from genda.data.prepare import DataInfo
from genda.methods.base import Batch, frozen
from genda.methods.generative import GenerativeMethod
from genda.nets import gan as nets

# The course's main use is 64 px RGB faces; for digits pass --size 28 (or 32) --channels 1.
# channels_last: faster DCGAN steps in fp32 and bf16 on CPU (benchmarks/README.md,
# gen_pipeline.py).
DEFAULTS: dict[str, dict[str, Any]] = {
    "data": {"size": 64, "channels": 3},
    "train": {"channels_last": True},
}


@dataclass
class DCGANHparams:
    nz: int = bounded(100, 1, 4096, "noise dimension (the paper uses 100)")
    width: int = bounded(64, 4, 1024, "base channels; 64 px generator: 8w-4w-2w-w")
    lr_g: float = bounded(2e-4, 0.0, 1.0, "generator Adam learning rate")
    lr_d: float = bounded(2e-4, 0.0, 1.0, "discriminator Adam learning rate")
    beta1: float = bounded(0.5, 0.0, 1.0, "Adam beta1 (the paper lowers it from 0.9 to 0.5)")
    beta2: float = bounded(0.999, 0.0, 1.0, "Adam beta2")


def check_size(info: DataInfo, method: str) -> None:
    """Fail early, as a config error, on a size the ladder of :mod:`genda.nets.gan` can't build."""
    if info.size not in nets.SIZES:
        raise ConfigError(
            f"data.size: invalid value {info.size} for {method}; "
            f"valid choices: {', '.join(map(str, nets.SIZES))}"
        )


@contextmanager
def eval_mode(net: nn.Module) -> Iterator[nn.Module]:
    """Run ``net`` in eval mode and restore its mode: sampling must never update BatchNorm
    running statistics (that would make training depend on when figures were drawn)."""
    was = net.training
    net.train(False)
    try:
        yield net
    finally:
        net.train(was)


def adam(params: Any, lr: float, hp: Any) -> torch.optim.Adam:
    return torch.optim.Adam(params, lr=lr, betas=(hp.beta1, hp.beta2))


class DCGAN(GenerativeMethod):
    """Unconditional DCGAN; nets ``g`` (generator) and ``d`` (discriminator)."""

    name = "dcgan"
    Hparams = DCGANHparams
    defaults = DEFAULTS
    # BatchNorm discriminator: real and fake go through separate forwards (see train_step).
    d_norm = "batch"

    def __init__(self, hp: Any, info: DataInfo) -> None:
        super().__init__(hp, info)
        check_size(info, self.name)
        k = self.num_labels
        # Subclass options (the improved GAN's hparams); DCGAN itself is the paper's model.
        upsample = getattr(hp, "upsample", "convt")
        deep = getattr(hp, "d_arch", "dcgan") == "sngan"
        self.nets["g"] = nets.generator(hp.nz + k, info.channels, info.size, hp.width, upsample)
        self.nets["d"] = nets.discriminator(
            info.channels,
            info.size,
            hp.width,
            out=1 + k,
            norm=self.d_norm,
            deep=deep,
            pack=getattr(hp, "pack", 1),
        )

    @property
    def num_labels(self) -> int:
        """Classes the generator is conditioned on (0: unconditional)."""
        return self.info.num_classes if self.conditioning != "none" else 0

    def configure(self, total_steps: int) -> None:
        self.optimizers["g"] = adam(self.nets["g"].parameters(), self.hp.lr_g, self.hp)
        self.optimizers["d"] = adam(self.nets["d"].parameters(), self.hp.lr_d, self.hp)

    # -- losses (hooks for subclasses) -----------------------------------------------------
    def d_loss(self, out: torch.Tensor, real: bool, y: torch.Tensor | None) -> torch.Tensor:
        """Discriminator loss on one half (real or fake) of the game; ``out [N, 1 + k]``."""
        target = torch.full_like(out[:, 0], 1.0 if real else 0.0)
        return F.binary_cross_entropy_with_logits(out[:, 0].float(), target.float())

    def g_loss(self, out: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Non-saturating generator loss ``-log D(G(z))``."""
        return F.binary_cross_entropy_with_logits(
            out[:, 0].float(), torch.ones_like(out[:, 0]).float()
        )

    def d_score(self, out: torch.Tensor) -> torch.Tensor:
        """What to log as D's output: the probability 'real' for BCE-trained discriminators."""
        return torch.sigmoid(out[:, 0].float()).mean()

    # -- one step -----------------------------------------------------------------------------
    def generator_input(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Noise, with a one-hot label appended for conditional models."""
        if y is None or not self.num_labels:
            return z
        return torch.cat([z, F.one_hot(y, self.num_labels).to(z.dtype)], 1)

    def train_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        x, y = batch["source"]
        real = self.prepare(x)
        # Conditional fakes reuse the real batch's labels, so they follow the data's class prior.
        y = y if self.num_labels else None
        z = torch.randn(len(real), self.hp.nz, device=real.device)
        g, d = self.nets["g"], self.nets["d"]
        aug = self.augment
        fake = g(self.generator_input(z, y))
        # Discriminator.
        opt_d = self.optimizers["d"]
        opt_d.zero_grad(set_to_none=True)
        if self.d_norm == "batch":
            # Separate real and fake batches as in the DCGAN reference code (mixing them would
            # change the BatchNorm statistics), each forward followed by its own backward so
            # a DDP-wrapped D never sees two forwards before one backward.
            out_real = d(aug(real))
            loss_real = self.d_loss(out_real, True, y)
            self.backward(loss_real)
            out_fake = d(aug(fake.detach()))
            loss_fake = self.d_loss(out_fake, False, y)
            self.backward(loss_fake)
        else:
            # No BatchNorm: one forward over both halves (one spectral-norm power iteration),
            # plus their re-augmented views when D is consistency-regularised.
            both = aug(torch.cat([real, fake.detach()]))
            views = self.consistency_views(both)
            out = d(both if views is None else torch.cat([both, views]))
            n = len(out) // (2 if views is None else 4)  # rows per half (PacGAN: packs)
            out_real, out_fake = out[:n], out[n : 2 * n]
            loss_real, loss_fake = self.d_loss(out_real, True, y), self.d_loss(out_fake, False, y)
            loss_d = loss_real + loss_fake
            if views is not None:
                loss_d = loss_d + self.consistency_loss(out[: 2 * n], out[2 * n :])
            self.backward(loss_d)
        opt_d.step()
        # Generator: its gradient flows through D, whose own weight gradients are not needed.
        opt_g = self.optimizers["g"]
        opt_g.zero_grad(set_to_none=True)
        with frozen(d):
            out_gen = d(aug(fake))
        loss_g = self.g_loss(out_gen, y)
        self.backward(loss_g)
        opt_g.step()
        self.after_step(step)
        logs = {
            "loss/d": (loss_real + loss_fake).detach(),
            "loss/g": loss_g.detach(),
            "d/real": self.d_score(out_real.detach()),
            "d/fake": self.d_score(out_fake.detach()),
        }
        logs.update(self.extra_logs(out_real.detach(), y))
        return logs

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """What D sees of every real and fake batch: the images themselves in DCGAN; the
        improved GAN applies DiffAugment here (the same transforms to both, G's step too)."""
        return x

    def consistency_views(self, x: torch.Tensor) -> torch.Tensor | None:
        """Augmented copies of D's inputs for consistency regularisation (None: off)."""
        return None

    def consistency_loss(self, out: torch.Tensor, out_views: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def after_step(self, step: int) -> None:
        """Hook after both updates (the improved GAN updates its EMA generator here)."""

    def extra_logs(self, out_real: torch.Tensor, y: torch.Tensor | None) -> dict[str, torch.Tensor]:
        return {}

    # -- sampling -----------------------------------------------------------------------------
    def sampler(self) -> nn.Module:
        """The generator used for sampling (the improved GAN returns its EMA copy)."""
        return self.nets["g"]

    @torch.no_grad()
    def sample(
        self,
        n: int,
        labels: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        batch_size: int = 500,
        **options: Any,
    ) -> torch.Tensor:
        """``n`` images ``[n, C, H, W]`` in [-1, 1] at the training size.

        ``noise``: optional ``[n, nz]`` latents (e.g. to show one latent under several
        labels); drawn from N(0, I) with the global RNG otherwise.
        """
        labels = self.check_labels(labels, n)
        dev = self.device
        if noise is None:
            noise = torch.randn(n, self.hp.nz, device=dev)
        elif tuple(noise.shape) != (n, self.hp.nz):
            raise ValueError(f"noise must be [{n}, {self.hp.nz}], got {tuple(noise.shape)}")
        noise = noise.to(dev)
        out = []
        with eval_mode(self.sampler()) as g:
            for i in range(0, n, batch_size):
                y = None if labels is None else labels[i : i + batch_size]
                out.append(g(self.generator_input(noise[i : i + batch_size], y)).float())
        if not out:  # n == 0
            return torch.empty(0, self.info.channels, self.info.size, self.info.size, device=dev)
        return torch.cat(out).clamp_(-1, 1)
