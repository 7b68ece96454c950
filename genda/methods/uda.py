"""Shared evaluation for domain-adaptation methods: target accuracy, confusion, t-SNE.

Every UDA method exposes ``embed(x)`` (features) and ``classify(x)`` (logits) on float
images; this module turns them into the numbers and figures of a UDA report.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from genda.data.domain import Domain, evenly_spaced
from genda.data.prepare import ExperimentData
from genda.methods.base import Method
from genda.metrics.classification import classification_metrics, predict

SELECTION_RULE = "final step (fixed schedule; no target labels used for model selection)"


class UDAMethod(Method):
    """A classifier trained on labelled source (and unlabelled target) images."""

    kind = "uda"
    streams = ("source", "target")
    # channels_last: faster DANN steps on CPU (benchmarks/README.md, pipeline.py)
    # A fixed number of updates, not epochs: the adversarial and learning-rate schedules are
    # functions of progress through the run, and an epoch of USPS (7k images) is an eighth of
    # one of MNIST, so "10 epochs" gave a USPS source a few hundred steps. 3,000 steps keeps a
    # pair's three default rows within the 15-minute budget on a 2-core CPU (measured in
    # benchmarks/README.md); --epochs (with no --steps) still trains by epochs instead.
    defaults = {"train": {"channels_last": True, "steps": 3000}}  # size/channels: auto
    # The networks :meth:`classify` runs through (whose BatchNorm AdaBN re-estimates).
    eval_nets: ClassVar[tuple[str, ...]] = ("encoder", "classifier")
    adabn_images: ClassVar[int] = 10000  # target train images AdaBN averages over
    selection_images: ClassVar[int] = 2000  # target train images an unsupervised score reads

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.nets["encoder"](x)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.nets["classifier"](self.embed(x))

    def target_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits that target evaluation (accuracy, unsupervised selection) reads for raw
        images ``x``; a method whose evaluated network never saw un-augmented images may
        average over augmented views instead (:class:`~genda.methods.selftrain.SelfTrain`)."""
        return self.classify(self.prepare(x))

    @contextmanager
    def target_batchnorm(self, domain: Domain) -> Iterator[None]:
        """AdaBN (Li et al., 2017): inside, BatchNorm uses statistics of ``domain``'s images.

        The running statistics of every BatchNorm layer on the :meth:`classify` path are
        reset and re-estimated as the exact average over (up to :attr:`adabn_images`,
        :func:`~genda.data.domain.evenly_spaced`) un-augmented images of ``domain``; on exit
        the trained statistics come back, so evaluation leaves the model as it was (and is
        the same on a reloaded checkpoint).
        A network trained on source statistics otherwise normalises target features with the
        wrong mean and variance, which on MNIST-M alone costs tens of points.
        """
        bns = [
            m
            for k in self.eval_nets
            for m in self.nets[k].modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats
        ]
        saved = [(m.momentum, {k: v.clone() for k, v in m.state_dict().items()}) for m in bns]
        try:
            for m in bns:
                m.reset_running_stats()
                m.momentum = None  # cumulative average: exact mean over the batches seen
                m.train()
            with torch.no_grad():
                for x in evenly_spaced(domain.images, self.adabn_images).split(500):
                    self.classify(self.prepare(x.to(self.device)))
            for m in bns:
                m.eval()
            yield
        finally:
            for m, (momentum, state) in zip(bns, saved, strict=True):
                m.momentum = momentum
                m.load_state_dict(state)
                m.eval()

    @contextmanager
    def on_target(self, data: ExperimentData) -> Iterator[None]:
        """The model as it is evaluated on the target: with AdaBN when ``hparams.adabn``."""
        if getattr(self.hp, "adabn", False) and data.target is not None:
            with self.target_batchnorm(data.target.train):
                yield
        else:
            yield

    @torch.no_grad()
    def target_probs(self, data: ExperimentData) -> torch.Tensor:
        """Class probabilities ``[N, K]`` on up to :attr:`selection_images` target *train*
        images (:func:`~genda.data.domain.evenly_spaced` over the split), as evaluation sees the target; what
        unsupervised model selection scores. No labels."""
        with self.on_target(data):
            probs = [
                self.target_logits(x.to(self.device)).float().softmax(1).cpu()
                for x in evenly_spaced(data.target.train.images, self.selection_images).split(500)
            ]
        return torch.cat(probs)

    @torch.no_grad()
    def evaluate(self, data: ExperimentData, run_dir: Path | None = None) -> dict[str, Any]:
        dev, n = self.device, self.info.num_classes
        src_logits, src_y = predict(lambda x: self.classify(self.prepare(x)), data.source.test, dev)
        out: dict[str, Any] = {
            "source_accuracy": classification_metrics(src_logits, src_y, n)["accuracy"]
        }
        if data.target is None:
            return out
        with self.on_target(data):
            tgt_logits, tgt_y = predict(self.target_logits, data.target.test, dev)
        m = classification_metrics(tgt_logits, tgt_y, n)
        out.update(
            target_accuracy=m["accuracy"],
            per_class_accuracy=m["per_class_accuracy"],
            confusion=m["confusion"],
            classes=self.info.classes,
            selection_rule=SELECTION_RULE,
        )
        if run_dir is not None:
            out["figures"] = self.figures(data, m["confusion"], run_dir)
        return out

    def figures(self, data: ExperimentData, confusion: list, run_dir: Path) -> dict[str, str]:
        from genda.viz import plot_confusion, plot_tsne

        dev = self.device
        fs, ys = predict(lambda x: self.embed(self.prepare(x)), data.source.test, dev)
        with self.on_target(data):
            ft, yt = predict(lambda x: self.embed(self.prepare(x)), data.target.test, dev)
        feats = torch.cat([fs, ft])
        labels = torch.cat([ys, yt])
        domains = torch.cat([torch.zeros(len(ys)), torch.ones(len(yt))]).long()
        by_class, by_domain = plot_tsne(
            feats,
            labels,
            domains,
            run_dir / "tsne",
            self.info.classes,
            (f"source ({data.source.name})", f"target ({data.target.name})"),
        )
        conf = plot_confusion(
            torch.tensor(confusion),
            self.info.classes,
            run_dir / "confusion.png",
            title=f"{self.name}: target confusion matrix",
        )
        rel = lambda p: f"figures/{Path(p).name}"  # noqa: E731
        return {
            "t-SNE by class": rel(by_class),
            "t-SNE by domain": rel(by_domain),
            "Target confusion matrix": rel(conf),
        }
