"""Improved GAN ("model B"): DCGAN plus the stabilisers that made GANs train reliably.

- Spectral normalisation of every discriminator layer (Miyato et al., "Spectral
  Normalization for Generative Adversarial Networks", ICLR 2018), replacing its BatchNorm:
  D stays ~1-Lipschitz, so its gradients neither explode nor vanish.
- Hinge loss (Lim & Ye 2017; Miyato et al. 2018) or the non-saturating loss, the latter
  optionally with one-sided label smoothing and label flips (Salimans et al., "Improved
  Techniques for Training GANs", NeurIPS 2016).
- Two time-scale update rule (Heusel et al., NeurIPS 2017): D learns twice as fast as G
  (lr_d 4e-4, lr_g 2e-4) with SAGAN's Adam betas (0, 0.9) (Zhang et al., ICML 2019).
  SAGAN's own lr_g of 1e-4 halves G's progress per step, which loses to DCGAN's 2e-4 at
  equal steps on small data (see "Measured" below).
- An exponential moving average of the generator weights, used for every sample
  (Karras et al. 2018; Yazici et al., "The Unusual Effectiveness of Averaging in GAN
  Training", ICLR 2019): averaging damps the oscillation of the adversarial game. The
  decay warms up so short runs are not dominated by the initial weights.
- Options, off by default because they did not pay at the budget below: DiffAugment on
  everything D sees (Zhao et al., NeurIPS 2020; ``diffaug``), balanced consistency
  regularisation of D (bCR, Zhao et al., AAAI 2021; ``consistency``), PacGAN packing
  (Lin et al., NeurIPS 2018; ``pack``), pixel-shuffle upsampling in the generator
  (Shi et al., CVPR 2016; ``upsample``) and SN-GAN's deeper "standard CNN" discriminator
  (``d_arch=sngan``, several times slower steps on a CPU).

Measured on embedded ``digits`` (1,437 train images, 28 px grey), batch 64: classifier-FID
of 2000 samples of the EMA generator (DCGAN: its generator) against the test split, lower
is better:

==================================================  ===========  ===========
model (seed 0 unless noted)                         1000 steps   2000 steps
==================================================  ===========  ===========
DCGAN (model A; no EMA), seed 0 / seed 1            13.9 / 12.4  9.66 / 9.89
these defaults, seed 0 / seed 1                     11.8 / 12.2  9.24 / 9.67
SAGAN's lr_g 1e-4 + DiffAugment translation,cutout  16.4         15.1
lr_g 2e-4 + DiffAugment translation,cutout          16.3         13.2
DiffAugment translation only                        14.6         13.1 (1500)
bCR consistency, lambda 10                          12.5         -
PacGAN, 2 samples per pack                          14.6         13.1 (1500)
non-saturating loss instead of hinge                11.7         9.40
==================================================  ===========  ===========

Here every augmentation slowed G down: in ~90 epochs the small D evidently does not yet
overfit the 1,437 images (the regime DiffAugment targets), so augmenting what it sees
only blurs its signal; these options are meant for longer runs on little data.
Re-estimating the EMA generator's BatchNorm statistics (instead of copying the live ones)
moved FID by at most 0.2, so the copy stays.
``benchmarks/gan_quality.py`` reproduces the DCGAN / improved GAN / ACGAN comparison.

One engine step: one discriminator update on real and fake images in a single forward
(spectral norm has no batch statistics to keep apart), then one generator update, then the
EMA; :meth:`GAN.train_step` shows both updates in full.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from genda.config import ConfigError, bounded, choice
from genda.data.prepare import DataInfo
from genda.methods.base import Batch, frozen
from genda.methods.dcgan import DCGANHparams
from genda.methods.generative import GAN_DEFAULTS, LatentGAN, adam, check_policy, check_size
from genda.nets import gan as nets
from genda.nets.gan import DIFF_AUGMENT, UPSAMPLE, diff_augment


def _policy(default: str, help: str) -> Any:
    """A free-form string field (a comma-separated list of transforms), validated in GAN."""
    return field(default=default, metadata={"help": help})


@dataclass
class GANHparams(DCGANHparams):
    lr_g: float = bounded(2e-4, 0.0, 1.0, "generator Adam learning rate (TTUR: slower than D)")
    lr_d: float = bounded(4e-4, 0.0, 1.0, "discriminator Adam learning rate")
    beta1: float = bounded(0.0, 0.0, 1.0, "Adam beta1 (SAGAN: 0)")
    beta2: float = bounded(0.9, 0.0, 1.0, "Adam beta2 (SAGAN: 0.9)")
    loss: str = choice("hinge", ["hinge", "nonsaturating"], "adversarial loss")
    label_smoothing: float = bounded(0.0, 0.0, 0.5, "nonsaturating only: real target = 1 - this")
    label_flip: float = bounded(0.0, 0.0, 0.5, "nonsaturating only: fraction of D targets flipped")
    ema_decay: float = bounded(
        0.999, 0.0, 0.99999, "EMA of generator weights for sampling (0: off)"
    )
    upsample: str = choice("convt", list(UPSAMPLE), "generator upsampling")
    d_arch: str = choice(
        "dcgan",
        ["dcgan", "sngan"],
        "discriminator layout: DCGAN's ladder (as fast as DCGAN) or SN-GAN's standard CNN "
        "(3x3 convs added: more capacity, ~4x slower D on a CPU)",
    )
    diffaug: str = _policy(
        "none",
        "DiffAugment transforms applied to real and fake images before D, comma-separated "
        f"from {', '.join(DIFF_AUGMENT)} ('none': off)",
    )
    pack: int = bounded(1, 1, 8, "PacGAN: D scores packs of this many samples (1: off)")
    consistency: float = bounded(
        0.0, 0.0, 1000.0, "weight of bCR consistency regularisation of D (0: off; paper: 10)"
    )
    cr_aug: str = _policy("translation", "transforms making bCR's views (as for diffaug)")


def d_loss(hp: GANHparams, s: torch.Tensor, real: bool) -> torch.Tensor:
    """D's loss on one half of the game from its real/fake scores ``s [N]``: hinge
    ``relu(1 - s)`` / ``relu(1 + s)``, or cross-entropy with optional soft / flipped labels."""
    s = s.float()
    if hp.loss == "hinge":
        return F.relu(1.0 - s).mean() if real else F.relu(1.0 + s).mean()
    target = torch.full_like(s, 1.0 - hp.label_smoothing if real else 0.0)
    if hp.label_flip > 0:
        flip = torch.rand_like(s) < hp.label_flip
        target = torch.where(flip, 1.0 - target, target)
    return F.binary_cross_entropy_with_logits(s, target)


def g_loss(hp: GANHparams, s: torch.Tensor) -> torch.Tensor:
    """G's loss from D's scores of its fakes: hinge ``-s``, or non-saturating ``-log D``."""
    s = s.float()
    if hp.loss == "hinge":
        return -s.mean()
    return F.binary_cross_entropy_with_logits(s, torch.ones_like(s))


def d_score(hp: GANHparams, s: torch.Tensor) -> torch.Tensor:
    """What to log as D's output: the raw score for hinge (real should sit above +1, fake
    below -1), the probability 'real' for cross-entropy."""
    s = s.detach().float()
    return s.mean() if hp.loss == "hinge" else torch.sigmoid(s).mean()


def check_hparams(hp: GANHparams) -> None:
    """Reject option combinations that would be silently ignored."""
    if hp.loss == "hinge" and (hp.label_smoothing or hp.label_flip):
        raise ConfigError(
            "hparams.label_smoothing / hparams.label_flip apply to "
            "hparams.loss=nonsaturating only (hinge has no labels to soften)"
        )
    for key in ("diffaug", "cr_aug"):
        check_policy(hp, key)


class GAN(LatentGAN):
    """Spectral-norm discriminator, hinge/non-saturating loss, TTUR and an EMA generator."""

    name = "gan"
    Hparams = GANHparams
    defaults = GAN_DEFAULTS

    def __init__(self, hp: GANHparams, info: DataInfo) -> None:
        check_hparams(hp)
        super().__init__(hp, info)
        check_size(info, self.name, nets.SIZES)
        k = self.num_labels  # ACGAN: a one-hot label in, k class logits out
        self.nets["g"] = nets.generator(hp.nz + k, info.channels, info.size, hp.width, hp.upsample)
        self.nets["d"] = nets.discriminator(
            info.channels,
            info.size,
            hp.width,
            out=1 + k,
            norm="spectral",
            deep=hp.d_arch == "sngan",
            pack=hp.pack,
        )
        self.add_ema(hp.ema_decay)

    def configure(self, total_steps: int) -> None:
        self.optimizers["g"] = adam(self.nets["g"].parameters(), self.hp.lr_g, self.hp)
        self.optimizers["d"] = adam(self.nets["d"].parameters(), self.hp.lr_d, self.hp)

    def train_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        hp = self.hp
        real = self.prepare(batch["source"][0])
        g, d = self.nets["g"], self.nets["d"]
        opt_g, opt_d = self.optimizers["g"], self.optimizers["d"]
        fake = g(torch.randn(len(real), hp.nz, device=real.device))

        # (1) D, one forward over both halves (one spectral-norm power iteration), through
        # DiffAugment when on, plus bCR's re-augmented views when D is consistency-regularised.
        opt_d.zero_grad(set_to_none=True)
        x = diff_augment(torch.cat([real, fake.detach()]), hp.diffaug)
        if hp.consistency > 0:
            x = torch.cat([x, diff_augment(x, hp.cr_aug)])
        out = d(x).float()
        n = len(out) // (4 if hp.consistency > 0 else 2)  # rows per half (PacGAN: packs)
        out_real, out_fake = out[:n, 0], out[n : 2 * n, 0]
        loss_d = d_loss(hp, out_real, True) + d_loss(hp, out_fake, False)
        if hp.consistency > 0:  # bCR: lambda * (E_real + E_fake) ||D(x) - D(T(x))||^2
            sq = (out[: 2 * n] - out[2 * n :]).pow(2).sum(1)
            loss_d = loss_d + hp.consistency * (sq[:n].mean() + sq[n:].mean())
        self.backward(loss_d)
        opt_d.step()

        # (2) G, through the same augmentation; D's weight gradients are not needed.
        opt_g.zero_grad(set_to_none=True)
        with frozen(d):
            out_gen = d(diff_augment(fake, hp.diffaug))[:, 0]
        loss_g = g_loss(hp, out_gen)
        self.backward(loss_g)
        opt_g.step()
        self.update_ema(hp.ema_decay, step)
        return {
            "loss/d": loss_d.detach(),
            "loss/g": loss_g.detach(),
            "d/real": d_score(hp, out_real),
            "d/fake": d_score(hp, out_fake),
        }
