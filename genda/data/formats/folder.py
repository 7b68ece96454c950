"""Image folders: torchvision's ``ImageFolder`` class folders, ``<attr>=<0|1>`` folders, or a flat folder."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from genda.data.domain import Dataset
from genda.data.formats.files import (
    IMAGE_EXTS,
    cached,
    files_under,
    image_files,
    make_dataset,
    read_images,
    split_indices,
)
from genda.errors import DataError

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
