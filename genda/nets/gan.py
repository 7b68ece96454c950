"""DCGAN-style generator and discriminator for 28, 32 and 64 px images.

Radford, Metz & Chintala, "Unsupervised Representation Learning with Deep Convolutional
Generative Adversarial Networks", ICLR 2016: strided (transposed) 4x4 convolutions instead
of pooling, BatchNorm in both nets (not on the generator output / discriminator input),
ReLU in the generator with a tanh output, LeakyReLU(0.2) in the discriminator, and weights
drawn from N(0, 0.02).

Both networks mirror each other: the generator projects the noise to a ``base x base``
map with ``width * 2**(ups - 1)`` channels and doubles the side ``ups`` times while halving
the channels; the discriminator walks the same ladder down. ``(base, ups)`` per image
size is :data:`LADDER` (64 px: 4 -> 8 -> 16 -> 32 -> 64, as in the paper; 28 px for MNIST-like
digits: 7 -> 14 -> 28). The same builders serve DCGAN, the improved GAN (spectral norm,
pixel-shuffle upsampling), ACGAN (extra class logits) and the VAE (encoder/decoder).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

# image side -> (side of the first feature map, number of x2 up/down-sampling stages)
LADDER: dict[int, tuple[int, int]] = {28: (7, 2), 32: (4, 3), 64: (4, 4)}
SIZES = tuple(LADDER)
UPSAMPLE = ("convt", "pixelshuffle")


def _ladder(size: int) -> tuple[int, int]:
    if size not in LADDER:
        raise ValueError(
            f"image size {size} is not supported; valid sizes: {', '.join(map(str, SIZES))}"
        )
    return LADDER[size]


def init_dcgan(module: nn.Module) -> None:
    """The DCGAN paper's init: conv weights ~ N(0, 0.02), BatchNorm scale ~ N(1, 0.02), bias 0.

    Use with ``net.apply(init_dcgan)`` before any spectral-norm parametrisation is added.
    """
    if isinstance(module, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def up(cin: int, cout: int, mode: str = "convt", last: bool = False) -> list[nn.Module]:
    """One x2 upsampling stage: ``[N, cin, s, s] -> [N, cout, 2s, 2s]``.

    ``convt``: ConvTranspose 4x4 stride 2 (DCGAN). ``pixelshuffle``: conv 3x3 to ``4*cout``
    channels, then PixelShuffle(2) (Shi et al., CVPR 2016), which avoids the checkerboard
    artefacts of overlapping transposed kernels (Odena et al., Distill 2016).
    ``last``: no norm, tanh output (the image layer).
    """
    if mode == "convt":
        mods: list[nn.Module] = [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=last)]
    elif mode == "pixelshuffle":
        mods = [nn.Conv2d(cin, 4 * cout, 3, 1, 1, bias=last), nn.PixelShuffle(2)]
    else:
        raise ValueError(f"unknown upsampling {mode!r}; valid: {', '.join(UPSAMPLE)}")
    return mods + ([nn.Tanh()] if last else [nn.BatchNorm2d(cout), nn.ReLU(inplace=True)])


def generator(
    nz: int, channels: int, size: int, width: int = 64, upsample: str = "convt"
) -> nn.Sequential:
    """Noise ``[N, nz]`` -> images ``[N, channels, size, size]`` in [-1, 1].

    The first layer (a transposed conv on a 1x1 map, i.e. a linear projection) makes the
    ``base x base`` map; every later stage doubles the side. Conditional models feed
    ``nz + num_classes`` inputs (noise concatenated with a one-hot label).
    """
    base, ups = _ladder(size)
    ch = [width * 2 ** (ups - 1 - i) for i in range(ups)]  # e.g. 64 px: 512, 256, 128, 64
    mods: list[nn.Module] = [
        nn.Unflatten(1, (nz, 1, 1)),
        nn.ConvTranspose2d(nz, ch[0], base, 1, 0, bias=False),
        nn.BatchNorm2d(ch[0]),
        nn.ReLU(inplace=True),
    ]
    for cin, cout in zip(ch[:-1], ch[1:], strict=True):
        mods += up(cin, cout, upsample)
    mods += up(ch[-1], channels, upsample, last=True)
    net = nn.Sequential(*mods)
    net.apply(init_dcgan)
    return net


class Pack(nn.Module):
    """PacGAN's packing (Lin, Khetan, Fanti & Oh, "PacGAN: The Power of Two Samples in
    Generative Adversarial Networks", NeurIPS 2018): ``[N, C, H, W] -> [N / m, m * C, H, W]``.

    D judges ``m`` samples of the same source jointly, so a generator that repeats itself
    (drops modes) is easy to spot: packing provably penalises mode collapse. Runs of ``m``
    *consecutive* samples are packed, so a ``[real; fake]`` batch (each half a multiple of
    ``m``) never mixes real with fake.
    """

    def __init__(self, m: int) -> None:
        super().__init__()
        self.m = m

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        if n % self.m:
            raise ValueError(f"PacGAN: batch of {n} is not a multiple of the packing {self.m}")
        return x.reshape(n // self.m, self.m * c, h, w)

    def extra_repr(self) -> str:
        return f"m={self.m}"


def discriminator(
    channels: int,
    size: int,
    width: int = 64,
    out: int = 1,
    norm: str = "batch",
    slope: float = 0.2,
    deep: bool = False,
    pack: int = 1,
) -> nn.Sequential:
    """Images ``[N, channels, size, size]`` -> ``[N, out]`` logits (no sigmoid: losses take logits).

    ``norm``: ``batch`` (DCGAN: BatchNorm after every conv but the first), ``spectral``
    (SN-GAN, Miyato et al., ICLR 2018: every layer spectrally normalised, no BatchNorm, so
    the discriminator is ~1-Lipschitz and real/fake batches can share one forward), or
    ``none``. ``out > 1`` adds logits (ACGAN's class head, the VAE's ``2 * latent``).
    ``deep``: SN-GAN's "standard CNN" (Miyato et al., table 3): a 3x3 stride-1 conv before
    every 4x4 stride-2 conv, which restores the capacity a 1-Lipschitz constraint takes away.
    ``pack > 1``: PacGAN (:class:`Pack`): ``[N, ...] -> [N / pack, out]``, one score per pack.
    """
    if norm not in ("batch", "spectral", "none"):
        raise ValueError(f"unknown discriminator norm {norm!r}; valid: batch, spectral, none")
    base, ups = _ladder(size)
    ch = [width * 2**i for i in range(ups)]  # e.g. 64 px: 64, 128, 256, 512
    mods: list[nn.Module] = [Pack(pack)] if pack > 1 else []
    cin = channels * pack
    for i, cout in enumerate(ch):
        if deep:
            mods += [nn.Conv2d(cin, cout, 3, 1, 1), nn.LeakyReLU(slope, inplace=True)]
            cin = cout
        mods.append(nn.Conv2d(cin, cout, 4, 2, 1, bias=norm != "batch"))
        if norm == "batch" and i > 0:
            mods.append(nn.BatchNorm2d(cout))
        mods.append(nn.LeakyReLU(slope, inplace=True))
        cin = cout
    mods += [nn.Conv2d(cin, out, base, 1, 0), nn.Flatten()]
    net = nn.Sequential(*mods)
    net.apply(init_dcgan)
    if norm == "spectral":
        for m in net:
            if isinstance(m, nn.Conv2d):
                spectral_norm(m)
    return net


# -- DiffAugment ------------------------------------------------------------------------------
# Zhao, Liu, Lin, Zhu & Han, "Differentiable Augmentation for Data-Efficient GAN Training",
# NeurIPS 2020. With little data (1,437 digits) the discriminator memorises the training set
# within a few hundred steps and its gradient stops guiding the generator. DiffAugment
# applies the *same* random, differentiable transforms to real and to fake images every time
# D sees them (D's updates and G's update alike), so D can no longer memorise exact images,
# while the generator still receives gradients through the transform and is pushed towards
# the un-augmented data distribution (augmenting reals only would teach G the augmentations).
# The transforms follow the paper's reference code, for images in [-1, 1]: ``color``
# (brightness +U(-.5, .5), saturation x U(0, 2), contrast x U(.5, 1.5)), ``translation``
# (shift by up to 1/8 of the side, filled with 0) and ``cutout`` (a zeroed square of half
# the side at a random centre).
DIFF_AUGMENT = ("color", "translation", "cutout")


def _uniform(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    return torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) * (hi - lo) + lo


def rand_color(x: torch.Tensor) -> torch.Tensor:
    x = x + _uniform(x, -0.5, 0.5)  # brightness
    mean = x.mean(1, keepdim=True)
    x = (x - mean) * _uniform(x, 0.0, 2.0) + mean  # saturation (a no-op on grey images)
    mean = x.mean((1, 2, 3), keepdim=True)
    return (x - mean) * _uniform(x, 0.5, 1.5) + mean  # contrast


def rand_translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift every image by its own integer offset, up to ``ratio`` of the side; 0 fills."""
    n, c, h, w = x.shape
    dev = x.device
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    rows = torch.arange(h, device=dev).view(1, h, 1) + torch.randint(
        -sh, sh + 1, (n, 1, 1), device=dev
    )
    cols = torch.arange(w, device=dev).view(1, 1, w) + torch.randint(
        -sw, sw + 1, (n, 1, 1), device=dev
    )
    inside = ((rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)).unsqueeze(1)  # [n, 1, h, w]
    index = (rows.clamp(0, h - 1) * w + cols.clamp(0, w - 1)).view(n, 1, h * w).expand(n, c, h * w)
    shifted = x.reshape(n, c, h * w).gather(2, index).view(n, c, h, w)
    return shifted * inside  # gather is differentiable: G gets gradients through the shift


