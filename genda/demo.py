"""``genda demo``: the main job on the embedded data sets, ending with a report.

1. the domain-adaptation table (source-only / DANN / target-only) on two embedded pairs,
   with t-SNE, confusion matrices and curves for every run;
2. small versions of every generative model on the embedded digits, each sampled and
   scored (classifier-FID, IS, classifier accuracy for conditional models);
3. ``report.md`` / ``report.html`` over all of it.

Budgets are chosen so the whole demo finishes in well under 15 minutes on a 2-core CPU;
every number in the report is measured in that run.
"""

from __future__ import annotations

import time
from pathlib import Path

DEMO_PAIRS = [("digits", "digits-m"), ("syndigits", "digits")]
# The fast rows of the full table: DSN and PixelDA cost 3-4x a DANN run each
# (benchmarks/uda_methods.py runs them), which would push the demo past its time budget.
DEMO_UDA_METHODS = ["source-only", "dann", "adda", "selftrain", "target-only"]
# method -> (steps, extra hparams); small but real budgets on 28 px digits. The two GANs get
# 1000 steps: at 500 the EMA generator of the improved GAN has not yet pulled ahead.
DEMO_GENERATIVE = {
    "dcgan": (1000, {}),
    "gan": (1000, {}),
    "acgan": (500, {}),
    "vae": (500, {}),
    "ddpm": (500, {"width": 16}),
}


def run_uda(out: Path, quick: bool) -> None:
    from genda.api import uda_table

    # Grey: colour is a nuisance shift between these embedded pairs (measured in an earlier
    # session: DANN on syndigits->digits did better in grey than in RGB at 1,500 steps).
    base = {
        "data": {"size": 28, "channels": 1},
        "train": {
            "steps": 20 if quick else 1500,
            "batch_size": 64,
            "log_every": 10 if quick else 50,
            "ckpt_every": 0,
            "progress": not quick,
        },
    }
    uda_table(DEMO_PAIRS, out, DEMO_UDA_METHODS, [0], base)


def run_generative(out: Path, quick: bool) -> None:
    from genda.engine.generate import evaluate_run
    from genda.engine.loop import resolve_config, train_or_reuse

    for method, (steps, hparams) in DEMO_GENERATIVE.items():
        run_dir = out / method
        cfg = resolve_config(
            {
                "method": method,
                "name": f"gen/{method}",
                "hparams": hparams,
                "data": {"source": "digits", "size": 28, "channels": 1},
                "train": {
                    "steps": 4 if quick else steps,
                    "batch_size": 64,
                    "ckpt_every": 0,
                    "log_every": 2 if quick else 25,
                    "progress": not quick,
                },
            }
        )
        train_or_reuse(cfg, run_dir)
        m = evaluate_run(run_dir, n=100 if quick else 500, evaluator_steps=50 if quick else 1000)
        print(
            f"[gen] {method}: classifier-FID {m.get('fid', float('nan')):.2f}"
            + (
                f", class accuracy {m['classifier_accuracy']:.1f}%"
                if "classifier_accuracy" in m
                else ""
            )
        )


def run_demo(out: Path, quick: bool = False) -> Path:
    """Run the demo into ``out`` (re-running resumes: finished runs are kept)."""
    from genda.report.build import build_report

    t0 = time.perf_counter()
    run_uda(out / "uda", quick)
    t_uda = time.perf_counter() - t0
    run_generative(out / "gen", quick)
    md, html = build_report([out / "uda", out / "gen"], out, title="genda demo report")
    total = time.perf_counter() - t0
    print(
        f"demo finished in {total:.0f} s (domain adaptation {t_uda:.0f} s, generative "
        f"{total - t_uda:.0f} s): {md} and {html}"
    )
    return md
