"""Sample-quality metrics: FID, Inception Score and conditional classifier accuracy.

FID (Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", NeurIPS 2017) is the Frechet distance between Gaussians fitted to features of
real and generated images; the Inception Score (Salimans et al., "Improved Techniques for
Training GANs", NeurIPS 2016) is ``exp(E_x KL(p(y|x) || p(y)))`` over a classifier's
predictions. Both are computed by torchmetrics with a *pluggable* feature network:

* ``inception-v3``: torchvision's Inception-v3 with weights loaded from a local file
  (nothing is ever downloaded). Its scores are the familiar ones only approximately: the
  reference FID implementation uses TF-ported weights and resizing.
* ``classifier:<spec>``: the evaluation classifier trained on the real data of that domain
  (:mod:`genda.metrics.evaluator`): penultimate features for FID, logits for IS. Scores are
  comparable only between models measured with the same extractor, so every result carries
  its name as ``fid_extractor``.

All functions take uint8 ``[N, C, H, W]`` images (float [-1, 1] is converted), the format
samples are written to disk in, so scores of in-memory samples and PNG folders agree.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from genda.data.stream import to_float
from genda.viz.images import to_uint8


class InceptionFeatures(nn.Module):
    """torchvision Inception-v3 on uint8 images: 2048-d pool features or 1000 logits.

    Grey images are repeated to RGB and everything is resized (bilinear, antialiased) to
    299 px and scaled to [-1, 1]: torchvision's ``IMAGENET1K_V1`` weights are the ported
    Google weights, which expect that range (torchvision's ``transform_input=True`` maps
    ImageNet-normalised input to it; we feed it directly).
    """

    def __init__(
        self, weights: str | Path, output: Literal["features", "logits"] = "features"
    ) -> None:
        super().__init__()
        from torchvision.models import inception_v3

        path = Path(weights).expanduser()
        if not path.is_file():
            raise FileNotFoundError(
                f"Inception-v3 weights file {path} does not exist (genda never downloads "
                "weights; pass a torchvision inception_v3 state_dict file)"
            )
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        net = inception_v3(weights=None, aux_logits=True, init_weights=False)
        try:
            net.load_state_dict(state)
        except RuntimeError as e:
            raise ValueError(f"{path}: not a torchvision inception_v3 state_dict ({e})") from e
        net.eval()
        self.net, self.output = net, output
        self.num_features = 2048 if output == "features" else 1000

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.net.eval()
        x = x.to(self.net.fc.weight.device)
        x = to_float(x) if x.dtype == torch.uint8 else x.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = nn.functional.interpolate(
            x, size=(299, 299), mode="bilinear", antialias=True, align_corners=False
        )
        n = self.net
        # torchvision's forward up to the pooled features (its fc gives the logits).
        for name in (
            "Conv2d_1a_3x3",
            "Conv2d_2a_3x3",
            "Conv2d_2b_3x3",
            "maxpool1",
            "Conv2d_3b_1x1",
            "Conv2d_4a_3x3",
            "maxpool2",
            "Mixed_5b",
            "Mixed_5c",
            "Mixed_5d",
            "Mixed_6a",
            "Mixed_6b",
            "Mixed_6c",
            "Mixed_6d",
            "Mixed_6e",
            "Mixed_7a",
            "Mixed_7b",
            "Mixed_7c",
            "avgpool",
        ):
            x = getattr(n, name)(x)
        f = torch.flatten(x, 1)
        return f if self.output == "features" else n.fc(f)


@dataclass
class Extractors:
    """Feature modules for FID and IS and the name recorded beside the scores."""

    fid: nn.Module
    inception: nn.Module | None  # None: no meaningful IS for this extractor
    name: str


def make_extractors(inception_weights: str | Path | None = None, evaluator=None) -> Extractors:
    """Inception-v3 when a weights file is given, else the evaluation classifier's."""
    if inception_weights:
        return Extractors(
            InceptionFeatures(inception_weights, "features"),
            InceptionFeatures(inception_weights, "logits"),
            "inception-v3",
        )
    if evaluator is None:
        raise ValueError(
            "FID needs Inception-v3 weights (a local file) or an evaluation classifier"
        )
    logits = evaluator.feature_module("logits") if evaluator.mode != "attributes" else None
    return Extractors(evaluator.feature_module("features"), logits, evaluator.name)


