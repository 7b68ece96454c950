"""genda: train, evaluate and report on image generative models and unsupervised domain
adaptation. The Python API (:mod:`genda.api`) is importable from here::

    import genda
    run = genda.train("dann", data="digits", target="digits-m", out="runs/dann", steps=600)

The functions are loaded on first use, so ``import genda.config`` stays light.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "Run",
    "evaluate",
    "fid",
    "guidance_sweep",
    "load",
    "sample",
    "train",
    "uda_matrix",
    "uda_table",
    "write_report",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from genda import api

        return getattr(api, name)
    raise AttributeError(f"module 'genda' has no attribute {name!r}")
