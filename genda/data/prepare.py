"""Turn a :class:`DataConfig` into the converted, in-memory data of one experiment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from genda.data.domain import DataError, Dataset


@dataclass
class DataInfo:
    """What a method may know about its data: shapes and label names, never file formats."""

    channels: int
    size: int
    classes: list[str] = field(default_factory=list)
    attr_names: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


@dataclass
class ExperimentData:
    """Source (labelled) and optional target data, converted to one size and channel count."""

    source: Dataset
    target: Dataset | None
    info: DataInfo
    chosen: str = ""  # what auto size/channels picked, e.g. "data.size=28 (larger native ...)"

    def split(self, stream: str, split: str = "train"):
        ds = self.source if stream == "source" else self.target
        if ds is None:
            raise DataError(
                f"this method needs a target data set (data.target) for its {stream!r} stream"
            )
        return getattr(ds, split)


def _limit(ds: Dataset, n: int, seed: int) -> Dataset:
    if not n or len(ds.train) <= n:
        return ds
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(len(ds.train), generator=g)[:n]
    return Dataset(ds.name, ds.train.subset(idx), ds.test)


def prepare(dc, seed: int = 0, datasets: dict[str, Dataset] | None = None) -> ExperimentData:
    """Load (or take from ``datasets``, keyed by spec), convert and label the experiment's data."""
    from genda.data.spec import load_dataset

    def get(spec: str) -> Dataset:
        if datasets is not None and spec in datasets:
            return datasets[spec]
        return load_dataset(spec, download=dc.download, strict=dc.strict)

    source = get(dc.source)
    target = get(dc.target) if dc.target else None
    if dc.attribute:
        source = Dataset(
            source.name,
            source.train.with_attribute_labels(dc.attribute),
            source.test.with_attribute_labels(dc.attribute),
        )
    size, channels, why = auto_shape(
        [source] if target is None else [source, target], dc.size, dc.channels
    )
    source = _limit(source, dc.limit, seed).converted(size, channels).with_domain_id(0)
    if target is not None:
        target = _limit(target, dc.limit, seed).converted(size, channels).with_domain_id(1)
        if target.train.classes and target.train.classes != source.train.classes:
            raise DataError(
                f"source {dc.source} classes {source.train.classes} differ from "
                f"target {dc.target} classes {target.train.classes}"
            )
    tr = source.train
    return ExperimentData(
        source, target, DataInfo(channels, size, list(tr.classes), list(tr.attr_names)), why
    )


def auto_shape(
    datasets: Sequence[Dataset], size: int = 0, channels: int = 0
) -> tuple[int, int, str]:
    """``(size, channels, why)``: the requested ones, with 0 ("auto") replaced by a choice.

    Auto size is the larger native side of the data sets: upsampling the smaller one (USPS's
    16 px to MNIST's 28) keeps every pixel of the larger, while downsampling would blur
    strokes the classifier needs. Auto channels is RGB when any data set is colour: colour
    is part of what differs between e.g. MNIST and MNIST-M, and a grey set replicated to
    three channels loses nothing, whereas greying a colour set can erase a digit whose
    colour differs from its background at equal brightness. ``why`` says what was chosen
    (empty when nothing was auto), so runs can print it and ``config.yaml`` records it.
    """
    sets = list(datasets)
    notes = []
    if not size:
        sides = {d.name: max(d.train.images.shape[2:]) for d in sets}
        size = max(sides.values())
        native = ", ".join(f"{n} {s}" for n, s in sides.items())
        notes.append(f"data.size={size} (larger native side: {native})")
    if not channels:
        colour = [d.name for d in sets if d.train.images.shape[1] == 3]
        channels = 3 if colour else 1
        notes.append(
            f"data.channels={channels} ("
            + (f"{', '.join(colour)} is colour" if colour else "all grey")
            + ")"
        )
    return size, channels, "; ".join(notes)
