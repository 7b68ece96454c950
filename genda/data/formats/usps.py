"""USPS in torchvision's layout (LIBSVM-format bz2 files)."""

from __future__ import annotations

import bz2
from pathlib import Path

import numpy as np

from genda.data.domain import Dataset
from genda.data.formats.files import (
    DIGIT_CLASSES,
    cached,
    make_dataset,
    missing,
)
from genda.errors import DataError


def _read_usps_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """LIBSVM lines ``label i:v ...`` with 256 values in [-1, 1] and labels 1-10.

    Pixels are ``round((v + 1) / 2 * 255)``: the same bytes as the course PNG export
    (torchvision truncates instead, which is at most 1 grey level darker).
    """
    try:
        with bz2.open(path, "rt") as f:
            lines = f.read().splitlines()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read ({e})") from e
    images = np.zeros((len(lines), 256), np.float32)
    labels = np.zeros(len(lines), np.int64)
    for i, line in enumerate(lines):
        parts = line.split()
        try:
            labels[i] = int(float(parts[0])) - 1
            pairs = [p.split(":") for p in parts[1:]]
            idx = np.array([int(k) for k, _ in pairs]) - 1
            images[i, idx] = [float(v) for _, v in pairs]
        except (ValueError, IndexError) as e:
            raise DataError(f"{path}: line {i + 1}: not a LIBSVM row of 256 pixels ({e})") from e
        if not 0 <= labels[i] <= 9:
            raise DataError(f"{path}: line {i + 1}: label {labels[i] + 1} outside 1..10")
    pixels = np.rint((images + 1) / 2 * 255).clip(0, 255).astype(np.uint8)
    return pixels.reshape(-1, 1, 16, 16), labels


def load_usps(root: Path, download: bool = False) -> Dataset:
    """USPS from torchvision's files ``ROOT/usps.bz2`` (train) and ``ROOT/usps.t.bz2`` (test)."""
    spec = f"usps:{root}"
    files = {"train": root / "usps.bz2", "test": root / "usps.t.bz2"}
    if download and not all(p.is_file() for p in files.values()):
        from torchvision.datasets import USPS

        USPS(str(root), train=True, download=True)
        USPS(str(root), train=False, download=True)
    missing(spec, f"{files['train']} and {files['test']} (torchvision USPS files)", files.values())

    def build() -> Dataset:
        tr, te = (_read_usps_file(files[s]) for s in ("train", "test"))
        return make_dataset(
            "usps",
            {"images": tr[0], "labels": tr[1]},
            {"images": te[0], "labels": te[1]},
            DIGIT_CLASSES,
        )

    return cached("usps", f"usps:{root.absolute()}", files.values(), build)
