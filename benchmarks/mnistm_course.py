"""Write a course-layout MNIST-M made the way the widely used released copy was made, to check
genda's defaults on data they were not tuned on.

genda's ``mnistm:MNIST,PHOTOS`` builder blends the grey, anti-aliased 28-px MNIST digit into
the photo patch (the paper's description). The copy the course ships was made by the tf-dann
re-implementation's ``create_mnistm.py``, which first binarises the digit (every pixel
above 0 becomes 255: thicker, full-contrast strokes), and was then stored at 32x32 (softer
edges again). This script applies those two steps to the same MNIST digits and BSDS500
photos and writes the course layout ``OUT/data/*.png`` + ``train.csv`` / ``val.csv``
(``image_name,label``), so that

    genda uda table --source mnist:../shared/data/mnist --target course:OUT --out DIR

runs the exact command a course user types, course reader and automatic choices included.

    .venv/bin/python benchmarks/mnistm_course.py --out /tmp/mnistm_course
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def released_style(
    digits: torch.Tensor, photos: list[torch.Tensor], seed: int, side: int
) -> torch.Tensor:
    """uint8 ``[N, 1, 28, 28]`` digits -> uint8 ``[N, 3, side, side]``: binarised strokes
    blended by ``|patch - digit|``, then resized (bilinear, antialiased) to ``side``."""
    from genda.data.mnistm import blend_with_photos

    binary = (digits > 0).to(torch.uint8) * 255
    out = blend_with_photos(binary, photos, torch.Generator().manual_seed(seed))
    if side == out.shape[-1]:
        return out
    resized = F.interpolate(out.float(), size=(side, side), mode="bilinear", antialias=True)
    return resized.round().clamp(0, 255).to(torch.uint8)


def write_split(
    root: Path, prefix: str, images: torch.Tensor, labels: torch.Tensor, csv_name: str
) -> None:
    """PNGs ``data/<prefix><i>.png`` and their ``image_name,label`` CSV."""
    with (root / csv_name).open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image_name", "label"])
        for i, (img, y) in enumerate(zip(images, labels.tolist(), strict=True)):
            name = f"{prefix}{i:05d}.png"
            Image.fromarray(img.permute(1, 2, 0).numpy()).save(root / "data" / name)
            w.writerow([name, y])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mnist", type=Path, default=SHARED / "mnist")
    p.add_argument("--photos", type=Path, default=SHARED / "bsds500" / "train")
    p.add_argument("--side", type=int, default=32, help="stored side in pixels (course copy: 32)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True, help="a folder that does not exist yet")
    args = p.parse_args()
    if not args.mnist.exists() or not args.photos.exists():
        print(f"skipped: {args.mnist} or {args.photos} not found")
        return 0
    if args.out.exists():
        p.error(f"{args.out} exists; name a new folder")

    from genda.data.formats import load_mnist
    from genda.data.mnistm import load_photos
    from genda.io import file_mode

    mnist, photos = load_mnist(args.mnist), load_photos(args.photos)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{args.out.name}.", dir=args.out.parent))
    try:
        (tmp / "data").mkdir()
        for k, (dom, prefix, csv_name) in enumerate(
            [(mnist.train, "tr", "train.csv"), (mnist.test, "te", "val.csv")]
        ):
            images = released_style(dom.images, photos, args.seed + k, args.side)
            write_split(tmp, prefix, images, dom.labels, csv_name)
        mode = file_mode()
        os.chmod(tmp, mode | (mode & 0o444) >> 2)  # mkdtemp made it 0700: give the umask's mode
        tmp.rename(args.out)  # the folder appears complete or not at all
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    print(
        f"wrote {args.out}: {len(mnist.train.labels)} train + {len(mnist.test.labels)} val images, {args.side} px"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
