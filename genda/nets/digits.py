"""Digit networks from the domain-adaptation literature (28/32 px, grey or colour).

``lenet`` follows the MNIST architecture of the DANN paper (Ganin & Lempitsky, 2015,
appendix): conv5x5-32, max-pool, conv5x5-48, max-pool, then a 100-100-K label predictor
and a 100-1 domain classifier. As in common re-implementations (e.g. fungtion/DANN) we add
BatchNorm after each layer and dropout before the second pooling, which stabilises the
adversarial game on small data without changing the network's size.

``adda`` is the LeNet of the ADDA paper (Tzeng et al., 2017): conv5x5-20, conv5x5-50,
fc-500, with a 500-500-2 discriminator.
"""

from __future__ import annotations

import torch
from torch import nn


def _conv_out(size: int) -> int:
    """Side after two (conv5x5 valid, max-pool 2) blocks."""
    return ((size - 4) // 2 - 4) // 2


def standardize(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Per-image, per-channel standardisation ``(x - mean) / std`` over the pixels.

    An instance-norm input layer without learnt scale (as in DIRT-T's digit nets, Shu et
    al., 2018): it removes each image's brightness, contrast and colour cast, the shift that
    separates MNIST-M (digits cut out of colour photos) from MNIST, before any weight sees
    them. ``eps`` (in units of the [-1, 1] input range) keeps flat images finite.
    """
    mean = x.mean((2, 3), keepdim=True)
    var = x.var((2, 3), keepdim=True, unbiased=False)
    return (x - mean) * torch.rsqrt(var + eps)


class Encoder(nn.Module):
    """Image -> feature vector. ``width`` = (conv1, conv2) channels, ``dim`` = output size."""

    def __init__(
        self,
        channels: int = 1,
        size: int = 28,
        width: tuple[int, int] = (32, 48),
        dim: int = 100,
        dropout: float = 0.1,
        input_norm: bool = False,
    ) -> None:
        super().__init__()
        self.input_norm = input_norm
        c1, c2 = width
        side = _conv_out(size)
        if side < 1:
            raise ValueError(f"image size {size} is too small for the digit encoder (need >= 16)")
        self.conv = nn.Sequential(
            # ReLU and channel dropout commute with max-pooling; applying them after the pool
            # touches 4x fewer values for the same function.
            nn.Conv2d(channels, c1, 5),
            nn.BatchNorm2d(c1),
            nn.MaxPool2d(2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c1, c2, 5),
            nn.BatchNorm2d(c2),
            nn.MaxPool2d(2),
            nn.Dropout2d(dropout),
            nn.ReLU(inplace=True),
        )
        self.fc = nn.Sequential(
            nn.Flatten(),
            nn.Linear(c2 * side * side, dim),
            nn.BatchNorm1d(dim),
            nn.ReLU(inplace=True),
        )
        self.out_dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_norm:
            x = standardize(x)
        return self.fc(self.conv(x))


def classifier(dim: int = 100, num_classes: int = 10, hidden: int = 100) -> nn.Module:
    """Label predictor head (the DANN paper's second 100-unit layer + output)."""
    if hidden <= 0:
        return nn.Linear(dim, num_classes)
    return nn.Sequential(
        nn.Linear(dim, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(inplace=True),
        nn.Linear(hidden, num_classes),
    )


def discriminator(
    dim: int = 100, hidden: int = 100, layers: int = 1, out: int = 1, batchnorm: bool = True
) -> nn.Module:
    """Domain classifier on features: ``layers`` hidden layers of ``hidden`` units (with
    BatchNorm unless ``batchnorm`` is false) -> ``out`` logits."""
    mods: list[nn.Module] = []
    d = dim
    for _ in range(layers):
        norm = [nn.BatchNorm1d(hidden)] if batchnorm else []
        mods += [nn.Linear(d, hidden), *norm, nn.ReLU(inplace=True)]
        d = hidden
    mods.append(nn.Linear(d, out))
    return nn.Sequential(*mods)
