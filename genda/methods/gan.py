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

The networks and the step come from :class:`genda.methods.dcgan.DCGAN`; only the loss
hooks, what D sees (augmentations), the discriminator's normalisation and the EMA differ.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from genda.config import ConfigError, bounded, choice
from genda.data.prepare import DataInfo
from genda.methods.base import unwrap
from genda.methods.dcgan import DCGAN, DCGANHparams
from genda.methods.losses import ema_update, warmup_decay
from genda.nets.gan import DIFF_AUGMENT, UPSAMPLE, diff_augment, parse_policy


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


class GAN(DCGAN):
    """Spectral-norm discriminator, hinge/non-saturating loss, TTUR and an EMA generator."""

    name = "gan"
    Hparams = GANHparams
    d_norm = "spectral"

    def __init__(self, hp: GANHparams, info: DataInfo) -> None:
        if hp.loss == "hinge" and (hp.label_smoothing or hp.label_flip):
            raise ConfigError(
                "hparams.label_smoothing / hparams.label_flip apply to "
                "hparams.loss=nonsaturating only (hinge has no labels to soften)"
            )
        for key in ("diffaug", "cr_aug"):
            try:
                parse_policy(getattr(hp, key))
            except ValueError as e:
                raise ConfigError(f"hparams.{key}: {e}") from None
        super().__init__(hp, info)
        if hp.ema_decay > 0:
            g_ema = copy.deepcopy(self.nets["g"]).requires_grad_(False)
            self.nets["g_ema"] = g_ema  # no trainable parameters: the engine leaves it unwrapped

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.hp.diffaug)

    def consistency_views(self, x: torch.Tensor) -> torch.Tensor | None:
        return diff_augment(x, self.hp.cr_aug) if self.hp.consistency > 0 else None

    def consistency_loss(self, out: torch.Tensor, out_views: torch.Tensor) -> torch.Tensor:
        """bCR: ``lambda * (E_real ||D(x) - D(T(x))||^2 + E_fake ||...||^2)``, every output."""
        sq = (out.float() - out_views.float()).pow(2).sum(1)
        n = len(sq) // 2
        return self.hp.consistency * (sq[:n].mean() + sq[n:].mean())

    def d_loss(self, out: torch.Tensor, real: bool, y: torch.Tensor | None) -> torch.Tensor:
        s = out[:, 0].float()
        if self.hp.loss == "hinge":
            return F.relu(1.0 - s).mean() if real else F.relu(1.0 + s).mean()
        target = torch.full_like(s, 1.0 - self.hp.label_smoothing if real else 0.0)
        if self.hp.label_flip > 0:
            flip = torch.rand_like(s) < self.hp.label_flip
            target = torch.where(flip, 1.0 - target, target)
        return F.binary_cross_entropy_with_logits(s, target)

    def g_loss(self, out: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        if self.hp.loss == "hinge":
            return -out[:, 0].float().mean()
        return super().g_loss(out, y)

    def d_score(self, out: torch.Tensor) -> torch.Tensor:
        """Hinge: D's raw score (real should sit above +1, fake below -1)."""
        return out[:, 0].float().mean() if self.hp.loss == "hinge" else super().d_score(out)

    def after_step(self, step: int) -> None:
        if "g_ema" in self.nets:
            decay = warmup_decay(self.hp.ema_decay, step)
            ema_update(unwrap(self.nets["g_ema"]), unwrap(self.nets["g"]), decay, copy_buffers=True)

    def sampler(self) -> nn.Module:
        return self.nets["g_ema"] if "g_ema" in self.nets else self.nets["g"]
