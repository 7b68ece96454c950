"""Readers for the on-disk data layouts genda accepts, and the cache of decoded data sets.

Every reader turns files into a :class:`Dataset` of uint8 tensors once; later loads come
from the cache (one ``.pt`` file per data set), because gunzipping IDX files or decoding
thousands of PNGs costs seconds to minutes while loading a tensor file costs milliseconds.

Readers never touch the network unless ``download=True`` is passed, and then only through
torchvision's own downloaders, so files land in the layout torchvision users already have.
Bad input raises :class:`DataError` naming the file (and CSV line) and the expected layout.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import hashlib
import os
import re
import struct
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps

from genda.data.domain import Dataset, Domain
from genda.errors import DataError, WriteError
from genda.io import save_torch

IMAGE_EXTS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
DIGIT_CLASSES = [str(i) for i in range(10)]
# Bump when a reader's output changes, so caches written by older code are not reused.
CACHE_VERSION = 2

# --------------------------------------------------------------------------- cache


def cache_dir() -> Path:
    """``$GENDA_CACHE`` if set, else ``~/.cache/genda`` (``GENDA_CACHE=off`` disables caching)."""
    return Path(os.environ.get("GENDA_CACHE") or Path.home() / ".cache" / "genda").expanduser()


def cache_enabled() -> bool:
    """False when ``GENDA_CACHE`` is ``off`` (or ``0``/``none``): every cache is skipped."""
    return os.environ.get("GENDA_CACHE", "").lower() not in ("off", "0", "none")


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
    """Return ``build()``, stored under :func:`cache_dir` and reused while nothing changed.

    The file name is ``<name>-<hash of key>-<hash of the inputs' paths, sizes, mtimes>.pt``:
    editing the data makes a new file (and the stale one is deleted). Plain tensors, strings
    and lists are stored so loading works with ``torch.load(weights_only=True)``; the file is
    written by :func:`genda.io.save_torch` (atomic, durable, umask permissions).
    """
    if not cache_enabled():
        return build()
    spec_hash = hashlib.sha1(f"{CACHE_VERSION}|{key}".encode()).hexdigest()[:10]
    h = hashlib.sha1(spec_hash.encode())
    for p in sorted(inputs):
        st = p.stat()
        h.update(f"|{os.path.abspath(p)}|{st.st_size}|{st.st_mtime_ns}".encode())
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    directory = cache_dir()
    path = directory / f"{slug}-{spec_hash}-{h.hexdigest()[:12]}.pt"
    if path.is_file():
        try:
            return _from_dict(torch.load(path, weights_only=True))
        except Exception as e:  # a damaged cache file is rebuilt, never fatal
            warnings.warn(f"genda: ignoring unreadable cache file {path} ({e})", stacklevel=2)
    ds = build()
    try:
        save_torch(path, _to_dict(ds))
        for old in directory.glob(f"{slug}-{spec_hash}-*.pt"):
            if old != path:
                old.unlink(missing_ok=True)
    except (OSError, WriteError) as e:  # a cache that cannot be written only costs time
        warnings.warn(f"genda: not caching {name}: {e}", stacklevel=2)
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


# --------------------------------------------------------------------------- helpers


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
    """Decode one file to uint8 ``[H, W]`` (grey) or ``[H, W, 3]`` (colour)."""
    try:
        with Image.open(path) as im:
            if transform is not None:
                im = transform(im)
            grey = im.mode in ("1", "L", "LA", "I", "I;16", "F")
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


def _missing(spec: str, expected: str, paths: Iterable[Path], download_hint: bool = True) -> None:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        hint = " (or pass download=True / --download to fetch it)" if download_hint else ""
        raise DataError(f"{spec}: expected {expected}; missing: {', '.join(missing)}{hint}")


# --------------------------------------------------------------------------- MNIST

_MNIST = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (plain or ``.gz``) of uint8 data, the format MNIST is shipped in."""
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read ({e})") from e
    if len(data) < 4 or data[:3] != b"\0\0\x08":
        raise DataError(f"{path}: not an IDX file of uint8 data")
    ndim = data[3]
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


