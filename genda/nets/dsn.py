"""Networks of Domain Separation Networks (Bousmalis et al., NeurIPS 2016) for digits.

The shared encoder and the classifier are the ordinary digit networks
(:mod:`genda.nets.digits`); DSN adds one *private* encoder per domain (the same LeNet,
:class:`genda.nets.digits.Encoder`, at half the conv width since it only has to model a
domain's style) and a shared :class:`Decoder` that reconstructs an image from the sum of
its shared and private codes. Both are kept small so a DSN step costs about twice a DANN
step on a CPU (the decoder's convolutions at full resolution dominate otherwise).
"""

from __future__ import annotations

import math

import torch
from torch import nn


class Decoder(nn.Module):
    """Code ``[N, dim]`` -> image ``[N, channels, size, size]`` (linear output, any range).

    A fully connected layer to a ``width x size/4 x size/4`` map, then two (nearest 2x
    upsampling, conv3x3) stages, like the paper's MNIST decoder; odd sizes are cropped.
    """

    def __init__(self, dim: int, channels: int = 1, size: int = 28, width: int = 32) -> None:
        super().__init__()
        self.side, self.width, self.size = math.ceil(size / 4), width, size
        self.fc = nn.Sequential(nn.Linear(dim, width * self.side**2), nn.ReLU(inplace=True))
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2),
            nn.Conv2d(width, width // 2, 3, padding=1),
            nn.BatchNorm2d(width // 2),
            nn.ReLU(inplace=True),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(width // 2, width // 4, 3, padding=1),
            nn.BatchNorm2d(width // 4),
            nn.ReLU(inplace=True),
            nn.Conv2d(width // 4, channels, 3, padding=1),
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        x = self.up(self.fc(h).view(-1, self.width, self.side, self.side))
        return x[..., : self.size, : self.size]