def _batches(x: torch.Tensor, batch_size: int):
    for i in range(0, len(x), batch_size):
        yield to_uint8(x[i : i + batch_size])


@torch.no_grad()
def fid(real: torch.Tensor, fake: torch.Tensor, feature: nn.Module, batch_size: int = 250) -> float:
    """FID between two image sets under ``feature`` (torchmetrics, float64 statistics).

    Needs at least 2 images per set; with fewer images than feature dimensions the
    covariances are singular and FID is biased upwards, so compare only equal-sized runs.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    if len(real) < 2 or len(fake) < 2:
        raise ValueError(
            f"FID needs >= 2 real and >= 2 generated images, got {len(real)} and {len(fake)}"
        )
    metric = FrechetInceptionDistance(feature=feature, normalize=False)
    for x in _batches(real, batch_size):
        metric.update(x, real=True)
    for x in _batches(fake, batch_size):
        metric.update(x, real=False)
    return max(float(metric.compute()), 0.0)  # tiny negatives are float round-off


@torch.no_grad()
def inception_score(
    images: torch.Tensor, logits: nn.Module, splits: int = 10, batch_size: int = 250
) -> tuple[float, float]:
    """Inception Score ``(mean, std over splits)`` of ``images`` with a logits network."""
    from torchmetrics.image.inception import InceptionScore

    splits = max(1, min(splits, len(images) // 2))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        metric = InceptionScore(feature=logits, splits=splits, normalize=False)
    for x in _batches(images, batch_size):
        metric.update(x)
    with torch.random.fork_rng():  # IS shuffles with the global RNG; keep the caller's stream
        mean, std = metric.compute()
    std_v = float(std) if splits > 1 else 0.0
    return float(mean), std_v


@torch.no_grad()
def classifier_accuracy(images: torch.Tensor, labels: torch.Tensor, evaluator) -> float:
    """Percentage of ``images`` the evaluation classifier assigns to their requested ``labels``.

    For class-conditional samples this measures whether conditioning works (and whether
    digits are legible); for attribute models the labels are the requested 0/1 values.
    """
    if evaluator.mode == "attributes":
        raise ValueError("classifier accuracy needs a class or single-attribute evaluator")
    pred = evaluator.predict(to_uint8(images))
    return round(100 * float((pred == labels.cpu().long()).float().mean()), 2)


@torch.no_grad()
def pair_accuracy(off: torch.Tensor, on: torch.Tensor, evaluator) -> dict[str, float]:
    """Scores of same-noise pairs generated with a binary attribute off (0) and on (1).

    Why pairs: independent samples can satisfy the attribute by drawing a different face; a
    pair that shares its noise shows that the condition itself flips the attribute. Every
    image counts (``pair_accuracy`` is over both halves); ``pairs_both_correct`` is the share
    of pairs whose two images are both judged as asked.
    """
    if evaluator.mode == "attributes":
        raise ValueError("pair accuracy needs a single-attribute evaluator")
    ok_off = evaluator.predict(to_uint8(off)) == 0
    ok_on = evaluator.predict(to_uint8(on)) == 1

    def pct(ok: torch.Tensor) -> float:
        return round(100 * float(ok.float().mean()), 2)

    return {
        "pair_accuracy": pct(torch.cat([ok_off, ok_on])),
        "pair_accuracy_off": pct(ok_off),
        "pair_accuracy_on": pct(ok_on),
        "pairs_both_correct": pct(ok_off & ok_on),
        "pair_n": len(off),
    }
