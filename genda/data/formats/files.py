"""What every reader shares: image decoding, data-set assembly, the seeded split and the
cache of decoded data sets."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from genda.cache import cache_dir, cache_enabled, entry_path, load, store
from genda.data.domain import Dataset, Domain
from genda.errors import DataError

IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
DIGIT_CLASSES = [str(i) for i in range(10)]
# Bump when a reader's output changes, so caches written by older code are not reused.
CACHE_VERSION = 2


def _to_dict(ds: Dataset) -> dict:
    def dom(d: Domain) -> dict:
        return {
            "images": d.images,
            "labels": d.labels,
            "name": d.name,
            "classes": d.classes,
            "attrs": d.attrs,
            "attr_names": d.attr_names,
            "resized": d.resized,
            "resized_example": d.resized_example,
        }

    return {"name": ds.name, "train": dom(ds.train), "test": dom(ds.test)}


def _from_dict(obj: dict) -> Dataset:
    return Dataset(obj["name"], Domain(**obj["train"]), Domain(**obj["test"]))


def cached(name: str, key: str, inputs: Iterable[Path], build: Callable[[], Dataset]) -> Dataset:
    """Return ``build()``, stored in genda's cache and reused while nothing changed.

    The entry is named by ``key`` and the inputs' paths, sizes and mtimes
    (:func:`genda.cache.entry_path`): editing the data makes a new entry and deletes the stale
    one. Loading works with ``torch.load(weights_only=True)``.
    """
    if not cache_enabled():
        return build()
    path = entry_path(cache_dir(), name, f"{CACHE_VERSION}|{key}", inputs)
    obj = load(path)
    if obj is not None:
        return _from_dict(obj)
    ds = build()
    store(path, _to_dict(ds), stale=path.name.rsplit("-", 1)[0] + "-*.pt")
    return ds


def files_under(*roots: Path) -> list[Path]:
    """All files below ``roots`` (for cache keys: any added, removed or edited file counts)."""
    out: list[Path] = []
    for root in roots:
        if root.is_file():
            out.append(root)
        elif root.is_dir():
            out.extend(p for p in root.rglob("*") if p.is_file())
    return out


def make_dataset(
    name: str, train: dict, test: dict, classes: Sequence[str] = (), attr_names: Sequence[str] = ()
) -> Dataset:
    """Build a :class:`Dataset` from ``{"images", "labels"[, "attrs"]}`` dicts of arrays."""

    def dom(split: str, d: dict) -> Domain:
        attrs = d.get("attrs")
        return Domain(
            images=torch.as_tensor(d["images"]),
            labels=torch.as_tensor(d["labels"]),
            name=f"{name}/{split}",
            classes=list(classes),
            attrs=None if attrs is None else torch.as_tensor(attrs),
            attr_names=list(attr_names),
            resized=d.get("resized", 0),
            resized_example=d.get("resized_example", ""),
        )

    return Dataset(name, dom("train", train), dom("test", test))


def split_indices(
    labels: np.ndarray, test_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split stratified by label (``-1`` counts as a class), so both sides keep the
    class balance and the split is the same on every machine."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        k = int(round(len(idx) * test_fraction))
        if len(idx) > 1:
            k = min(max(k, 1), len(idx) - 1)
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def decode_image(
    path: Path, transform: Callable[[Image.Image], Image.Image] | None = None
) -> np.ndarray:
    """Decode one file to uint8 ``[H, W]`` (grey) or ``[H, W, 3]`` (colour).

    16-bit grey files keep their top 8 bits (PIL's ``convert("L")`` would clip them to
    white); floating-point and 32-bit integer files, and images over PIL's
    ``MAX_IMAGE_PIXELS`` (where PIL itself only warns, below twice that), are refused."""
    try:
        with Image.open(path) as im:
            if im.width * im.height > (Image.MAX_IMAGE_PIXELS or float("inf")):
                raise DataError(
                    f"{path}: {im.width}x{im.height} pixels is more than an image genda reads "
                    f"({Image.MAX_IMAGE_PIXELS} pixels); resize it first"
                )
            if transform is not None:
                im = transform(im)
            # 32-bit files have no agreed range (0-255? 0-65535? the full int32?): guessing
            # per file would scale a data set's images differently, so they are refused.
            if im.mode in ("F", "I"):
                kind = "floating-point" if im.mode == "F" else "32-bit integer"
                raise DataError(f"{path}: {kind} image; expected 8- or 16-bit pixels")
            if im.mode.startswith("I;16"):  # 16-bit grey: its top 8 bits
                return (np.asarray(im).astype(np.int64) >> 8).clip(0, 255).astype(np.uint8)
            grey = im.mode in ("1", "L", "LA")
            return np.asarray(im.convert("L" if grey else "RGB"))
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
        raise DataError(f"{path}: cannot read image ({e})") from e


def read_images(
    paths: Sequence[Path], transform: Callable[[Image.Image], Image.Image] | None = None
) -> dict[str, Any]:
    """Decode many image files (threads: PIL releases the GIL) to one uint8 ``[N, C, H, W]``.

    Returns ``{"images", "resized", "resized_example"}`` for :func:`make_dataset`. Mixed
    grey/colour files become RGB; files whose size differs from the most common size are
    centre-cropped to its aspect ratio and resized to it, so folders of photos work; how many
    were, and one of them, is kept so that loading can say so (or refuse, ``data.strict``).
    """
    if not paths:
        raise DataError("no image files to read")
    workers = min(8, (os.cpu_count() or 1) + 2)
    with ThreadPoolExecutor(workers) as pool:
        arrays = list(pool.map(lambda p: decode_image(p, transform), paths, chunksize=64))
    h, w = Counter(a.shape[:2] for a in arrays).most_common(1)[0][0]
    colour = any(a.ndim == 3 for a in arrays)
    out = np.empty((len(arrays), 3 if colour else 1, h, w), np.uint8)
    resized: list[str] = []
    for i, a in enumerate(arrays):
        if a.shape[:2] != (h, w):
            resized.append(f"{paths[i]} ({a.shape[1]}x{a.shape[0]})")
            a = np.asarray(ImageOps.fit(Image.fromarray(a), (w, h), Image.Resampling.BICUBIC))
        out[i] = a.transpose(2, 0, 1) if a.ndim == 3 else a[None]
    return {
        "images": torch.from_numpy(out),
        "resized": len(resized),
        "resized_example": resized[0] if resized else "",
    }


def image_files(directory: Path, recursive: bool = False) -> list[Path]:
    """Image files in ``directory`` (by extension), sorted for a machine-independent order."""
    it = directory.rglob("*") if recursive else directory.iterdir()
    return sorted(p for p in it if p.suffix.lower() in IMAGE_EXTS and p.is_file())


def missing(spec: str, expected: str, paths: Iterable[Path], download_hint: bool = True) -> None:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        hint = " (or pass download=True / --download to fetch it)" if download_hint else ""
        raise DataError(f"{spec}: expected {expected}; missing: {', '.join(missing)}{hint}")
