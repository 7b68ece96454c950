"""PixelDA: pixel-level domain adaptation with a GAN.

Bousmalis, Silberman, Dohan, Erhan & Krishnan, "Unsupervised Pixel-Level Domain Adaptation
with Generative Adversarial Networks", CVPR 2017. Instead of aligning features, a generator
``G(x_s, z)`` restyles source images to look like target images; a pixel discriminator ``D``
tells real target images from adapted ones, and the task classifier ``T`` learns the source
labels on adapted *and* source images (the paper found training on both more stable).
The objective (the paper's, with its optional content-similarity term)::

    min_{G,T} max_D  adv_weight L_d(D, G) + task_weight L_t(G, T) + content_weight L_c(G)

``L_c`` is the PMSE between a source image and its adaptation (``losses.simse``), which keeps
the digit in place; the paper used it (with masks) where the foreground is known.
``G`` trains with Adam (lr 2e-4, beta1 0.5, as in the paper's GAN setup); ``T`` is the
table's usual digit classifier with the usual SGD schedule so rows stay comparable.
At test time ``classify`` is ``T`` on real target images; ``evaluate`` also writes a figure
of source test images above their adapted versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from genda.config import bounded
from genda.data.prepare import ExperimentData
from genda.methods.base import Batch
from genda.methods.losses import gan_loss, simse
from genda.methods.supervised import (
    SourceOnly,
    SupervisedHparams,
    annealed,
    make_optimizer,
    measured_lr,
)
from genda.nets.pixelda import Discriminator, Generator


@dataclass
class PixelDAHparams(SupervisedHparams):
    lr: float = measured_lr()
    adv_weight: float = bounded(1.0, 0.0, 100.0, "alpha: weight of the GAN loss for G")
    task_weight: float = bounded(1.0, 0.0, 100.0, "beta: weight of the task loss (for G and T)")
    content_weight: float = bounded(0.1, 0.0, 100.0, "weight of the PMSE content-similarity loss")
    gan_lr: float = bounded(2e-4, 0.0, 1.0, "Adam lr of generator and discriminator")
    gan_beta1: float = bounded(0.5, 0.0, 1.0)
    noise_dim: int = bounded(10, 1, 1024)
    width: int = bounded(16, 4, 512, "generator filters (paper: 64)")
    blocks: int = bounded(2, 1, 32, "generator residual blocks (paper: 6)")
    disc_width: int = bounded(16, 4, 512, "discriminator filters, doubled twice (paper: 64)")


class PixelDA(SourceOnly):
    """``encoder`` + ``classifier`` = T, ``generator`` = G, ``pixel_discriminator`` = D."""

    name = "pixelda"
    Hparams = PixelDAHparams
    streams = ("source", "target")

    def __init__(self, hp: PixelDAHparams, info) -> None:
        super().__init__(hp, info)
        self.nets["generator"] = Generator(
            info.channels, info.size, hp.noise_dim, hp.width, hp.blocks
        )
        self.nets["pixel_discriminator"] = Discriminator(info.channels, info.size, hp.disc_width)

    def configure(self, total_steps: int) -> None:
        task_params = [*self.nets["encoder"].parameters(), *self.nets["classifier"].parameters()]
        self.optimizers["main"] = make_optimizer(task_params, self.hp)
        self.schedulers["main"] = annealed(self.optimizers["main"], total_steps, self.hp.anneal)
        betas = (self.hp.gan_beta1, 0.999)
        self.optimizers["generator"] = torch.optim.Adam(
            self.nets["generator"].parameters(), lr=self.hp.gan_lr, betas=betas
        )
        self.optimizers["discriminator"] = torch.optim.Adam(
            self.nets["pixel_discriminator"].parameters(), lr=self.hp.gan_lr, betas=betas
        )

    def adapt(self, xs: torch.Tensor) -> torch.Tensor:
        """Source float images -> target-style images (fresh uniform noise in [-1, 1])."""
        z = torch.rand(len(xs), self.hp.noise_dim, device=xs.device) * 2 - 1
        return self.nets["generator"](xs, z)

    def train_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        (xs, ys), (xt, _) = batch["source"], batch["target"]  # target labels are never read
        n = len(xs)
        # Augment both domains alike, or D could tell them apart by the augmentation alone.
        x = self.jitter(torch.cat([xs, xt]))
        xs, xt = x[:n], x[n:]
        fake = self.adapt(xs)
        disc = self.nets["pixel_discriminator"]

        # D: real target (1) vs adapted source (0), one batch so BatchNorm sees both.
        d = disc(torch.cat([xt, fake.detach()]))
        d_loss = 0.5 * (gan_loss(d[n:], False) + gan_loss(d[:n], True))
        opt_d = self.optimizers["discriminator"]
        opt_d.zero_grad(set_to_none=True)
        self.backward(d_loss)
        opt_d.step()

        # G and T: fool D, classify adapted and source images, keep the content.
        g_adv = gan_loss(disc(torch.cat([xt, fake]))[n:], True)
        logits = self.nets["classifier"](self.nets["encoder"](torch.cat([fake, xs])))
        task = F.cross_entropy(logits, torch.cat([ys, ys]))
        content = simse(fake, xs)
        loss = (
            self.hp.adv_weight * g_adv
            + self.hp.task_weight * task
            + self.hp.content_weight * content
        )
        opt_g, opt_t = self.optimizers["generator"], self.optimizers["main"]
        opt_g.zero_grad(set_to_none=True)
        opt_t.zero_grad(set_to_none=True)
        self.backward(loss)
        opt_g.step()
        opt_t.step()
        self.schedulers["main"].step()
        return {
            "loss/class": task.detach(),
            "loss/gan_d": d_loss.detach(),
            "loss/gan_g": g_adv.detach(),
            "loss/content": content.detach(),
            "acc/domain": torch.cat([d[:n] > 0, d[n:] <= 0]).float().mean(),
            "acc/train": (logits[:n].argmax(1) == ys).float().mean(),
        }

    @torch.no_grad()
    def figures(self, data: ExperimentData, confusion: list, run_dir: Path) -> dict[str, str]:
        from genda.viz import plot_pairs

        out = super().figures(data, confusion, run_dir)
        # Ten source test images, one per class where possible, above their adaptations.
        src = data.source.test
        idx = torch.cat([(src.labels == c).nonzero()[:1, 0] for c in range(self.info.num_classes)])[
            :10
        ]
        xs = self.prepare(src.images[idx].to(self.device))
        path = plot_pairs(
            xs.cpu(),
            self.adapt(xs).cpu(),
            run_dir / "adapted.png",
            titles=(f"source ({data.source.name})", f"adapted to {data.target.name}"),
        )
        out["Source images and their adaptation"] = f"figures/{path.name}"
        return out
