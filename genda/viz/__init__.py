"""Figures for runs and reports; every function writes a PNG atomically and returns its path."""

from genda.viz.figures import plot_confusion, plot_curves, plot_tsne, plot_xy, read_history
from genda.viz.files import atomic_path, save_figure, write_text_atomic
from genda.viz.images import plot_pairs, plot_recon, plot_strip, save_grid, to_uint8

__all__ = [
    "atomic_path",
    "plot_confusion",
    "plot_curves",
    "plot_pairs",
    "plot_recon",
    "plot_strip",
    "plot_tsne",
    "plot_xy",
    "read_history",
    "save_figure",
    "save_grid",
    "to_uint8",
    "write_text_atomic",
]
