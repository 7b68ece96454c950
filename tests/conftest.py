"""Shared pytest fixtures and the one tiny experiment config test files build on
(``from conftest import tiny_config``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from genda.config import ExperimentConfig
from genda.engine.loop import resolve_config


@pytest.fixture(autouse=True)
def restore_torch_state():
    """Runs set torch's thread count (``train.threads``) and seed its global RNG; give each
    test back what it started with, so no test's result depends on the tests before it."""
    threads = torch.get_num_threads()
    with torch.random.fork_rng(devices=[]):
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data sets beside the checkout (``../shared/data``); skip when absent."""
    root = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not root.is_dir():
        pytest.skip(f"real data not available ({root} is absent)")
    return root


def shared_subset(root: Path, *parts: str) -> Path:
    """``root/parts``, one data set of the shared data; skip when that one is absent."""
    path = root.joinpath(*parts)
    if not path.is_dir():
        pytest.skip(f"real data not available ({path} is absent)")
    return path


TINY_TRAIN = {
    "device": "cpu",  # the same tests on a machine with a GPU (never needed, never used)
    "steps": 3,
    "batch_size": 16,
    "log_every": 1,
    "ckpt_every": 0,
    "progress": False,
    "threads": 1,
}


def tiny_config(
    method: str, data: dict | None = None, train: dict | None = None, **hparams: Any
) -> ExperimentConfig:
    """The one tiny experiment every test file starts from: a few steps on the embedded
    digits (``data``/``train`` entries and ``hparams`` override it)."""
    return resolve_config(
        {
            "method": method,
            "data": {"source": "digits", "limit": 256, **(data or {})},
            "train": {**TINY_TRAIN, **(train or {})},
            "hparams": hparams,
        }
    )
