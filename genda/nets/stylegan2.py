"""StyleGAN2 generator and discriminator for 8-256 px images, sized to train on a CPU.

Karras, Laine, Aittala, Hellsten, Lehtinen & Aila, "Analyzing and Improving the Image
Quality of StyleGAN", CVPR 2020. What is kept from the paper:

- a mapping network (pixel-normalised z through ``depth`` fully connected layers) whose
  learning rate is scaled down (``lr_mul``, 0.01 in the paper) by the equalised-learning-rate
  trick, and the running mean of w for the truncation trick;
- a learned constant 4x4 input; per layer a modulated 3x3 convolution with weight
  demodulation, per-pixel noise with a learned strength, bias and leaky ReLU;
- the skip generator (every resolution adds its RGB output to the upsampled RGB of the
  one below) and the residual discriminator with a minibatch-standard-deviation feature;
- equalised learning rate everywhere (weights stored as N(0, 1), scaled by 1/sqrt(fan-in)
  at run time, so Adam moves every layer at the same relative rate).

What is simpler, to run without custom CUDA ops on any device and to cost less on a CPU:
up- and downsampling are bilinear interpolation and 2x2 average pooling instead of the
paper's FIR-filtered transposed / strided convolutions, and each resolution's first
generator conv runs *before* the upsampling (and the discriminator's second conv after
its pooling), at a quarter of the pixels, which halves both networks' cost; modulation is
computed as "scale the input channels, one shared convolution, scale the output
channels" (the official code's non-fused path, mathematically the same as the per-sample
grouped convolution).

Channels: ``width`` at the output resolution, doubled per halving of the side and capped
at ``8 * width`` (64 px, width 32: 32, 64, 128, 256, 256 from 64 px down to 4 px).
Optional :class:`LinearAttention` layers sit at chosen resolutions in both networks.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

SIZES = (8, 16, 32, 64, 128, 256)
SQRT2 = math.sqrt(2.0)


def channels(res: int, size: int, width: int) -> int:
    """Feature channels at side ``res`` of a ``size``-px network of base ``width``."""
    return min(width * size // res, 8 * width)


def lrelu(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU (0.2) scaled by sqrt(2) to keep unit variance (the paper's activation)."""
    return F.leaky_relu(x, 0.2) * SQRT2


