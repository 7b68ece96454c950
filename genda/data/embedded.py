"""Default data sets built from files that installed packages ship: no download, no setup.

``digits``    scikit-learn's 1,797 8x8 handwritten digits, drawn MNIST-style (20 px digit
              in a 28 px frame) so they stand in for MNIST.
``digits-m``  the MNIST-M recipe on ``digits``, with patches of scikit-image's colour photos.
``syndigits`` "Syn Numbers"-style 32x32 colour house numbers rendered with matplotlib's fonts,
              an SVHN stand-in (the centre digit is the label).

Together they give the classic shifts (MNIST->MNIST-M, Syn->SVHN-like) on any machine, in
seconds. Each is built deterministically from fixed seeds and cached (see
:func:`genda.data.formats.cached`), keyed by the version of the package providing the data.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from genda.data.domain import DataError, Dataset
from genda.data.formats import DIGIT_CLASSES, cached, make_dataset, split_indices
from genda.data.mnistm import blend_dataset

EMBEDDED = ["digits", "digits-m", "syndigits"]

# --------------------------------------------------------------------------- digits


def build_digits(seed: int = 0) -> Dataset:
    """sklearn digits: 8x8 (values 0-16) -> 20x20 bilinear, padded to 28x28 like MNIST.

    MNIST digits sit in a 20x20 box centred in a 28x28 frame; doing the same makes
    ``digits`` a drop-in (if blurrier) MNIST. Split: stratified 80/20 with ``seed``.
    """
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.from_numpy(data.images).float().unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False)
    x = F.pad(x, (4, 4, 4, 4))
    images = (x * 255).round().clamp(0, 255).to(torch.uint8)
    labels = data.target.astype(np.int64)
    tr, te = split_indices(labels, 0.2, seed)
    return make_dataset(
        "digits",
        {"images": images[tr], "labels": labels[tr]},
        {"images": images[te], "labels": labels[te]},
        DIGIT_CLASSES,
    )


# --------------------------------------------------------------------------- digits-m

# Colour photos bundled inside scikit-image's wheel (no pooch download needed).
_SKIMAGE_PHOTOS = [
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "stereo_motorcycle",
]


def skimage_photos() -> list[torch.Tensor]:
    """The colour photos scikit-image ships, as uint8 ``[3, h, w]`` (missing ones skipped)."""
    import skimage.data

    photos = []
    for name in _SKIMAGE_PHOTOS:
        try:
            img = getattr(skimage.data, name)()
        except Exception:  # not bundled in this version (would need a download): skip it
            continue
        img = img[0] if isinstance(img, tuple) else img
        photos.append(torch.from_numpy(np.ascontiguousarray(img[..., :3].transpose(2, 0, 1))))
    if not photos:
        raise DataError(
            "digits-m: scikit-image ships none of its colour photos "
            f"({', '.join(_SKIMAGE_PHOTOS)}) in this installation"
        )
    return photos


def build_digits_m(seed: int = 0) -> Dataset:
    """MNIST-M on ``digits``: same images, labels and split; train/test patches differ."""
    return blend_dataset(load_embedded("digits"), skimage_photos(), "digits-m", seed)


# --------------------------------------------------------------------------- syndigits

_GLYPH = 48  # glyph mask resolution; digits are drawn ~1.5x larger than they appear
_FONT_PREFIXES = (
    "DejaVuSans",
    "DejaVuSerif",
    "STIXGeneral",
    "cmr10",
    "cmb10",
    "cmss10",
    "cmtt10",
    "cmti10",
)


def digit_glyphs() -> tuple[torch.Tensor, torch.Tensor]:
    """Masks of digits 0-9 in matplotlib's bundled fonts: float ``[F, 10, 1, G, G]`` in [0, 1]
    (each glyph scaled to 80% of the height, centred) and widths ``[F, 10]`` in the same
    [-1, 1] units as ``grid_sample``. Fonts that do not draw 10 distinct digits are dropped.
    """
    import matplotlib

    font_dir = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    fonts = sorted(
        p
        for p in font_dir.glob("*.ttf")
        if p.name.startswith(_FONT_PREFIXES) and "Display" not in p.name
    )
    masks, widths = [], []
    g, height = _GLYPH, round(_GLYPH * 0.8)
    for path in fonts:
        font = ImageFont.truetype(str(path), size=2 * g)
        glyphs, ws = [], []
        for digit in range(10):
            canvas = Image.new("L", (4 * g, 4 * g))
            ImageDraw.Draw(canvas).text((g, g), str(digit), fill=255, font=font)
            box = canvas.getbbox()
            if box is None:
                break
            crop = canvas.crop(box)
            w = min(g, max(1, round(crop.width * height / crop.height)))
            crop = crop.resize((w, height), Image.Resampling.LANCZOS)
            mask = Image.new("L", (g, g))
            mask.paste(crop, ((g - w) // 2, (g - height) // 2))
            glyphs.append(np.asarray(mask, np.float32) / 255)
            ws.append(2 * w / g)
        if len(glyphs) == 10 and len({a.tobytes() for a in glyphs}) == 10:
            masks.append(np.stack(glyphs)[:, None])
            widths.append(ws)
    if not masks:
        raise DataError(f"syndigits: no font in {font_dir} draws the digits 0-9")
    return torch.from_numpy(np.stack(masks)), torch.tensor(widths)


def render_numbers(
    n: int, glyphs: torch.Tensor, widths: torch.Tensor, seed: int, size: int = 32
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render ``n`` SVHN-like crops: uint8 ``[n, 3, size, size]`` and int64 labels ``[n]``.

    A random font draws the label digit in the centre and, often, neighbour digits left and
    right (house numbers); the whole line is scaled, rotated and shifted with one affine map
    (sampled in batch with ``grid_sample``), coloured with a random foreground/background
    pair of sufficient contrast over a lighting gradient, blurred and given sensor noise.
    """
    g = torch.Generator().manual_seed(seed)

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(*shape, generator=g)

    p = {
        "label": torch.randint(10, (n,), generator=g),
        "font": torch.randint(glyphs.shape[0], (n,), generator=g),
        "side": torch.randint(10, (n, 2), generator=g),  # left and right neighbour digits
        "present": torch.rand(n, 2, generator=g) < 0.7,
        "height": u(0.45, 0.8, n),  # digit height as a fraction of the crop
        "aspect": u(0.8, 1.2, n),
        "angle": u(-15, 15, n) * math.pi / 180,
        "shift": u(-0.12, 0.12, n, 2),
        "gap": u(0.0, 0.35, n),
        "light": u(0.0, 0.35, n),
        "light_dir": u(0, 2 * math.pi, n),
        "blur": u(0.3, 1.2, n),  # Gaussian sigma in pixels
        "noise": u(0.0, 0.04, n),
    }
    bg, fg = torch.rand(n, 3, generator=g), torch.rand(n, 3, generator=g)
    luma = torch.tensor([0.299, 0.587, 0.114])
    # Real house numbers are rarely fully saturated: pull each colour part-way to grey.
    fade = u(0.0, 0.6, n, 1)
    for _ in range(50):  # resample colour pairs until every pair is readable
        weak = ((fg - bg) @ luma).abs() < 0.3
        if not weak.any():
            break
        fg[weak], bg[weak] = (torch.rand(int(weak.sum()), 3, generator=g) for _ in range(2))
    p["fg"], p["bg"] = (c + fade * ((c @ luma)[:, None] - c) for c in (fg, bg))
    # Compose in chunks: the per-pixel work stays in CPU cache (faster than one batch).
    chunks = [
        _compose({k: v[i : i + 1000] for k, v in p.items()}, glyphs, widths, size, g)
        for i in range(0, n, 1000)
    ]
    return torch.cat(chunks), p["label"]


