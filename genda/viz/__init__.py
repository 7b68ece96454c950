"""Figures for runs and reports; every function writes a PNG atomically and returns its path."""

from genda.viz.figures import (
    plot_confusion,
    plot_curves,
    plot_matrix,
    plot_tsne,
    plot_xy,
    read_history,
)
from genda.viz.files import save_figure
from genda.viz.images import (
    plot_pairs,
    plot_recon,
    plot_strip,
    read_grid,
    save_gif,
    save_grid,
    to_uint8,
)

__all__ = [
    "plot_confusion",
    "plot_curves",
    "plot_matrix",
    "plot_pairs",
    "plot_recon",
    "plot_strip",
    "plot_tsne",
    "plot_xy",
    "read_grid",
    "read_history",
    "save_figure",
    "save_gif",
    "save_grid",
    "to_uint8",
]
