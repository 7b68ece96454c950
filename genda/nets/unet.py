"""A compact class-conditional U-Net that predicts the noise of a diffusion model.

The design follows the DDPM U-Net (Ho et al., "Denoising Diffusion Probabilistic Models",
NeurIPS 2020) scaled down for 28-64 px images: residual blocks with GroupNorm, a sinusoidal
timestep embedding, one self-attention block at the lowest resolution, and skip connections
between the encoder and decoder of each level. Like the "ContextUnet" of small conditional
diffusion tutorials, a learned class embedding is added to the time embedding; index
``num_classes`` is the *null* context used for classifier-free guidance (Ho & Salimans,
"Classifier-Free Diffusion Guidance", 2022), so a conditional and an unconditional model
share every weight.

The network only maps ``(x_t, t, y) -> predicted noise``; schedules and sampling live in
:mod:`genda.schedulers` (diffusers-style separation), so the same net serves both
DDPM ancestral and DDIM sampling.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

# Channel multiplier per level: level 0 runs at full resolution, each next one at half.
_MULTS = (1, 2, 2, 4, 4)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps ``[N] -> [N, dim]`` (Transformer-style).

    Fixed frequencies let the MLP after it resolve both coarse and fine timestep
    differences without learning a table of ``T`` vectors.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device).float() / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    return F.pad(emb, (0, dim % 2))


def _norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with the largest group count <= 8 dividing ``channels`` (tiny test widths)."""
    groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
    return nn.GroupNorm(groups, channels)


class ResBlock(nn.Module):
    """Two 3x3 convolutions with the (time + class) embedding applied as scale and shift.

    FiLM-style modulation (as in the improved-DDPM U-Net) lets the embedding rescale
    features per channel, which conditions better than adding a bias only.
    """

    def __init__(self, c_in: int, c_out: int, emb_dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm1 = _norm(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out)
        self.norm2 = _norm(c_out)
        self.drop = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(self.drop(F.silu(h)))
        return h + self.skip(x)


class SelfAttention(nn.Module):
    """Multi-head self-attention over the pixels of a (small) feature map, residual."""

    def __init__(self, channels: int, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads if channels % heads == 0 else 1
        self.norm = _norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w).unbind(1)
        a = F.scaled_dot_product_attention(
            q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2)
        )
        return x + self.out(a.transpose(-1, -2).reshape(n, c, h, w))


class UNet(nn.Module):
    """Noise predictor ``eps_theta(x_t, t, y)`` for ``[N, C, H, W]`` images.

    Args:
        channels: image channels (1 or 3).
        num_classes: number of conditioning classes; labels ``0..num_classes-1`` select a
            class and label ``num_classes`` is the null context. ``0`` gives an
            unconditional model (every label is the null context).
        width: channels of the first level; level ``i`` has ``width * (1, 2, 2, 4, 4)[i]``.
        levels: number of downsamplings (2 = a 28 -> 14 -> 7 U-Net for digits). Odd sizes
            are fine: the decoder upsamples to the exact size of each skip connection.
        attention: self-attention at the lowest resolution (cheap there: 7x7 for digits).
        dropout: dropout inside residual blocks.
    """

    def __init__(
        self,
        channels: int = 1,
        num_classes: int = 10,
        width: int = 64,
        levels: int = 2,
        attention: bool = True,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if not 1 <= levels < len(_MULTS):
            raise ValueError(f"levels must be in 1..{len(_MULTS) - 1}, got {levels}")
        self.channels, self.num_classes, self.width = channels, num_classes, width
        emb_dim = 4 * width
        self.time_mlp = nn.Sequential(
            nn.Linear(width, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        # +1 row: the null context of classifier-free guidance.
        self.class_emb = nn.Embedding(num_classes + 1, emb_dim)
        widths = [width * m for m in _MULTS[: levels + 1]]
        self.stem = nn.Conv2d(channels, width, 3, padding=1)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        c = width
        for i, w in enumerate(widths):
            self.down.append(ResBlock(c, w, emb_dim, dropout))
            c = w
            if i < levels:
                self.downsample.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.mid1 = ResBlock(c, c, emb_dim, dropout)
        self.mid_attn = SelfAttention(c) if attention else nn.Identity()
        self.mid2 = ResBlock(c, c, emb_dim, dropout)
        self.up = nn.ModuleList()
        self.upconv = nn.ModuleList()
        for i in reversed(range(levels + 1)):
            w = widths[i]
            self.up.append(ResBlock(c + w, w, emb_dim, dropout))
            c = w
            if i > 0:
                self.upconv.append(nn.Conv2d(c, c, 3, padding=1))
        self.head = nn.Sequential(_norm(c), nn.SiLU(), nn.Conv2d(c, channels, 3, padding=1))
        # Zero-init the output so training starts from "predict zero noise" (stable start).
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Predicted noise for noisy images ``x`` at integer timesteps ``t`` with labels ``y``."""
        emb = self.time_mlp(timestep_embedding(t, self.width)) + self.class_emb(y)
        h = self.stem(x)
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, emb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for i, block in enumerate(self.up):
            skip = skips.pop()
            if h.shape[-2:] != skip.shape[-2:]:
                h = self.upconv[i - 1](F.interpolate(h, size=skip.shape[-2:], mode="nearest"))
            h = block(torch.cat([h, skip], dim=1), emb)
        return self.head(h)
