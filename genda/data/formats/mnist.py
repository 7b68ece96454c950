"""MNIST in torchvision's layout (IDX files, plain or gzipped)."""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from genda.data.domain import Dataset
from genda.data.formats.files import (
    DIGIT_CLASSES,
    cached,
    make_dataset,
)
from genda.errors import DataError

_MNIST = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (plain or ``.gz``) of uint8 data, the format MNIST is shipped in."""
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read ({e})") from e
    if len(data) < 4 or data[:3] != b"\0\0\x08":
        raise DataError(f"{path}: not an IDX file of uint8 data")
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        raise DataError(f"{path}: truncated IDX header ({len(data)} bytes, {ndim} dimensions)")
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    arr = np.frombuffer(data, np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise DataError(f"{path}: truncated IDX file ({arr.size} values, header says {dims})")
    return arr.reshape(dims)


def mnist_files(root: Path) -> dict[str, Path] | None:
    for d in (root / "MNIST" / "raw", root / "raw", root):
        found = {}
        for name in (n for pair in _MNIST.values() for n in pair):
            p = next((q for q in (d / name, d / f"{name}.gz") if q.is_file()), None)
            if p is None:
                break
            found[name] = p
        else:
            return found
    return None


def load_mnist(root: Path, download: bool = False) -> Dataset:
    """MNIST from torchvision's layout ``ROOT/MNIST/raw/*-ubyte[.gz]`` (``.gz`` read directly)."""
    spec = f"mnist:{root}"
    files = mnist_files(root)
    if files is None and download:
        from torchvision.datasets import MNIST

        MNIST(str(root), train=True, download=True)
        files = mnist_files(root)
    if files is None:
        raw = root / "MNIST" / "raw"
        raise DataError(
            f"{spec}: expected {raw}/train-images-idx3-ubyte.gz (torchvision MNIST "
            f"layout: {raw}/{{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte.gz, "
            "or the extracted files); pass download=True / --download to fetch it"
        )

    def build() -> Dataset:
        splits = {}
        for split, (img, lab) in _MNIST.items():
            images, labels = read_idx(files[img]), read_idx(files[lab])
            if images.ndim != 3 or labels.shape != images.shape[:1]:
                raise DataError(
                    f"{spec}: {files[img]} and {files[lab]} do not match "
                    f"({images.shape} images, {labels.shape} labels)"
                )
            splits[split] = {
                "images": torch.from_numpy(images.copy()).unsqueeze(1),
                "labels": torch.from_numpy(labels.astype(np.int64)),
            }
        return make_dataset("mnist", splits["train"], splits["test"], DIGIT_CLASSES)

    return cached("mnist", f"mnist:{root.absolute()}", files.values(), build)