def up2(x: torch.Tensor) -> torch.Tensor:
    """Double the side (bilinear)."""
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def down2(x: torch.Tensor) -> torch.Tensor:
    """Halve the side by the mean of each 2x2 block: bilinear at half scale samples exactly
    between the four pixels (even sides), and runs faster than ``avg_pool2d`` on CPUs."""
    return F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate; ``lr_mul < 1`` makes it learn slower
    (weights stored as N(0, 1/lr_mul^2), used as ``w * lr_mul / sqrt(fan_in)``)."""

    def __init__(
        self, cin: int, cout: int, bias_init: float = 0.0, lr_mul: float = 1.0, act: bool = False
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.full((cout,), bias_init / lr_mul))
        self.scale, self.lr_mul, self.act = lr_mul / math.sqrt(cin), lr_mul, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return lrelu(x) if self.act else x

    def extra_repr(self) -> str:
        cout, cin = self.weight.shape
        return f"{cin}, {cout}, lr_mul={self.lr_mul:g}, act={self.act}"


class EqualConv2d(nn.Module):
    """Convolution (stride 1, same padding) with equalised learning rate."""

    def __init__(self, cin: int, cout: int, k: int, bias: bool = True, act: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.scale, self.act = 1 / math.sqrt(cin * k * k), act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight * self.scale, self.bias, padding=self.weight.shape[-1] // 2)
        return lrelu(x) if self.act else x

    def extra_repr(self) -> str:
        cout, cin, k, _ = self.weight.shape
        return f"{cin}, {cout}, kernel={k}, act={self.act}"


class MappingNetwork(nn.Module):
    """z ``[N, nz]`` -> w ``[N, nz]``; tracks the running mean of w (``w_avg``) in training."""

    def __init__(self, nz: int, depth: int, lr_mul: float) -> None:
        super().__init__()
        self.net = nn.Sequential(
            *[EqualLinear(nz, nz, lr_mul=lr_mul, act=True) for _ in range(depth)]
        )
        self.register_buffer("w_avg", torch.zeros(nz))

    def forward(self, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        z = z * torch.rsqrt(z.float().pow(2).mean(1, keepdim=True) + 1e-8).to(z.dtype)
        w = self.net(z)
        if self.training:
            with torch.no_grad():
                self.w_avg.lerp_(w.detach().float().mean(0), 0.005)
        return w if psi == 1.0 else self.w_avg.to(w.dtype).lerp(w, psi)


class ModulatedConv2d(nn.Module):
    """A ``k x k`` convolution modulated per sample by the style ``s = A(w)`` (an affine map,
    bias 1) and, with ``demodulate``, rescaled so every output channel has unit variance
    again: ``w'_oi = s_i w_oi / sqrt(sum_i,k (s_i w_oi)^2)``. ``up`` doubles the side of
    the result (the convolution runs at the input's side)."""

    def __init__(
        self, cin: int, cout: int, k: int, w_dim: int, demodulate: bool = True, up: bool = False
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, k, k))
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)
        self.scale, self.demodulate, self.up = 1 / math.sqrt(cin * k * k), demodulate, up

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        s = self.affine(w)  # [N, cin]
        weight = self.weight * self.scale
        x = x * s[:, :, None, None].to(x.dtype)
        x = F.conv2d(x, weight.to(x.dtype), padding=weight.shape[-1] // 2)
        if self.demodulate:
            d = torch.rsqrt(s.float().pow(2) @ weight.float().pow(2).sum((2, 3)).t() + 1e-8)
            x = x * d[:, :, None, None].to(x.dtype)
        return up2(x) if self.up else x

    def extra_repr(self) -> str:
        cout, cin, k, _ = self.weight.shape
        return f"{cin}, {cout}, kernel={k}, demodulate={self.demodulate}, up={self.up}"


class StyledConv(nn.Module):
    """Modulated 3x3 conv, then per-pixel noise times a learned strength (starting at 0),
    bias and the activation."""

    def __init__(self, cin: int, cout: int, w_dim: int, up: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(cin, cout, 3, w_dim, up=up)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        x = self.conv(x, w)
        n, _, h, wd = x.shape
        noise = torch.randn(n, 1, h, wd, device=x.device, dtype=x.dtype)
        return lrelu(x + self.noise_strength * noise + self.bias[None, :, None, None])


class ToRGB(nn.Module):
    """Modulated 1x1 conv to image channels, without demodulation (the paper's tRGB)."""

    def __init__(self, cin: int, channels: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(cin, channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias[None, :, None, None]


class LinearAttention(nn.Module):
    """Self-attention whose cost grows linearly with the number of pixels (Shen et al.,
    "Efficient Attention", WACV 2021; the form lucidrains' StyleGAN2 uses): queries take a
    softmax over features, keys over positions, so ``softmax(K)^T V`` is a small
    ``[d, d]`` context per head. Residual, with a learned gain that starts at 0: the layer
    begins as the identity and the networks learn how much global context to mix in."""

    def __init__(self, ch: int, heads: int = 4) -> None:
        super().__init__()
        self.heads, self.dim = heads, max(ch // heads, 8)
        self.qkv = nn.Conv2d(ch, 3 * heads * self.dim, 1, bias=False)
        self.out = nn.Conv2d(heads * self.dim, ch, 1)
        self.gain = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        q, k, v = self.qkv(x).reshape(n, 3, self.heads, self.dim, h * w).unbind(1)
        q, k = q.softmax(2) * self.dim**-0.5, k.softmax(3)
        context = torch.einsum("nhdp,nhep->nhde", k, v)
        out = torch.einsum("nhde,nhdp->nhep", context, q).reshape(n, -1, h, w)
        return x + self.gain * self.out(out)


class Generator(nn.Module):
    """Noise ``[N, nz]`` -> images ``[N, channels, size, size]`` (unbounded; ~[-1, 1]).

    ``num_ws`` styles drive the layers in order (two per resolution); style mixing feeds
    ``z`` to the first ``cut`` of them and ``z2`` to the rest.
    """

    def __init__(
        self,
        nz: int,
        channels_out: int,
        size: int,
        width: int = 32,
        mapping_depth: int = 8,
        mapping_lr: float = 0.01,
        attention: tuple[int, ...] = (),
    ) -> None:
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"image size {size} is not supported; valid: {SIZES}")
        self.size, self.nz = size, nz
        self.mapping = MappingNetwork(nz, mapping_depth, mapping_lr)
        c4 = channels(4, size, width)
        self.const = nn.Parameter(torch.randn(1, c4, 4, 4))
        self.conv4 = StyledConv(c4, c4, nz)
        self.rgb4 = ToRGB(c4, channels_out, nz)
        self.blocks = nn.ModuleList()
        self.rgbs = nn.ModuleList()
        self.attn = nn.ModuleDict()
        res, cin = 8, c4
        while res <= size:
            cout = channels(res, size, width)
            self.blocks.append(
                nn.ModuleList([StyledConv(cin, cout, nz, up=True), StyledConv(cout, cout, nz)])
            )
            self.rgbs.append(ToRGB(cout, channels_out, nz))
            if res in attention:
                self.attn[str(res)] = LinearAttention(cout)
            res, cin = res * 2, cout
        self.num_ws = 2 + 2 * len(self.blocks)
        # Running mean of path lengths for the optional path-length regulariser.
        self.register_buffer("pl_mean", torch.zeros(()))

    def styles(
        self,
        z: torch.Tensor,
        z2: torch.Tensor | None = None,
        cut: int | None = None,
        psi: float = 1.0,
    ) -> torch.Tensor:
        """Per-layer styles ``[N, num_ws, nz]``: w(z) everywhere, or w(z2) from layer ``cut``."""
        ws = self.mapping(z, psi)[:, None].expand(-1, self.num_ws, -1)
        if z2 is None:
            return ws
        ws2 = self.mapping(z2, psi)[:, None].expand(-1, self.num_ws - cut, -1)
        return torch.cat([ws[:, :cut], ws2], 1)

    def synthesis(self, ws: torch.Tensor) -> torch.Tensor:
        """Styles ``[N, num_ws, nz]`` -> images."""
        x = self.const.expand(len(ws), -1, -1, -1).to(ws.dtype)
        x = self.conv4(x, ws[:, 0])
        rgb = self.rgb4(x, ws[:, 1])
        for i, (block, to_rgb) in enumerate(zip(self.blocks, self.rgbs, strict=True)):
            x = block[1](block[0](x, ws[:, 1 + 2 * i]), ws[:, 2 + 2 * i])
            if str(x.shape[-1]) in self.attn:
                x = self.attn[str(x.shape[-1])](x)
            rgb = up2(rgb) + to_rgb(x, ws[:, 2 + 2 * i])
        return rgb

    def forward(self, z: torch.Tensor, **styles: Any) -> torch.Tensor:
        """Noise -> images; ``styles`` (``z2``, ``cut``, ``psi``) as for :meth:`styles`."""
        return self.synthesis(self.styles(z, **styles))


def minibatch_std(x: torch.Tensor, group: int = 4) -> torch.Tensor:
    """Append one feature map: the standard deviation across each group of ``group``
    samples, averaged over features and pixels, so D can see a lack of variety."""
    n, c, h, w = x.shape
    g = min(group, n)
    while n % g:
        g -= 1
    y = x.float().reshape(g, -1, c, h, w).var(0, unbiased=False).add(1e-8).sqrt()
    y = y.mean((1, 2, 3)).reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, y.to(x.dtype)], 1)


class DBlock(nn.Module):
    """Residual discriminator block: a 3x3 conv, a 2x2 average pool and a 3x3 conv at the
    halved side, plus a pooled 1x1 skip; the sum is scaled by 1/sqrt(2) to keep its variance."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(cin, cin, 3, act=True)
        self.conv1 = EqualConv2d(cin, cout, 3, act=True)
        self.skip = EqualConv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(down2(self.conv0(x)))
        return (y + self.skip(down2(x))) / SQRT2


class Discriminator(nn.Module):
    """Images ``[N, channels, size, size]`` -> real/fake logits ``[N, 1]``."""

    def __init__(
        self, channels_in: int, size: int, width: int = 32, attention: tuple[int, ...] = ()
    ) -> None:
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"image size {size} is not supported; valid: {SIZES}")
        self.from_rgb = EqualConv2d(channels_in, channels(size, size, width), 1, act=True)
        layers: list[nn.Module] = []
        res = size
        while res > 4:
            cin = channels(res, size, width)
            if res in attention:
                layers.append(LinearAttention(cin))
            layers.append(DBlock(cin, channels(res // 2, size, width)))
            res //= 2
        self.blocks = nn.Sequential(*layers)
        c4 = channels(4, size, width)
        self.conv = EqualConv2d(c4 + 1, c4, 3, act=True)
        self.fc = EqualLinear(c4 * 16, c4, act=True)
        self.out = EqualLinear(c4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.from_rgb(x))
        x = self.conv(minibatch_std(x))
        return self.out(self.fc(x.flatten(1)))
