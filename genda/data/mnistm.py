"""MNIST-M: digits blended with colour photo patches (Ganin et al., JMLR 2016).

The recipe is ``out = |photo_patch - digit|`` per colour channel, with a random patch of a
natural photo (BSDS500 in the paper) per digit. The shapes stay those of the digit
data set, but colour and texture statistics move far from it, which is what makes
MNIST -> MNIST-M a standard domain-adaptation benchmark. One blending function serves
both the real data set (:func:`build_mnistm`) and the embedded ``digits-m``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from genda.data.domain import DataError, Dataset, Domain
from genda.data.formats import (
    cached,
    decode_image,
    files_under,
    image_files,
    load_mnist,
    mnist_files,
)


def blend_with_photos(
    digits: torch.Tensor, photos: Sequence[torch.Tensor], generator: torch.Generator
) -> torch.Tensor:
    """``|patch - digit|`` for uint8 digits ``[N, 1|3, H, W]`` -> uint8 ``[N, 3, H, W]``.

    Each digit gets a random photo and a random ``H x W`` patch of it (photos are uint8
    ``[3, h, w]``, at least ``H x W``). All random numbers are drawn up front from
    ``generator``, so the result depends only on its seed.
    """
    n, _, h, w = digits.shape
    if not photos:
        raise DataError("MNIST-M blending needs at least one photo")
    for p in photos:
        if p.shape[0] != 3 or p.shape[1] < h or p.shape[2] < w:
            raise DataError(f"photos must be RGB and at least {h}x{w}, got {tuple(p.shape)}")
    which = torch.randint(len(photos), (n,), generator=generator)
    where = torch.rand(n, 2, generator=generator, dtype=torch.float64)
    out = torch.empty(n, 3, h, w, dtype=torch.uint8)
    for k, photo in enumerate(photos):
        sel = (which == k).nonzero().squeeze(1)
        top = (where[sel, 0] * (photo.shape[1] - h + 1)).long()
        left = (where[sel, 1] * (photo.shape[2] - w + 1)).long()
        rows = (top[:, None] + torch.arange(h))[:, :, None]
        cols = (left[:, None] + torch.arange(w))[:, None, :]
        patches = photo[:, rows, cols].transpose(0, 1)  # [n_k, 3, h, w]
        out[sel] = (patches.short() - digits[sel].short()).abs().to(torch.uint8)
    return out


def blend_dataset(
    digits: Dataset, photos: Sequence[torch.Tensor], name: str, seed: int = 0
) -> Dataset:
    """Apply :func:`blend_with_photos` to both splits; one generator, so train and test
    get different patches while the digits, labels and split stay those of ``digits``."""
    g = torch.Generator().manual_seed(seed)

    def dom(d: Domain, split: str) -> Domain:
        return Domain(
            images=blend_with_photos(d.images, photos, g),
            labels=d.labels,
            name=f"{name}/{split}",
            classes=list(d.classes),
        )

    return Dataset(name, dom(digits.train, "train"), dom(digits.test, "test"))


def load_photos(directory: Path) -> list[torch.Tensor]:
    """Every image below ``directory`` as uint8 ``[3, h, w]`` (grey ones are skipped)."""
    files = image_files(directory, recursive=True) if directory.is_dir() else []
    photos = []
    for f in files:
        a = decode_image(f)
        if a.ndim == 3:
            photos.append(torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1))))
    if not photos:
        raise DataError(
            f"mnistm: expected colour photos (*.jpg, *.png) in {directory} "
            "(e.g. BSDS500 images/train); found none"
        )
    return photos


def build_mnistm(mnist: Dataset, photos_dir: Path, seed: int = 0) -> Dataset:
    """MNIST-M from an MNIST :class:`Dataset` and a folder of colour photos (28 px RGB)."""
    return blend_dataset(mnist, load_photos(photos_dir), "mnistm", seed)


def load_mnistm(
    mnist_root: Path, photos_dir: Path, download: bool = False, seed: int = 0
) -> Dataset:
    """Cached :func:`build_mnistm` for the spec ``mnistm:MNIST_ROOT,PHOTOS_DIR``."""
    mnist = load_mnist(mnist_root, download=download)
    if not photos_dir.is_dir():
        raise DataError(
            f"mnistm:{mnist_root},{photos_dir}: expected a folder of colour "
            f"photos (e.g. BSDS500 images/train); {photos_dir} does not exist"
        )
    key = f"mnistm:{mnist_root.absolute()},{photos_dir.absolute()}|seed={seed}"
    inputs = [*(mnist_files(mnist_root) or {}).values(), *files_under(photos_dir)]
    return cached("mnistm", key, inputs, lambda: build_mnistm(mnist, photos_dir, seed))
