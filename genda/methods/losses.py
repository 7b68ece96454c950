"""Small loss pieces shared by several methods. The domain-adversarial pieces (gradient
reversal, its lambda schedule, the adversarial loss) live in :mod:`genda.nets.adversarial`."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def gan_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Standard (non-saturating) GAN loss: BCE of discriminator ``logits`` against all-``real``.

    Used with *inverted labels* by the generator side of ADDA (target encoder) and PixelDA
    (pixel generator): the discriminator is trained with ``real=True`` for one domain and
    ``real=False`` for the other, the mapping with ``real=True`` on its own outputs
    (Goodfellow et al., 2014; Tzeng et al., 2017).
    """
    logits = logits.float().reshape(-1)
    target = torch.full_like(logits, 1.0 if real else 0.0)
    return F.binary_cross_entropy_with_logits(logits, target)


def simse(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Scale-invariant MSE (Eigen et al., 2014), averaged over the batch.

    ``1/k ||d||^2 - 1/k^2 (sum d)^2`` with ``d = target - pred`` over the ``k`` values of one
    image: it ignores a constant offset of the whole image, so a reconstruction / adapted image
    is judged on its shape, not its absolute intensity. DSN's reconstruction loss
    (Bousmalis et al., 2016) and PixelDA's content-similarity loss (PMSE, Bousmalis et al.,
    2017) are both this quantity.
    """
    d = (target - pred).float().flatten(1)
    k = d.shape[1]
    return (d.pow(2).sum(1) / k - d.sum(1).pow(2) / k**2).mean()


def difference_loss(shared: torch.Tensor, private: torch.Tensor) -> torch.Tensor:
    """DSN's soft subspace-orthogonality loss ``||H_c^T H_p||_F^2`` (Bousmalis et al., 2016).

    Rows are centred and L2-normalised first (as in the authors' code) so the loss measures
    correlation between shared and private features, not their scale; without that the
    encoders could satisfy it by shrinking their outputs.
    Shapes: ``shared [N, d1]``, ``private [N, d2]`` -> scalar (mean over the d1 x d2 entries).
    """

    def norm(h: torch.Tensor) -> torch.Tensor:
        h = h.float() - h.float().mean(0, keepdim=True)
        return F.normalize(h, dim=1, eps=1e-6)

    return (norm(shared).t() @ norm(private)).pow(2).mean()


def diversity(logits: torch.Tensor) -> torch.Tensor:
    """``log K - H(mean softmax)``: 0 when the batch's mean prediction is uniform over K classes.

    The diversity half of information maximisation (Krause et al., 2010; Liang et al., 2020,
    SHOT): minimising it stops self-training from collapsing every target image onto a few
    classes, the failure mode of pseudo-labelling on an imbalanced start.
    """
    p = logits.float().softmax(1).mean(0)
    return math.log(logits.shape[1]) + (p * p.clamp_min(1e-8).log()).sum()


@torch.no_grad()
def ema_update(ema: nn.Module, net: nn.Module, decay: float, copy_buffers: bool = False) -> None:
    """``ema <- decay * ema + (1 - decay) * net`` over parameters, in one foreach call.

    A mean teacher (Tarvainen & Valpola, 2017) keeps its own BatchNorm statistics; an EMA
    generator or denoiser (``copy_buffers``) takes the live net's, which the averaged
    weights have never been run with but match closely enough at high decay.
    """
    with torch.no_grad():
        torch._foreach_lerp_(
            list(ema.parameters()), [p.detach() for p in net.parameters()], 1.0 - decay
        )
        if copy_buffers:
            for b_ema, b in zip(ema.buffers(), net.buffers(), strict=True):
                b_ema.copy_(b)


def warmup_decay(decay: float, step: int) -> float:
    """EMA decay warmed up as ``(1 + t) / (10 + t)`` (TensorFlow's ExponentialMovingAverage
    rule), so short runs are not dominated by the random initial weights."""
    return min(decay, (1.0 + step) / (10.0 + step))
