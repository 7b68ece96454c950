"""Benchmark: sample quality vs. sampling cost of a conditional DDPM.

Trains (or reuses) a class-conditional DDPM with classifier-free guidance on ``digits-m``
(28-px colour digits; ``--data digits`` for grey), then samples the same number of images
per class with DDIM at 25/50/100 steps (Song et al., 2021) and with full ancestral DDPM
sampling (Ho et al., 2020), and prints for each: classifier accuracy of the generated
digits (an evaluation classifier trained on the real data judges whether each image shows
the requested digit), classifier FID against the real training images, and images/s.

Usage::

    python benchmarks/ddpm_quality.py --out runs/bench_ddpm             # full (GPU advised)
    python benchmarks/ddpm_quality.py --smoke --out /tmp/bench_smoke    # seconds, checks wiring

Results are also written to ``OUT/benchmark.json``. Re-running with the same ``--out``
reuses the trained run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_run_args, train_section  # noqa: E402


def _label(row: dict) -> str:
    return row["sampler"] if row["eta"] is None else f"{row['sampler']} eta={row['eta']:g}"


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="digits-m", help="data spec (class-labelled)")
    p.add_argument("--channels", type=int, default=None, help="default: 3 for digits-m, else 1")
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--steps", type=int, default=4000, help="training steps")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--width", type=int, default=32, help="U-Net width (hparams.width)")
    p.add_argument("--timesteps", type=int, default=500, help="T (hparams.timesteps)")
    p.add_argument(
        "--beta-schedule", default="linear", help="hparams.beta_schedule: linear, cosine"
    )
    p.add_argument("--guidance", type=float, default=2.0, help="CFG weight w for all samplers")
    p.add_argument("--etas", default="0,1", help="DDIM eta values to compare (0 = deterministic)")
    p.add_argument("--ddim-steps", default="25,50,100", help="DDIM step counts to compare")
    p.add_argument(
        "--no-ancestral",
        action="store_true",
        help="skip full T-step ancestral sampling (the slowest row)",
    )
    p.add_argument(
        "--n-per-class", type=int, default=50, help="generated images per class and sampler"
    )
    p.add_argument("--evaluator-steps", type=int, default=1000)
    add_run_args(p)
    p.add_argument("--out", default="runs/bench_ddpm")
    p.add_argument("--smoke", action="store_true", help="tiny everything: checks the script runs")
    args = p.parse_args(argv)

    from genda.config import DataConfig
    from genda.data.prepare import prepare
    from genda.engine.generate import generate
    from genda.engine.loop import load_method, resolve_config, train_or_reuse
    from genda.engine.runtime import resolve_device
    from genda.metrics import generative as gm
    from genda.metrics.evaluator import get_evaluator

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.smoke:
        args.steps, args.width, args.timesteps, args.n_per_class = 20, 8, 40, 2
        args.evaluator_steps, args.batch_size = 30, 32
    channels = args.channels or (3 if args.data == "digits-m" else 1)
    out = Path(args.out)
    run = out / "run"
    device = resolve_device(args.device)
    if not (run / "metrics.json").is_file():
        cfg = resolve_config(
            {
                "method": "ddpm",
                "name": "bench_ddpm",
                "data": {
                    "source": args.data,
                    "size": args.size,
                    "channels": channels,
                    **({"limit": 256} if args.smoke else {}),
                },
                "train": train_section(
                    args,
                    log_every=5 if args.smoke else 100,
                    progress=not args.smoke,
                    ckpt_every=0 if args.smoke else 1000,
                ),
                "hparams": {
                    "width": args.width,
                    "timesteps": args.timesteps,
                    "beta_schedule": args.beta_schedule,
                    "guidance": args.guidance,
                    "sample_steps": min(25, args.timesteps),
                },
            }
        )
        train_or_reuse(cfg, run)
    trained = json.loads((run / "metrics.json").read_text())
    train_s_per_step = trained["wall_time_s"] / max(trained["steps"], 1)
    cfg, method = load_method(run, device)
    T = method.hp.timesteps

    # A smoke run's under-trained classifier stays out of the shared evaluator cache.
    evaluator = get_evaluator(
        args.data,
        "",
        args.size,
        channels,
        steps=args.evaluator_steps,
        device=device,
        cache_root=out / "evaluators" if args.smoke else None,
        verbose=True,
    )
    real = prepare(
        DataConfig(source=args.data, size=args.size, channels=channels), 0
    ).source.train.images
    fid_feat = evaluator.feature_module("features")
    f_real = gm.embed(real, fid_feat)

    k = method.info.num_classes
    labels = torch.arange(k).repeat_interleave(args.n_per_class)
    etas = [float(e) for e in args.etas.split(",")]
    ddim_steps = [int(s) for s in args.ddim_steps.split(",")]
    settings = [("ddim", s, e) for e in etas for s in ddim_steps if s <= T]
    if not args.no_ancestral:
        settings.append(("ddpm", T, None))
    rows = []
    for sampler, steps, eta in settings:
        t0 = time.perf_counter()
        images = generate(
            method,
            len(labels),
            labels,
            seed=args.seed,
            sampler=sampler,
            steps=steps,
            guidance=args.guidance,
            eta=eta,
        )
        if device == "cuda":
            torch.cuda.synchronize()
        secs = time.perf_counter() - t0
        f_fake = gm.embed(images, fid_feat)
        rows.append(
            {
                "sampler": sampler,
                "steps": steps,
                "eta": eta,
                "guidance": args.guidance,
                "images": len(images),
                "classifier_accuracy": gm.classifier_accuracy(images, labels, evaluator),
                "fid": round(gm.fid_features(f_real, f_fake), 3),
                "fid_interval": [round(v, 3) for v in gm.fid_interval(f_real, f_fake)],
                "seconds": round(secs, 2),
                "images_per_s": round(len(images) / secs, 2),
            }
        )
        print(
            f"{_label(rows[-1]):>14} {steps:4d} steps: accuracy {rows[-1]['classifier_accuracy']:6.2f}%  "
            f"FID {rows[-1]['fid']:8.3f} {rows[-1]['fid_interval']}  "
            f"{rows[-1]['images_per_s']:8.2f} images/s",
            flush=True,
        )

    result = {
        "data": args.data,
        "channels": channels,
        "train_steps": trained["steps"],
        "train_s_per_step": round(train_s_per_step, 4),
        "width": method.hp.width,
        "timesteps": T,
        "beta_schedule": method.hp.beta_schedule,
        "device": device,
        "threads": torch.get_num_threads(),
        "evaluator": evaluator.name,
        "evaluator_accuracy": evaluator.test_accuracy,
        "fid_extractor": evaluator.name,
        "results": rows,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "benchmark.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"\n{args.data}, {trained['steps']} training steps ({train_s_per_step:.3f} s/step), "
        f"evaluator {evaluator.name} ({evaluator.test_accuracy:.2f}% on real test images)"
    )
    print(
        "| sampler | steps | classifier accuracy (%) | classifier FID [95% bootstrap] | images/s |"
    )
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        print(
            f"| {_label(r)} | {r['steps']} | {r['classifier_accuracy']:.2f} | {r['fid']:.3f} "
            f"[{r['fid_interval'][0]:.3f}, {r['fid_interval'][1]:.3f}] | "
            f"{r['images_per_s']:.2f} |"
        )
    print(f"wrote {out / 'benchmark.json'}")
    return result


if __name__ == "__main__":
    main()
