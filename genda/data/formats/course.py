"""The course layout: a folder of images with ``train.csv``/``test.csv`` (or ``val.csv``) of labels or attributes."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch

from genda.data.domain import Dataset
from genda.data.formats.files import (
    cached,
    files_under,
    make_dataset,
    missing,
    read_images,
)
from genda.errors import DataError
from genda.io import FOLDER_NAME_RULE, is_folder_name


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
        lineno, value, _ = next((v for v in names if not is_folder_name(v[1])), (0, "", None))
        if lineno:
            raise DataError(
                f"{path}: line {lineno}: label {value!r} cannot name a class: class names are "
                f"{FOLDER_NAME_RULE}"
            )
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
    missing(
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
