"""What every generative method shares: the sampling API, the standard figures, and the
neutral pieces the GANs use (EMA generator, noise sampling, optimiser, size check).

A generative method implements :meth:`GenerativeMethod.sample`; everything downstream
(``genda sample`` writing PNG folders, ``genda eval`` metrics, report figures) is built on
that one call, so a new model gets the whole tool chain by implementing it. Each GAN
(:mod:`~genda.methods.dcgan`, :mod:`~genda.methods.gan`, :mod:`~genda.methods.acgan`,
:mod:`~genda.methods.stylegan2`) writes its own discriminator and generator updates out
in full; only what is not part of the game lives here.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from genda.config import ConfigError
from genda.data.prepare import DataInfo
from genda.methods.base import Method, unwrap
from genda.methods.losses import ema_update, warmup_decay
from genda.nets.gan import parse_policy

# The course's main use is 64 px RGB faces; for digits pass --size 28 (or 32) --channels 1.
# channels_last: faster GAN steps in fp32 and bf16 on CPU (benchmarks/README.md,
# gen_pipeline.py).
GAN_DEFAULTS: dict[str, dict[str, Any]] = {
    "data": {"size": 64, "channels": 3},
    "train": {"channels_last": True},
}


class GenerativeMethod(Method):
    """Base for DCGAN, improved GAN, ACGAN, StyleGAN2, VAE and DDPM.

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

    def latents(self, noise: torch.Tensor | None, n: int, dim: int) -> torch.Tensor:
        """``noise`` checked to be ``[n, dim]``, or ``n`` latents drawn from N(0, I) (with
        the global RNG), on the method's device."""
        if noise is None:
            return torch.randn(n, dim, device=self.device)
        if tuple(noise.shape) != (n, dim):
            raise ValueError(f"noise must be [{n}, {dim}], got {tuple(noise.shape)}")
        return noise.to(self.device)

    def images(self, chunks: list[torch.Tensor]) -> torch.Tensor:
        """Batches of generated images as one float tensor clamped to [-1, 1] (``[0, C, H,
        W]`` when there are none)."""
        if not chunks:
            s, c = self.info.size, self.info.channels
            return torch.empty(0, c, s, s, device=self.device)
        return torch.cat([x.float() for x in chunks]).clamp_(-1, 1)

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


def check_size(info: DataInfo, method: str, sizes: tuple[int, ...]) -> None:
    """Fail early, as a config error, on an image size the method's networks can't build."""
    if info.size not in sizes:
        raise ConfigError(
            f"data.size: invalid value {info.size} for {method}; "
            f"valid choices: {', '.join(map(str, sizes))}"
        )


def check_policy(hp: Any, key: str) -> None:
    """A DiffAugment policy hparam (``hparams.<key>``) names only known transforms."""
    try:
        parse_policy(getattr(hp, key))
    except ValueError as e:
        raise ConfigError(f"hparams.{key}: {e}") from None


@contextmanager
def eval_mode(net: nn.Module) -> Iterator[nn.Module]:
    """Run ``net`` in eval mode and restore its mode: sampling must never update BatchNorm
    running statistics (that would make training depend on when figures were drawn)."""
    was = net.training
    net.train(False)
    try:
        yield net
    finally:
        net.train(was)


def adam(params: Any, lr: float, hp: Any) -> torch.optim.Adam:
    """Adam with the ``beta1`` / ``beta2`` of a GAN's hparams."""
    return torch.optim.Adam(params, lr=lr, betas=(hp.beta1, hp.beta2))


class LatentGAN(GenerativeMethod):
    """A GAN whose generator ``g`` maps noise ``[n, hp.nz]`` (with a one-hot label appended
    for conditional models) to images, and whose samples come from its EMA copy ``g_ema``
    when there is one. Subclasses build ``g`` and ``d`` and write their own train step."""

    @property
    def num_labels(self) -> int:
        """Classes the generator is conditioned on (0: unconditional)."""
        return self.info.num_classes if self.conditioning != "none" else 0

    def generator_input(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        """Noise, with a one-hot label appended for conditional models."""
        if y is None or not self.num_labels:
            return z
        return torch.cat([z, F.one_hot(y, self.num_labels).to(z.dtype)], 1)

    def add_ema(self, decay: float) -> None:
        """Keep ``g_ema``, an exponential moving average of ``g``'s weights, for sampling
        (Karras et al. 2018; Yazici et al., ICLR 2019: averaging damps the oscillation of
        the game). It has no trainable parameters, so the engine leaves it unwrapped."""
        if decay > 0:
            self.nets["g_ema"] = copy.deepcopy(self.nets["g"]).requires_grad_(False)

    def update_ema(self, decay: float, step: int) -> None:
        """``g_ema <- lerp(g_ema, g)`` with the decay warmed up, so short runs are not
        dominated by the initial weights; buffers (BatchNorm statistics) are copied."""
        if "g_ema" in self.nets:
            d = warmup_decay(decay, step)
            ema_update(unwrap(self.nets["g_ema"]), unwrap(self.nets["g"]), d, copy_buffers=True)

    def sampler(self) -> nn.Module:
        """The generator used for sampling: the EMA copy when there is one."""
        return self.nets["g_ema"] if "g_ema" in self.nets else self.nets["g"]

    @torch.no_grad()
    def sample(
        self,
        n: int,
        labels: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        batch_size: int = 500,
        **options: Any,
    ) -> torch.Tensor:
        """``n`` images ``[n, C, H, W]`` in [-1, 1] at the training size.

        ``noise``: optional ``[n, nz]`` latents (e.g. to show one latent under several
        labels); drawn from N(0, I) with the global RNG otherwise. ``options`` go to the
        generator's forward (StyleGAN2: ``psi`` for truncation).
        """
        labels = self.check_labels(labels, n)
        z = self.latents(noise, n, self.hp.nz)
        out = []
        with eval_mode(self.sampler()) as g:
            for i in range(0, n, batch_size):
                y = None if labels is None else labels[i : i + batch_size]
                out.append(g(self.generator_input(z[i : i + batch_size], y), **options))
        return self.images(out)
