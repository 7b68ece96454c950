"""Devices, precision and data parallelism, delegated to Lightning Fabric.

Fabric wraps torch.distributed/DDP: with ``devices * num_nodes > 1`` it launches the
processes itself (re-executing the command line once per extra local rank) or joins the
ones ``torchrun`` started, wraps every trainable network in DDP so gradients are averaged by
DDP's reducer, and runs forwards under the chosen autocast precision. genda adds no
launcher and no gradient averaging of its own; what it adds is the rank-0 rule: only rank 0
evaluates, draws figures and writes files, and it shares its metrics with the other ranks.

- one process: ``genda train ...``
- one machine, N processes (GPUs, or CPU processes with gloo): ``genda train ... --devices N``
- several machines, on each: ``torchrun --nnodes M --nproc-per-node N --rdzv-backend c10d
  --rdzv-endpoint HOST:PORT --rdzv-id JOB -m genda.cli train ... --devices N
  --set train.num_nodes=M`` (Fabric detects torchrun's environment; the counts must match
  torchrun's). Every node needs the data; ``--resume`` needs the run directory on storage
  all nodes share, since every rank reads the checkpoint.

``--batch-size`` is per process. BatchNorm normalises each process's batch separately;
with ``train.sync_batchnorm`` (CUDA only) it pools the
statistics of all processes.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from genda.config import ConfigError, TrainConfig
from genda.engine.precision import auto_precision


def resolve_device(name: str) -> str:
    """``auto`` -> cuda, mps or cpu; an unavailable explicit choice is a config error."""
    has = {
        "cuda": torch.cuda.is_available(),
        "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
        "cpu": True,
    }
    if name == "auto":
        return next(k for k in ("cuda", "mps", "cpu") if has[k])
    if not has.get(name, False):
        raise ConfigError(
            f"train.device: {name!r} is not available on this machine; "
            f"available: {', '.join(k for k, v in has.items() if v)}"
        )
    return name


def check_torchrun(tc: TrainConfig) -> None:
    """Under ``torchrun`` the process layout is torchrun's: the config must describe it."""
    if not (torch.distributed.is_available() and torch.distributed.is_torchelastic_launched()):
        return
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_WORLD_SIZE", world))
    if (tc.devices, tc.num_nodes) != (local, world // max(local, 1)):
        raise ConfigError(
            f"launched by torchrun with {world} processes ({local} per node) but train.devices="
            f"{tc.devices} and train.num_nodes={tc.num_nodes}; pass --devices {local}"
            + (f" --set train.num_nodes={world // local}" if world // local > 1 else "")
        )


def check_compile(accel: str) -> None:
    """``train.compile``: fail at start-up, not at the first step, when it cannot work here."""
    if not hasattr(torch, "compile"):
        raise ConfigError("train.compile=true needs torch.compile (PyTorch >= 2.0)")
    compilers = (os.environ.get("CXX", ""), "g++", "c++", "clang++")
    if accel == "cpu" and not any(shutil.which(c) for c in compilers if c):
        raise ConfigError(
            "train.compile=true on CPU needs a C++ compiler (g++ or clang++, or $CXX) for "
            "torch.compile's inductor backend; install one or set train.compile=false"
        )


def _amp_notice(record: logging.LogRecord) -> bool:
    return "Automatic Mixed Precision" not in record.getMessage()


def resolve_channels_last(setting: bool | str, precision: str) -> bool:
    """Whether a run with ``train.channels_last = setting`` uses channels_last at ``precision``.

    Why ``"fp32"``: the memory format that pays depends on the precision for some networks:
    the DDPM U-Net step is faster with channels_last in fp32 and slower with it under bf16
    autocast (figures: ``benchmarks/README.md``, gen_pipeline.py).
    """
    return setting is True or (setting == "fp32" and precision == "32-true")


def fabric_grad(*args: Any, **kwargs: Any) -> tuple[torch.Tensor, ...]:
    """``torch.autograd.grad`` through Fabric-wrapped nets.

    Under a precision plugin with its own backward (``bf16-mixed``, the default on CPUs with
    AMX and on CUDA) Fabric's wrappers raise on any backward pass that does not run inside
    ``fabric.backward``, the gradient of a gradient penalty included. Fabric has no public
    ``grad``, so this sets the flag ``fabric.backward`` sets; bf16 needs no loss scaling."""
    import lightning_fabric.wrappers as wrappers

    wrappers._in_fabric_backward = True
    try:
        return torch.autograd.grad(*args, **kwargs)
    finally:
        wrappers._in_fabric_backward = False


class Runtime:
    """One process's view of the run: its device, rank and the Fabric doing the plumbing."""

    def __init__(self, tc: TrainConfig) -> None:
        from lightning_fabric import Fabric

        # Fabric announces its precision on every start ("Using bfloat16 Automatic Mixed
        # Precision"); genda records the resolved precision in metrics.json instead. Its other
        # messages (distributed set-up, warnings) stay.
        log = logging.getLogger("lightning_fabric.utilities.rank_zero")
        if _amp_notice not in log.filters:
            log.addFilter(_amp_notice)

        accel = resolve_device(tc.device)
        precision = auto_precision(accel) if tc.precision == "auto" else tc.precision
        world = tc.devices * tc.num_nodes
        check_torchrun(tc)
        if tc.compile:
            check_compile(accel)
        self.sync_batchnorm = tc.sync_batchnorm and world > 1
        if self.sync_batchnorm and accel != "cuda":
            raise ConfigError(
                "train.sync_batchnorm needs CUDA devices (torch's SyncBatchNorm "
                f"does not run on {accel})"
            )
        # Fabric picks gloo on CPU and NCCL on CUDA for "ddp", and the subprocess launcher
        # unless torchrun/SLURM already started the processes.
        self.fabric = Fabric(
            accelerator=accel,
            devices=tc.devices,
            num_nodes=tc.num_nodes,
            strategy="ddp" if world > 1 else "auto",
            precision=precision,
        )
        self.fabric.launch()
        # After launch: Fabric's launcher sets cpu_count // devices threads per process
        # (unless OMP_NUM_THREADS is set); an explicit train.threads wins over both.
        if tc.threads:
            torch.set_num_threads(tc.threads)
        self.precision = precision
        self.channels_last = resolve_channels_last(tc.channels_last, precision)
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
        """Move the method's nets to the device, wrap them (DDP/precision), set up optimisers.

        With ``compile`` each net is ``torch.compile``d first; Fabric's ``setup_module``
        strips the compiled wrapper, wraps the plain net (DDP, precision) and compiles the
        wrapped one again (torch's DDP optimizer then splits graphs at gradient buckets).
        Compiled kernels round differently from eager ones: on DANN digit batches gradients
        agreed with eager to 1e-7 on some batches and ~0.5% (encoder convs) on others, so a
        compiled run is not bit-comparable with an eager one (DDP's mean is still exact).
        """
        method.to(self.device)
        if self.channels_last:
            method.to(memory_format=torch.channels_last)
            method.channels_last = True
        for k in list(method.nets.keys()):
            net = method.nets[k]
            trainable = any(p.requires_grad for p in net.parameters())
            if self.sync_batchnorm and trainable:
                net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
            if self.compile:
                net = torch.compile(net)
            method.nets[k] = self.fabric.setup_module(net) if trainable else net
        for k, opt in method.optimizers.items():
            method.optimizers[k] = self.fabric.setup_optimizers(opt)
        method.backward = self.fabric.backward
        method.grad = fabric_grad

    @contextmanager
    def local(self, method) -> Iterator[None]:
        """Call the method's nets without DDP and ``torch.compile`` (precision kept).

        A DDP forward may broadcast buffers, a collective every rank must join; evaluation runs
        on rank 0 alone, so it must not go through DDP. Compiled nets would recompile for
        evaluation's batch sizes and eval mode, so evaluation uses the plain nets too.
        """
        swapped: list[tuple[Any, Any]] = []
        plain: dict[str, Any] = {}
        for k, net in method.nets.items():
            fwd = getattr(net, "_forward_module", None)
            if fwd is not None:  # a Fabric wrapper: keep it (it does precision), bypass the rest
                inner = net._original_module
                inner = getattr(inner, "_orig_mod", inner)
                if fwd is not inner:
                    net._forward_module = inner
                    swapped.append((net, fwd))
            elif hasattr(net, "_orig_mod"):  # compiled but not set up (frozen nets)
                plain[k] = net
                method.nets[k] = net._orig_mod
        try:
            yield
        finally:
            for net, fwd in swapped:
                net._forward_module = fwd
            for k, net in plain.items():
                method.nets[k] = net

    def evaluate(self, method, data, run_dir=None) -> dict[str, Any]:
        """``method.evaluate`` on rank 0 (files and figures there), its metrics sent to every rank."""
        metrics: dict[str, Any] | None = None
        if self.is_main:
            was_training = method.training
            method.eval()
            try:
                with self.local(method):
                    metrics = method.evaluate(data, run_dir)
            finally:
                method.train(was_training)
        if self.world > 1:
            metrics = self.fabric.broadcast(metrics, src=0)
        return metrics

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` (picklable) on every rank, e.g. a decision only rank 0 can make."""
        return obj if self.world == 1 else self.fabric.broadcast(obj, src=0)

    def gather_object(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (picklable), in rank order, on every rank."""
        if self.world == 1:
            return [obj]
        out: list[Any] = [None] * self.world
        torch.distributed.all_gather_object(out, obj)
        return out

    def reduce_mean(self, values: torch.Tensor) -> torch.Tensor:
        """Average a tensor over processes (identity in a single process)."""
        if self.world == 1:
            return values
        return self.fabric.all_reduce(values, reduce_op="mean")

    def barrier(self) -> None:
        if self.world > 1:
            self.fabric.barrier()