# --------------------------------------------------------------------------- USPS


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
    _missing(spec, f"{files['train']} and {files['test']} (torchvision USPS files)", files.values())

    def build() -> Dataset:
        tr, te = (_read_usps_file(files[s]) for s in ("train", "test"))
        return make_dataset(
            "usps",
            {"images": tr[0], "labels": tr[1]},
            {"images": te[0], "labels": te[1]},
            DIGIT_CLASSES,
        )

    return cached("usps", f"usps:{root.absolute()}", files.values(), build)


# --------------------------------------------------------------------------- SVHN


def load_svhn(root: Path, download: bool = False) -> Dataset:
    """SVHN cropped digits from ``ROOT/train_32x32.mat`` and ``ROOT/test_32x32.mat``."""
    spec = f"svhn:{root}"
    files = {"train": root / "train_32x32.mat", "test": root / "test_32x32.mat"}
    if download and not all(p.is_file() for p in files.values()):
        from torchvision.datasets import SVHN

        for split in files:
            SVHN(str(root), split=split, download=True)
    _missing(
        spec, f"{files['train']} and {files['test']} (torchvision SVHN layout)", files.values()
    )

    def build() -> Dataset:
        from scipy.io import loadmat

        splits = {}
        for split, path in files.items():
            try:
                mat = loadmat(path)
                x, y = mat["X"], mat["y"].reshape(-1).astype(np.int64)
            except Exception as e:
                raise DataError(f"{path}: cannot read SVHN .mat file ({e})") from e
            # X is [H, W, C, N]; label 10 stands for digit 0.
            splits[split] = {
                "images": torch.from_numpy(np.ascontiguousarray(x.transpose(3, 2, 0, 1))),
                "labels": torch.from_numpy(y % 10),
            }
        return make_dataset("svhn", splits["train"], splits["test"], DIGIT_CLASSES)

    return cached("svhn", f"svhn:{root.absolute()}", files.values(), build)


# --------------------------------------------------------------------------- CelebA


def celeba_crop(im: Image.Image, crop: int = 108, size: int = 64) -> Image.Image:
    """The DCGAN CelebA preprocessing: centre 108x108 crop of the aligned face, resized."""
    w, h = im.size
    left, top = (w - crop) // 2, (h - crop) // 2
    return (
        im.convert("RGB")
        .crop((left, top, left + crop, top + crop))
        .resize((size, size), Image.Resampling.BICUBIC)
    )


def _celeba_rows(path: Path, header_line: int) -> tuple[list[str], list[list[str]]]:
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e})") from e
    header = lines[header_line].split() if header_line >= 0 else []
    return header, [line.split() for line in lines[header_line + 1 :] if line.strip()]


