"""CelebA in torchvision's layout, with the DCGAN face crop."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from genda.data.domain import Dataset
from genda.data.formats.files import (
    cached,
    files_under,
    make_dataset,
    missing,
    read_images,
)
from genda.errors import DataError


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
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read ({e})") from e
    if len(lines) <= header_line:
        raise DataError(f"{path}: {len(lines)} lines; expected a header on line {header_line + 1}")
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
    missing(
        spec,
        f"{base}/img_align_celeba/*.jpg, {base}/list_attr_celeba.txt and "
        f"{base}/list_eval_partition.txt (torchvision CelebA layout)",
        need,
    )

    def build() -> Dataset:
        attr_names, attr_rows = _celeba_rows(need[1], 1)
        _, part_rows = _celeba_rows(need[2], -1)
        partition = {}
        for lineno, r in enumerate(part_rows, start=1):
            if len(r) != 2 or r[1] not in ("0", "1", "2"):
                raise DataError(
                    f"{need[2]}: line {lineno}: expected 'IMAGE PARTITION' with partition "
                    f"0, 1 or 2, got {' '.join(r)!r}"
                )
            partition[r[0]] = int(r[1])
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
