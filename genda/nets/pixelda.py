"""Networks of PixelDA (Bousmalis et al., "Unsupervised Pixel-Level Domain Adaptation with
Generative Adversarial Networks", CVPR 2017), sized for 28-32 px digits on a CPU.

The generator maps a source image and a noise vector to an image in the target style with
a stack of residual blocks at full resolution (no down-sampling, so digit shapes are kept);
the discriminator is a small strided CNN. The paper's networks are 64 filters x 6 blocks
(generator) and 64..512 filters (discriminator); ``width``/``blocks`` default smaller here.

One deviation: the generator adds its output to the input image (a global skip, clipped to
[-1, 1]) and its last layer starts at zero, so it begins as the identity and only learns the
change of style. The paper's generator learns the identity from scratch over ~10^5 steps; on
a CPU budget of a few thousand steps that would leave the task classifier training on noise.
"""

from __future__ import annotations

import torch
from torch import nn


class ResBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus identity (He et al., 2016)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(width, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1),
            nn.BatchNorm2d(width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class Generator(nn.Module):
    """``(x [N,C,S,S] in [-1,1], z [N,noise_dim]) -> x + G(x, z)`` clipped to [-1, 1].

    As in the paper, the noise is mapped by a linear layer to one extra image channel
    concatenated to the input, so the generator can vary the style it adds.
    """

    def __init__(
        self,
        channels: int = 1,
        size: int = 28,
        noise_dim: int = 10,
        width: int = 32,
        blocks: int = 4,
    ) -> None:
        super().__init__()
        self.size, self.noise_dim = size, noise_dim
        self.noise = nn.Linear(noise_dim, size * size)
        self.head = nn.Sequential(
            nn.Conv2d(channels + 1, width, 3, padding=1), nn.ReLU(inplace=True)
        )
        self.blocks = nn.Sequential(*[ResBlock(width) for _ in range(blocks)])
        self.tail = nn.Conv2d(width, channels, 3, padding=1)
        nn.init.zeros_(self.tail.weight)  # start as the identity map (see module docstring)
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        zmap = self.noise(z).view(-1, 1, self.size, self.size)
        delta = self.tail(self.blocks(self.head(torch.cat([x, zmap], 1))))
        return (x + delta).clamp(-1, 1)


class Discriminator(nn.Module):
    """Image -> one real/fake logit: three stride-2 conv3x3 layers (LeakyReLU 0.2, BN, dropout)."""

    def __init__(
        self, channels: int = 1, size: int = 28, width: int = 32, dropout: float = 0.1
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c, s = channels, size
        for i, w in enumerate((width, 2 * width, 4 * width)):
            layers += [nn.Conv2d(c, w, 3, stride=2, padding=1)]
            if i:
                layers += [nn.BatchNorm2d(w)]
            layers += [nn.LeakyReLU(0.2, inplace=True), nn.Dropout(dropout)]
            c, s = w, (s + 1) // 2
        self.conv = nn.Sequential(*layers)
        self.fc = nn.Linear(c * s * s, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x).flatten(1))
