"""SVHN cropped digits (``train_32x32.mat`` / ``test_32x32.mat``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from genda.data.domain import Dataset
from genda.data.formats.files import (
    DIGIT_CLASSES,
    cached,
    make_dataset,
    missing,
)
from genda.errors import DataError


def load_svhn(root: Path, download: bool = False) -> Dataset:
    """SVHN cropped digits from ``ROOT/train_32x32.mat`` and ``ROOT/test_32x32.mat``."""
    spec = f"svhn:{root}"
    files = {"train": root / "train_32x32.mat", "test": root / "test_32x32.mat"}
    if download and not all(p.is_file() for p in files.values()):
        from torchvision.datasets import SVHN

        for split in files:
            SVHN(str(root), split=split, download=True)
    missing(spec, f"{files['train']} and {files['test']} (torchvision SVHN layout)", files.values())

    def build() -> Dataset:
        from scipy.io import loadmat

        splits = {}
        for split, path in files.items():
            try:
                mat = loadmat(path)
                x, y = mat["X"], mat["y"].reshape(-1).astype(np.int64)
            except Exception as e:
                raise DataError(f"{path}: cannot read SVHN .mat file ({e})") from e
            if x.ndim != 4 or x.shape[2] != 3 or x.shape[3] != len(y) or x.dtype != np.uint8:
                raise DataError(
                    f"{path}: X is {x.dtype} {list(x.shape)}, y has {len(y)} labels; expected "
                    "uint8 X of [H, W, 3, N] and N labels 1..10 (SVHN's cropped-digits format)"
                )
            # X is [H, W, C, N]; label 10 stands for digit 0.
            splits[split] = {
                "images": torch.from_numpy(np.ascontiguousarray(x.transpose(3, 2, 0, 1))),
                "labels": torch.from_numpy(y % 10),
            }
        return make_dataset("svhn", splits["train"], splits["test"], DIGIT_CLASSES)

    return cached("svhn", f"svhn:{root.absolute()}", files.values(), build)
