"""Shared behaviour of generative methods: sampling API and the standard figures/metrics.

A generative method implements :meth:`GenerativeMethod.sample`; everything downstream
(``genda sample`` writing PNG folders, ``genda eval`` metrics, report figures) is built on
that one call, so a new model gets the whole tool chain by implementing it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import torch

from genda.methods.base import Method


class GenerativeMethod(Method):
    """Base for DCGAN, improved GAN, ACGAN, VAE and DDPM.

    ``conditioning`` says what :meth:`sample` accepts as ``labels``: ``"none"`` (ignored),
    ``"class"`` (class indices ``[n]`` in ``[0, num_classes)``) or ``"attribute"`` (0/1 of
    ``data.attribute``, handled as a 2-class label).
    """

    kind = "generative"
    streams = ("source",)
    conditioning: ClassVar[str] = "none"
    # Sampling options of the progress frames (train.sample_every): cheaper than the final
    # samples where the model has a choice (DDPM: a short DDIM schedule).
    progress_options: ClassVar[dict[str, Any]] = {}

    def sample(self, n: int, labels: torch.Tensor | None = None, **options: Any) -> torch.Tensor:
        """``n`` images as float ``[n, C, H, W]`` in [-1, 1] (uses the global torch RNG)."""
        raise NotImplementedError

    def check_labels(self, labels: torch.Tensor | None, n: int) -> torch.Tensor | None:
        """Validate requested labels; unknown labels name the valid ones."""
        if self.conditioning == "none":
            return None
        k = self.info.num_classes
        if labels is None:
            return torch.arange(n, device=self.device) % k
        labels = torch.as_tensor(labels, device=self.device).long()
        if len(labels) != n or bool(((labels < 0) | (labels >= k)).any()):
            raise ValueError(
                f"labels must be {n} values in 0..{k - 1} ({', '.join(self.info.classes)})"
            )
        return labels

    def grid(self, per_class: int = 10, n: int = 64, **options: Any) -> tuple[torch.Tensor, int]:
        """Samples for a figure and its images per row: ``per_class`` per class (a row each)
        for conditional models, else ``n`` in rows of 8."""
        k = self.info.num_classes if self.conditioning != "none" else 0
        labels = torch.arange(k, device=self.device).repeat_interleave(per_class) if k else None
        with torch.no_grad():
            imgs = self.sample(per_class * k if k else n, labels, **options)
        return imgs.cpu(), per_class if k else 8

    def evaluate(self, data: Any, run_dir: Path | None = None) -> dict[str, Any]:
        """Default: a sample grid (one row per class for conditional models)."""
        if run_dir is None:
            return {}
        from genda.viz import save_grid

        imgs, nrow = self.grid()
        save_grid(imgs, run_dir / "samples.png", nrow=nrow)
        return {"figures": {"Samples": "figures/samples.png"}}
