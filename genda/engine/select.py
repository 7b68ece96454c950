"""Unsupervised checkpoint selection (``train.select``): keep the weights of the step whose
score on unlabelled target images is best, and evaluate those instead of the final ones.

A fixed schedule evaluated at its last step needs no selection; an adversarial run whose
target accuracy swings between checkpoints may profit from one, as long as the rule reads
no target label. The rule and the chosen step are written into ``metrics.json``.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from genda.methods.base import unwrap
from genda.metrics.selection import SCORES


class Selector:
    """Scores the method at every :meth:`observe` and remembers the best weights (the digit
    nets are a few MB); :meth:`state_dict` travels in ``last.pt``, so a resumed run chooses
    among the same checkpoints as an uninterrupted one."""

    def __init__(self, rule: str) -> None:
        self.rule = rule
        self.score_fn, self.about = SCORES[rule]
        self.best: tuple[float, int, dict[str, Any]] | None = None
        self.scored: list[int] = []  # every step scored so far

    def state_dict(self) -> dict[str, Any]:
        best = self.best or (None, None, None)
        return dict(zip(("score", "step", "nets"), best, strict=True), scored=list(self.scored))

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.scored = list(state["scored"])
        self.best = (
            None if state["step"] is None else (state["score"], state["step"], state["nets"])
        )

    def observe(self, step: int, method: Any, data: Any, rt: Any) -> float:
        was_training = method.training
        method.eval()
        with rt.local(method), torch.random.fork_rng():  # training's RNG stream untouched
            score = self.score_fn(method.target_probs(data))
        method.train(was_training)
        self.scored.append(step)
        if self.best is None or score > self.best[0]:
            nets = {k: copy.deepcopy(unwrap(v).state_dict()) for k, v in method.nets.items()}
            self.best = (score, step, nets)
        return score

    def restore(self, method: Any) -> None:
        """Load the best-scoring weights back into ``method``."""
        assert self.best is not None, "observe() first"
        for k, state in self.best[2].items():
            unwrap(method.nets[k]).load_state_dict(state)

    def describe(self, steps: int) -> str:
        assert self.best is not None, "observe() first"
        score, step, _ = self.best
        return (
            f"checkpoint of step {step} of {steps}, of {len(self.scored)} scored (steps "
            f"{self.scored[0]}-{self.scored[-1]}, every train.ckpt_every and the last), chosen by "
            f"{self.about} (score {score:.4f}) on unlabelled target train images; no target "
            "labels used"
        )
