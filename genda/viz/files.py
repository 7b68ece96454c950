"""Saving matplotlib figures atomically (see :mod:`genda.io`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from genda.io import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def save_figure(fig: Figure, path: str | os.PathLike[str], dpi: int = 100) -> Path:
    """Save a matplotlib figure as PNG atomically and return the final path."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return Path(path)
