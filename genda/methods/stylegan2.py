"""StyleGAN2 ("model C"): a style-based generator with the regularisers that make it train.

Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020 (networks
in :mod:`genda.nets.stylegan2`), trained as in the paper and its reference code:

- non-saturating logistic loss: D minimises ``softplus(D(G(z))) + softplus(-D(x))``,
  G minimises ``softplus(-D(G(z)))``;
- lazy R1 regularisation of D on real images, ``gamma / 2 * ||grad_x D(x)||^2``, every
  ``r1_every`` steps with its weight multiplied by the interval; ``r1 = -1`` picks gamma by
  the StyleGAN2-ADA heuristic ``0.0002 * size^2 / batch`` (Karras et al., NeurIPS 2020),
  which scales with the image area and so suits 32-64 px as well as 1024 px;
- optional path-length regularisation of G (``pl_weight``; the paper uses 2; off by
  default because each of its steps costs a double backward through G);
- style mixing: with probability ``mixing`` a batch uses two latents with a random
  crossover layer, so neighbouring layers' styles do not learn to depend on each other;
- Adam lr 0.002, betas (0, 0.99) for both nets, adjusted for the lazy regularisation
  intervals (``lr * c``, ``beta ** c`` with ``c = every / (every + 1)``); the mapping
  network learns 100x slower through its equalised-learning-rate multiplier;
- an EMA generator for every sample, with a half-life of ``ema_kimg`` thousand images (so
  the average spans the same amount of data whatever the batch size);
- optional DiffAugment on everything D sees and optional linear self-attention at chosen
  resolutions (``attention``, e.g. ``64``).

One engine step: D's update, R1 on the steps it is due, G's update, path length on the
steps it is due, then the EMA. All of it is in :meth:`StyleGAN2.train_step`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from genda.config import ConfigError, bounded
from genda.data.prepare import DataInfo
from genda.methods.base import Batch, frozen, unwrap
from genda.methods.generative import LatentGAN, check_policy, check_size, eval_mode
from genda.nets import stylegan2 as nets
from genda.nets.gan import DIFF_AUGMENT, diff_augment


@dataclass
class StyleGAN2Hparams:
    nz: int = bounded(128, 8, 1024, "latent z and style w dimension (the paper: 512)")
    width: int = bounded(
        32, 4, 512, "channels at the output resolution, doubled per halving, capped at 8x"
    )
    mapping_layers: int = bounded(8, 1, 16, "depth of the mapping network (the paper: 8)")
    mapping_lr: float = bounded(0.01, 0.0, 1.0, "mapping network lr multiplier (paper: 0.01)")
    lr: float = bounded(0.002, 0.0, 1.0, "Adam learning rate of G and D")
    beta1: float = bounded(0.0, 0.0, 1.0, "Adam beta1")
    beta2: float = bounded(0.99, 0.0, 1.0, "Adam beta2")
    r1: float = bounded(-1.0, -1.0, 1000.0, "R1 gamma (-1: 0.0002 * size^2 / batch; 0: off)")
    r1_every: int = bounded(16, 1, 1000, "lazy R1: steps between regularisation steps")
    pl_weight: float = bounded(0.0, 0.0, 100.0, "path-length regularisation weight (0: off)")
    pl_every: int = bounded(4, 1, 1000, "lazy path length: steps between its steps")
    mixing: float = bounded(0.9, 0.0, 1.0, "probability of style mixing per batch")
    ema_kimg: float = bounded(10.0, 0.0, 10000.0, "EMA half-life in thousands of images (0: off)")
    truncation: float = bounded(1.0, 0.0, 1.0, "sampling psi: w_avg + psi (w - w_avg); 1 = none")
    attention: str = field(
        default="",
        metadata={"help": "resolutions with linear self-attention in G and D, e.g. 64 or 32,64"},
    )
    diffaug: str = field(
        default="none",
        metadata={"help": f"DiffAugment before D, comma-separated from {', '.join(DIFF_AUGMENT)}"},
    )


def attention_sizes(spec: str, size: int) -> tuple[int, ...]:
    """``"32,64"`` -> ``(32, 64)``; each must be a resolution of the ``size``-px networks."""
    valid = [r for r in (4, *nets.SIZES) if r <= size]
    try:
        sizes = tuple(int(s) for s in spec.split(",") if s.strip())
    except ValueError:
        sizes = (-1,)
    bad = [s for s in sizes if s not in valid]
    if bad:
        raise ConfigError(
            f"hparams.attention: invalid value {spec!r}; valid: resolutions among "
            f"{', '.join(map(str, valid))}, comma-separated"
        )
    return sizes


class StyleGAN2(LatentGAN):
    """Nets ``g`` (mapping + synthesis), ``d`` (residual) and ``g_ema`` (sampling)."""

    name = "stylegan2"
    Hparams = StyleGAN2Hparams
    # channels_last: faster steps on a CPU (benchmarks/README.md, StyleGAN2 step cost).
    defaults = {"data": {"size": 64, "channels": 3}, "train": {"channels_last": True}}

    def __init__(self, hp: StyleGAN2Hparams, info: DataInfo) -> None:
        super().__init__(hp, info)
        check_size(info, self.name, nets.SIZES)
        check_policy(hp, "diffaug")
        attn = attention_sizes(hp.attention, info.size)
        c, s = info.channels, info.size
        self.nets["g"] = nets.Generator(
            hp.nz, c, s, hp.width, hp.mapping_layers, hp.mapping_lr, attn
        )
        self.nets["d"] = nets.Discriminator(c, s, hp.width, attn)
        self.add_ema(hp.ema_kimg)  # > 0: keep g_ema

    def configure(self, total_steps: int) -> None:
        hp = self.hp
        lazy = {"g": hp.pl_every if hp.pl_weight > 0 else 0, "d": hp.r1_every if hp.r1 else 0}
        for k, every in lazy.items():
            c = every / (every + 1) if every else 1.0
            self.optimizers[k] = torch.optim.Adam(
                self.nets[k].parameters(), lr=hp.lr * c, betas=(hp.beta1**c, hp.beta2**c)
            )

    def r1_gamma(self, batch_size: int) -> float:
        return 0.0002 * self.info.size**2 / batch_size if self.hp.r1 < 0 else self.hp.r1

    def mixing(self, n: int, device: torch.device) -> dict[str, Any]:
        """Style mixing arguments for G: a second latent and a crossover layer, or none."""
        if self.hp.mixing <= 0 or float(torch.rand(())) >= self.hp.mixing:
            return {}
        cut = int(torch.randint(1, unwrap(self.nets["g"]).num_ws, ()))
        return {"z2": torch.randn(n, self.hp.nz, device=device), "cut": cut}

    def train_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        hp = self.hp
        real = self.prepare(batch["source"][0])
        g, d = self.nets["g"], self.nets["d"]
        opt_g, opt_d = self.optimizers["g"], self.optimizers["d"]
        n, dev = len(real), real.device

        def aug(x: torch.Tensor) -> torch.Tensor:
            return diff_augment(x, hp.diffaug)

        # (1) D: logistic loss; real and fake in separate forwards so the minibatch-std
        # groups never mix them, each forward followed by its own backward (DDP).
        opt_d.zero_grad(set_to_none=True)
        with torch.no_grad():
            fake = g(torch.randn(n, hp.nz, device=dev), **self.mixing(n, dev))
        out_fake = d(aug(fake)).float()
        loss_fake = F.softplus(out_fake).mean()
        self.backward(loss_fake)
        out_real = d(aug(real)).float()
        loss_real = F.softplus(-out_real).mean()
        self.backward(loss_real)
        opt_d.step()

        # (2) Lazy R1 on real images: penalise D's gradient where the data is.
        gamma = self.r1_gamma(n)
        if gamma > 0 and step % hp.r1_every == 0:
            opt_d.zero_grad(set_to_none=True)
            x = real.detach().requires_grad_(True)
            out = d(aug(x)).float()
            (grad,) = self.grad(out.sum(), x, create_graph=True)
            r1 = grad.float().pow(2).flatten(1).sum(1).mean()
            self.r1_value = r1.detach()  # logged until the next R1 step
            self.backward(r1 * (gamma / 2 * hp.r1_every) + 0 * out.mean())
            opt_d.step()

        # (3) G: non-saturating loss through D (D's weight gradients are not needed).
        opt_g.zero_grad(set_to_none=True)
        with frozen(d):
            fake = g(torch.randn(n, hp.nz, device=dev), **self.mixing(n, dev))
            out_gen = d(aug(fake)).float()
        loss_g = F.softplus(-out_gen).mean()
        self.backward(loss_g)
        opt_g.step()

        # (4) Lazy path-length regularisation: a fixed-size step in w should change the
        # image by a fixed amount, which makes G smoother and easier to invert.
        if hp.pl_weight > 0 and step % hp.pl_every == 0:
            opt_g.zero_grad(set_to_none=True)
            net = unwrap(g)
            ws = net.styles(torch.randn(max(1, n // 2), hp.nz, device=dev))
            img = net.synthesis(ws)
            noise = torch.randn_like(img) / img.shape[-1]  # 1 / sqrt(H * W)
            (grad,) = self.grad((img * noise).sum(), ws, create_graph=True)
            lengths = grad.float().pow(2).sum(2).mean(1).sqrt()
            net.pl_mean.lerp_(lengths.mean().detach(), 0.01)
            penalty = (lengths - net.pl_mean).pow(2).mean()
            self.backward(penalty * (hp.pl_weight * hp.pl_every) + 0 * img.float().mean())
            opt_g.step()

        if hp.ema_kimg > 0:  # a half-life of ema_kimg thousand images
            self.update_ema(0.5 ** (n / (hp.ema_kimg * 1000)), step)
        return {
            "loss/d": (loss_real + loss_fake).detach(),
            "loss/g": loss_g.detach(),
            "loss/r1": getattr(self, "r1_value", torch.zeros((), device=dev)),
            "d/real": out_real.detach().mean(),
            "d/fake": out_fake.detach().mean(),
        }

    @torch.no_grad()
    def sample(
        self,
        n: int,
        labels: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        batch_size: int = 500,
        psi: float | None = None,
    ) -> torch.Tensor:
        """``n`` images from the EMA generator; ``psi`` overrides ``hparams.truncation``."""
        psi = self.hp.truncation if psi is None else psi
        if not 0 <= psi <= 1:
            raise ValueError(f"psi must be in [0, 1], got {psi}")
        return super().sample(n, labels, noise, batch_size, psi=psi)

    @torch.no_grad()
    def style_mix(self, rows: int = 4, cols: int = 6) -> torch.Tensor:
        """A style-mixing sheet of ``(rows + 1) x (cols + 1)`` images: the first row holds a
        blank and ``cols`` images A; each further row starts with an image B followed by
        B's coarse styles (the 4 and 8 px layers) combined with every A's finer styles."""
        dev, nz = self.device, self.hp.nz
        za, zb = torch.randn(cols, nz, device=dev), torch.randn(rows, nz, device=dev)
        with eval_mode(self.sampler()) as g:
            a, b = g(za), g(zb)
            cut = min(4, g.num_ws - 1)  # layers at 4 and 8 px
            out = [torch.full_like(a[:1], -1.0), a]  # a blank corner, then the A row
            for i in range(rows):
                out += [b[i : i + 1], g(zb[i : i + 1].expand(cols, -1), z2=za, cut=cut)]
        return torch.cat(out).float().clamp_(-1, 1)

    def evaluate(self, data: Any, run_dir: Path | None = None) -> dict[str, Any]:
        out = super().evaluate(data, run_dir)
        if run_dir is None:
            return out
        from genda.viz import save_grid

        cols = 6
        save_grid(self.style_mix(cols=cols).cpu(), run_dir / "style_mixing.png", nrow=cols + 1)
        out["figures"]["Style mixing (rows: B's coarse styles, columns: A's fine styles)"] = (
            "figures/style_mixing.png"
        )
        return out
