"""Data-parallel training: two CPU processes (gloo) through Fabric's launcher.

The run is the real command line: ``genda train ... --devices 2`` starts rank 0, and Fabric
re-executes the same command for rank 1. The test checks the rank-0 rule (one checkpoint,
one metrics file, figures; metrics broadcast so both ranks agree) and that the logged losses
are what data parallelism defines them to be.
"""

from __future__ import annotations

import csv
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genda.data.prepare import prepare
from genda.data.stream import Stream
from genda.engine import checkpoint as ckpt
from genda.engine.loop import build_method, make_streams, noise_seed, resolve_config

REPO = Path(__file__).resolve().parents[1]
STEPS, BATCH, WORLD = 6, 16, 2
RAW = {
    "method": "dann",
    "name": "run2",
    "data": {"source": "digits", "target": "digits-m", "size": 28, "channels": 1, "limit": 128},
    "train": {
        "steps": STEPS,
        "batch_size": BATCH,
        "devices": WORLD,
        "device": "cpu",  # the CPU reference; on a GPU machine auto would pick CUDA
        "log_every": 1,
        "progress": False,
        # The in-process reference runs contiguous tensors; channels_last picks other conv
        # kernels whose rounding drifts past the tolerance within a few steps.
        "channels_last": False,
        "precision": "32-true",  # the reference runs fp32 (auto is bf16 on AMX CPUs)
    },
}
LOGGED = ("loss/class", "loss/domain", "acc/domain", "acc/train")
# Variables that would make the child believe torchrun or an outer job already launched it.
LAUNCH_VARS = (
    "RANK",
    "LOCAL_RANK",
    "WORLD_SIZE",
    "LOCAL_WORLD_SIZE",
    "NODE_RANK",
    "GROUP_RANK",
    "MASTER_ADDR",
    "MASTER_PORT",
    "TORCHELASTIC_RUN_ID",
    "SLURM_NTASKS",
    "SLURM_JOB_ID",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_history(path: Path) -> list[dict[str, float]]:
    with open(path, newline="") as fh:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(fh)]


class _CaptureStep:
    """Stands in for the optimiser inside ``train_step``: keeps the gradients, steps nothing."""

    def __init__(self, opt: torch.optim.Optimizer, params: list[torch.Tensor], out: list) -> None:
        self.opt, self.params, self.out = opt, params, out

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        self.out.append([p.grad.detach().clone() for p in self.params])


class _NoStep:
    def step(self) -> None:
        pass


def data_parallel_reference() -> list[dict[str, float]]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: one thread is fastest, and robust on a busy machine
    try:
        return _data_parallel_reference()
    finally:
        torch.set_num_threads(threads)


def _data_parallel_reference() -> list[dict[str, float]]:
    """The losses two DDP ranks log, computed in one process.

    A 2x16 DDP run is *not* a 32-image single-process run: each rank's BatchNorm normalises
    with its own 16+16 images (torch's SyncBatchNorm, which would pool them, runs on GPUs only),
    and each rank draws its own dropout masks (seed + 1 + rank). What DDP does guarantee is:
    every rank starts from the same weights, rank r takes ``perm[r::2]`` of one global
    permutation, and the update uses the *mean of the ranks' gradients*; the logged scalars
    are the mean over ranks. So the reference runs ``DANN.train_step`` once per rank on
    that rank's shard with that rank's RNG, averages the gradients, and steps once.
    """
    cfg = resolve_config(RAW)
    tc = cfg.train
    data = prepare(cfg.data, tc.seed)
    torch.manual_seed(tc.seed)  # as loop.build_run: seed, then networks
    method = build_method(cfg, data.info)
    method.total_steps = STEPS
    method.configure(STEPS)
    streams = [make_streams(method, data, tc, "cpu", rank, WORLD) for rank in range(WORLD)]
    rng = []
    for rank in range(WORLD):
        torch.manual_seed(noise_seed(tc.seed, rank))
        rng.append(torch.get_rng_state())
    opt, sched = method.optimizers["main"], method.schedulers["main"]
    params = [p for g in opt.param_groups for p in g["params"]]
    method.train()
    history = []
    for step in range(1, STEPS + 1):
        grads: list[list[torch.Tensor]] = []
        logs = []
        method.optimizers["main"], method.schedulers["main"] = (
            _CaptureStep(opt, params, grads),
            _NoStep(),
        )
        for rank in range(WORLD):
            torch.set_rng_state(rng[rank])
            logs.append(method.train_step({k: s.next() for k, s in streams[rank].items()}, step))
            rng[rank] = torch.get_rng_state()
        method.optimizers["main"], method.schedulers["main"] = opt, sched
        for p, *g in zip(params, *grads, strict=True):
            p.grad = torch.stack(g).mean(0)
        opt.step()
        sched.step()
        history.append({k: sum(float(lg[k].detach()) for lg in logs) / WORLD for k in LOGGED})
    return history


