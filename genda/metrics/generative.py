"""Sample-quality metrics: FID, Inception Score and conditional classifier accuracy.

FID (Heusel et al., "GANs Trained by a Two Time-Scale Update Rule Converge to a Local Nash
Equilibrium", NeurIPS 2017) is the Frechet distance between Gaussians fitted to features of
real and generated images; the Inception Score (Salimans et al., "Improved Techniques for
Training GANs", NeurIPS 2016) is ``exp(E_x KL(p(y|x) || p(y)))`` over a classifier's
predictions. Both are computed by torchmetrics with a *pluggable* feature network:

* ``inception-fid``: the Inception network of the original TensorFlow FID code (weights
  ``pt_inception-2015-12-05``, the file pytorch-fid and torch-fidelity load), run by
  torchmetrics' torch-fidelity extractor with TF-style resizing: the FID and IS that papers
  and course baselines quote. :func:`load_inception` tells it from torchvision's ImageNet
  weights by the file's keys (1008 classes, no auxiliary head), not by its name.
* ``inception-torchvision``: torchvision's Inception-v3 with ImageNet weights from a local
  file: a different network, so its FID is a different number.
* ``classifier:<spec>``: the evaluation classifier trained on the real data of that domain
  (:mod:`genda.metrics.evaluator`): penultimate features for FID, logits for IS. Scores are
  comparable only between models measured with the same extractor, so every result carries
  its name as ``fid_extractor``.

Nothing is ever downloaded: a weights file is the user's (:data:`FID_WEIGHTS_HINT`).

All functions take uint8 ``[N, C, H, W]`` images (float [-1, 1] is converted), the format
samples are written to disk in, so scores of in-memory samples and PNG folders agree.
FID, KID (Binkowski et al., ICLR 2018) and improved precision/recall (Kynkaanniemi et al.,
NeurIPS 2019) are computed from features extracted once per image set (:func:`embed`):
one Inception pass serves all three.
"""

from __future__ import annotations

import contextlib
import io
import statistics
import tempfile
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

        path, state = _read_weights(weights)
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


FID_WEIGHTS_HINT = (
    "the standard FID weights are pytorch-fid's pt_inception-2015-12-05-6726825d.pth "
    "(github.com/mseitzer/pytorch-fid/releases, tag fid_weights) or torch-fidelity's "
    "weights-inception-2015-12-05-6726825d.pth; download one yourself and pass its path"
)


