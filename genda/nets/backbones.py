"""The backbone registry every domain-adaptation method builds from (``hparams.arch``).

A backbone is a feature encoder (image -> vector, with ``out_dim``), the label head its
paper put on top, and the size of the domain discriminator its paper used. Methods never
know which one they train: they ask :func:`build` for (encoder, head) and
:func:`discriminator_for` for an adversary on the encoder's features. Adding a backbone is
one entry in ``BACKBONES``.

Every backbone but ``lenet-paper`` has BatchNorm in its encoder, head and discriminator (AdaBN
and per-domain statistics need it); ``lenet-paper`` has none anywhere, as in the paper;
``input_norm`` puts :func:`~genda.nets.digits.standardize` in front of any of them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from genda.nets import digits


class Backbone(nn.Module):
    """``body`` on (optionally standardised) images; ``out_dim`` features."""

    def __init__(self, body: nn.Module, out_dim: int, input_norm: bool = False) -> None:
        super().__init__()
        self.input_norm, self.body, self.out_dim = input_norm, body, out_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(digits.standardize(x) if self.input_norm else x)


def _fc(dim: int, out: int) -> list[nn.Module]:
    """Flattened conv maps -> ``out`` features (Linear, BatchNorm, ReLU)."""
    return [nn.Flatten(), nn.Linear(dim, out), nn.BatchNorm1d(out), nn.ReLU(inplace=True)]


def lenet_paper(channels: int, size: int, input_norm: bool) -> Backbone:
    """The DANN paper's MNIST net exactly: conv5x5-32, ReLU, pool, conv5x5-48, ReLU, pool
    (no BatchNorm, no dropout); features are the flattened conv maps."""
    side = ((size - 4) // 2 - 4) // 2
    body = nn.Sequential(
        nn.Conv2d(channels, 32, 5),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 48, 5),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
        nn.Flatten(),
    )
    return Backbone(body, 48 * side * side, input_norm)


def svhn(channels: int, size: int, input_norm: bool) -> Backbone:
    """The DANN paper's SVHN net: conv5x5 64-64-128 (3x3/2 max-pools after the first two),
    here with BatchNorm; features fc-3072 (the head adds fc-2048)."""
    layers: list[nn.Module] = []
    c = channels
    for i, w in enumerate((64, 64, 128)):
        layers += [nn.Conv2d(c, w, 5, padding=2), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
        if i < 2:
            layers.append(nn.MaxPool2d(3, 2, padding=1))
        c = w
    side = ((size + 1) // 2 + 1) // 2  # two 3x3/2 pools with padding 1: ceil-halvings
    return Backbone(nn.Sequential(*layers, *_fc(128 * side * side, 3072)), 3072, input_norm)


def vgg(channels: int, size: int, input_norm: bool) -> Backbone:
    """The course reports' 5-block VGG-style net: conv3x3 64-128-256-256-512 with BatchNorm,
    max-pools while the map is larger than 1 px, global pooling; features 512 (head 512-10)."""
    layers: list[nn.Module] = []
    c, side = channels, size
    for w in (64, 128, 256, 256, 512):
        layers += [nn.Conv2d(c, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
        if side >= 2:
            layers.append(nn.MaxPool2d(2))
            side //= 2
        c = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return Backbone(nn.Sequential(*layers), 512, input_norm)


class _Block(nn.Module):
    """ResNet basic block (two 3x3 convs, BatchNorm, identity or 1x1 projection shortcut)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.skip = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.main(x) + self.skip(x))


