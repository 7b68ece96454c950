"""Shared evaluation for domain-adaptation methods: target accuracy, confusion, t-SNE.

Every UDA method exposes ``embed(x)`` (features) and ``classify(x)`` (logits) on float
images; this module turns them into the numbers and figures of a UDA report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from genda.data.prepare import ExperimentData
from genda.methods.base import Method
from genda.metrics.classification import classification_metrics, predict

SELECTION_RULE = "final step (fixed schedule; no target labels used for model selection)"


class UDAMethod(Method):
    """A classifier trained on labelled source (and unlabelled target) images."""

    kind = "uda"
    streams = ("source", "target")
    # channels_last: measured 10-36% faster DANN steps on CPU (benchmarks/pipeline.py)
    defaults = {"train": {"channels_last": True}}  # data size/channels: auto per pair

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.nets["encoder"](x)

    def classify(self, x: torch.Tensor) -> torch.Tensor:
        return self.nets["classifier"](self.embed(x))

    @torch.no_grad()
    def evaluate(self, data: ExperimentData, run_dir: Path | None = None) -> dict[str, Any]:
        dev, n = self.device, self.info.num_classes
        src_logits, src_y = predict(lambda x: self.classify(self.prepare(x)), data.source.test, dev)
        out: dict[str, Any] = {
            "source_accuracy": classification_metrics(src_logits, src_y, n)["accuracy"]
        }
        if data.target is None:
            return out
        tgt_logits, tgt_y = predict(lambda x: self.classify(self.prepare(x)), data.target.test, dev)
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
