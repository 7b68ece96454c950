"""Devices, precision and data parallelism, delegated to Lightning Fabric.

Fabric wraps torch.distributed/DDP: with ``devices > 1`` it launches the processes itself
(or joins the ones ``torchrun`` started), wraps every network in DDP so gradients are
averaged by DDP's reducer, and runs forwards under the chosen autocast precision. genda
adds no launcher and no gradient averaging of its own.
"""

from __future__ import annotations

import os

import torch

from genda.engine.config import ConfigError, TrainConfig


def resolve_device(name: str) -> str:
    """``auto`` -> cuda, mps or cpu; an unavailable explicit choice is a config error."""
    has = {"cuda": torch.cuda.is_available(),
           "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
           "cpu": True}
    if name == "auto":
        return next(k for k in ("cuda", "mps", "cpu") if has[k])
    if not has.get(name, False):
        raise ConfigError(f"train.device: {name!r} is not available on this machine; "
                          f"available: {', '.join(k for k, v in has.items() if v)}")
    return name


class Runtime:
    """One process's view of the run: its device, rank and the Fabric doing the plumbing."""

    def __init__(self, tc: TrainConfig) -> None:
        from lightning_fabric import Fabric

        accel = resolve_device(tc.device)
        precision = tc.precision
        if precision == "auto":
            precision = "bf16-mixed" if accel == "cuda" else "32-true"
        world = tc.devices * tc.num_nodes
        if tc.threads:
            torch.set_num_threads(tc.threads)
        if world > 1 and accel == "cpu" and not tc.threads:
            # N processes on one CPU: share the cores instead of oversubscribing them.
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // tc.devices))
        self.fabric = Fabric(accelerator=accel, devices=tc.devices, num_nodes=tc.num_nodes,
                             strategy="ddp" if world > 1 else "auto", precision=precision)
        self.fabric.launch()
        self.precision = precision
        self.channels_last = tc.channels_last
        self.compile = tc.compile
        if tc.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        elif accel == "cuda":
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True

    @property
    def device(self) -> torch.device:
        return self.fabric.device

    @property
    def rank(self) -> int:
        return self.fabric.global_rank

    @property
    def world(self) -> int:
        return self.fabric.world_size

    @property
    def is_main(self) -> bool:
        return self.fabric.global_rank == 0

    def setup(self, method) -> None:
        """Move the method's nets to the device, wrap them (DDP/precision), set up optimisers."""
        method.to(self.device)
        if self.channels_last:
            method.to(memory_format=torch.channels_last)
            method.channels_last = True
        for k in list(method.nets.keys()):
            net = method.nets[k]
            if self.compile:
                net = torch.compile(net)
            if any(p.requires_grad for p in net.parameters()):
                method.nets[k] = self.fabric.setup_module(net)
            else:
                method.nets[k] = net
        for k, opt in method.optimizers.items():
            method.optimizers[k] = self.fabric.setup_optimizers(opt)
        method.backward = self.fabric.backward

    def reduce_mean(self, values: torch.Tensor) -> torch.Tensor:
        """Average a tensor over processes (identity in a single process)."""
        if self.world == 1:
            return values
        return self.fabric.all_reduce(values, reduce_op="mean")

    def barrier(self) -> None:
        if self.world > 1:
            self.fabric.barrier()
