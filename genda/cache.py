"""genda's on-disk cache: where it lives, whether it is on, and how an entry is named, read
and written. Decoded data sets, evaluation classifiers and the precision timing all use it.

An entry is a ``.pt`` file of plain tensors, strings and lists, read with
``torch.load(weights_only=True)`` (a cache file is never trusted to run code) and written by
:func:`genda.io.save_torch` (atomic, durable, umask permissions). A cache only saves time:
a damaged entry is rebuilt and an unwritable one is skipped, each with a warning.
"""

from __future__ import annotations

import hashlib
import os
import re
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from genda.errors import WriteError
from genda.io import save_torch


def cache_dir() -> Path:
    """``$GENDA_CACHE`` if set, else ``~/.cache/genda`` (``GENDA_CACHE=off`` disables caching)."""
    return Path(os.environ.get("GENDA_CACHE") or Path.home() / ".cache" / "genda").expanduser()


def cache_enabled() -> bool:
    """False when ``GENDA_CACHE`` is ``off`` (or ``0``/``none``): every cache is skipped."""
    return os.environ.get("GENDA_CACHE", "").lower() not in ("off", "0", "none")


def entry_path(directory: Path, name: str, key: str, inputs: Iterable[Path] | None = None) -> Path:
    """``DIR/<name>-<hash of key>[-<hash of the inputs' paths, sizes, mtimes>].pt``.

    With ``inputs``, editing any input file names a new entry (see :func:`store`'s ``stale``).
    """
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)
    stem = f"{slug}-{hashlib.sha1(key.encode()).hexdigest()[:12]}"
    if inputs is not None:
        h = hashlib.sha1(stem.encode())
        for p in sorted(inputs):
            st = p.stat()
            h.update(f"|{os.path.abspath(p)}|{st.st_size}|{st.st_mtime_ns}".encode())
        stem += f"-{h.hexdigest()[:12]}"
    return directory / f"{stem}.pt"


def load(path: Path) -> Any | None:
    """The entry at ``path``, or None when there is none or it cannot be read (warned)."""
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  a damaged cache file is rebuilt, never fatal
        warnings.warn(f"genda: ignoring unreadable cache file {path} ({e})", stacklevel=2)
        return None


def store(path: Path, obj: Any, stale: str | None = None) -> None:
    """Write the entry; then delete the other files matching glob ``stale`` in its folder
    (older versions of the same entry). An unwritable cache only costs time (warned)."""
    try:
        save_torch(path, obj)
        if stale:
            for old in path.parent.glob(stale):
                if old != path:
                    old.unlink(missing_ok=True)
    except (OSError, WriteError) as e:
        warnings.warn(f"genda: not caching {path.name}: {e}", stacklevel=2)
