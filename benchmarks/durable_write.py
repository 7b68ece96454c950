"""What durability costs per checkpoint: ``genda.io.save_torch`` (temp file, fsync, rename,
directory fsync) against a plain ``torch.save`` + rename, on real method checkpoints.

    .venv/bin/python benchmarks/durable_write.py --repeats 20 --dir /tmp
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from genda.config import ExperimentConfig
from genda.data.prepare import DataInfo
from genda.engine.loop import build_method, resolve_config
from genda.io import save_torch


def checkpoint(method: str, size: int, channels: int) -> dict:
    """A method's checkpoint state as the loop saves it (freshly initialised networks)."""
    cfg: ExperimentConfig = resolve_config({"method": method})
    info = DataInfo(channels, size, [str(i) for i in range(10)])
    m = build_method(cfg, info)
    m.configure(100)
    return {"step": 1, "elapsed": 0.0, "method": m.checkpoint_state(), "config": cfg.to_dict()}


def plain_save(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--dir", default=None, help="directory on the disk to measure")
    args = p.parse_args()
    if args.dir:
        os.makedirs(args.dir, exist_ok=True)
    print("| checkpoint | size | plain save + rename (median ms) | durable save (median ms) |")
    print("| --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory(dir=args.dir) as d:
        for method, size, channels in (("dann", 28, 1), ("dcgan", 64, 3), ("ddpm", 28, 1)):
            state = checkpoint(method, size, channels)
            times = {}
            for name, fn in (("plain", plain_save), ("durable", save_torch)):
                ts = []
                for i in range(args.repeats):
                    t0 = time.perf_counter()
                    fn(Path(d) / f"{name}{i % 2}.pt", state)
                    ts.append(time.perf_counter() - t0)
                times[name] = statistics.median(ts) * 1000
            mib = (Path(d) / "durable0.pt").stat().st_size / 2**20
            print(
                f"| {method} {channels}x{size}px | {mib:.1f} MiB | {times['plain']:.1f} | "
                f"{times['durable']:.1f} |"
            )


if __name__ == "__main__":
    main()
