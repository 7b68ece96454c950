"""DCGAN ("model A"): the reference GAN every other generative model here is compared with.

Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks", ICLR 2016. Networks: :mod:`genda.nets.gan` (noise 100,
transposed convs + BatchNorm, N(0, 0.02) init). Training as in the paper: Adam, lr 2e-4,
betas (0.5, 0.999), binary cross-entropy with the non-saturating generator loss
(Goodfellow et al., 2014: the generator maximises log D(G(z))).

One engine step = one discriminator update then one generator update on the same fakes,
as in the PyTorch DCGAN example.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from genda.config import bounded
from genda.data.prepare import DataInfo
from genda.methods.base import Batch, frozen
from genda.methods.generative import GAN_DEFAULTS, LatentGAN, adam, check_size
from genda.nets import gan as nets


@dataclass
class DCGANHparams:
    nz: int = bounded(100, 1, 4096, "noise dimension (the paper uses 100)")
    width: int = bounded(64, 4, 1024, "base channels; 64 px generator: 8w-4w-2w-w")
    lr_g: float = bounded(2e-4, 0.0, 1.0, "generator Adam learning rate")
    lr_d: float = bounded(2e-4, 0.0, 1.0, "discriminator Adam learning rate")
    beta1: float = bounded(0.5, 0.0, 1.0, "Adam beta1 (the paper lowers it from 0.9 to 0.5)")
    beta2: float = bounded(0.999, 0.0, 1.0, "Adam beta2")


def bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Binary cross-entropy of D's logits against an all-``target`` label."""
    logits = logits.float()
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


class DCGAN(LatentGAN):
    """Unconditional DCGAN; nets ``g`` (generator) and ``d`` (BatchNorm discriminator)."""

    name = "dcgan"
    Hparams = DCGANHparams
    defaults = GAN_DEFAULTS

    def __init__(self, hp: DCGANHparams, info: DataInfo) -> None:
        super().__init__(hp, info)
        check_size(info, self.name, nets.SIZES)
        self.nets["g"] = nets.generator(hp.nz, info.channels, info.size, hp.width)
        self.nets["d"] = nets.discriminator(info.channels, info.size, hp.width)

    def configure(self, total_steps: int) -> None:
        self.optimizers["g"] = adam(self.nets["g"].parameters(), self.hp.lr_g, self.hp)
        self.optimizers["d"] = adam(self.nets["d"].parameters(), self.hp.lr_d, self.hp)

    def train_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        real = self.prepare(batch["source"][0])
        g, d = self.nets["g"], self.nets["d"]
        opt_g, opt_d = self.optimizers["g"], self.optimizers["d"]
        fake = g(torch.randn(len(real), self.hp.nz, device=real.device))

        # (1) D: maximise log D(x) + log(1 - D(G(z))). Real and fake go through separate
        # forwards as in the DCGAN reference code (mixing them would change the BatchNorm
        # statistics), each followed by its own backward so a DDP-wrapped D never sees two
        # forwards before one backward.
        opt_d.zero_grad(set_to_none=True)
        out_real = d(real)[:, 0]
        loss_real = bce(out_real, 1.0)
        self.backward(loss_real)
        out_fake = d(fake.detach())[:, 0]
        loss_fake = bce(out_fake, 0.0)
        self.backward(loss_fake)
        opt_d.step()

        # (2) G: maximise log D(G(z)) (non-saturating). The gradient flows through D, whose
        # own weight gradients are not needed.
        opt_g.zero_grad(set_to_none=True)
        with frozen(d):
            out_gen = d(fake)[:, 0]
        loss_g = bce(out_gen, 1.0)
        self.backward(loss_g)
        opt_g.step()
        return {
            "loss/d": (loss_real + loss_fake).detach(),
            "loss/g": loss_g.detach(),
            "d/real": torch.sigmoid(out_real.detach().float()).mean(),
            "d/fake": torch.sigmoid(out_fake.detach().float()).mean(),
        }
