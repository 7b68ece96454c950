"""Evaluation classifiers: small CNNs trained on the *real* data a generative model imitates.

They serve two purposes: (1) the accuracy with which generated images are recognised as the
class (or attribute value) they were conditioned on, and (2) a domain-specific feature
extractor for "classifier FID" and a classifier Inception Score when no Inception-v3 weights
are available offline. An ImageNet network knows little about 28-px grey digits anyway;
features of a classifier trained on the domain itself are the usual substitute (e.g. the
LeNet-based FID of MNIST GAN papers). Such scores are only comparable between models
evaluated with the *same* classifier, so every result names it (``fid_extractor``).

Training is a short direct loop (no engine, no files) on the LeNet-style digit network of
:mod:`genda.nets.digits`; the result is cached under ``$GENDA_CACHE/evaluators`` (default
``~/.cache/genda/evaluators``), keyed by the data's absolute paths and files (sizes, times),
attribute, size and channels, and written atomically, so every ``genda eval`` of runs on the same data reuses one classifier.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from genda import cache
from genda.data.augment import augment
from genda.data.domain import DataError, Domain
from genda.data.stream import to_float
from genda.nets import digits

# Bump when training or the network changes so stale cached classifiers are retrained.
EVALUATOR_VERSION = 1
Mode = Literal["class", "attribute", "attributes"]


class ClassifierNet(nn.Module):
    """LeNet encoder + 100-unit hidden layer + output layer, on float images in [-1, 1]."""

    def __init__(self, channels: int, size: int, num_outputs: int) -> None:
        super().__init__()
        self.encoder = digits.Encoder(channels, size)
        self.head = digits.classifier(self.encoder.out_dim, num_outputs, hidden=100)
        self.feature_dim = 100

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate activations (the hidden layer before the logits): the FID features."""
        return self.head[:-1](self.encoder(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


class UInt8Input(nn.Module):
    """Adapter for torchmetrics: uint8 ``[N, C, H, W]`` images -> features or logits.

    torchmetrics' FID/IS pass images straight to a custom ``feature`` module, so this module
    owns the conversion (channels, size, [-1, 1] scaling) and declares ``num_features`` (FID
    reads it instead of probing with a dummy 299-px image).
    """

    def __init__(
        self, net: ClassifierNet, output: Literal["features", "logits"], channels: int, size: int
    ) -> None:
        super().__init__()
        self.net, self.output, self.channels, self.size = net, output, channels, size
        self.num_features = (
            net.feature_dim if output == "features" else int(net.head[-1].out_features)
        )

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(next(self.net.parameters()).device)
        if x.dtype == torch.uint8:
            x = to_float(x)
        if x.shape[1] != self.channels:
            x = x.mean(1, keepdim=True) if self.channels == 1 else x.expand(-1, 3, -1, -1)
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = F.interpolate(
                x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False
            )
        self.net.eval()
        out = self.net.features(x) if self.output == "features" else self.net(x)
        return out.float()


@dataclass
class EvalClassifier:
    """A trained evaluation classifier and what it was trained on.

    ``mode``: ``class`` (softmax over the data's classes), ``attribute`` (one binary
    attribute as 2 classes) or ``attributes`` (all binary attributes, multi-label; used for
    unlabelled faces, whose FID then uses attribute features; no Inception Score).
    """

    spec: str
    attribute: str
    size: int
    channels: int
    mode: Mode
    classes: list[str]
    net: ClassifierNet
    test_accuracy: float  # percent, on the real test split (mean over attributes for multi-label)
    train_seconds: float = 0.0
    path: Path | None = None

    @property
    def name(self) -> str:
        """``classifier:<spec>[#attribute]``: recorded as ``fid_extractor`` beside scores."""
        return f"classifier:{self.spec}" + (f"#{self.attribute}" if self.attribute else "")

    def to(self, device: torch.device | str) -> EvalClassifier:
        self.net.to(device)
        return self

    def feature_module(self, output: Literal["features", "logits"] = "features") -> UInt8Input:
        return UInt8Input(self.net, output, self.channels, self.size)

    @torch.no_grad()
    def logits(self, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
        """Logits for uint8 (or [-1, 1] float) images, on the CPU."""
        fm = self.feature_module("logits")
        return torch.cat(
            [fm(images[i : i + batch_size]).cpu() for i in range(0, len(images), batch_size)]
        )

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Predicted class (or 0/1 per attribute for multi-label) for each image."""
        z = self.logits(images)
        return (z > 0).long() if self.mode == "attributes" else z.argmax(1)


def _labels(domain: Domain, mode: Mode) -> torch.Tensor:
    if mode == "attributes":
        assert domain.attrs is not None
        return domain.attrs.float()
    return domain.labels


def _mode_for(train: Domain, attribute: str) -> Mode:
    if attribute:
        return "attribute"
    if train.classes and bool((train.labels >= 0).any()):
        return "class"
    if train.attrs is not None and train.attrs.shape[1] > 0:
        return "attributes"
    raise DataError(
        f"{train.name}: no class labels and no attributes: cannot train an evaluation "
        "classifier (pass Inception-v3 weights for FID instead)"
    )


@torch.no_grad()
def _accuracy(net: ClassifierNet, domain: Domain, mode: Mode, device: torch.device) -> float:
    net.eval()
    fm = UInt8Input(net, "logits", domain.shape[0], domain.shape[1])
    z = torch.cat(
        [fm(domain.images[i : i + 500].to(device)).cpu() for i in range(0, len(domain), 500)]
    )
    y = _labels(domain, mode)
    if mode == "attributes":
        return round(100 * float(((z > 0).float() == y).float().mean()), 2)
    keep = y >= 0
    return round(100 * float((z.argmax(1)[keep] == y[keep]).float().mean()), 2)


def train_classifier(
    train: Domain,
    test: Domain,
    mode: Mode,
    steps: int = 1000,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    device: torch.device | str = "cpu",
    augment_kind: str | None = None,
) -> tuple[ClassifierNet, float]:
    """Train on ``train`` and return ``(net, test accuracy in percent)``.

    Adam with a cosine learning-rate decay converges in ~1000 steps on digits and faces; a
    small random shift (class mode) makes the classifier tolerant of the off-centre digits
    generators produce. Uses its own RNG so it never disturbs the caller's random stream.
    """
    c, s = train.shape[0], train.shape[1]
    y_all = _labels(train, mode)
    keep = torch.ones(len(train), dtype=torch.bool) if mode == "attributes" else y_all >= 0
    images, y_all = train.images[keep], y_all[keep]
    if len(images) == 0:
        raise DataError(f"{train.name}: no labelled training images for the evaluation classifier")
    outputs = (
        y_all.shape[1]
        if mode == "attributes"
        else (2 if mode == "attribute" else train.num_classes)
    )
    aug = augment_kind if augment_kind is not None else ("shift" if mode == "class" else "none")
    device = torch.device(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        net = ClassifierNet(c, s, outputs).to(device)
        opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda i: 0.5 * (1 + math.cos(math.pi * i / steps))
        )
        images, y_all = images.to(device), y_all.to(device)
        bs = min(batch_size, len(images))
        net.train()
        perm, pos = torch.randperm(len(images), device=device), 0
        for _ in range(steps):
            if pos + bs > len(images):
                perm, pos = torch.randperm(len(images), device=device), 0
            idx = perm[pos : pos + bs]
            pos += bs
            x = augment(to_float(images[idx]), aug)
            z = net(x)
            y = y_all[idx]
            loss = (
                F.binary_cross_entropy_with_logits(z, y)
                if mode == "attributes"
                else F.cross_entropy(z, y)
            )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    net.eval()
    return net, _accuracy(net, test, mode, device)


def evaluator_dir() -> Path:
    return cache.cache_dir() / "evaluators"


def _cache_path(
    root: Path, spec: str, attribute: str, size: int, channels: int, steps: int, seed: int
) -> Path:
    from genda.data.spec import spec_inputs

    where, inputs = spec_inputs(spec)
    key = f"v{EVALUATOR_VERSION}|{where}|{attribute}|{size}|{channels}|{steps}|{seed}"
    name = f"{spec.split('/')[-1]}-{attribute or 'all'}-{channels}x{size}"
    return cache.entry_path(root, name, key, inputs)


def get_evaluator(
    spec: str,
    attribute: str = "",
    size: int = 28,
    channels: int = 1,
    steps: int = 1000,
    seed: int = 0,
    device: torch.device | str = "cpu",
    cache_root: str | Path | None = None,
    verbose: bool = False,
) -> EvalClassifier:
    """The evaluation classifier for real data ``spec`` at ``size``/``channels``: from the cache,
    or trained now on the real train split (and its test accuracy measured on the test split).

    ``attribute`` selects a binary attribute as the label (attribute-conditional models);
    without it the data's classes are used, or all attributes (multi-label) when the data has
    no classes. ``GENDA_CACHE=off`` disables the cache (the classifier is retrained each time).
    """
    from genda.config import DataConfig
    from genda.data.prepare import prepare

    use_cache = cache.cache_enabled()
    root = Path(cache_root) if cache_root is not None else evaluator_dir()
    path = _cache_path(root, spec, attribute, size, channels, steps, seed)
    st = cache.load(path) if use_cache else None
    if st is not None:
        try:
            net = ClassifierNet(channels, size, st["outputs"])
            net.load_state_dict(st["state_dict"])
            net.eval()
            return EvalClassifier(
                spec,
                attribute,
                size,
                channels,
                st["mode"],
                st["classes"],
                net,
                st["test_accuracy"],
                st["train_seconds"],
                path,
            ).to(device)
        except Exception as e:  # noqa: BLE001  a wrong-shaped entry is retrained, never fatal
            warnings.warn(f"genda: ignoring unreadable evaluator {path} ({e})", stacklevel=2)
    data = prepare(DataConfig(source=spec, size=size, channels=channels, attribute=attribute), seed)
    train, test = data.source.train, data.source.test
    mode = _mode_for(train, attribute)
    if verbose:
        print(
            f"training evaluation classifier on {spec}{'#' + attribute if attribute else ''} "
            f"({len(train)} images, {mode}, {steps} steps)...",
            flush=True,
        )
    t0 = time.perf_counter()
    net, acc = train_classifier(train, test, mode, steps=steps, seed=seed, device=device)
    secs = round(time.perf_counter() - t0, 1)
    classes = list(train.attr_names) if mode == "attributes" else list(train.classes)
    if use_cache:
        outputs = int(net.head[-1].out_features)
        state = {
            "state_dict": {k: v.cpu() for k, v in net.state_dict().items()},
            "outputs": outputs,
            "mode": mode,
            "classes": classes,
            "test_accuracy": acc,
            "train_seconds": secs,
            "spec": spec,
            "attribute": attribute,
            "size": size,
            "channels": channels,
        }
        cache.store(path, state, stale=path.name.rsplit("-", 1)[0] + "-*.pt")
    if verbose:
        print(f"  evaluation classifier test accuracy {acc:.2f}% ({secs} s)", flush=True)
    return EvalClassifier(
        spec, attribute, size, channels, mode, classes, net, acc, secs, path if use_cache else None
    ).to(device)