def _read_weights(weights: str | Path) -> tuple[Path, dict[str, torch.Tensor]]:
    """A state dict read without running code from the file (``weights_only``)."""
    path = Path(weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"Inception weights file {path} does not exist (genda never downloads weights; "
            f"{FID_WEIGHTS_HINT})"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001  any unpickling failure: not a weights file
        raise ValueError(f"{path}: not a PyTorch weights file ({type(e).__name__})") from e
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: expected a state dict of tensors")
    return path, state


def inception_kind(state: dict[str, torch.Tensor]) -> str | None:
    """``inception-fid`` (the TF FID network: fc of 1008 classes, no auxiliary head),
    ``inception-torchvision`` (ImageNet: fc of 1000 and ``AuxLogits``), else None."""
    fc = state.get("fc.weight")
    if fc is None or "Mixed_7c.branch_pool.conv.weight" not in state:
        return None
    aux = any(k.startswith("AuxLogits.") for k in state)
    if tuple(fc.shape) == (1008, 2048) and not aux:
        return "inception-fid"
    if tuple(fc.shape) == (1000, 2048) and aux:
        return "inception-torchvision"
    return None


class FIDInception(nn.Module):
    """The TF FID Inception on uint8 images (grey repeated to RGB): 2048-d pool features or
    the 1008 ``logits_unbiased`` the Inception Score uses, via torchmetrics' extractor."""

    def __init__(self, weights_file: Path, output: Literal["features", "logits"]) -> None:
        super().__init__()
        from torchmetrics.image.fid import NoTrainInceptionV3

        feature = "2048" if output == "features" else "logits_unbiased"
        self.net = NoTrainInceptionV3("inception-v3-compat", [feature], str(weights_file))
        self.num_features = 2048 if output == "features" else 1008

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = to_uint8(x) if x.dtype != torch.uint8 else x
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return self.net(x.to(next(self.net.parameters()).device))


@dataclass
class Extractors:
    """Feature modules for FID and IS and the name recorded beside the scores."""

    fid: nn.Module
    inception: nn.Module | None  # None: no meaningful IS for this extractor
    name: str


def load_inception(weights: str | Path) -> Extractors:
    """FID and IS networks from a local weights file, of either kind (see the module doc).

    torch-fidelity fully unpickles the weights file it is given (which can run code from
    it); genda reads the user's file with ``weights_only=True``, checks it, and hands
    torch-fidelity a private copy holding nothing but those tensors.
    """
    path, state = _read_weights(weights)
    kind = inception_kind(state)
    if kind == "inception-torchvision":
        feats = InceptionFeatures(path, "features")
        return Extractors(feats, InceptionFeatures(path, "logits"), kind)
    if kind is None:
        raise ValueError(
            f"{path}: not Inception-v3 weights (expected the FID network, fc 1008 classes, "
            f"or torchvision's inception_v3, fc 1000 + AuxLogits; {FID_WEIGHTS_HINT})"
        )
    with tempfile.TemporaryDirectory(prefix="genda-fid-") as tmp:
        copy = Path(tmp) / "inception.pt"
        torch.save(state, copy)
        return Extractors(FIDInception(copy, "features"), FIDInception(copy, "logits"), kind)


def make_extractors(inception_weights: str | Path | None = None, evaluator=None) -> Extractors:
    """Inception-v3 when a weights file is given, else the evaluation classifier's."""
    if inception_weights:
        return load_inception(inception_weights)
    if evaluator is None:
        raise ValueError(
            "FID needs Inception-v3 weights (a local file) or an evaluation classifier"
        )
    logits = evaluator.feature_module("logits") if evaluator.mode != "attributes" else None
    return Extractors(evaluator.feature_module("features"), logits, evaluator.name)


def _batches(x: torch.Tensor, batch_size: int):
    for i in range(0, len(x), batch_size):
        yield to_uint8(x[i : i + batch_size])


class _Given(nn.Module):
    """Identity over features already extracted: torchmetrics' metrics take a feature
    network, and this one lets FID and KID share one pass of the real one (:func:`embed`)."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return f


@torch.no_grad()
def embed(images: torch.Tensor, feature: nn.Module, batch_size: int = 250) -> torch.Tensor:
    """``feature`` of every image (uint8 batches), as one float64 CPU tensor ``[N, d]``."""
    return torch.cat([feature(x).double().cpu() for x in _batches(images, batch_size)])


def fid_features(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between two feature sets ``[N, d]`` (torchmetrics, float64 statistics).

    Needs at least 2 per set; with fewer than ``d`` the covariances are singular and FID
    is biased upwards, so compare only equal-sized runs.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    if len(real) < 2 or len(fake) < 2:
        raise ValueError(
            f"FID needs >= 2 real and >= 2 generated images, got {len(real)} and {len(fake)}"
        )
    metric = FrechetInceptionDistance(feature=_Given(real.shape[1]), normalize=False)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    return max(float(metric.compute()), 0.0)  # tiny negatives are float round-off


def fid_interval(
    real: torch.Tensor, fake: torch.Tensor, rounds: int = 50, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Bootstrap interval of FID over the generated samples: ``rounds`` FIDs of ``fake``
    resampled with replacement against the same ``real`` features. It says how much of a
    difference between two models' FIDs the finite sample alone could explain.

    A resample repeats about a third of its images, which shrinks its covariance and so
    raises every resampled FID: the raw percentiles lie above the measured FID. The
    interval keeps the bootstrap's spread and removes that offset (the percentiles are
    shifted by ``median - fid``), so it is centred on the measured value."""
    g = torch.Generator().manual_seed(seed)
    values = sorted(
        fid_features(real, fake[torch.randint(len(fake), (len(fake),), generator=g)])
        for _ in range(rounds)
    )
    shift = statistics.median(values) - fid_features(real, fake)
    lo, hi = (1 - level) / 2, (1 + level) / 2
    low, high = values[int(lo * (rounds - 1))], values[round(hi * (rounds - 1))]
    return max(low - shift, 0.0), high - shift


def fid(real: torch.Tensor, fake: torch.Tensor, feature: nn.Module, batch_size: int = 250) -> float:
    """FID between two image sets under ``feature`` (see :func:`fid_features`)."""
    return fid_features(embed(real, feature, batch_size), embed(fake, feature, batch_size))


KID_SUBSET = 1000  # Binkowski et al.'s subset size


def kid_features(
    real: torch.Tensor, fake: torch.Tensor, subset_size: int = 0, subsets: int = 100, seed: int = 0
) -> tuple[float, float, int]:
    """KID ``(mean, std over subsets, subset size)``: the unbiased polynomial-kernel MMD^2,
    averaged over ``subsets`` random subsets (torchmetrics). ``subset_size`` 0 takes
    :data:`KID_SUBSET` or the smaller set's size; a larger explicit one is refused (the
    estimate would silently reuse images)."""
    from torchmetrics.image.kid import KernelInceptionDistance

    n = min(len(real), len(fake))
    size = subset_size or min(KID_SUBSET, n)
    if size > n or size < 2:
        raise ValueError(
            f"KID subset size {size} needs >= 2 and at most the {n} images of the smaller set"
        )
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features.*")
        metric = KernelInceptionDistance(
            feature=_Given(real.shape[1]), subsets=subsets, subset_size=size
        )
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with torch.random.fork_rng():  # subsets are drawn with the global RNG; keep the caller's
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std), size


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3) -> dict[str, float]:
    """Improved precision and recall (Kynkaanniemi et al., 2019; ``prdc``, Naeem et al.
    2020, adds density and coverage): precision = share of generated features inside the
    k-NN ball of some real one (fidelity), recall = share of real ones inside a generated
    one's ball (diversity: mode collapse shows as low recall). Use equal set sizes."""
    from prdc import compute_prdc

    if min(len(real), len(fake)) <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} images per set")
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        out = compute_prdc(real.float().numpy(), fake.float().numpy(), nearest_k=k)
    return {key: round(float(v), 4) for key, v in out.items()}


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