def rand_cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero one ``ratio``-sized square per image; its centre is uniform over the image."""
    n, _, h, w = x.shape
    dev = x.device
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=dev) - ch // 2
    left = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=dev) - cw // 2
    rows = torch.arange(h, device=dev).view(1, h, 1)
    cols = torch.arange(w, device=dev).view(1, 1, w)
    hole = (rows >= top) & (rows < top + ch) & (cols >= left) & (cols < left + cw)
    return x * (~hole).unsqueeze(1).to(x.dtype)


_AUGMENTS = {"color": rand_color, "translation": rand_translation, "cutout": rand_cutout}


def parse_policy(policy: str) -> list[str]:
    """``"translation,cutout"`` -> its transforms, validated; ``""`` or ``"none"``: none."""
    names = [p.strip() for p in policy.split(",") if p.strip() and p.strip() != "none"]
    bad = [p for p in names if p not in _AUGMENTS]
    if bad:
        raise ValueError(
            f"unknown DiffAugment transform(s) {', '.join(bad)}; valid: {', '.join(DIFF_AUGMENT)}"
        )
    return names


def diff_augment(x: torch.Tensor, policy: str) -> torch.Tensor:
    """Apply the comma-separated transforms of ``policy`` (in the paper's order), each with
    fresh per-image randomness from the global torch RNG (so runs stay reproducible)."""
    for name in parse_policy(policy):
        x = _AUGMENTS[name](x)
    return x
