"""Classifier evaluation on a held-out split, on torchmetrics."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from genda.data.domain import Domain
from genda.data.stream import batches


@torch.no_grad()
def predict(
    fn: Callable[[torch.Tensor], torch.Tensor],
    domain: Domain,
    device: torch.device,
    batch_size: int = 1000,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``fn`` (uint8 images -> logits or features) over ``domain``; returns (outputs, labels) on CPU."""
    outs, labels = [], []
    for x, y in batches(domain, batch_size, device):
        outs.append(fn(x).float().cpu())
        labels.append(y.cpu())
    return torch.cat(outs), torch.cat(labels)


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict:
    """Accuracy, per-class accuracy and confusion matrix (rows = true class), in percent."""
    preds = logits.argmax(1)
    acc = MulticlassAccuracy(num_classes, average="micro")(preds, labels)
    per_class = MulticlassAccuracy(num_classes, average=None)(preds, labels)
    confusion = MulticlassConfusionMatrix(num_classes)(preds, labels)
    return {
        "accuracy": round(100 * float(acc), 2),
        "per_class_accuracy": [round(100 * float(a), 2) for a in per_class],
        "confusion": confusion.tolist(),
    }
