"""Self-training on top of DANN: the mean-teacher/FixMatch self-training of
:mod:`genda.methods.selftrain` plus DANN's domain-adversarial term on the student's features.

Self-training alone can only spread labels from target images the teacher already gets
right; where source-only accuracy on the target is low (MNIST -> MNIST-M), wrong confident
pseudo-labels reinforce themselves. Aligning the feature distributions adversarially at the
same time (Ganin et al., 2016) makes more of the teacher's early pseudo-labels right. This
is the recipe of VADA/DIRT-T (Shu et al., ICLR 2018: DANN + target-side consistency and
entropy terms) with FixMatch's thresholded pseudo-labels as the target-side term.

``loss = selftrain loss + DANN(GRL(f_s), GRL(f_t); lambda_p)``, both on the strong views.
Every weight and schedule is the two parents' (no new constants) except the budget: 9,000
steps, three times the supervised rows'. Pseudo-labels spread over the target a little with
every step (the share the teacher keeps was still rising at the end of a 3,000-step run),
and self-training papers train far longer still (FixMatch: 2^20 steps; DIRT-T: 40k+). The
lambda and learning-rate schedules stretch with the budget. benchmarks/README.md has the
curve and what it costs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genda.config import merge
from genda.methods.dann import AdversaryHparams, adversarial_loss, adversary_for
from genda.methods.selftrain import SelfTrain, SelfTrainHparams


@dataclass
class SelfTrainDANNHparams(SelfTrainHparams, AdversaryHparams):
    pass


class SelfTrainDANN(SelfTrain):
    name = "selftrain-dann"
    Hparams = SelfTrainDANNHparams
    defaults = merge(SelfTrain.defaults, {"train": {"steps": 9000}})

    def __init__(self, hp: SelfTrainDANNHparams, info) -> None:
        super().__init__(hp, info)
        adversary_for(self, hp)

    def align(
        self, fs: torch.Tensor, ft: torch.Tensor, step: int, ys: torch.Tensor, probs_t: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, acc = adversarial_loss(self, self.hp, fs, ft, step, ys, probs_t)
        return loss, {"loss/domain": loss, "acc/domain": acc}