def _compose(
    p: dict[str, torch.Tensor],
    glyphs: torch.Tensor,
    widths: torch.Tensor,
    size: int,
    g: torch.Generator,
) -> torch.Tensor:
    n = len(p["label"])
    # Output pixel centres in [-1, 1]; invert the affine map: glyph = R(-a)(pixel - t) / s.
    lin = (torch.arange(size) + 0.5) / size * 2 - 1
    py, px = torch.meshgrid(lin, lin, indexing="ij")
    dx, dy = px - p["shift"][:, 0, None, None], py - p["shift"][:, 1, None, None]
    cos, sin = p["angle"].cos()[:, None, None], p["angle"].sin()[:, None, None]
    scale_y = p["height"][:, None, None] * 2 / 1.6  # glyphs are 1.6 units tall in [-1, 1]
    gx = (cos * dx + sin * dy) / (scale_y * p["aspect"][:, None, None])
    gy = (-sin * dx + cos * dy) / scale_y
    font, label, side = p["font"], p["label"], p["side"]
    w_c, w_l, w_r = widths[font, label], widths[font, side[:, 0]], widths[font, side[:, 1]]
    flat = glyphs.flatten(0, 1)  # [F * 10, 1, G, G]
    mask = torch.zeros(n, 1, size, size)
    for digit, offset, keep in (
        (label, torch.zeros(n), torch.ones(n)),
        (side[:, 0], -(w_c / 2 + p["gap"] + w_l / 2), p["present"][:, 0]),
        (side[:, 1], w_c / 2 + p["gap"] + w_r / 2, p["present"][:, 1]),
    ):
        grid = torch.stack([gx - offset[:, None, None], gy], dim=-1)
        m = F.grid_sample(flat.index_select(0, font * 10 + digit), grid, align_corners=False)
        mask = torch.maximum(mask, m * keep[:, None, None, None])
    angle = p["light_dir"][:, None, None]
    shade = (1 + p["light"][:, None, None] * (px * angle.cos() + py * angle.sin()))[:, None]
    fg, bg = p["fg"][:, :, None, None], p["bg"][:, :, None, None]
    img = (bg + (fg - bg) * mask) * shade
    # Per-sample Gaussian blur as two products with normalised kernel matrices (rows, then
    # columns): faster than torchvision's depthwise convolution on CPU, and sigma can vary
    # per sample.
    dist = (torch.arange(size)[:, None] - torch.arange(size)[None, :]).float() ** 2
    kernel = torch.exp(-dist / (2 * p["blur"][:, None, None] ** 2))
    kernel = (kernel / kernel.sum(-1, keepdim=True))[:, None]  # [n, 1, size, size]
    img = kernel @ img @ kernel.transpose(-1, -2)
    img = img + torch.randn(img.shape, generator=g) * p["noise"][:, None, None, None]
    return (img * 255).round().clamp(0, 255).to(torch.uint8)


