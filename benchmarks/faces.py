"""Generative models on real 64-px CelebA faces: DCGAN, improved GAN, ACGAN (Smiling), VAE.

Why: the issue's face targets are stated on real faces, and a face-detection rate means
nothing without the rate on real faces measured with the same detector settings (tight
64-px crops defeat the Haar cascade on some real faces too; see
:mod:`genda.metrics.faces`). This script trains every model the same way and reports both.

Targets checked (course reports on CelebA 64x64: face-detection rate 89-94%):

- DCGAN and the improved GAN: face-detection rate of generated faces >= 90%.
- ACGAN conditioned on ``Smiling``: pairs generated from the *same noise* with the attribute
  off and on (:meth:`genda.methods.acgan.ACGAN.sample_pairs`) are judged by the attribute
  classifier genda trains on the real faces (:mod:`genda.metrics.evaluator`); at least 90% of
  the generated images, of both attribute values, must be classified as the value they
  were asked for. The classifier's own accuracy on the real validation faces is printed
  beside it: it bounds what the generated images can score.
- VAE: reconstruction MSE (per pixel, [0, 1] scale, real validation faces) and its samples
  scored like the GANs' (no numeric target).

Every model trains through the engine (:func:`genda.engine.loop.train`) on the same data with
the same batch size, steps and seed; :func:`genda.engine.generate.evaluate_run` then scores
``--samples`` images of each (face-detection rate generated vs real, classifier-FID, and
merges them into the run's ``metrics.json``). The classifier-FID extractor depends on the
model: DCGAN/GAN/VAE are scored with the 40-attribute evaluator, ACGAN with its ``Smiling``
evaluator, so FIDs compare only between rows with the same extractor (the table names it).

Budget: the default of 5,000 steps at batch 64 (~46 epochs of the 7,000 training faces) at
the standard width 64 is meant for a GPU (minutes per model). On a 2-core CPU,
``--width 32 --steps 3000`` (10-12 min per GAN on one core) meets the improved GAN's and
ACGAN's targets; DCGAN needs 6,000 steps there (benchmarks/README.md has the figures). Runs live in ``OUT/<method>/``: a finished run (``metrics.json``) is
reused and only re-scored, an interrupted one resumes from ``checkpoints/last.pt``.
Results go to ``OUT/faces.json`` and a ``RESULT`` JSON line.

    .venv/bin/python benchmarks/faces.py                                   # GPU, 5,000 steps
    .venv/bin/python benchmarks/faces.py --width 32 --steps 3000 --threads 1   # CPU
    .venv/bin/python benchmarks/faces.py --smoke --threads 1 --out /tmp/bench_faces_smoke
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, add_run_args, emit_json, machine, table, train_section  # noqa: E402

TARGET = 90.0  # percent, every target of the issue
METHODS = ("dcgan", "gan", "acgan", "vae", "stylegan2")
SMOKE = {"limit": 256, "steps": 4, "samples": 32, "evaluator_steps": 20, "max_real": 256}


def default_data() -> str:
    return f"course:{REPO.parent / 'shared' / 'data' / 'course' / 'face'}"


def data_missing(spec: str) -> Path | None:
    """The data folder of a ``kind:PATH`` spec when it does not exist, else ``None``."""
    if ":" not in spec:
        return None
    path = Path(spec.split(":", 1)[1]).expanduser()
    return None if path.exists() else path


def train_or_reuse(
    name: str, run: Path, raw: dict[str, Any], overrides: dict[str, Any]
) -> dict[str, Any]:
    """Train ``raw`` into ``run``, resume it, or reuse it when finished; its metrics.json.
    A reused run names every asked setting (``--set`` ones too) its config.yaml differs in."""
    from genda.engine import loop

    done = run / "metrics.json"
    if done.is_file():
        metrics = json.loads(done.read_text())
        had = yaml.safe_load((run / "config.yaml").read_text())
        keys = [("train", "steps"), ("train", "batch_size"), ("data", "limit")]
        keys += [("hparams", key) for key in raw.get("hparams", {})]
        keys += [(s, k) for s, v in overrides.items() if isinstance(v, dict) for k in v]
        differ = [
            f"{section}.{key} {had.get(section, {}).get(key)} (asked {raw[section][key]})"
            for section, key in dict.fromkeys(keys)
            if had.get(section, {}).get(key) != raw[section][key]
        ]
        note = f"; differs: {', '.join(differ)}; delete {run} to retrain" if differ else ""
        print(f"{name}: reusing {run}, trained {metrics['steps']} steps{note}", flush=True)
        return metrics
    print(f"{name}: training (or resuming) {run}", flush=True)
    return loop.train_or_reuse(loop.resolve_config(raw), run)


def parse_steps(spec: str, methods: list[str]) -> dict[str, int]:
    """``"3000"`` -> the same steps for every method; ``"gan=12000,stylegan2=3000"`` -> per
    method (every method named in ``--methods`` needs one)."""
    if "=" not in spec:
        return dict.fromkeys(methods, int(spec))
    steps = {k.strip(): int(v) for k, v in (part.split("=", 1) for part in spec.split(","))}
    missing = [m for m in methods if m not in steps]
    if missing:
        raise ValueError(f"no steps for {', '.join(missing)} in {spec!r}")
    return steps


def fid_ci(r: dict[str, Any]) -> str:
    ci = r.get("fid_interval")
    return f"[{ci[0]:.2f}, {ci[1]:.2f}]" if ci else ""


def stylegan2_verdict(sg: dict[str, Any], gan: dict[str, Any]) -> dict[str, Any]:
    """The issue's target: StyleGAN2's classifier-FID below the improved GAN's (bootstrap
    intervals apart, same extractor) and its face-detection rate no lower than real faces'."""
    lower = sg["fid_interval"][1] < gan["fid_interval"][0]
    tie = not lower and sg["fid_interval"][0] <= gan["fid_interval"][1]
    faces = sg["face_detection_rate"] >= sg["face_detection_rate_real"]
    fid_text = "lower" if lower else ("within noise of" if tie else "higher than")
    return {
        "metric": "fid_vs_gan_and_face_rate",
        "value": sg["fid"],
        "met": lower and faces,
        "text": (
            f"FID {sg['fid']:.2f} {fid_ci(sg)} is {fid_text} the improved GAN's "
            f"{gan['fid']:.2f} {fid_ci(gan)}; faces {sg['face_detection_rate']:.1f}% vs real "
            f"{sg['face_detection_rate_real']:.1f}% -> {'MET' if lower and faces else 'MISSED'}"
        ),
    }


