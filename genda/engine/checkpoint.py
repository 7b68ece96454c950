"""Checkpoints: everything a run needs to continue exactly where it stopped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genda.io import save_torch


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or belongs to another model / image size."""


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save(path: Path, state: dict[str, Any]) -> Path:
    return save_torch(path, state)


def load(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoints" / "last.pt"
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path} (expected RUN_DIR/checkpoints/last.pt)")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as e:  # torch raises several types for truncated/corrupt files
        raise CheckpointError(f"{path}: not a readable genda checkpoint ({e})") from e
