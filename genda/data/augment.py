"""Batched augmentation on the training device (one kernel per batch, not per image)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

KINDS = ("none", "shift", "affine")


PADS = ("zeros", "reflection", "border")
INVERTS = ("none", "image", "channel")


def augment(x: torch.Tensor, kind: str, scale: float = 1.1, pad: str = "zeros") -> torch.Tensor:
    """Random geometric jitter for a float batch ``[N, C, H, W]`` in [-1, 1].

    ``shift``: translations up to 1/10 of the side; ``affine``: plus rotation (±15°) and a
    zoom uniform in ``[2 - scale, scale]`` (0.9-1.1 by default). Uses the global torch RNG so checkpoints
    capture it.
    ``pad`` fills what moves into the frame: ``zeros`` with -1 (black, the background of
    MNIST and USPS digits), ``reflection``/``border`` with the image itself (no black frame
    on photos or MNIST-M's textured backgrounds).
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
        zoom = (2 - scale) + 2 * (scale - 1) * torch.rand(n, device=dev)
        s = 1 / zoom  # theta maps output to input coordinates
        theta[:, 0, 0], theta[:, 0, 1] = s * torch.cos(ang), -s * torch.sin(ang)
        theta[:, 1, 0], theta[:, 1, 1] = s * torch.sin(ang), s * torch.cos(ang)
    else:
        theta[:, 0, 0] = theta[:, 1, 1] = 1
    theta[:, :, 2] = t
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode=pad, align_corners=False) - 1


def invert_polarity(x: torch.Tensor, mode: str = "image") -> torch.Tensor:
    """Each image's (``mode="channel"``: each channel's) polarity inverted with probability
    1/2, for a batch ``[N, C, H, W]`` in [-1, 1] (``255 - v`` is ``-x`` there).

    A label-preserving op of FixMatch's RandAugment/CTAugment (Invert). It matters where one
    domain's strokes are darker than their background in some images and lighter in others
    (MNIST-M: ``|photo - digit|``) while the other's are always light on dark: inverting
    both domains' batches alike gives them the same polarity mix, so neither a classifier
    nor a domain discriminator can lean on polarity. Uses the global torch RNG.
    """
    if mode == "none":
        return x
    if mode not in INVERTS:
        raise ValueError(f"invert: unknown mode {mode!r}; valid: {', '.join(INVERTS)}")
    c = x.shape[1] if mode == "channel" else 1
    sign = torch.randint(0, 2, (x.shape[0], c, 1, 1), device=x.device) * 2 - 1
    return x * sign.to(x.dtype)
