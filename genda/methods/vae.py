"""Convolutional VAE (Kingma & Welling, "Auto-Encoding Variational Bayes", ICLR 2014).

Objective per image (the negative ELBO, optionally with a KL weight beta as in Higgins et
al., "beta-VAE", ICLR 2017)::

    loss = sum_pixels (x_hat - x)^2 + kl_weight * KL(q(z|x) || N(0, I))

with images on the networks' [-1, 1] scale, i.e. a Gaussian decoder of fixed variance
1/2 on that scale. Summing (not averaging) over pixels keeps the reconstruction and KL
terms on the scale of the ELBO, so ``kl_weight = 1`` is the plain VAE at every image size.

Logged per step (training batches) and reported in ``metrics.json`` (test split), so the
numbers mean the same thing everywhere:
``loss/mse`` / ``recon_mse``: mean squared error **per pixel on the [0, 1] image scale**
(``recon_mse`` reconstructs from the posterior mean);
``loss/kl`` / ``kl``: KL divergence in nats per image (summed over latent dimensions).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from genda.config import ConfigError, bounded
from genda.data.prepare import DataInfo
from genda.data.stream import batches
from genda.methods.base import Batch
from genda.methods.generative import GAN_DEFAULTS, GenerativeMethod, check_size, eval_mode
from genda.nets import gan as ladder
from genda.nets import vae as nets

MSE_SCALE = (
    "per pixel, images on the [0, 1] scale, test split, reconstructed from the posterior mean"
)


@dataclass
class VAEHparams:
    latent: int = bounded(64, 1, 4096, "latent dimension")
    width: int = bounded(64, 4, 1024, "base channels of the encoder/decoder ladder")
    kl_weight: float = bounded(
        1.0, 0.0, 1000.0, "weight of the KL term (1 = the ELBO; beta-VAE > 1)"
    )
    lr: float = bounded(1e-3, 0.0, 1.0, "Adam learning rate")
    tsne_attribute: str = (
        ""  # colour the latent t-SNE by this attribute (e.g. Smiling); "" = by class
    )


class VAE(GenerativeMethod):
    """Nets ``encoder`` (image -> mean, log-variance) and ``decoder`` (latent -> image)."""

    name = "vae"
    Hparams = VAEHparams
    defaults = GAN_DEFAULTS  # the same 28/32/64 px ladder and memory format as the GANs

    def __init__(self, hp: VAEHparams, info: DataInfo) -> None:
        super().__init__(hp, info)
        check_size(info, self.name, ladder.SIZES)
        if hp.tsne_attribute and hp.tsne_attribute not in info.attr_names:
            valid = (
                ", ".join(info.attr_names)
                if info.attr_names
                else "none (this data set has no attributes)"
            )
            raise ConfigError(
                f"hparams.tsne_attribute: unknown attribute {hp.tsne_attribute!r}; valid: {valid}"
            )
        self.nets["encoder"] = nets.encoder(hp.latent, info.channels, info.size, hp.width)
        self.nets["decoder"] = nets.decoder(hp.latent, info.channels, info.size, hp.width)

    def configure(self, total_steps: int) -> None:
        self.optimizers["main"] = torch.optim.Adam(self.parameters(), lr=self.hp.lr)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float images -> posterior mean and log-variance ``[N, latent]`` each."""
        mu, logvar = self.nets["encoder"](x).float().chunk(2, 1)
        return mu, logvar.clamp(-30.0, 20.0)  # keeps exp() finite on a bad step

    @staticmethod
    def kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL(N(mu, exp(logvar)) || N(0, I)) per image, in nats."""
        return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(1)

    def train_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        x = self.prepare(batch["source"][0])
        mu, logvar = self.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp()  # reparameterisation trick
        sq = (self.nets["decoder"](z).float() - x).pow(2).flatten(1)
        se, kl = sq.sum(1), self.kl(mu, logvar)
        loss = (se + self.hp.kl_weight * kl).mean()
        opt = self.optimizers["main"]
        opt.zero_grad(set_to_none=True)
        self.backward(loss)
        opt.step()
        # [-1, 1] squared error / 4 = [0, 1] squared error.
        # Named apart from the test metrics (recon_mse, kl) that the engine logs at the last step.
        return {
            "loss/vae": loss.detach(),
            "loss/mse": sq.detach().mean() / 4,
            "loss/kl": kl.detach().mean(),
        }

    @torch.no_grad()
    def sample(
        self,
        n: int,
        labels: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
        batch_size: int = 500,
        **options: Any,
    ) -> torch.Tensor:
        """Decode ``n`` latents drawn from the prior N(0, I) (or given as ``noise``)."""
        self.check_labels(labels, n)
        z = self.latents(noise, n, self.hp.latent)
        with eval_mode(self.nets["decoder"]) as dec:
            return self.images([dec(c) for c in z.split(batch_size)])

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Float images -> reconstructions from the posterior mean (deterministic)."""
        return self.nets["decoder"](self.encode(x)[0]).float().clamp_(-1, 1)

    @torch.no_grad()
    def evaluate(self, data: Any, run_dir: Path | None = None) -> dict[str, Any]:
        test = data.source.test
        sq_sum, kl_sum, mus = 0.0, 0.0, []
        for xb, _ in batches(test, 500, self.device):
            x = self.prepare(xb)
            mu, logvar = self.encode(x)
            sq_sum += float((self.nets["decoder"](mu).float().clamp(-1, 1) - x).pow(2).sum()) / 4
            kl_sum += float(self.kl(mu, logvar).sum())
            mus.append(mu.cpu())
        out: dict[str, Any] = {
            "recon_mse": sq_sum / test.images.numel(),
            "kl": kl_sum / len(test),
            "recon_mse_scale": MSE_SCALE,
        }
        if run_dir is not None:
            out["figures"] = self.figures(data, torch.cat(mus), run_dir)
        return out

    def figures(self, data: Any, mus: torch.Tensor, run_dir: Path) -> dict[str, str]:
        from genda.viz import plot_recon, plot_tsne, save_grid

        test = data.source.test
        x = self.prepare(test.images[:10].to(self.device))
        xr = self.reconstruct(x)
        mse = ((xr - x).pow(2).flatten(1).mean(1) / 4).cpu()
        plot_recon(x.cpu(), xr.cpu(), mse, run_dir / "reconstructions.png")
        save_grid(self.sample(64).cpu(), run_dir / "samples.png", nrow=8)
        name = self.hp.tsne_attribute
        if name:
            colour, names = test.attrs[:, test.attr_index(name)].long(), [f"{name}=0", f"{name}=1"]
        elif test.classes:
            colour, names = test.labels, list(test.classes)
        else:
            colour, names = torch.zeros(len(test), dtype=torch.long), [test.name]
        by_class, by_domain = plot_tsne(
            mus,
            colour,
            torch.zeros(len(test), dtype=torch.long),
            run_dir / "latent_tsne",
            names,
            (test.name,),
        )
        by_domain.unlink(
            missing_ok=True
        )  # one domain: that view is a single colour, noise in a report
        what = name or ("class" if test.classes else "data set")
        return {
            "Test originals vs reconstructions (per-pixel MSE, [0,1] scale)": "figures/reconstructions.png",
            "Samples from the prior": "figures/samples.png",
            f"t-SNE of latent means by {what}": f"figures/{Path(by_class).name}",
        }
