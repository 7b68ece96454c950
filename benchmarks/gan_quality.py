"""DCGAN vs improved GAN (and ACGAN) on the same digits, same steps: speed and sample quality.

Every model trains through the engine on the same data with the same batch size, number of
steps and seed, so differences come from the method (spectral norm, hinge loss, TTUR, EMA)
alone. The summary names the winner of DCGAN ("model A") vs the improved GAN ("model B")
and checks ACGAN's class accuracy against the 95% target. Quality is measured with the evaluation classifier trained on the real data
(:mod:`genda.metrics.evaluator`, cached after the first use): classifier-FID against the
real test split (lower is better; only comparable within one table, same extractor and
sample count) and, for conditional models, the percentage of samples recognised as the
class they were asked for (:mod:`genda.metrics.generative`).

    .venv/bin/python benchmarks/gan_quality.py                       # full comparison (2000 steps)
    .venv/bin/python benchmarks/gan_quality.py --steps 20 --samples 200 --threads 1   # smoke
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_run_args, train_section  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", default="dcgan,gan,acgan")
    p.add_argument("--data", default="digits")
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--samples", type=int, default=2000, help="generated images per score")
    p.add_argument("--eval-steps", type=int, default=1000, help="evaluation classifier steps")
    add_run_args(p)
    p.add_argument("--out", help="folder for the run directories (default: a temporary one)")
    args = p.parse_args()

    from genda.data.prepare import prepare
    from genda.engine.generate import generate, request_labels
    from genda.engine.loop import load_method, resolve_config, train_or_reuse
    from genda.engine.runtime import resolve_device
    from genda.metrics.evaluator import get_evaluator
    from genda.metrics.generative import classifier_accuracy, fid, make_extractors

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="genda-gan-quality-"))
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    base = {
        "data": {"source": args.data, "size": args.size, "channels": args.channels},
        "train": train_section(
            args, progress=False, ckpt_every=0, log_every=max(1, min(100, args.steps))
        ),
    }
    data = prepare(resolve_config({"method": "dcgan", **base}).data, args.seed)  # shared by all
    evaluator = get_evaluator(
        args.data,
        size=args.size,
        channels=args.channels,
        steps=args.eval_steps,
        seed=args.seed,
        device=device,
        verbose=True,
    )
    extractor = make_extractors(evaluator=evaluator).fid
    real = data.source.test.images
    print(f"evaluator {evaluator.name}: real test accuracy {evaluator.test_accuracy:.2f}%")

    rows = []
    for name in args.methods.split(","):
        t0 = time.perf_counter()
        metrics = train_or_reuse(resolve_config({"method": name, **base}), out / name, data=data)
        _, method = load_method(out / name, device)
        labels = request_labels(method, args.samples)
        samples = generate(method, args.samples, labels, seed=args.seed)
        score = fid(real, samples, extractor)
        acc = None if labels is None else classifier_accuracy(samples, labels, evaluator)
        per_step = metrics["wall_time_s"] / args.steps
        rows.append((name, per_step, metrics["wall_time_s"], score, acc))
        print(
            f"{name}: {args.steps} steps in {metrics['wall_time_s']:.1f} s "
            f"({1000 * per_step:.0f} ms/step); with scoring {time.perf_counter() - t0:.1f} s",
            flush=True,
        )

    print(
        f"\n{args.data} {args.size}px, {args.steps} steps, batch {args.batch_size}, "
        f"seed {args.seed}, {device}; {args.samples} samples scored with {evaluator.name}"
    )
    if str(device) == "cpu" and hasattr(os, "getloadavg"):
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(
            f"cpu: {torch.get_num_threads()} torch threads, {os.cpu_count()} cores, "
            f"load average {load} (ms/step depends on it)"
        )
    print(f"{'method':<8} {'ms/step':>8} {'wall s':>8} {'classifier-FID':>15} {'class acc %':>12}")
    for name, per_step, wall, score, acc in rows:
        acc_s = "n/a" if acc is None else f"{acc:.1f}"
        print(f"{name:<8} {1000 * per_step:>8.0f} {wall:>8.1f} {score:>15.2f} {acc_s:>12}")
    scores = {name: (score, acc) for name, _, _, score, acc in rows}
    if "dcgan" in scores and "gan" in scores:
        a, b = scores["dcgan"][0], scores["gan"][0]
        winner = "improved GAN (gan)" if b < a else "DCGAN (dcgan)"
        print(
            f"winner at {args.steps} steps: {winner}; classifier-FID dcgan {a:.2f} vs gan {b:.2f} "
            f"({100 * (a - b) / a:+.0f}% for gan)"
        )
    if "acgan" in scores and scores["acgan"][1] is not None:
        acc = scores["acgan"][1]
        verdict = "meets" if acc >= 95 else "misses"
        print(f"acgan class accuracy {acc:.1f}% ({verdict} the 95% target)")
    print(f"run directories (sample grids in */figures): {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
