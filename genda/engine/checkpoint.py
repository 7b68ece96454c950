"""Checkpoints: everything a run needs to continue exactly where it stopped.

A checkpoint holds only tensors and plain data (dicts, lists, numbers, strings), so it is
loaded with ``torch.load(weights_only=True)``: a ``last.pt`` from someone else can never run
code on this machine, it can only fail to load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genda.errors import CheckpointError
from genda.io import save_torch

# What each use of a checkpoint reads: sampling/evaluation rebuild the networks from the
# config; resuming also restores optimisers, RNG, streams and history.
KEYS_MODEL = {"config": dict, "method": dict}
KEYS_METHOD = {"method": str, "info": dict, "nets": dict}
KEYS_RESUME = {"step": int, "elapsed": float, "rng": dict, "streams": dict, "history": list}
KEYS_METHOD_RESUME = {"optimizers": dict, "schedulers": dict}


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


def load(path: str | Path, resume: bool = False) -> dict[str, Any]:
    """Read a run's checkpoint (``RUN_DIR`` or a ``.pt`` file) and check its schema.

    ``resume``: also require what continuing the run needs. Raises :class:`CheckpointError`
    naming the file and what is missing, wrong or unsafe in it.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoints" / "last.pt"
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path} (expected RUN_DIR/checkpoints/last.pt)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for unsafe, truncated or corrupt files
        text = str(e)
        if "weights_only" in text or "Unsupported global" in text:
            what = next((ln.strip() for ln in text.splitlines() if "Unsupported" in ln), "")
            what = what.split(". ")[0].removeprefix("WeightsUnpickler error: ")
            raise CheckpointError(
                f"{path}: refused to load: it holds Python objects, not only tensors and plain "
                f"data, and genda never runs code from a checkpoint ({what or type(e).__name__})"
            ) from None
        first = text.strip().splitlines()[0].split(". ")[0] if text.strip() else type(e).__name__
        raise CheckpointError(
            f"{path}: not a readable genda checkpoint (truncated or corrupt: {first})"
        ) from None
    _check(path, state, KEYS_MODEL | (KEYS_RESUME if resume else {}), "")
    _check(path, state["method"], KEYS_METHOD | (KEYS_METHOD_RESUME if resume else {}), "method.")
    return state


def _check(path: Path, state: Any, keys: dict[str, type], where: str) -> None:
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a genda checkpoint (expected a dict of run state)")
    missing = [k for k in keys if k not in state]
    if missing:
        raise CheckpointError(
            f"{path}: not a genda checkpoint: missing {', '.join(where + k for k in missing)}"
        )
    for k, tp in keys.items():
        ok = isinstance(state[k], int | float) if tp is float else isinstance(state[k], tp)
        if not ok or (tp is int and isinstance(state[k], bool)):
            raise CheckpointError(
                f"{path}: {where}{k} is a {type(state[k]).__name__}, expected {tp.__name__}"
            )
