"""Turn a :class:`DataConfig` into the converted, in-memory data of one experiment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from genda.data.domain import DataError, Dataset, Domain, edge_pixels, evenly_spaced


@dataclass
class DataInfo:
    """What a method may know about its data: shapes and label names, never file formats."""

    channels: int
    size: int
    classes: list[str] = field(default_factory=list)
    attr_names: list[str] = field(default_factory=list)
    # what hparams.invert=auto means for these domains (:func:`auto_invert`)
    invert: str = "none"

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
    scales: tuple[float, float] = (1.0, 1.0)  # source and target data.*_scale applied
    invert_note: str = ""  # why info.invert was chosen: "light strokes on dark: mnist 100.0%, ..."

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
    source = _limit(source, dc.limit, seed).converted(size, channels)
    scales, why_scale = [dc.source_scale or 1.0, dc.target_scale or 1.0], ""
    if target is not None:
        target = _limit(target, dc.limit, seed).converted(size, channels)
        if target.train.classes and target.train.classes != source.train.classes:
            raise DataError(
                f"source {dc.source} classes {source.train.classes} differ from "
                f"target {dc.target} classes {target.train.classes}"
            )
        scales, why_scale = auto_scales([source, target], [dc.source_scale, dc.target_scale])
        target = target.converted(scale=scales[1])
    source = source.converted(scale=scales[0])
    tr = source.train
    invert, why_invert = ("none", "") if target is None else auto_invert([source, target])
    info = DataInfo(channels, size, list(tr.classes), list(tr.attr_names), invert)
    chosen = "; ".join(w for w in (why, why_scale) if w)
    return ExperimentData(source, target, info, chosen, (scales[0], scales[1]), why_invert)


# Below this ratio of spreads two domains count as framed alike: the default affine jitter
# (zoom 0.9-1.1) already covers it, and shrinking would only blur.
SPREAD_TOLERANCE = 1.1
# A domain is shrunk only when its frame's quietest edge pixel varies less than this
# fraction of its busiest pixel: then its images are single digits on a plain background
# (MNIST 0.05, USPS 0.13 at 28 px) and the spread is the digit's size. Photo texture
# (MNIST-M 0.42) or neighbouring digits of house numbers (syndigits 0.51) make the spread
# measure the crop instead, and shrinking such a domain makes its digits too small.
PLAIN_EDGE = 0.25


def _variation(d: Domain, n: int = 5000) -> torch.Tensor:
    """Per-pixel standard deviation across (up to ``n`` evenly spaced) per-image standardised
    grey images; evenly spaced because a class-sorted split's first ``n`` hold few classes."""
    x = evenly_spaced(d.images, n).float().mean(1)  # grey [N, H, W]
    x = (x - x.mean((1, 2), keepdim=True)) / (x.std((1, 2), keepdim=True) + 1e-6)
    return x.std(0) if len(x) > 1 else x[0].abs()


def _variation_of(domain: Dataset | Domain) -> torch.Tensor:
    return _variation(domain.train if isinstance(domain, Dataset) else domain)


def _spread(sd: torch.Tensor) -> float:
    excess = (sd - edge_pixels(sd).min()).clamp(min=0)
    h, w = sd.shape
    yy = (torch.arange(h) + 0.5 - h / 2).view(-1, 1) / h
    xx = (torch.arange(w) + 0.5 - w / 2).view(1, -1) / w
    total = float(excess.sum())
    return float((excess * (yy**2 + xx**2)).sum() / total) ** 0.5 if total > 0 else 0.0


def _plain_edge(sd: torch.Tensor) -> bool:
    """Whether images of variation ``sd`` are digits on a plain background (:data:`PLAIN_EDGE`)."""
    return float(edge_pixels(sd).min()) < PLAIN_EDGE * float(sd.max())


def spread(domain: Dataset | Domain) -> float:
    """How far from the centre the content of ``domain``'s images varies, as a fraction of
    the side: the RMS radius of the per-pixel standard deviation across per-image
    standardised grey images, above its minimum on the outer ring.

    Where digits sit is where pixels differ between images; a constant or merely textured
    background (MNIST-M's photos vary everywhere) adds the same amount at every pixel and is
    removed by subtracting the ring. Needs no labels and works on colour and grey alike.
    """
    return _spread(_variation_of(domain))


def auto_scales(datasets: Sequence[Dataset], requested: Sequence[float]) -> tuple[list[float], str]:
    """``(scales, why)``: each requested scale, with 0 ("auto") replaced by the shrink that
    brings the data set's :func:`spread` down to the narrowest one's (1 = unchanged when
    within :data:`SPREAD_TOLERANCE`, or when its background is not plain, see
    :data:`PLAIN_EDGE`). Data sets must already share one size."""
    if all(requested):
        return list(requested), ""
    variations = [_variation_of(d) for d in datasets]  # computed once per data set
    spreads = [_spread(sd) for sd in variations]
    low = min(spreads)
    scales, notes = [], []
    for d, sd, r, sp in zip(datasets, variations, requested, spreads, strict=True):
        wider = low > 0 and sp > SPREAD_TOLERANCE * low
        if wider and not r and not _plain_edge(sd):
            wider = False
            notes.append(f"{d.name}: busy frame edge, spread is not digit size")
        scales.append(r or (round(low / sp, 3) if wider else 1.0))
    notes.insert(
        0,
        "content spread: "
        + ", ".join(f"{d.name} {sp:.3f}" for d, sp in zip(datasets, spreads, strict=True)),
    )
    pair = len(scales) == 2
    keys = (
        ("data.source_scale", "data.target_scale")
        if pair
        else [f"data.source_scale[{d.name}]" for d in datasets]
    )
    chosen = ", ".join(
        f"{k}={s:g}" for k, s, r in zip(keys, scales, requested, strict=True) if not r
    )
    return scales, f"{chosen} ({'; '.join(notes)})"


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


# Two domains' stroke polarity mixes count as different when their shares of light-on-dark
# images differ by more than this (MNIST 100 %, USPS 99.8 %; MNIST-M 50 %, whose digits are
# |photo - digit|; the embedded digits 100 %, digits-m 41 % and syndigits 50 %).
POLARITY_GAP = 0.1


def light_share(d: Domain, n: int = 5000) -> float:
    """Share of (up to ``n`` evenly spaced) images whose centre half is brighter, in grey,
    than the median of their frame edge: light strokes on a dark background. No labels."""
    x = evenly_spaced(d.images, n).float().mean(1)  # grey [N, H, W]
    h, w = x.shape[1:]
    centre = x[:, h // 4 : h - h // 4, w // 4 : w - w // 4].mean((1, 2))
    return float((centre > edge_pixels(x).median(-1).values).float().mean())


def auto_invert(datasets: Sequence[Dataset]) -> tuple[str, str]:
    """``(mode, why)`` for ``hparams.invert=auto``: ``image`` when the data sets' shares of
    light-on-dark images differ by more than :data:`POLARITY_GAP`, else ``none``.

    Inverting each training image with p = 1/2 in every domain gives all domains the same
    polarity mix (half and half), so neither the classifier nor a domain discriminator can
    tell them apart by polarity. Where the mixes already agree (MNIST and USPS; two photo
    domains, whose "polarity" is noise around 50 %) there is nothing to fix, and inverting
    would only hide a cue both domains share."""
    shares = [light_share(d.train) for d in datasets]
    mode = "image" if max(shares) - min(shares) > POLARITY_GAP else "none"
    light = ", ".join(f"{d.name} {s:.1%}" for d, s in zip(datasets, shares, strict=True))
    return mode, f"light strokes on dark: {light}"
