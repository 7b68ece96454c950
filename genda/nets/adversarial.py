"""Domain-adversarial pieces any backbone plugs into (TLlib style: a loss owns its adversary).

Gradient reversal, the DANN paper's lambda and learning-rate schedules,
:class:`DomainAdversarialLoss`, used by DANN and DSN (and the conventional-pipeline
baseline in ``benchmarks/pipeline.py``), and :class:`ClassPriors`, the label-shift weights
that keep the adversary from aligning domains whose classes come in different proportions.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, coeff: float) -> torch.Tensor:
        ctx.coeff = coeff
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.coeff * grad, None


def grad_reverse(x: torch.Tensor, coeff: float = 1.0) -> torch.Tensor:
    """Identity forward; multiplies the gradient by ``-coeff`` backward (Ganin & Lempitsky, 2015)."""
    return _GradReverse.apply(x, coeff)


def dann_lambda(progress: float, gamma: float = 10.0) -> float:
    """The DANN paper's adaptation factor ``2 / (1 + exp(-gamma p)) - 1``, p in [0, 1]."""
    return 2.0 / (1.0 + math.exp(-gamma * progress)) - 1.0


def dann_lr(progress: float, alpha: float = 10.0, beta: float = 0.75) -> float:
    """The DANN paper's learning-rate annealing factor ``1 / (1 + alpha p) ** beta``."""
    return 1.0 / (1.0 + alpha * progress) ** beta


class DomainAdversarialLoss(nn.Module):
    """Binary domain-classification loss through a gradient-reversal layer.

    ``loss = BCE(D(GRL(f_s)), 1) + BCE(D(GRL(f_t)), 0)`` averaged over both domains; the
    discriminator ``D`` learns to tell domains apart while the reversed gradient drives the
    features ``f`` to be domain-invariant.

    Shapes: ``f_s [Ns, d]``, ``f_t [Nt, d]`` -> scalar loss and domain accuracy.
    Example::

        adv = DomainAdversarialLoss(discriminator(100))
        loss, acc = adv(f_s, f_t, coeff=dann_lambda(step / steps))
        (cls_loss + loss).backward()
    """

    def __init__(self, discriminator: nn.Module) -> None:
        super().__init__()
        self.discriminator = discriminator

    def forward(
        self,
        f_s: torch.Tensor,
        f_t: torch.Tensor,
        coeff: float = 1.0,
        weight: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        f = grad_reverse(torch.cat([f_s, f_t]), coeff)
        logits = self.discriminator(f).squeeze(1)
        dom = torch.cat(
            [torch.ones(len(f_s), device=f.device), torch.zeros(len(f_t), device=f.device)]
        )
        loss = F.binary_cross_entropy_with_logits(logits.float(), dom, weight=weight)
        acc = ((logits > 0).float() == dom).float().mean()
        return loss, acc


class ClassPriors(nn.Module):
    """Running estimates of the source and target label distributions, and the importance
    weights ``w_y = p_T(y) / p_S(y)`` that make the source look like the target's mix.

    DANN aligns the feature *marginals*. When the domains' class proportions differ (USPS
    has 16 % zeros, MNIST and MNIST-M 10 %), a perfect alignment must map some target zeros
    onto source features of other classes. Weighting each source image in the domain loss by
    ``w_y`` aligns the target with the source re-mixed to the target's proportions instead
    (IWDAN: Tachet des Combes et al., "Domain Adaptation with Conditional Distribution
    Matching and Generalized Label Shift", NeurIPS 2020). ``p_S`` comes from the source
    labels; ``p_T``, never from target labels, is the mean predicted distribution on target
    batches. Both are exponential moving averages (``momentum`` per step); buffers, so a
    checkpoint resumes them.
    """

    def __init__(self, num_classes: int, momentum: float = 0.99) -> None:
        super().__init__()
        self.momentum = momentum
        self.register_buffer("source", torch.full((num_classes,), 1.0 / num_classes))
        self.register_buffer("target", torch.full((num_classes,), 1.0 / num_classes))

    @torch.no_grad()
    def update(self, y_s: torch.Tensor, probs_t: torch.Tensor) -> None:
        """One step: source labels ``[Ns]`` and target class probabilities ``[Nt, K]``."""
        counts = torch.bincount(y_s, minlength=len(self.source)).float()
        self.source.lerp_(counts / counts.sum(), 1 - self.momentum)
        self.target.lerp_(probs_t.float().mean(0), 1 - self.momentum)

    def weights(self, y_s: torch.Tensor) -> torch.Tensor:
        """``w_y`` for every source label in ``y_s`` (1 everywhere when the mixes agree)."""
        return (self.target / self.source.clamp_min(1e-3))[y_s]
