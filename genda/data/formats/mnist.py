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


# MNIST's largest file holds 47 M values; a header promising more than this is refused
# before anything is inflated (a small .gz can expand to gigabytes).
MAX_IDX_VALUES = 2**30


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (plain or ``.gz``) of uint8 data, the format MNIST is shipped in.

    The header is read first and then exactly the values it announces, so a file (or a
    compressed stream) longer than its header says is refused without being read in full."""
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            head = f.read(4)
            if len(head) < 4 or head[:3] != b"\0\0\x08":
                raise DataError(f"{path}: not an IDX file of uint8 data")
            ndim = head[3]
            raw_dims = f.read(4 * ndim)
            if len(raw_dims) < 4 * ndim:
                raise DataError(f"{path}: truncated IDX header ({ndim} dimensions)")
            dims = struct.unpack(f">{ndim}I", raw_dims)
            count = int(np.prod(dims))
            if count > MAX_IDX_VALUES:
                raise DataError(f"{path}: IDX header announces {dims}: too large for a data set")
            data = f.read(count)
            extra = f.read(1)
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read ({e})") from e
    if len(data) != count or extra:
        raise DataError(
            f"{path}: IDX file does not match its header ({dims}: {count} values, "
            f"{'more' if extra else len(data)} found)"
        )
    return np.frombuffer(data, np.uint8).reshape(dims)


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
