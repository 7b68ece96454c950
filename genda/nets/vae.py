"""Convolutional VAE encoder/decoder (Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014).

The encoder is the DCGAN discriminator ladder with ``2 * latent`` outputs (mean and
log-variance of the Gaussian posterior q(z|x)); the decoder is the DCGAN generator with
``latent`` inputs (tanh output, the mean of a Gaussian p(x|z) on [-1, 1] images). Sharing
the ladder with :mod:`genda.nets.gan` means the VAE and the GANs are compared at the same
capacity per image size.
"""

from __future__ import annotations

from torch import nn

from genda.nets.gan import discriminator, generator


def encoder(latent: int, channels: int, size: int, width: int = 64) -> nn.Sequential:
    """Images ``[N, C, size, size]`` -> ``[N, 2 * latent]`` (mean, then log-variance)."""
    return discriminator(channels, size, width, out=2 * latent, norm="batch")


def decoder(latent: int, channels: int, size: int, width: int = 64) -> nn.Sequential:
    """Latents ``[N, latent]`` -> images ``[N, C, size, size]`` in [-1, 1]."""
    return generator(latent, channels, size, width)
