"""Unsupervised model-selection scores for domain adaptation.

Choosing a checkpoint by target test accuracy uses the labels adaptation may not have, so
these scores read only a model's predicted class probabilities on unlabelled target images
(the "validators" of pytorch-adapt; Musgrave et al., "Benchmarking Validation Methods for
Unsupervised Domain Adaptation", 2022). Higher is better for every score.
"""

from __future__ import annotations

import torch


def _entropy(p: torch.Tensor) -> torch.Tensor:
    return -(p * p.clamp_min(1e-12).log()).sum(-1)


def mean_confidence(probs: torch.Tensor) -> float:
    """``-mean_x H(p(y|x))``: confident predictions on the target (Grandvalet & Bengio, 2004)."""
    return -float(_entropy(probs).mean())


def information_maximization(probs: torch.Tensor) -> float:
    """``H(mean_x p(y|x)) - mean_x H(p(y|x))``: confident *and* spread over the classes
    (Gomes, Krause & Perona, 2010; SHOT's objective). Unlike entropy alone it does not
    reward a model that puts every target image in one class."""
    return float(_entropy(probs.mean(0)) - _entropy(probs).mean())


# rule name -> (score of probabilities [N, K], what it measures, for the selection sentence)
SCORES = {
    "im": (information_maximization, "highest information maximisation H(mean p) - mean H(p)"),
    "entropy": (mean_confidence, "lowest mean prediction entropy"),
}
