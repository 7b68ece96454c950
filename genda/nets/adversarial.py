"""Domain-adversarial pieces any backbone plugs into (TLlib style: a loss owns its adversary).

Gradient reversal, the DANN paper's lambda and learning-rate schedules, and
:class:`DomainAdversarialLoss`, used by DANN and DSN (and the conventional-pipeline
baseline in ``benchmarks/pipeline.py``).
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
