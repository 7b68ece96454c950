"""What every method provides to the engine: its networks, optimisers and one train step.

A method file holds only what differs between methods (networks it builds, its losses, its
update). The loop, checkpoints, devices and logging live in :mod:`genda.engine`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from genda.data.prepare import DataInfo
from genda.data.stream import to_float

Batch = dict[str, tuple[torch.Tensor, torch.Tensor]]


class Method(nn.Module):
    """Base class. Subclasses set ``name``, ``Hparams``, ``streams`` and implement
    :meth:`configure` and :meth:`train_step`.

    ``streams`` names the training streams a step consumes: ``source`` (labelled source
    train split) and/or ``target`` (target train split; adaptation methods must not read its
    labels). ``train_step`` returns scalar tensors to log; it must not call ``.item()``
    (the engine syncs once per ``log_every`` steps).
    """

    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""  # "uda" or "generative"
    Hparams: ClassVar[type] = object
    streams: ClassVar[tuple[str, ...]] = ("source",)
    # Defaults this method needs in the train/data sections (overridden by the user's config).
    defaults: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(self, hp: Any, info: DataInfo) -> None:
        super().__init__()
        self.hp, self.info = hp, info
        self.nets = nn.ModuleDict()
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, torch.optim.lr_scheduler.LRScheduler] = {}
        self.backward: Callable[[torch.Tensor], None] = lambda loss: loss.backward()
        # ``torch.autograd.grad`` for gradient penalties (R1, path length); the Runtime swaps
        # in one that Fabric's mixed-precision wrappers accept, as it does ``backward``.
        self.grad: Callable[..., tuple[torch.Tensor, ...]] = torch.autograd.grad
        self.total_steps = 1

    # -- to implement -------------------------------------------------------------------
    def configure(self, total_steps: int) -> None:
        """Create ``self.optimizers`` (and ``self.schedulers``) for a run of ``total_steps``."""
        raise NotImplementedError

    def train_step(self, batch: Batch, step: int) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def evaluate(self, data: Any, run_dir: Path | None = None) -> dict[str, Any]:
        """Metrics on held-out data; with ``run_dir`` also write figures there."""
        return {}

    # -- shared ---------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """uint8 batch -> float [-1, 1] in the memory format the nets were set up with."""
        x = to_float(x)
        return (
            x.contiguous(memory_format=torch.channels_last)
            if getattr(self, "channels_last", False)
            else x
        )

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per network (``metrics.json``: comparisons name the models' sizes)."""
        return {k: sum(p.numel() for p in unwrap(net).parameters()) for k, net in self.nets.items()}

    def architecture(self) -> str:
        """The printed networks with parameter counts, for ``architecture.txt``."""
        counts = self.parameter_counts()
        parts = [
            f"== {k} ({counts[k]:,} parameters)\n{unwrap(net)}" for k, net in self.nets.items()
        ]
        return "\n\n".join(parts) + "\n"

    def checkpoint_state(self) -> dict[str, Any]:
        return {
            "method": self.name,
            "info": self.info.__dict__,
            "nets": {k: unwrap(v).state_dict() for k, v in self.nets.items()},
            "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
            "schedulers": {k: s.state_dict() for k, s in self.schedulers.items()},
        }

    def load_checkpoint_state(self, state: dict[str, Any], weights_only: bool = False) -> None:
        from genda.errors import CheckpointError

        if state.get("method") != self.name:
            raise CheckpointError(
                f"checkpoint is for method {state.get('method')!r}, not {self.name!r}"
            )
        if state.get("info") and (state["info"]["size"], state["info"]["channels"]) != (
            self.info.size,
            self.info.channels,
        ):
            raise CheckpointError(
                f"checkpoint was trained on {state['info']['channels']}x{state['info']['size']}px images, "
                f"this run uses {self.info.channels}x{self.info.size}px"
            )
        for k, sd in state["nets"].items():
            try:
                unwrap(self.nets[k]).load_state_dict(sd)
            except (RuntimeError, KeyError) as e:
                raise CheckpointError(
                    f"checkpoint network {k!r} does not match this model: {e}"
                ) from e
        if weights_only:
            return
        for k, sd in state["optimizers"].items():
            self.optimizers[k].load_state_dict(sd)
        for k, sd in state["schedulers"].items():
            self.schedulers[k].load_state_dict(sd)


def unwrap(net: nn.Module) -> nn.Module:
    """The plain network inside Fabric/DDP and ``torch.compile`` wrappers."""
    net = getattr(net, "_original_module", net)
    return getattr(net, "_orig_mod", net)


def set_requires_grad(net: nn.Module, flag: bool) -> None:
    for p in net.parameters():
        p.requires_grad_(flag)


@contextmanager
def frozen(net: nn.Module) -> Iterator[None]:
    """Forwards inside build no graph for ``net``'s weights, so a backward through them (a GAN's
    generator loss through D) skips weight gradients that would be discarded anyway.

    Not under DDP: its reducer expects a gradient for every trainable parameter in each
    backward, so a DDP-wrapped net is left as it is (its gradients are then all-reduced and
    discarded, as before).
    """
    inner = getattr(net, "_forward_module", net)
    if isinstance(inner, nn.parallel.DistributedDataParallel):
        yield
        return
    params = [p for p in net.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in params:
            p.requires_grad_(True)
