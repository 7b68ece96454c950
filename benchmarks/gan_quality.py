"""DCGAN vs improved GAN (and ACGAN) on the same digits, same steps: speed and sample quality.

Every model trains through the engine on the same data with the same batch size, number of
steps and seed, so the differences come from the method (spectral norm, hinge loss, TTUR,
EMA) alone. Quality is judged by an evaluation classifier trained on the real data
(:mod:`genda.metrics.evaluator`): classifier-FID of unconditional samples and, for ACGAN,
how often a sample is recognised as the class it was asked for.

    .venv/bin/python benchmarks/gan_quality.py                       # full comparison
    .venv/bin/python benchmarks/gan_quality.py --steps 20 --eval-steps 50 --samples 200   # smoke
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch


def classifier_fid(method: Any, real: torch.Tensor, evaluator: Any, n: int) -> float | None:
    """Hook for the classifier-FID of ``method``'s samples against ``real`` uint8 images.

    TODO(metrics): uses ``genda.metrics.generative.classifier_fid(samples, real, evaluator)``
    once that module lands (another engineer's work); until then returns None and the table
    says so. Keep this the only place the benchmark touches FID.
    """
    try:
        from genda.metrics.generative import classifier_fid as fid  # type: ignore[attr-defined]
    except ImportError:
        return None
    with torch.no_grad():
        samples = method.sample(n)
    return float(fid(samples, real, evaluator))


def class_accuracy(method: Any, evaluator: Any, n: int) -> float:
    """Percent of conditional samples the evaluation classifier assigns to the requested class."""
    k = method.info.num_classes
    labels = torch.arange(n) % k
    with torch.no_grad():
        samples = method.sample(n, labels)
    return 100.0 * float((evaluator.predict(samples.cpu()) == labels).float().mean())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", default="dcgan,gan,acgan")
    p.add_argument("--data", default="digits")
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--channels", type=int, default=1)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--samples", type=int, default=2000, help="generated images per quality score")
    p.add_argument(
        "--eval-steps", type=int, default=1000, help="training steps of the evaluation classifier"
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    p.add_argument("--out", help="folder for the run directories (default: a temporary one)")
    args = p.parse_args()

    from genda.data.prepare import prepare
    from genda.engine.loop import load_method, resolve_config, train
    from genda.engine.runtime import resolve_device
    from genda.metrics.evaluator import get_evaluator

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="genda-gan-quality-"))
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    base = {
        "data": {"source": args.data, "size": args.size, "channels": args.channels},
        "train": {
            "steps": args.steps,
            "batch_size": args.batch_size,
            "seed": args.seed,
            "device": args.device,
            "threads": args.threads,
            "progress": False,
            "ckpt_every": 0,
            "log_every": max(1, min(100, args.steps)),
        },
    }
    data = prepare(resolve_config({"method": "dcgan", **base}).data, args.seed)  # one copy for all
    evaluator = get_evaluator(
        args.data,
        size=args.size,
        channels=args.channels,
        steps=args.eval_steps,
        seed=args.seed,
        device=device,
        verbose=True,
    )
    print(
        f"evaluation classifier: {evaluator.name}, real test accuracy {evaluator.test_accuracy:.2f}%"
    )
    real = data.source.test.images

    rows = []
    for name in args.methods.split(","):
        run_dir = out / name
        t0 = time.perf_counter()
        metrics = train(resolve_config({"method": name, **base}), run_dir, data=data)
        _, method = load_method(run_dir, device)
        torch.manual_seed(args.seed)
        fid = classifier_fid(method, real, evaluator, args.samples)
        acc = (
            class_accuracy(method, evaluator, args.samples)
            if method.conditioning != "none"
            else None
        )
        rows.append((name, metrics["wall_time_s"] / args.steps, metrics["wall_time_s"], fid, acc))
        print(
            f"{name}: {args.steps} steps in {metrics['wall_time_s']:.1f} s "
            f"({1000 * rows[-1][1]:.0f} ms/step), total with eval {time.perf_counter() - t0:.1f} s",
            flush=True,
        )

    fmt = lambda v, spec: "n/a" if v is None else format(v, spec)  # noqa: E731
    print(
        f"\n{args.data} {args.size}px, {args.steps} steps, batch {args.batch_size}, seed {args.seed}, "
        f"device {device}; scores on {args.samples} samples with {evaluator.name}"
    )
    print(f"{'method':<8} {'ms/step':>8} {'wall s':>8} {'classifier-FID':>15} {'class acc %':>12}")
    for name, per_step, wall, fid, acc in rows:
        print(
            f"{name:<8} {1000 * per_step:>8.0f} {wall:>8.1f} {fmt(fid, '15.2f'):>15} {fmt(acc, '12.1f'):>12}"
        )
    if all(r[3] is None for r in rows):
        print(
            "classifier-FID: n/a -- TODO(metrics): genda.metrics.generative.classifier_fid is not "
            "available yet; plug it in at benchmarks/gan_quality.py:classifier_fid"
        )
    print(f"run directories (sample grids under */figures): {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