def test_shards_are_the_single_process_batch() -> None:
    """Rank r of 2 with batch 16 takes perm[r::2]: together the ranks see exactly the images
    one process with batch 32 sees, step by step (so the data side of 2x16 == 1x32)."""
    cfg = resolve_config(RAW)
    dom = prepare(cfg.data, 0).split("source")
    single = Stream(dom, 2 * BATCH, "cpu", seed=3)
    ranks = [Stream(dom, BATCH, "cpu", seed=3, rank=r, world=WORLD) for r in range(WORLD)]
    for _ in range(3 * single.per_epoch):  # crosses epoch boundaries
        x, y = single.next()
        parts = [s.next() for s in ranks]
        union = torch.cat([p[0] for p in parts]).flatten(1)
        assert sorted(map(tuple, union.tolist())) == sorted(map(tuple, x.flatten(1).tolist()))
        assert sorted(torch.cat([p[1] for p in parts]).tolist()) == sorted(y.tolist())


@pytest.mark.slow
def test_two_process_ddp_run(tmp_path: Path) -> None:
    out = tmp_path / "run2"
    env = {k: v for k, v in os.environ.items() if k not in LAUNCH_VARS}
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), PYTHONUNBUFFERED="1")
    cmd = [
        sys.executable,
        "-m",
        "genda.cli",
        "train",
        "dann",
        "--data",
        "digits",
        "--target",
        "digits-m",
        "--size",
        "28",
        "--channels",
        "1",
        "--steps",
        str(STEPS),
        "--batch-size",
        str(BATCH),
        "--devices",
        str(WORLD),
        "--set",
        "train.log_every=1",
        "--set",
        "data.limit=128",
        "--set",
        "train.channels_last=false",
        "--set",
        "train.precision=32-true",
        "--set",
        "train.device=cpu",
        "--out",
        str(out),
        "--no-progress",
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "MEMBER: 2/2" in log, "rank 1 never joined:\n" + log[-4000:]

    # Rank 0 alone writes: one checkpoint, no temp files, one metrics file, the figures.
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["last.pt"]
    assert not list(out.rglob("*.tmp"))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == STEPS and 0 <= metrics["target_accuracy"] <= 100
    assert metrics["figures"]
    for fig in metrics["figures"].values():
        assert (out / fig).is_file(), fig
    state = ckpt.load(out)
    assert state["step"] == STEPS and len(state["rng_ranks"]) == WORLD  # each rank's RNG kept

    # Rank 0 evaluates and broadcasts; the CLI prints the (shared) final metrics once.
    printed = re.findall(r"^target_accuracy: (\S+)$", proc.stdout, re.M)
    assert printed == [str(metrics["target_accuracy"])], proc.stdout

    # Loss trajectory: what the two ranks logged (averaged with Runtime.reduce_mean) must be
    # the data-parallel reference computed in this process; float reduction order differs.
    rows = [r for r in read_history(out / "history.csv") if "loss/class" in r]
    assert [int(r["step"]) for r in rows] == list(range(1, STEPS + 1))
    ref = data_parallel_reference()
    for step, (got, want) in enumerate(zip(rows, ref, strict=True), 1):
        for k in ("loss/class", "loss/domain"):
            assert got[k] == pytest.approx(want[k], abs=1e-4), (step, k, got[k], want[k])
        for k in ("acc/domain", "acc/train"):  # at most one of 32 predictions may flip
            assert abs(got[k] - want[k]) <= 1 / 32 + 1e-6, (step, k, got[k], want[k])
    assert rows[-1]["loss/class"] < rows[0]["loss/class"]  # and it learns
