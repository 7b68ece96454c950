"""Turn a :class:`DataConfig` into the converted, in-memory data of one experiment."""

from __future__ import annotations

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
    source = _limit(source, dc.limit, seed).converted(dc.size, dc.channels).with_domain_id(0)
    if target is not None:
        target = _limit(target, dc.limit, seed).converted(dc.size, dc.channels).with_domain_id(1)
        if target.train.classes and target.train.classes != source.train.classes:
            raise DataError(
                f"source {dc.source} classes {source.train.classes} differ from "
                f"target {dc.target} classes {target.train.classes}"
            )
    tr = source.train
    return ExperimentData(
        source, target, DataInfo(dc.channels, dc.size, list(tr.classes), list(tr.attr_names))
    )
