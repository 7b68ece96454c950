"""Endless shuffled mini-batches straight from an in-memory :class:`Domain`.

This replaces the per-sample ``Dataset``/``DataLoader`` pipeline of the reference scripts:
a batch is one index lookup into a uint8 tensor already on the training device, so there is
no PIL decoding, no worker processes and no host->device copy per step. The permutation of
epoch ``e`` is a pure function of ``(seed, e)``, so the stream's whole state is two integers
and a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import torch

from genda.data.domain import Domain


def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float [-1, 1], the range every genda network expects (the one place
    this conversion is written; :func:`genda.viz.to_uint8` is its inverse)."""
    return x.float().div_(127.5).sub_(1.0)


class Stream:
    """Shuffled batches of ``(images uint8, labels)`` on ``device``, sharded over ranks.

    Every rank walks the same global permutation and takes every ``world``-th index, the
    same sharding as ``DistributedSampler``; ``drop_last`` keeps batch sizes equal.
    """

    def __init__(
        self,
        domain: Domain,
        batch_size: int,
        device: torch.device | str = "cpu",
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.domain = domain
        self.device = torch.device(device)
        self.images = domain.images.to(self.device)
        self.labels = domain.labels.to(self.device)
        n = len(domain)
        self.batch_size = min(batch_size, max(1, n // world))
        self.seed, self.rank, self.world = seed, rank, world
        self.per_epoch = max(1, (n // world) // self.batch_size)
        self.epoch, self.pos = 0, 0
        self._perm = self._permutation(0)

    def _permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        perm = torch.randperm(len(self.domain), generator=g)
        return perm[self.rank :: self.world].to(self.device)

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.pos >= self.per_epoch:
            self.epoch, self.pos = self.epoch + 1, 0
            self._perm = self._permutation(self.epoch)
        idx = self._perm[self.pos * self.batch_size : (self.pos + 1) * self.batch_size]
        self.pos += 1
        return self.images[idx], self.labels[idx]

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.pos = int(state["epoch"]), int(state["pos"])
        self._perm = self._permutation(self.epoch)


def batches(domain: Domain, batch_size: int, device: torch.device | str = "cpu"):
    """Ordered, non-shuffled batches for evaluation (keeps the last partial batch)."""
    for i in range(0, len(domain), batch_size):
        yield (
            domain.images[i : i + batch_size].to(device, non_blocking=True),
            domain.labels[i : i + batch_size].to(device, non_blocking=True),
        )
