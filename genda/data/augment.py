"""Batched augmentation on the training device (one kernel per batch, not per image)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

KINDS = ("none", "shift", "affine")


def augment(x: torch.Tensor, kind: str, scale: float = 1.1) -> torch.Tensor:
    """Random geometric jitter for a float batch ``[N, C, H, W]`` in [-1, 1].

    ``shift``: translations up to 1/10 of the side; ``affine``: plus rotation (±15°) and a
    zoom log-uniform in ``[1/scale, scale]``. Uses the global torch RNG so checkpoints
    capture it.
    Borders are filled with -1 (black), matching digit backgrounds.
    """
    if kind == "none":
        return x
    if kind not in KINDS:
        raise ValueError(f"augment: unknown kind {kind!r}; valid: {', '.join(KINDS)}")
    n = x.shape[0]
    dev = x.device
    t = (torch.rand(n, 2, device=dev) * 2 - 1) * 0.2  # grid units: 0.2 = 1/10 of the side
    theta = torch.zeros(n, 2, 3, device=dev)
    if kind == "affine":
        ang = (torch.rand(n, device=dev) * 2 - 1) * math.radians(15)
        s = scale ** (torch.rand(n, device=dev) * 2 - 1)  # theta maps output to input
        theta[:, 0, 0], theta[:, 0, 1] = s * torch.cos(ang), -s * torch.sin(ang)
        theta[:, 1, 0], theta[:, 1, 1] = s * torch.sin(ang), s * torch.cos(ang)
    else:
        theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = t
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return (
        F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1
    )