def load_celeba(root: Path, download: bool = False) -> Dataset:
    """CelebA from torchvision's layout ``ROOT/celeba/{img_align_celeba/, list_*.txt}``.

    Train is partition 0, test is partition 2 (1 if there is no 2). Images are unlabelled
    (labels -1); the 40 attributes (-1/1 in the file) become 0/1 ``attrs``.
    """
    spec = f"celeba:{root}"
    base = next(
        (d for d in (root / "celeba", root) if (d / "img_align_celeba").is_dir()), root / "celeba"
    )
    need = [
        base / "img_align_celeba",
        base / "list_attr_celeba.txt",
        base / "list_eval_partition.txt",
    ]
    if download and not all(p.exists() for p in need):
        from torchvision.datasets import CelebA

        CelebA(str(root), split="all", download=True)
    _missing(
        spec,
        f"{base}/img_align_celeba/*.jpg, {base}/list_attr_celeba.txt and "
        f"{base}/list_eval_partition.txt (torchvision CelebA layout)",
        need,
    )

    def build() -> Dataset:
        attr_names, attr_rows = _celeba_rows(need[1], 1)
        _, part_rows = _celeba_rows(need[2], -1)
        partition = {r[0]: int(r[1]) for r in part_rows}
        by_split: dict[int, list[tuple[Path, list[str]]]] = {0: [], 1: [], 2: []}
        for lineno, row in enumerate(attr_rows, start=3):
            if len(row) != len(attr_names) + 1:
                raise DataError(
                    f"{need[1]}: line {lineno}: expected {len(attr_names) + 1} "
                    f"fields, got {len(row)}"
                )
            p = need[0] / row[0]
            if not p.is_file():
                raise DataError(f"{need[1]}: line {lineno}: image {p} not found")
            by_split[partition.get(row[0], 0)].append((p, row[1:]))
        test_part = 2 if by_split[2] else 1
        splits = {}
        for split, part in (("train", 0), ("test", test_part)):
            items = by_split[part]
            if not items:
                raise DataError(f"{spec}: {need[2]} lists no images for the {split} split")
            try:
                values = np.array([v for _, v in items], dtype=np.int64)
            except ValueError as e:
                raise DataError(f"{need[1]}: attribute values must be -1 or 1 ({e})") from e
            splits[split] = {
                **read_images([p for p, _ in items], celeba_crop),
                "labels": torch.full((len(items),), -1),
                "attrs": torch.from_numpy((values > 0).astype(np.uint8)),
            }
        return make_dataset("celeba", splits["train"], splits["test"], attr_names=attr_names)

    return cached("celeba", f"celeba:{root.absolute()}", [*need[1:], *files_under(need[0])], build)


# --------------------------------------------------------------------------- course layout


