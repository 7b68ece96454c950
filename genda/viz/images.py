"""Figures made of images: sample grids, reverse-diffusion strips, pairs, reconstructions.

Every function accepts uint8 ``[N, C, H, W]`` images (as stored in a
:class:`~genda.data.domain.Domain`) or float images in ``value_range`` (generator
outputs, ``[-1, 1]`` by default), so callers never convert before plotting.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from torchvision.utils import make_grid, save_image

from genda.io import atomic_path
from genda.viz.files import save_figure

ImageBatch = torch.Tensor | np.ndarray
PathLike = str | os.PathLike[str]

_CELL_IN = 1.3  # inches per image cell: big enough for a caption, small enough for 10+ columns


def to_uint8(images: ImageBatch, value_range: tuple[float, float] = (-1.0, 1.0)) -> torch.Tensor:
    """Return uint8 ``[N, C, H, W]`` images; floats are mapped from ``value_range`` to 0..255.

    uint8 input passes through unchanged, so stored data and model outputs share one path.
    """
    x = torch.as_tensor(images).detach().cpu()
    if x.dim() != 4:
        raise ValueError(f"images must be [N,C,H,W], got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        return x
    lo, hi = value_range
    x = (x.float() - lo) / (hi - lo)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8)


def save_grid(
    images: ImageBatch,
    path: PathLike,
    nrow: int = 10,
    value_range: tuple[float, float] = (-1.0, 1.0),
) -> Path:
    """Save images as one PNG grid (``nrow`` images per row) at full resolution.

    Uses torchvision instead of matplotlib so sample grids keep exact pixels (no resampling).
    """
    x = to_uint8(images, value_range).float() / 255
    grid = make_grid(x, nrow=nrow, padding=2, pad_value=1.0)
    with atomic_path(path) as tmp:
        save_image(grid, tmp, format="png")
    return Path(path)


def read_grid(
    path: PathLike, n: int, nrow: int, size: int, channels: int, padding: int = 2
) -> torch.Tensor:
    """The first ``n`` uint8 images ``[n, channels, size, size]`` of a grid written by
    :func:`save_grid`; exact, because the grid is a lossless PNG at full resolution."""
    from PIL import Image

    with Image.open(path) as im:
        a = torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1)
    step, rows = size + padding, -(-n // nrow)
    if a.shape[1] < rows * step + padding or a.shape[2] < min(n, nrow) * step + padding:
        raise ValueError(
            f"{path}: a {a.shape[2]}x{a.shape[1]} image is not a grid of {n} {size}-px images "
            f"in rows of {nrow}"
        )
    cells = []
    for i in range(n):
        y, x = (padding + k * step for k in divmod(i, nrow))
        cells.append(a[:, y : y + size, x : x + size])
    images = torch.stack(cells)
    return images[:, :1] if channels == 1 else images


def save_gif(frames: Sequence[PathLike], path: PathLike, ms_per_frame: int = 250) -> Path:
    """Animate PNG ``frames`` (e.g. sample grids over training) as a looping GIF; the last
    frame is held three times as long, so the final state is what the eye rests on."""
    from PIL import Image

    if not frames:
        raise ValueError("save_gif needs at least one frame")
    images = [Image.open(f).convert("RGB") for f in frames]
    durations = [ms_per_frame] * (len(images) - 1) + [3 * ms_per_frame]
    with atomic_path(path) as tmp:
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=durations,
            loop=0,
        )
    return Path(path)


def _show(ax, image: torch.Tensor) -> None:
    """Draw one uint8 ``[C, H, W]`` image without ticks (but keeping room for labels)."""
    if image.shape[0] == 1:
        ax.imshow(image[0].numpy(), cmap="gray", vmin=0, vmax=255)
    else:
        ax.imshow(image.permute(1, 2, 0).numpy())
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _image_table(
    rows: Sequence[torch.Tensor],
    path: PathLike,
    col_titles: Sequence[str] | None = None,
    row_labels: Sequence[str] | None = None,
    captions: Sequence[Sequence[str]] | None = None,
) -> Path:
    """Lay out uint8 image rows (each ``[N, C, H, W]``) as a captioned table and save it.

    Shared by strips, pairs and reconstructions: they differ only in their labels.
    """
    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    height = _CELL_IN + (0.3 if captions else 0.0)
    fig = Figure(
        figsize=(n_cols * _CELL_IN + (0.6 if row_labels else 0.0), n_rows * height + 0.3),
        layout="constrained",
    )
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r, c]
            if c >= len(row):
                ax.set_axis_off()
                continue
            _show(ax, row[c])
            if captions and captions[r][c]:
                ax.set_xlabel(captions[r][c], fontsize=8)
        if row_labels:
            axes[r, 0].set_ylabel(row_labels[r], fontsize=9)
    for c, title in enumerate(col_titles or []):
        axes[0, c].set_title(title, fontsize=8)
    return save_figure(fig, path)


def plot_strip(
    images: ImageBatch,
    labels: Sequence[str],
    path: PathLike,
    row_labels: Sequence[str] | None = None,
    value_range: tuple[float, float] = (-1.0, 1.0),
) -> Path:
    """Plot ``[T, C, H, W]`` (one row) or ``[R, T, C, H, W]`` (R rows) with a caption per column.

    Meant for reverse-diffusion strips: ``labels`` name the timesteps shown.
    """
    x = torch.as_tensor(images)
    if x.dim() == 4:
        x = x.unsqueeze(0)
    if x.dim() != 5:
        raise ValueError(f"strip images must be [T,C,H,W] or [R,T,C,H,W], got {tuple(x.shape)}")
    if len(labels) != x.shape[1]:
        raise ValueError(f"{len(labels)} labels for {x.shape[1]} images per row")
    rows = [to_uint8(r, value_range) for r in x]
    return _image_table(rows, path, col_titles=list(labels), row_labels=row_labels)


def plot_pairs(
    a: ImageBatch,
    b: ImageBatch,
    path: PathLike,
    titles: tuple[str, str] = ("Smiling=0", "Smiling=1"),
    value_range: tuple[float, float] = (-1.0, 1.0),
) -> Path:
    """Plot matched images ``a[i]`` over ``b[i]`` in two labelled rows.

    For opposite-attribute samples or source-vs-adapted images: column i is one pair.
    """
    top, bottom = to_uint8(a, value_range), to_uint8(b, value_range)
    if len(top) != len(bottom):
        raise ValueError(f"pairs need as many images in a ({len(top)}) as in b ({len(bottom)})")
    return _image_table([top, bottom], path, row_labels=list(titles))


def plot_recon(
    originals: ImageBatch,
    recons: ImageBatch,
    mse_per_image: Sequence[float] | torch.Tensor | np.ndarray,
    path: PathLike,
    value_range: tuple[float, float] = (-1.0, 1.0),
) -> Path:
    """Plot originals over their reconstructions with each image's MSE underneath."""
    top, bottom = to_uint8(originals, value_range), to_uint8(recons, value_range)
    mse = [float(m) for m in torch.as_tensor(mse_per_image).flatten()]
    if not len(top) == len(bottom) == len(mse):
        raise ValueError(f"{len(top)} originals, {len(bottom)} reconstructions, {len(mse)} MSEs")
    captions = [[""] * len(top), [f"MSE {m:.4f}" for m in mse]]
    return _image_table(
        [top, bottom], path, row_labels=["original", "reconstruction"], captions=captions
    )