def resnet(channels: int, size: int, input_norm: bool) -> Backbone:
    """A small ResNet for 28-32 px digits: stem conv3x3-32, stages 32-64-128 (one basic block
    each, stride 2 from the second), global average pooling; features 128."""
    body = nn.Sequential(
        nn.Conv2d(channels, 32, 3, padding=1, bias=False),
        nn.BatchNorm2d(32),
        nn.ReLU(inplace=True),
        _Block(32, 32, 1),
        _Block(32, 64, 2),
        _Block(64, 128, 2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    return Backbone(body, 128, input_norm)


def dtn(channels: int, size: int, input_norm: bool) -> Backbone:
    """The DTN digit net SHOT uses (Liang et al., 2020): conv5x5/2 64-128-256 with BatchNorm
    and channel dropout 0.1/0.3/0.5, then a 512-unit BatchNorm bottleneck; features 512."""
    layers: list[nn.Module] = []
    c, side = channels, size
    for w, p in ((64, 0.1), (128, 0.3), (256, 0.5)):
        layers += [nn.Conv2d(c, w, 5, 2, 2), nn.BatchNorm2d(w), nn.Dropout2d(p), nn.ReLU()]
        c, side = w, (side + 1) // 2
    return Backbone(nn.Sequential(*layers, *_fc(256 * side * side, 512)), 512, input_norm)


def _digit_encoder(width: tuple[int, int], dim: int) -> Callable[[int, int, bool], nn.Module]:
    def build(channels: int, size: int, input_norm: bool) -> nn.Module:
        return digits.Encoder(channels, size, width, dim, input_norm=input_norm)

    return build


@dataclass(frozen=True)
class Spec:
    """A registered backbone: its encoder builder, head and discriminator sizes, and source."""

    encoder: Callable[[int, int, bool], nn.Module]
    head_hidden: tuple[int, ...]  # hidden layers of the label head (() = linear)
    disc: tuple[int, int]  # (hidden units, hidden layers) of its paper's domain classifier
    about: str
    batchnorm: bool = True  # in the head's and the discriminator's hidden layers


BACKBONES: dict[str, Spec] = {
    "lenet": Spec(
        _digit_encoder((32, 48), 100),
        (100,),
        (100, 1),
        "DANN paper MNIST net + BatchNorm and dropout (conv 32-48, fc 100-100)",
    ),
    "lenet-paper": Spec(
        lenet_paper,
        (100, 100),
        (100, 1),
        "DANN paper MNIST net exactly (no BatchNorm)",
        batchnorm=False,
    ),
    "adda": Spec(
        _digit_encoder((20, 50), 500), (), (500, 2), "ADDA paper LeNet (conv 20-50, fc 500)"
    ),
    "svhn": Spec(svhn, (2048,), (1024, 2), "DANN paper SVHN net (conv 64-64-128, fc 3072-2048)"),
    "vgg": Spec(vgg, (512,), (1024, 2), "course reports' 5-block VGG (conv 64-128-256-256-512)"),
    "resnet": Spec(resnet, (), (1024, 2), "small ResNet (32-64-128, global pooling)"),
    "dtn": Spec(dtn, (), (1024, 2), "SHOT's DTN digit net (conv 64-128-256, fc 512)"),
}


def _check(name: str) -> Spec:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; valid: {', '.join(BACKBONES)}")
    return BACKBONES[name]


def head(dim: int, num_classes: int, hidden: tuple[int, ...], batchnorm: bool = True) -> nn.Module:
    """Label head: ``hidden`` fc layers with (optionally) BatchNorm and ReLU, then K logits."""
    layers: list[nn.Module] = []
    for h in hidden:
        norm = [nn.BatchNorm1d(h)] if batchnorm else []
        layers += [nn.Linear(dim, h), *norm, nn.ReLU(inplace=True)]
        dim = h
    layers.append(nn.Linear(dim, num_classes))
    return layers[0] if len(layers) == 1 else nn.Sequential(*layers)


def build(
    name: str, channels: int, size: int, num_classes: int, input_norm: bool = False
) -> tuple[nn.Module, nn.Module]:
    """(encoder, label head) of backbone ``name`` for ``channels x size x size`` images.

    Raises ValueError when the encoder cannot take that size (found by one forward of a
    blank image, so a too-small input fails here rather than at the first training step)."""
    spec = _check(name)
    try:
        enc = spec.encoder(channels, size, input_norm)
        with torch.no_grad():
            enc.eval()(torch.zeros(1, channels, size, size))
        enc.train()
    except (ValueError, RuntimeError) as e:
        raise ValueError(f"backbone {name!r} cannot take {size}px images ({e})") from None
    return enc, head(enc.out_dim, num_classes, spec.head_hidden, spec.batchnorm)


def discriminator_for(name: str, dim: int, hidden: int = 0, layers: int = 0) -> nn.Module:
    """A domain classifier on ``dim``-d features: the backbone's paper's size unless
    ``hidden`` / ``layers`` are given (0 = the backbone's)."""
    spec = _check(name)
    d_hidden, d_layers = spec.disc
    return digits.discriminator(
        dim, hidden or d_hidden, layers or d_layers, batchnorm=spec.batchnorm
    )