def build_syndigits(n_train: int = 10_000, n_test: int = 2_000, seed: int = 0) -> Dataset:
    """Syn-Numbers-style digits (Ganin & Lempitsky 2015): 32x32 RGB, the SVHN stand-in."""
    glyphs, widths = digit_glyphs()
    tr = render_numbers(n_train, glyphs, widths, seed=2 * seed)
    te = render_numbers(n_test, glyphs, widths, seed=2 * seed + 1)
    return make_dataset(
        "syndigits",
        {"images": tr[0], "labels": tr[1]},
        {"images": te[0], "labels": te[1]},
        DIGIT_CLASSES,
    )


# --------------------------------------------------------------------------- entry point


def _versions(*modules: str) -> str:
    from importlib.metadata import version

    return ",".join(f"{m}={version(m)}" for m in modules)


def load_embedded(name: str) -> Dataset:
    """One of :data:`EMBEDDED`, built on first use and then read from the cache."""
    builders = {
        "digits": (build_digits, ("scikit-learn",)),
        "digits-m": (build_digits_m, ("scikit-learn", "scikit-image")),
        "syndigits": (build_syndigits, ("matplotlib", "pillow")),
    }
    if name not in builders:
        raise DataError(f"unknown embedded data set {name!r}; valid: {', '.join(EMBEDDED)}")
    build, packages = builders[name]
    return cached(name, f"embedded:{name}|{_versions(*packages)}", [], build)
