"""ADDA: adversarial discriminative domain adaptation.

Tzeng, Hoffman, Saenko & Darrell, "Adversarial Discriminative Domain Adaptation", CVPR 2017.
Unlike DANN, source and target get *separate* encoders. A run has two phases, a pure
function of the step so a checkpoint taken in either phase (or on the boundary) resumes
exactly:

1. steps ``1..P`` (``P = hparams.pretrain_steps`` or ``pretrain_fraction`` of the run):
   pre-train the source encoder + classifier on labelled source images (the source-only
   step, same optimiser, annealed over phase 1). The target encoder is kept a copy of the source
   encoder, which is the paper's initialisation at the start of phase 2.
2. steps ``P+1..``: the source encoder and classifier are frozen (eval mode, so their
   BatchNorm statistics stay the source's); a domain discriminator learns to tell source
   features ``M_s(x_s)`` from target features ``M_t(x_t)``, and the target encoder is
   trained with the inverted-label GAN loss to fool it (the paper's choice over the
   minimax loss), with Adam (lr 2e-4, beta1 0.5) as in the authors' released code.

At test time target images go through the target encoder and the frozen classifier; the
t-SNE shows source test features from the source encoder and target features from the
target encoder, i.e. the two mappings ADDA aligns. ``source_accuracy`` is the source model's.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from genda.config import bounded, choice
from genda.data.prepare import ExperimentData
from genda.methods.base import Batch, unwrap
from genda.methods.losses import gan_loss
from genda.methods.supervised import (
    SourceOnly,
    SupervisedHparams,
    annealed,
    make_optimizer,
    measured_lr,
)
from genda.metrics.classification import classification_metrics, predict
from genda.nets import backbones


@dataclass
class ADDAHparams(SupervisedHparams):
    lr: float = measured_lr()
    pretrain_fraction: float = bounded(
        0.5, 0.0, 1.0, "share of the run spent pre-training on source"
    )
    pretrain_steps: int = bounded(
        0, 0, None, "source pre-training steps (0 = use pretrain_fraction)"
    )
    adapt_lr: float = bounded(2e-4, 0.0, 1.0, "Adam lr of target encoder and discriminator")
    adapt_beta1: float = bounded(0.5, 0.0, 1.0)
    discriminator: str = choice(
        "adda", list(backbones.BACKBONES), "discriminator size of that backbone's paper"
    )


class ADDA(SourceOnly):
    """``encoder`` = source encoder M_s, ``target_encoder`` = M_t, ``classifier`` = C (frozen
    after phase 1), ``discriminator`` = D."""

    name = "adda"
    Hparams = ADDAHparams
    streams = ("source", "target")
    eval_nets = ("target_encoder", "classifier")

    def __init__(self, hp: ADDAHparams, info) -> None:
        super().__init__(hp, info)
        enc = copy.deepcopy(self.nets["encoder"])  # M_t starts as M_s (same input scaling too)
        self.nets["target_encoder"] = enc
        self.nets["discriminator"] = backbones.discriminator_for(hp.discriminator, enc.out_dim)

    def pretrain_steps(self, total: int) -> int:
        """Length P of phase 1 for a run of ``total`` steps."""
        if self.hp.pretrain_steps:
            return min(self.hp.pretrain_steps, total)
        return round(self.hp.pretrain_fraction * total)

    def configure(self, total_steps: int) -> None:
        n_pre = max(1, self.pretrain_steps(total_steps))
        source_params = [*self.nets["encoder"].parameters(), *self.nets["classifier"].parameters()]
        self.optimizers["main"] = make_optimizer(source_params, self.hp)
        self.schedulers["main"] = annealed(self.optimizers["main"], n_pre, self.hp.anneal)
        betas = (self.hp.adapt_beta1, 0.999)
        self.optimizers["target"] = torch.optim.Adam(
            self.nets["target_encoder"].parameters(), lr=self.hp.adapt_lr, betas=betas
        )
        self.optimizers["discriminator"] = torch.optim.Adam(
            self.nets["discriminator"].parameters(), lr=self.hp.adapt_lr, betas=betas
        )

    def train_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        if step <= self.pretrain_steps(self.total_steps):
            logs = super().train_step(batch, step)  # the source-only step
            unwrap(self.nets["target_encoder"]).load_state_dict(
                unwrap(self.nets["encoder"]).state_dict()
            )
            return logs
        return self.adapt_step(batch)

    def adapt_step(self, batch: Batch) -> dict[str, torch.Tensor]:
        (xs, _), (xt, _) = batch["source"], batch["target"]  # target labels are never read
        source_model = self.nets["encoder"]
        source_model.eval()  # frozen: no dropout, and BatchNorm keeps the source statistics
        with torch.no_grad():
            fs = source_model(self.jitter(xs))
        ft = self.nets["target_encoder"](self.jitter(xt))
        disc, n = self.nets["discriminator"], len(xs)

        # Discriminator: source features are "real" (1), target features "fake" (0). Both
        # domains go through D in one batch so its BatchNorm sees the same mixture in both updates.
        d = disc(torch.cat([fs, ft.detach()]))
        d_loss = 0.5 * (gan_loss(d[:n], True) + gan_loss(d[n:], False))
        opt_d = self.optimizers["discriminator"]
        opt_d.zero_grad(set_to_none=True)
        self.backward(d_loss)
        opt_d.step()

        # Target encoder: inverted labels (make target features look like source ones). D's
        # gradients from this backward are discarded by its zero_grad at the next step.
        g_loss = gan_loss(disc(torch.cat([fs, ft]))[n:], True)
        opt_t = self.optimizers["target"]
        opt_t.zero_grad(set_to_none=True)
        self.backward(g_loss)
        opt_t.step()
        d_acc = torch.cat([d[:n] > 0, d[n:] <= 0]).float().mean()
        return {
            "loss/domain": d_loss.detach(),
            "loss/mapping": g_loss.detach(),
            "acc/domain": d_acc,
        }

    # -- evaluation: target images through M_t, source images through M_s ----------------------
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.nets["target_encoder"](x)

    def embed_source(self, x: torch.Tensor) -> torch.Tensor:
        return self.nets["encoder"](x)

    @torch.no_grad()
    def evaluate(self, data: ExperimentData, run_dir: Path | None = None) -> dict[str, Any]:
        out = super().evaluate(data, run_dir)
        logits, y = predict(
            lambda x: self.nets["classifier"](self.embed_source(self.prepare(x))),
            data.source.test,
            self.device,
        )
        out["source_accuracy"] = classification_metrics(logits, y, self.info.num_classes)[
            "accuracy"
        ]
        return out

    def figures(self, data: ExperimentData, confusion: list, run_dir: Path) -> dict[str, str]:
        from genda.viz import plot_confusion, plot_tsne

        dev = self.device
        fs, ys = predict(lambda x: self.embed_source(self.prepare(x)), data.source.test, dev)
        ft, yt = predict(lambda x: self.embed(self.prepare(x)), data.target.test, dev)
        domains = torch.cat([torch.zeros(len(ys)), torch.ones(len(yt))]).long()
        by_class, by_domain = plot_tsne(
            torch.cat([fs, ft]),
            torch.cat([ys, yt]),
            domains,
            run_dir / "tsne",
            self.info.classes,
            (
                f"source ({data.source.name}, source encoder)",
                f"target ({data.target.name}, target encoder)",
            ),
        )
        conf = plot_confusion(
            torch.tensor(confusion),
            self.info.classes,
            run_dir / "confusion.png",
            title=f"{self.name}: target confusion matrix",
        )
        return {
            "t-SNE by class": f"figures/{by_class.name}",
            "t-SNE by domain": f"figures/{by_domain.name}",
            "Target confusion matrix": f"figures/{conf.name}",
        }
