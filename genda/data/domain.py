"""In-memory data sets: every format genda reads ends up as a :class:`Domain`.

Holding a whole split as one uint8 tensor is what makes genda fast on small image data:
batches are index lookups (on the training device) instead of per-file PIL decoding,
and conversions (size, channels) are done once per experiment, not once per sample.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import torch
import torch.nn.functional as F

from genda.errors import DataError


@dataclass
class Domain:
    """One split of one data set, fully in memory.

    images: uint8 ``[N, C, H, W]`` (C is 1 or 3).
    labels: int64 ``[N]`` class indices in ``[0, len(classes))``; ``-1`` means unlabelled.
    attrs:  optional uint8 ``[N, A]`` binary attributes (CelebA-style), named by ``attr_names``.
    resized: how many files were not the set's common size and were cropped and resized to
    it (``resized_example`` names one), reported when the data set is loaded.
    """

    images: torch.Tensor
    labels: torch.Tensor
    name: str
    classes: list[str] = field(default_factory=list)
    attrs: torch.Tensor | None = None
    attr_names: list[str] = field(default_factory=list)
    resized: int = 0
    resized_example: str = ""

    def __post_init__(self) -> None:
        if self.images.dtype != torch.uint8 or self.images.dim() != 4:
            raise DataError(
                f"{self.name}: images must be uint8 [N,C,H,W], got "
                f"{self.images.dtype} {tuple(self.images.shape)}"
            )
        if self.images.shape[1] not in (1, 3):
            raise DataError(
                f"{self.name}: images must have 1 or 3 channels, got {self.images.shape[1]}"
            )
        n = len(self.images)
        if n == 0:
            raise DataError(f"{self.name}: the split is empty (no images found)")
        if len(self.labels) != n:
            raise DataError(f"{self.name}: {n} images but {len(self.labels)} labels")
        self.labels = self.labels.long()
        if self.classes:
            bad = (self.labels >= len(self.classes)) | (self.labels < -1)
            if bool(bad.any()):
                i = int(bad.nonzero()[0])
                raise DataError(
                    f"{self.name}: label {int(self.labels[i])} at index {i} is outside "
                    f"the class range 0..{len(self.classes) - 1}"
                )
        if self.attrs is not None:
            if self.attrs.shape != (n, len(self.attr_names)):
                raise DataError(
                    f"{self.name}: attributes must be [N={n}, A={len(self.attr_names)}], "
                    f"got {tuple(self.attrs.shape)}"
                )
            self.attrs = self.attrs.to(torch.uint8)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def shape(self) -> tuple[int, int, int]:
        c, h, w = self.images.shape[1:]
        return int(c), int(h), int(w)

    def class_counts(self) -> list[int]:
        valid = self.labels[self.labels >= 0]
        return torch.bincount(valid, minlength=self.num_classes).tolist()

    def attr_index(self, name: str) -> int:
        """Index of an attribute by name; unknown names list the valid ones."""
        if not self.attr_names:
            raise DataError(
                f"{self.name}: data.attribute={name!r}, but this data set has no attributes; "
                "attributes come with celeba:ROOT, the course face layout (course:DIR with "
                "image_name,<attr>,... CSVs) and folder:DIR with <attr>=<0|1> sub-folders"
            )
        if name not in self.attr_names:
            raise DataError(
                f"{self.name}: unknown attribute {name!r}; valid: {', '.join(self.attr_names)}"
            )
        return self.attr_names.index(name)

    def subset(self, index: torch.Tensor) -> Domain:
        return replace(
            self,
            images=self.images[index],
            labels=self.labels[index],
            attrs=None if self.attrs is None else self.attrs[index],
        )

    def with_attribute_labels(self, name: str) -> Domain:
        """Use one binary attribute as the class label (e.g. ``Smiling`` -> classes 0/1)."""
        a = self.attr_index(name)
        assert self.attrs is not None
        return replace(self, labels=self.attrs[:, a].long(), classes=[f"{name}=0", f"{name}=1"])

    def converted(
        self, size: int | None = None, channels: int | None = None, scale: float = 1.0
    ) -> Domain:
        """Resize (antialiased bilinear) and/or convert grey<->RGB, once, in uint8.

        ``scale < 1`` shrinks each image to that fraction of the side and centres it in the
        frame, filled with the image's own border colour (per-channel median of its outer
        ring: black around USPS digits, the photo's tone around an MNIST-M one).
        """
        x = self.images
        if channels is not None and channels != x.shape[1]:
            if channels == 3:
                x = x.expand(-1, 3, -1, -1).contiguous()
            elif channels == 1:
                w = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
                x = (x.float() * w).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
            else:
                raise DataError(f"channels must be 1 or 3, got {channels}")
        side = size or x.shape[2]
        inner = max(1, round(side * scale)) if scale < 1 else side
        if (size is not None or scale < 1) and (x.shape[2], x.shape[3]) != (inner, inner):
            out = []
            for chunk in x.split(4096):
                y = F.interpolate(
                    chunk.float(),
                    size=(inner, inner),
                    mode="bilinear",
                    antialias=True,
                    align_corners=False,
                )
                out.append(y.round().clamp(0, 255).to(torch.uint8))
            x = torch.cat(out)
        if inner < side:
            x = _framed(x, side)
        return replace(self, images=x)


def evenly_spaced(images: torch.Tensor, n: int) -> torch.Tensor:
    """Up to ``n`` of ``images``, evenly spaced over the split rather than its first ``n``:
    a folder data set is stored class by class, so its first images are all one class."""
    if len(images) <= n:
        return images
    return images[torch.arange(n) * len(images) // n]


def edge_pixels(x: torch.Tensor) -> torch.Tensor:
    """The outer ring of pixels of ``x [..., H, W]``, flattened into the last dimension."""
    return torch.cat([x[..., 0, :], x[..., -1, :], x[..., :, 0], x[..., :, -1]], dim=-1)


def _framed(x: torch.Tensor, side: int) -> torch.Tensor:
    """uint8 ``x`` centred in a ``side``-px frame of each image's border colour."""
    fill = edge_pixels(x).median(dim=-1).values  # [N, C]
    out = fill[:, :, None, None].expand(-1, -1, side, side).clone()
    top, left = (side - x.shape[2]) // 2, (side - x.shape[3]) // 2
    out[:, :, top : top + x.shape[2], left : left + x.shape[3]] = x
    return out


@dataclass
class Dataset:
    """A named data set with fixed train and test splits."""

    name: str
    train: Domain
    test: Domain

    def converted(
        self, size: int | None = None, channels: int | None = None, scale: float = 1.0
    ) -> Dataset:
        return Dataset(
            self.name,
            self.train.converted(size, channels, scale),
            self.test.converted(size, channels, scale),
        )

    def describe(self) -> str:
        lines = [f"{self.name}"]
        for split, d in (("train", self.train), ("test", self.test)):
            c, h, w = d.shape
            lines.append(f"  {split}: {len(d)} images, shape {c}x{h}x{w}")
            if d.classes:
                counts = ", ".join(
                    f"{n}:{k}" for n, k in zip(d.classes, d.class_counts(), strict=True)
                )
                lines.append(f"    classes ({d.num_classes}): {counts}")
            if d.attrs is not None:
                rates = d.attrs.float().mean(0)
                top = ", ".join(
                    f"{n}={r:.2f}" for n, r in zip(d.attr_names, rates.tolist(), strict=True)
                )
                lines.append(f"    attributes ({len(d.attr_names)}): {top}")
        return "\n".join(lines)
