"""Charts: t-SNE embeddings, training curves, confusion matrices and generic x/y plots.

Figures are built with :class:`matplotlib.figure.Figure` directly (never ``pyplot``), which
renders through Agg without a display, keeps no global figure registry to leak memory in
long runs, and does not switch the backend of an interactive session that imports genda.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure

from genda.viz.files import save_figure

PathLike = str | os.PathLike[str]
ArrayLike = torch.Tensor | np.ndarray | Sequence[float]


def _np(x: ArrayLike) -> np.ndarray:
    """Any tensor/array/list as a numpy array on the CPU."""
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _colors(n: int) -> list:
    """Distinct colours: tab10 up to 10 groups (the usual digit classes), tab20 up to 20."""
    if n <= 10:
        return [matplotlib.colormaps["tab10"](i) for i in range(n)]
    if n <= 20:
        return [matplotlib.colormaps["tab20"](i) for i in range(n)]
    return [matplotlib.colormaps["turbo"](i / max(n - 1, 1)) for i in range(n)]


def _subsample_per_domain(domains: np.ndarray, max_points: int, seed: int) -> np.ndarray:
    """Indices keeping at most ``max_points`` in total, split evenly across domains.

    An even split keeps the by-domain plot honest when one domain is much larger.
    """
    rng = np.random.default_rng(seed)
    values = np.unique(domains)
    budget = max(1, max_points // len(values))
    keep = []
    for v in values:
        idx = np.flatnonzero(domains == v)
        if len(idx) > budget:
            idx = np.sort(rng.choice(idx, size=budget, replace=False))
        keep.append(idx)
    return np.concatenate(keep)


def _scatter(
    points: np.ndarray, groups: np.ndarray, names: Sequence[str], path: PathLike, title: str
) -> Path:
    """2-D scatter coloured by integer group; groups outside ``names`` are labelled by value."""
    values = np.unique(groups)
    size = float(np.clip(8000 / len(points), 4, 20))  # readable dots for 60 or 2000 points
    fig = Figure(figsize=(7, 5.5), layout="constrained")
    ax = fig.subplots()
    for color, v in zip(_colors(len(values)), values, strict=True):
        mask = groups == v
        name = names[v] if 0 <= v < len(names) else str(v)
        ax.scatter(
            points[mask, 0],
            points[mask, 1],
            s=size,
            color=color,
            label=name,
            alpha=0.7,
            linewidths=0,
        )
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(
        loc="center left", bbox_to_anchor=(1.0, 0.5), markerscale=3, fontsize=8, frameon=False
    )
    return save_figure(fig, path)


def plot_tsne(
    features: ArrayLike,
    labels: ArrayLike,
    domains: ArrayLike,
    path_prefix: PathLike,
    class_names: Sequence[str],
    domain_names: Sequence[str] = ("source", "target"),
    seed: int = 0,
    max_points: int = 2000,
    n_threads: int | None = None,
) -> tuple[Path, Path]:
    """Embed ``features [N, D]`` with t-SNE; save ``<prefix>_by_class.png`` and ``_by_domain.png``.

    One embedding serves both plots, so the two views are directly comparable: aligned
    domains mix in the by-domain plot while classes stay separated in the by-class plot.
    ``n_threads`` caps t-SNE's OpenMP threads; ``None`` takes torch's (the run's
    ``train.threads``). scikit-learn would otherwise use every core, and on a busy machine
    (another one-thread run next door) spin-waiting for them is several times slower.
    """
    x = _np(features)
    x = x.reshape(x.shape[0], -1).astype(np.float32)
    y, d = _np(labels).astype(np.int64), _np(domains).astype(np.int64)
    if not len(x) == len(y) == len(d):
        raise ValueError(
            f"t-SNE needs as many labels ({len(y)}) and domains ({len(d)}) as features ({len(x)})"
        )
    keep = _subsample_per_domain(d, max_points, seed)
    n = len(keep)
    if n < 3:
        raise ValueError(f"t-SNE needs at least 3 points, got {n}")
    perplexity = min(30.0, max(2.0, (n - 1) / 3))  # must stay below n; ~n/3 suits small sets
    # Imported here: scikit-learn takes ~1 s to import and only t-SNE needs it.
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    tsne = TSNE(n_components=2, init="pca", random_state=seed, perplexity=perplexity)
    threads = torch.get_num_threads() if n_threads is None else n_threads
    with threadpool_limits(limits=threads, user_api="openmp"):
        emb = tsne.fit_transform(x[keep])
    prefix = str(path_prefix)
    return (
        _scatter(emb, y[keep], class_names, f"{prefix}_by_class.png", "t-SNE by class"),
        _scatter(emb, d[keep], domain_names, f"{prefix}_by_domain.png", "t-SNE by domain"),
    )


def read_history(
    path: PathLike, keys: Sequence[str] | None = None
) -> dict[str, tuple[list[float], list[float]]]:
    """Read ``history.csv`` into ``{key: (steps, values)}``, skipping empty (unlogged) cells.

    ``keys=None`` reads every scalar column (all but ``step`` and ``time_s``).
    """
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        columns = [c for c in reader.fieldnames or [] if c not in ("step", "time_s")]
        wanted = [k for k in (keys if keys is not None else columns) if k in columns]
        series: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in wanted}
        for row in reader:
            for k in wanted:
                cell = (row.get(k) or "").strip()
                if cell:
                    series[k][0].append(float(row["step"]))
                    series[k][1].append(float(cell))
    return {k: v for k, v in series.items() if v[0]}


def _is_accuracy(key: str) -> bool:
    """Accuracy-like scalars (percent) get their own axis, away from losses."""
    return "acc" in key.lower()


def plot_curves(
    history_csv_path: PathLike, keys: Sequence[str] | None, path: PathLike, title: str = ""
) -> Path:
    """Plot scalars from ``history.csv`` against step: losses and accuracies on separate axes.

    Keys missing from the file are ignored, so one call fits every method's history.
    """
    series = read_history(history_csv_path, keys)
    groups = [[k for k in series if not _is_accuracy(k)], [k for k in series if _is_accuracy(k)]]
    groups = [g for g in groups if g] or [[]]
    fig = Figure(figsize=(6.5 * len(groups), 4), layout="constrained")
    axes = fig.subplots(1, len(groups), squeeze=False)[0]
    for ax, group in zip(axes, groups, strict=True):
        for k in group:
            ax.plot(*series[k], label=k, linewidth=1.2)
        ax.set_xlabel("step")
        if group:
            ax.set_ylabel("accuracy (%)" if _is_accuracy(group[0]) else "loss")
            ax.legend(fontsize=8)
            ax.grid(alpha=0.3)
        else:
            ax.text(0.5, 0.5, "no logged values", ha="center", va="center", transform=ax.transAxes)
    fig.suptitle(title)
    return save_figure(fig, path)


def plot_confusion(
    matrix: ArrayLike, class_names: Sequence[str], path: PathLike, title: str = "Confusion matrix"
) -> Path:
    """Row-normalised confusion matrix (colour = recall share) annotated with raw counts.

    Normalising by row makes rare classes as readable as common ones; the counts keep the
    support visible. Annotations are dropped beyond 20 classes where they would overlap.
    """
    counts = _np(matrix).astype(np.float64)
    k = counts.shape[0]
    if counts.shape != (k, k):
        raise ValueError(f"confusion matrix must be square, got {counts.shape}")
    norm = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = min(4 + 0.45 * k, 14)
    fig = Figure(figsize=(size + 1, size), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, label="fraction of true class")
    names = list(class_names) if len(class_names) == k else [str(i) for i in range(k)]
    ax.set_xticks(range(k), names, rotation=90 if k > 10 else 0, fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if k <= 20:
        _annotate(ax, [[f"{int(c)}" for c in row] for row in counts], norm > 0.5)
    return save_figure(fig, path)


def _annotate(ax, texts: list[list[str]], dark: np.ndarray, fontsize: int = 7) -> None:
    """Write ``texts[i][j]`` on cell (i, j) of a heat map, white where the cell is ``dark``."""
    for i, row in enumerate(texts):
        for j, text in enumerate(row):
            color = "white" if dark[i, j] else "black"
            ax.text(j, i, text, ha="center", va="center", fontsize=fontsize, color=color)


def plot_xy(
    series: Mapping[str, tuple[ArrayLike, ArrayLike]],
    path: PathLike,
    xlabel: str,
    ylabel: str,
    title: str = "",
    bands: Mapping[str, tuple[ArrayLike, ArrayLike]] | None = None,
) -> Path:
    """Generic line plot of named ``(xs, ys)`` series, e.g. accuracy vs seconds per pipeline;
    ``bands`` shades a ``(low, high)`` interval around the series of the same name."""
    fig = Figure(figsize=(6.5, 4), layout="constrained")
    ax = fig.subplots()
    for name, (xs, ys) in series.items():
        (line,) = ax.plot(_np(xs), _np(ys), marker="o", markersize=3, linewidth=1.2, label=name)
        if bands and name in bands:
            lo, hi = bands[name]
            ax.fill_between(_np(xs), _np(lo), _np(hi), color=line.get_color(), alpha=0.2)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if series:
        ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_matrix(
    accuracy: ArrayLike, names: Sequence[str], path: PathLike, title: str = "Cross-domain accuracy"
) -> Path:
    """Heat map of a train x test accuracy matrix (percent), each cell annotated."""
    acc = _np(accuracy).astype(np.float64)
    k = len(names)
    fig = Figure(figsize=(2.2 + 1.1 * k, 1.6 + 1.0 * k), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(acc, cmap="viridis", vmin=0, vmax=100)
    fig.colorbar(im, ax=ax, label="test accuracy (%)")
    ax.set_xticks(range(k), names, rotation=30, ha="right")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("tested on")
    ax.set_ylabel("trained on")
    ax.set_title(title)
    _annotate(ax, [[f"{a:.1f}" for a in row] for row in acc], acc <= 60, fontsize=9)
    return save_figure(fig, path)
