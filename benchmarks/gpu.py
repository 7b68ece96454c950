"""One command for a machine with a GPU: genda's training throughput there, peak memory and
GPU utilisation, and a short training of each model that checks losses fall and sampling
works. Prints one table. Runs on embedded data (no files needed), so a bare GPU machine
with the repository's venv is enough; ``--device cpu --smoke`` checks the script itself.

    .venv/bin/python benchmarks/gpu.py                       # on the GPU machine, < 8 minutes
    .venv/bin/python benchmarks/gpu.py --device cpu --smoke  # wiring check anywhere (~1 min)

Throughput is genda's own step (``GendaSteps``: the real Runtime, Stream and train_step) on
DANN (28 px digits, 128 + 128), DCGAN and StyleGAN2 (64 px, batch 64) and DDPM (28 px,
batch 256).
The conventional-pipeline baselines of ``pipeline.py`` / ``gen_pipeline.py`` are CPU-only
today; on a GPU compare against their CPU figures or add a device to them.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from common import GendaSteps, machine, table

MODELS: dict[str, dict[str, Any]] = {
    "dann": {
        "data": {"source": "digits", "target": "digits-m", "size": 28, "channels": 1},
        "batch": 128,
    },
    "dcgan": {"data": {"source": "digits", "size": 64, "channels": 1}, "batch": 64},
    "ddpm": {"data": {"source": "digits", "size": 28, "channels": 1}, "batch": 256},
    "stylegan2": {"data": {"source": "digits", "size": 64, "channels": 1}, "batch": 64},
}


class GPUUse:
    """Mean GPU utilisation (%) from ``nvidia-smi`` polled every 0.2 s while inside."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()

    def _poll(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(
                    ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                    capture_output=True,
                    text=True,
                    timeout=5,
                    check=True,
                )
                self.samples.append(float(out.stdout.split()[0]))
            except (OSError, subprocess.SubprocessError, ValueError, IndexError):
                return  # no nvidia-smi (CPU run): utilisation stays "n/a"
            self._stop.wait(0.2)

    def __enter__(self) -> GPUUse:
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def mean(self) -> str:
        return f"{sum(self.samples) / len(self.samples):.0f}" if self.samples else "n/a"


def config(model: str, args: argparse.Namespace, steps: int):
    from genda.engine.loop import resolve_config

    spec = MODELS[model]
    train = {"steps": steps, "batch_size": spec["batch"], "device": args.device, "progress": False}
    return resolve_config({"method": model, "data": spec["data"], "train": train})


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda") or (device == "auto" and torch.cuda.is_available()):
        torch.cuda.synchronize()


def throughput(model: str, args: argparse.Namespace) -> list[Any]:
    """Images per second of genda's step, GPU utilisation and peak memory."""
    import torch

    from genda.data.prepare import prepare

    cfg = config(model, args, args.warmup + args.steps)
    steps = GendaSteps(cfg, prepare(cfg.data), args.warmup + args.steps)
    steps.run(args.warmup)
    sync(args.device)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    with GPUUse() as use:
        t0 = time.perf_counter()
        steps.run(args.steps)
        sync(args.device)
        secs = time.perf_counter() - t0
    peak = (
        f"{torch.cuda.max_memory_allocated() / 2**20:,.0f}" if torch.cuda.is_available() else "n/a"
    )
    rate = args.steps * cfg.train.batch_size / secs
    return [
        model,
        steps.precision,
        f"{rate:,.0f}",
        f"{1000 * secs / args.steps:.1f}",
        use.mean(),
        peak,
    ]


def short_training(model: str, args: argparse.Namespace, out: Path) -> list[Any]:
    """Train ``--train-steps`` steps: first vs last logged loss, and a sample (generative)."""
    import csv

    from genda import api

    cfg = config(model, args, args.train_steps)
    raw = {**cfg.to_dict(), "train": {**cfg.to_dict()["train"], "log_every": 10}}
    t0 = time.perf_counter()
    metrics = api.train(model, out=out / model, config=raw).metrics
    secs = time.perf_counter() - t0
    with open(out / model / "history.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("time_s")]
    key = next(k for k in rows[0] if k.startswith("loss/"))
    values = [float(r[key]) for r in rows if r[key]]
    checked = (
        "target accuracy {:.1f}%".format(metrics["target_accuracy"]) if model == "dann" else ""
    )
    if model != "dann":
        images = api.sample(out / model, 16, device=args.device, out=out / f"{model}_samples")
        checked = f"{images['images']} samples written"
    return [model, key, f"{values[0]:.3g} -> {values[-1]:.3g}", f"{secs:.0f}", checked]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--steps", type=int, default=50, help="timed steps per model")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--train-steps", type=int, default=500, help="steps of the short trainings")
    p.add_argument("--smoke", action="store_true", help="3 timed steps, 20-step trainings")
    args = p.parse_args()
    if args.smoke:
        args.steps, args.warmup, args.train_steps = 3, 1, 20
    models = args.models.split(",")
    print(machine())
    speed = [throughput(m, args) for m in models]
    print(table(["model", "precision", "images/s", "ms/step", "GPU util %", "peak MiB"], speed))
    with tempfile.TemporaryDirectory(prefix="genda-gpu-") as tmp:
        runs = [short_training(m, args, Path(tmp)) for m in models]
    print(table(["model", "loss", "first -> last", "s", "check"], runs))


if __name__ == "__main__":
    main()
