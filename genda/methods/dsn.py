"""DSN: domain separation networks.

Bousmalis, Trigeorgis, Silberman, Krishnan & Erhan, "Domain Separation Networks", NeurIPS
2016. Each image is split into a *shared* code ``h_c = E_c(x)`` (one encoder for both
domains, the only input of the classifier) and a *private* code ``h_p = E_p^{s|t}(x)`` (one
encoder per domain) that is meant to absorb what is specific to the domain (stroke width,
framing, background). The objective::

    L = L_task + alpha L_recon + beta L_difference + gamma L_similarity

- ``L_task``: cross-entropy of the classifier on source shared codes;
- ``L_recon``: scale-invariant MSE between each image and ``D(h_c + h_p)`` (shared decoder),
  so that shared + private codes together keep the image's content;
- ``L_difference``: soft orthogonality of shared and private codes in each domain, so the
  private encoder cannot simply copy the shared code;
- ``L_similarity``: the DANN variant (DSN-DANN in the paper): a domain discriminator on the
  shared codes behind a gradient-reversal layer, with DANN's lambda schedule as the
  ramp-up of ``gamma`` (the paper switches the similarity loss on after a warm-up).

The shared encoder, classifier, discriminator and optimiser schedule are DANN's, so DSN
differs from DANN only by the private encoders, the decoder and the two extra losses.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from genda.config import bounded, choice
from genda.methods.base import Batch
from genda.methods.dann import DANN, DANNHparams
from genda.methods.losses import difference_loss, simse
from genda.methods.supervised import measured_lr
from genda.nets import digits
from genda.nets.adversarial import DomainAdversarialLoss, dann_lambda
from genda.nets.dsn import Decoder


@dataclass
class DSNHparams(DANNHparams):
    lr: float = measured_lr()
    # DSN keeps the input scaling and discriminator it was measured with: its private
    # encoders and decoder model the raw image, and DANN's new defaults were measured on DANN.
    norm: str = choice("minmax", ["minmax", "instance"], "input scaling (see source-only)")
    disc_hidden: int = bounded(0, 0, 4096, "discriminator hidden units (0 = the arch's)")
    disc_layers: int = bounded(0, 0, 8, "discriminator hidden layers (0 = the arch's)")
    # lambda_max (DANN's) is gamma, the similarity weight. The paper tuned alpha/beta on a small
    # labelled target set, which UDA may not use; 0.1 each keeps both terms below the task loss.
    recon_weight: float = bounded(
        0.1, 0.0, 100.0, "alpha: weight of the scale-invariant reconstruction loss"
    )
    diff_weight: float = bounded(
        0.1, 0.0, 100.0, "beta: weight of the shared/private difference loss"
    )
    # One forward of both domains (its decoder reconstructs the batch as one), and the domain
    # loss unweighted: DANN's per-domain BatchNorm and class weights were not built into DSN.
    bn: str = choice("joint", ["joint"], "one encoder forward of source+target")
    class_weights: bool = choice(False, [False], "not available in DSN (see DANN)")


class DSN(DANN):
    name = "dsn"
    Hparams = DSNHparams

    def __init__(self, hp: DSNHparams, info) -> None:
        super().__init__(hp, info)
        dim = self.nets["encoder"].out_dim
        for k in ("private_source", "private_target"):  # half a lenet: they only model style
            self.nets[k] = digits.Encoder(info.channels, info.size, (16, 24), dim)
        self.nets["decoder"] = Decoder(dim, info.channels, info.size)

    def train_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        (xs, ys), (xt, _) = batch["source"], batch["target"]  # target labels are never read
        n = len(xs)
        x = self.jitter(torch.cat([xs, xt]))
        shared = self.nets["encoder"](x)
        private = torch.cat(
            [self.nets["private_source"](x[:n]), self.nets["private_target"](x[n:])]
        )
        logits = self.nets["classifier"](shared[:n])
        cls_loss = F.cross_entropy(logits, ys)
        recon = self.nets["decoder"](shared + private)
        rec_loss = simse(recon, x)
        diff_loss = difference_loss(shared[:n], private[:n]) + difference_loss(
            shared[n:], private[n:]
        )
        coeff = self.hp.lambda_max * dann_lambda((step - 1) / self.total_steps, self.hp.gamma)
        sim_loss, dom_acc = DomainAdversarialLoss(self.nets["discriminator"])(
            shared[:n], shared[n:], coeff
        )
        loss = (
            cls_loss + self.hp.recon_weight * rec_loss + self.hp.diff_weight * diff_loss + sim_loss
        )
        opt = self.optimizers["main"]
        opt.zero_grad(set_to_none=True)
        self.backward(loss)
        opt.step()
        self.schedulers["main"].step()
        return {
            "loss/class": cls_loss,
            "loss/recon": rec_loss.detach(),
            "loss/difference": diff_loss.detach(),
            "loss/domain": sim_loss.detach(),
            "acc/domain": dom_acc,
            "acc/train": (logits.argmax(1) == ys).float().mean(),
        }