def fmt(x: float | None, spec: str = ".1f") -> str:
    return "n/a" if x is None else format(x, spec)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--methods", default=",".join(METHODS), help="comma list of " + ", ".join(METHODS)
    )
    p.add_argument(
        "--data", default=None, help="face data spec (default: course:../shared/data/course/face)"
    )
    p.add_argument("--attribute", default="Smiling", help="ACGAN's binary attribute")
    p.add_argument(
        "--steps",
        default="5000",
        help="training steps per model (GPU budget), or per method: gan=12000,stylegan2=3000 "
        "(equal wall time for models of different step cost)",
    )
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--width", type=int, default=0, help="hparams.width of every model (0: each one's default)"
    )
    p.add_argument("--samples", type=int, default=1000, help="generated images scored per model")
    p.add_argument("--evaluator-steps", type=int, default=1000, help="evaluation classifier steps")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        help="SECTION.KEY=VALUE for every model of --methods, e.g. hparams.mapping_layers=2 "
        "(a variant of one model: give it its own --out)",
    )
    add_run_args(p, threads_help="torch/OpenCV CPU threads")
    p.add_argument("--out", default="runs/bench_faces")
    p.add_argument("--smoke", action="store_true", help="tiny everything: checks the wiring only")
    args = p.parse_args(argv)

    spec = args.data or default_data()
    missing = data_missing(spec)
    if missing is not None:
        print(f"faces benchmark skipped: face data not found at {missing}")
        return 0
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS]
    if bad:
        p.error(f"--methods: unknown {', '.join(bad)}; valid: {', '.join(METHODS)}")
    limit, max_real = 0, 10000
    try:
        steps = parse_steps(args.steps, methods)
    except ValueError as e:
        p.error(f"--steps: {e}")
    if args.smoke:
        steps = dict.fromkeys(methods, SMOKE["steps"])
        args.samples = SMOKE["samples"]
        args.evaluator_steps = SMOKE["evaluator_steps"]
        limit, max_real = SMOKE["limit"], SMOKE["max_real"]
    if args.samples < 2:
        p.error("--samples must be >= 2")
    from genda.config import ConfigError, merge, parse_overrides

    try:
        overrides = parse_overrides(args.set)
    except ConfigError as e:
        p.error(f"--set: {e}")

    from genda.engine.generate import evaluate_run
    from genda.engine.runtime import resolve_device

    if args.threads:
        torch.set_num_threads(args.threads)
        import cv2  # the face detector parallelises on its own

        cv2.setNumThreads(args.threads)
    device = resolve_device(args.device)
    out = Path(args.out)
    # A smoke run's under-trained evaluators stay out of the shared cache.
    cache = out / "cache" if args.smoke else None
    pair_keys = ("pair_accuracy", "pair_accuracy_off", "pair_accuracy_on", "pairs_both_correct")

    rows: list[dict[str, Any]] = []
    for name in methods:
        run = out / name
        args.steps = steps[name]
        raw = {
            "method": name,
            "name": f"bench_faces_{name}",
            "data": {
                "source": spec,
                "size": 64,
                "channels": 3,
                "limit": limit,
                **({"attribute": args.attribute} if name == "acgan" else {}),
            },
            "train": train_section(
                args,
                progress=not args.smoke,
                log_every=max(1, min(100, args.steps)),
                ckpt_every=0 if args.smoke else 1000,
            ),
        }
        hparams = {"width": args.width} if args.width else {}
        if name == "vae":  # its latent t-SNE coloured by the attribute ACGAN conditions on
            hparams["tsne_attribute"] = args.attribute
        if hparams:
            raw["hparams"] = hparams
        raw = merge(raw, overrides)
        trained = train_or_reuse(name, run, raw, overrides)
        batch = yaml.safe_load((run / "config.yaml").read_text())["train"]["batch_size"]
        t0 = time.perf_counter()
        scores = evaluate_run(
            run,
            n=args.samples,
            seed=args.seed,
            device=device,
            evaluator_steps=args.evaluator_steps,
            max_real=max_real,
            verbose=True,
            cache_root=cache,
        )
        row = {
            "method": name,
            "steps": trained["steps"],
            "batch_size": batch,
            "train_wall_s": trained["wall_time_s"],
            "s_per_step": round(trained["wall_time_s"] / max(trained["steps"], 1), 4),
            "eval_s": round(time.perf_counter() - t0, 1),
            **{
                k: scores.get(k)
                for k in (
                    "face_detection_rate",
                    "face_detection_rate_real",
                    "fid",
                    "fid_interval",
                    "fid_extractor",
                    "fid_real_test",
                    "evaluator",
                    "evaluator_accuracy",
                    "classifier_accuracy",
                    "eval_n",
                )
            },
            "recon_mse": trained.get("recon_mse"),
            "kl": trained.get("kl"),
            "aux_test_accuracy": trained.get("aux_test_accuracy"),
            "pairs": {k: scores[k] for k in (*pair_keys, "pair_n")} if "pair_n" in scores else None,
            "figures": {k: str(run / v) for k, v in trained.get("figures", {}).items()},
            "run": str(run),
        }
        rows.append(row)
        print(
            f"{name}: {row['steps']} steps in {row['train_wall_s']:.1f} s "
            f"({row['s_per_step']:.3f} s/step), scored in {row['eval_s']:.1f} s",
            flush=True,
        )

    header = [
        "model",
        "steps",
        "train wall s",
        "s/step",
        "faces generated %",
        "faces real %",
        "FID [95% bootstrap] (real val floor)",
        "FID extractor",
        f"{args.attribute} pair acc % (evaluator val %)",
        "VAE recon MSE",
    ]
    cells = []
    for r in rows:
        pr = r["pairs"]
        cells.append(
            [
                r["method"],
                r["steps"],
                fmt(r["train_wall_s"]),
                fmt(r["s_per_step"], ".3f"),
                fmt(r["face_detection_rate"]),
                fmt(r["face_detection_rate_real"]),
                f"{fmt(r['fid'], '.2f')} {fid_ci(r)} ({fmt(r['fid_real_test'], '.2f')})",
                (r["fid_extractor"] or "n/a").replace(spec, "<data>"),
                "" if pr is None else f"{pr['pair_accuracy']:.1f} ({r['evaluator_accuracy']:.1f})",
                "" if r["recon_mse"] is None else f"{r['recon_mse']:.5f}",
            ]
        )

    verdicts: dict[str, dict[str, Any]] = {}
    for r in rows:
        if r["method"] in ("dcgan", "gan") and r["face_detection_rate"] is not None:
            v = r["face_detection_rate"]
            verdicts[r["method"]] = {
                "metric": "face_detection_rate",
                "value": v,
                "met": v >= TARGET,
            }
        if r["pairs"] is not None:
            v = r["pairs"]["pair_accuracy"]
            verdicts["acgan"] = {
                "metric": "pair_attribute_accuracy",
                "value": v,
                "met": v >= TARGET,
            }

    print(
        f"\n{spec} (<data>), 64 px RGB, batch {args.batch_size}, "
        f"width {args.width or 'default'}, seed {args.seed}, {device}, "
        f"{''.join(f'{o}, ' for o in args.set)}"
        f"{args.samples} samples per model{' [SMOKE: numbers meaningless]' if args.smoke else ''}"
    )
    print(machine())
    print(table(header, cells))
    print(
        "faces: Haar-cascade face-detection rate (genda.metrics.faces defaults) of the generated "
        "images vs real validation faces; FID: classifier-FID against the real training faces "
        "(lower is better; comparable only between rows with the same extractor), in brackets "
        "the real validation faces' FID (the floor); VAE recon MSE: per pixel, [0, 1] scale, "
        "real validation faces."
    )
    for r in rows:
        if r["pairs"] is not None:
            pr, a = r["pairs"], args.attribute
            print(
                f"acgan {a} pairs (same noise, {a}=0 / =1): "
                f"{pr['pair_accuracy']:.1f}% of {2 * pr['pair_n']} images judged right "
                f"(=0: {pr['pair_accuracy_off']:.1f}%, =1: {pr['pair_accuracy_on']:.1f}%, both "
                f"images of a pair: {pr['pairs_both_correct']:.1f}%) by {r['evaluator']} "
                f"({r['evaluator_accuracy']:.1f}% on real validation faces); independent "
                f"samples: {fmt(r['classifier_accuracy'])}%"
            )
    by = {r["method"]: r for r in rows}
    if "stylegan2" in by and "gan" in by and by["stylegan2"]["fid_interval"]:
        verdicts["stylegan2"] = stylegan2_verdict(by["stylegan2"], by["gan"])
        print(f"target stylegan2: {verdicts['stylegan2']['text']}")
    for name, v in verdicts.items():
        if name == "stylegan2":
            continue
        what = "face-detection rate" if v["metric"] == "face_detection_rate" else "pair accuracy"
        print(
            f"target {name} {what} >= {TARGET:.0f}%: {v['value']:.1f}% "
            f"-> {'MET' if v['met'] else 'MISSED'}"
        )
    for r in rows:
        if r["method"] == "vae" and r["figures"]:
            print("vae figures: " + ", ".join(r["figures"].values()))

    result = {
        "benchmark": "faces",
        "data": spec,
        "size": 64,
        "channels": 3,
        "steps": steps,
        "batch_size": args.batch_size,
        "width": args.width or None,
        "samples": args.samples,
        "evaluator_steps": args.evaluator_steps,
        "seed": args.seed,
        "device": device,
        "smoke": args.smoke,
        "set": args.set,
        "machine": machine(),
        "target_percent": TARGET,
        "rows": rows,
        "verdicts": verdicts,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "faces.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out / 'faces.json'}")
    emit_json(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