def _read_csv(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and ``(line number, fields)`` rows; every row must have the header's width."""
    try:
        with path.open(newline="") as f:
            rows = [r for r in csv.reader(f)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path}: cannot read CSV ({e})") from e
    if not rows:
        raise DataError(f"{path}: empty file (expected a header line)")
    header = [h.strip() for h in rows[0]]
    body = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(row) != len(header):
            raise DataError(
                f"{path}: line {lineno}: expected {len(header)} columns "
                f"({','.join(header[:3])}{',...' if len(header) > 3 else ''}), "
                f"got {len(row)}"
            )
        body.append((lineno, [c.strip() for c in row]))
    if not body:
        raise DataError(f"{path}: no rows after the header (empty split)")
    return header, body


def _as_int(s: str) -> int | None:
    try:
        return int(s)
    except ValueError:
        return None


def _class_names(path: Path, rows: list[tuple[int, list[str]]]) -> list[str]:
    """Class names of a CSV's label column: the ids ``0..K-1`` when the labels are integers,
    else the labels themselves in sorted order, when none of them is a number.

    Anything else (``11`` in a 0-9 set, ``-1``, ``four`` among digits) is almost always a
    typo that would otherwise silently become a class of its own, so it is an error naming
    the file, the line and the value.
    """
    values = [(lineno, r[1], _as_int(r[1])) for lineno, r in rows]
    ints = [v for v in values if v[2] is not None]
    names = [v for v in values if v[2] is None]
    if ints and names:
        lineno, value, _ = (names if len(ints) >= len(names) else ints)[0]
        raise DataError(
            f"{path}: line {lineno}: label {value!r}: the label column mixes integers and names "
            "(expected class ids 0..K-1, or class names none of which is a number)"
        )
    if names:
        return sorted({v for _, v, _ in names})
    present = {i for _, _, i in ints}
    k = next(i for i in range(len(present) + 1) if i not in present)
    lineno, value, _ = next(
        (v for v in ints if not 0 <= v[2] < k), (0, "", 0)
    )  # every label in 0..k-1 when nothing is found
    if lineno:
        raise DataError(
            f"{path}: line {lineno}: label {value!r} is not a class id: integer labels must be "
            f"0..K-1 with none missing (found 0..{k - 1}, then no {k})"
            if k
            else f"{path}: line {lineno}: label {value!r} is not a class id: integer labels "
            "must be 0..K-1 (no label 0 found)"
        )
    return [str(i) for i in range(k)]


def load_course(directory: Path) -> Dataset:
    """The course layout: ``train.csv`` -> train split and ``val.csv`` -> test split.

    Header ``image_name,label``: classification, images in ``DIR/data/``; class names are the
    sorted train labels (numerically when they are integers). Any other header: the first
    column names an image in ``DIR/train/`` or ``DIR/val/`` and the rest are 0/1 attributes.
    """
    spec = f"course:{directory}"
    csvs = {"train": directory / "train.csv", "test": directory / "val.csv"}
    _missing(
        spec,
        f"{csvs['train']} and {csvs['test']} (course layout: image_name,label + "
        "data/*.png for digits; image_name,<attr>,... + train/*.png, val/*.png for faces)",
        csvs.values(),
        download_hint=False,
    )

    def build() -> Dataset:
        parsed = {s: _read_csv(p) for s, p in csvs.items()}
        header = parsed["train"][0]
        if parsed["test"][0] != header:
            raise DataError(f"{csvs['test']}: header differs from {csvs['train']}")
        classify = header == ["image_name", "label"]
        paths = {}
        for split, (_, rows) in parsed.items():
            sub = "train" if split == "train" else "val"
            dirs = ["data", sub, "."] if classify else [sub, "data", "."]
            first = rows[0][1][0]
            img_dir = next((directory / d for d in dirs if (directory / d / first).is_file()), None)
            if img_dir is None:
                raise DataError(
                    f"{csvs[split]}: line {rows[0][0]}: image {first!r} not found "
                    f"in {', '.join(str(directory / d) for d in dirs)}"
                )
            paths[split] = [img_dir / r[0] for _, r in rows]
            for (lineno, _), p in zip(rows, paths[split], strict=True):
                if not p.is_file():
                    raise DataError(f"{csvs[split]}: line {lineno}: image {p} not found")
        if classify:
            classes = _class_names(csvs["train"], parsed["train"][1])
            numeric = classes[0] == "0"
            index = {c: i for i, c in enumerate(classes)}
            splits = {}
            for split, (_, rows) in parsed.items():
                labels = []
                for lineno, r in rows:
                    key = str(_as_int(r[1])) if numeric and _as_int(r[1]) is not None else r[1]
                    if key not in index:
                        raise DataError(
                            f"{csvs[split]}: line {lineno}: label {r[1]!r} is not "
                            f"one of the train classes {', '.join(classes)}"
                        )
                    labels.append(index[key])
                splits[split] = {**read_images(paths[split]), "labels": labels}
            return make_dataset(directory.name, splits["train"], splits["test"], classes)
        splits = {}
        for split, (_, rows) in parsed.items():
            values = np.array([r[1:] for _, r in rows])
            bad = ~np.isin(values, ["0", "1", "-1"])
            if bad.any():
                i, j = np.argwhere(bad)[0]
                raise DataError(
                    f"{csvs[split]}: line {rows[i][0]}: attribute {header[j + 1]} "
                    f"is {str(values[i, j])!r}, expected 0 or 1"
                )
            splits[split] = {
                **read_images(paths[split]),
                "labels": torch.full((len(rows),), -1),
                "attrs": torch.from_numpy((values == "1").astype(np.uint8)),
            }
        return make_dataset(directory.name, splits["train"], splits["test"], attr_names=header[1:])

    return cached(
        f"course-{directory.name}", f"course:{directory.absolute()}", files_under(directory), build
    )


# --------------------------------------------------------------------------- image folders

# A class folder (or class name) that sets one binary attribute: ``Smiling=1``.
ATTR_DIR = re.compile(r"^(.+)=([01])$")
# The sample grid ``genda sample`` writes beside the images; not an image of the set.
GRID_NAME = "grid.png"


def _scan_folder(directory: Path) -> tuple[list[Path], list[str], list[str]]:
    """``(files, class of each file, class names)``; a flat folder gives class ``""``."""
    subdirs = sorted(d for d in directory.iterdir() if d.is_dir() and image_files(d, True))
    # `genda sample` writes a preview grid.png beside the samples: it is not a sample.
    flat = [f for f in image_files(directory) if f.name != GRID_NAME]
    if subdirs and flat:
        raise DataError(
            f"folder:{directory}: has both images ({flat[0].name}) and class "
            f"folders ({subdirs[0].name}); use one layout"
        )
    if not subdirs:
        return flat, [""] * len(flat), []
    files, owners = [], []
    for d in subdirs:
        found = image_files(d, recursive=True)
        files += found
        owners += [d.name] * len(found)
    return files, owners, [d.name for d in subdirs]


def load_folder(directory: Path, seed: int = 0) -> Dataset:
    """Images in class folders ``DIR/<class>/*`` (torchvision ImageFolder), or a flat folder
    (unlabelled), or folders ``DIR/<attr>=0`` and ``DIR/<attr>=1`` (also sets that attribute).

    ``DIR/train`` + ``DIR/test`` (or ``DIR/val``) are used as the splits when present;
    otherwise a seeded, class-stratified 80/20 split is made.
    """
    spec = f"folder:{directory}"
    if not directory.is_dir():
        raise DataError(
            f"{spec}: expected a folder of images or of class folders "
            f"(DIR/<class>/*.png|jpg); {directory} does not exist"
        )
    test_dir = next((directory / n for n in ("test", "val") if (directory / n).is_dir()), None)
    presplit = (directory / "train").is_dir() and test_dir is not None

    def build() -> Dataset:
        if presplit:
            assert test_dir is not None
            tr_files, tr_owner, classes = _scan_folder(directory / "train")
            te_files, te_owner, te_classes = _scan_folder(test_dir)
            for where, found in ((directory / "train", tr_files), (test_dir, te_files)):
                if not found:
                    raise DataError(
                        f"{spec}: no image files ({', '.join(sorted(IMAGE_EXTS))}) "
                        f"in {where} (empty split)"
                    )
            if extra := sorted(set(te_classes) - set(classes)):
                raise DataError(
                    f"{spec}: {test_dir / extra[0]} is not a class of "
                    f"{directory / 'train'} ({', '.join(classes) or 'flat'})"
                )
            if bool(classes) != bool(te_classes):
                raise DataError(
                    f"{spec}: {directory / 'train'} and {test_dir} must both have "
                    "class folders or both be flat"
                )
        else:
            files, owner, classes = _scan_folder(directory)
            if len(files) < 2:
                raise DataError(
                    f"{spec}: found {len(files)} image(s); need at least 2 to "
                    "split into train and test"
                )
            index = {c: i for i, c in enumerate(classes)}
            labels = np.array([index.get(o, -1) for o in owner])
            tr, te = split_indices(labels, 0.2, seed)
            tr_files, tr_owner = [files[i] for i in tr], [owner[i] for i in tr]
            te_files, te_owner = [files[i] for i in te], [owner[i] for i in te]
            if not te_files:
                raise DataError(
                    f"{spec}: the seeded 80/20 split left no test images (every class of "
                    f"{directory} has a single image)"
                )
        index = {c: i for i, c in enumerate(classes)}
        matches = [ATTR_DIR.match(c) for c in classes]
        names = {m.group(1) for m in matches if m}
        attr = names.pop() if classes and all(matches) and len(names) == 1 else None
        splits = {}
        for split, files, owner in (("train", tr_files, tr_owner), ("test", te_files, te_owner)):
            d: dict = {**read_images(files), "labels": [index.get(o, -1) for o in owner]}
            if attr is not None:
                d["attrs"] = torch.tensor([[int(o[-1])] for o in owner], dtype=torch.uint8)
            splits[split] = d
        return make_dataset(
            directory.name,
            splits["train"],
            splits["test"],
            classes,
            attr_names=[attr] if attr else [],
        )

    return cached(
        f"folder-{directory.name}",
        f"folder:{directory.absolute()}|seed={seed}",
        files_under(directory),
        build,
    )
