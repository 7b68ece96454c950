"""``genda demo``: the main job on the embedded data sets, ending with a report.

1. the domain-adaptation table (source-only / DANN / target-only) on two embedded pairs,
   with t-SNE, confusion matrices and curves for every run;
2. small versions of every generative model on the embedded digits, each sampled and
   scored (classifier-FID, IS, classifier accuracy for conditional models);
3. ``report.md`` / ``report.html`` over all of it.

Budgets are chosen so the whole demo finishes in well under 15 minutes on a 2-core CPU;
every number in the report is measured in that run. Runs are independent, so the demo
runs ``jobs`` of them side by side in one-thread processes (default: one per core, at most
4): on a small CPU two one-thread runs finish sooner than two runs one after the other
with two threads each, whose small convolutions do not keep two cores busy.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
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


def default_jobs(quick: bool) -> int:
    """Processes to run side by side: one per core (at most 4); 1 for the tiny quick runs,
    where starting worker processes would cost more than it saves."""
    return 1 if quick else max(1, min(os.cpu_count() or 1, 4))


def run_uda(out: Path, quick: bool, jobs: int = 1) -> None:
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
    uda_table(DEMO_PAIRS, out, DEMO_UDA_METHODS, [0], base, jobs=jobs)


def _generative(method: str, out: Path, quick: bool, threads: int) -> str:
    """Train (or reuse) one demo model, score it, and return its line for the log."""
    from genda.engine.generate import evaluate_run
    from genda.engine.loop import resolve_config, train_or_reuse

    steps, hparams = DEMO_GENERATIVE[method]
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
                "progress": False,  # side-by-side bars would garble each other
                "threads": threads,
            },
        }
    )
    train_or_reuse(cfg, run_dir)
    m = evaluate_run(run_dir, n=100 if quick else 500, evaluator_steps=_evaluator_steps(quick))
    acc = m.get("classifier_accuracy")
    return f"[gen] {method}: classifier-FID {m.get('fid', float('nan')):.2f}" + (
        "" if acc is None else f", class accuracy {acc:.1f}%"
    )


def _evaluator_steps(quick: bool) -> int:
    return 50 if quick else 1000


def run_generative(out: Path, quick: bool, jobs: int = 1) -> None:
    """Every demo model; with ``jobs > 1`` that many at once in one-thread processes,
    the slowest (the DDPM) first. The evaluation classifier they share is trained once
    here first, so the workers find it in the cache."""
    from genda.metrics.evaluator import get_evaluator

    get_evaluator("digits", "", 28, 1, _evaluator_steps(quick))
    methods = sorted(DEMO_GENERATIVE, key=lambda m: m != "ddpm")
    if jobs <= 1:
        for method in methods:
            print(_generative(method, out, quick, 0), flush=True)
        return
    ctx = multiprocessing.get_context("spawn")  # no forked OpenMP state in the workers
    with ProcessPoolExecutor(jobs, mp_context=ctx) as pool:
        futures = [pool.submit(_generative, m, out, quick, 1) for m in methods]
        for future in as_completed(futures):
            print(future.result(), flush=True)


def run_demo(out: Path, quick: bool = False, jobs: int | None = None) -> Path:
    """Run the demo into ``out`` (re-running resumes: finished runs are kept), ``jobs``
    runs at a time (default :func:`default_jobs`)."""
    from genda.report.build import build_report

    jobs = default_jobs(quick) if jobs is None else jobs
    t0 = time.perf_counter()
    run_uda(out / "uda", quick, jobs)
    t_uda = time.perf_counter() - t0
    run_generative(out / "gen", quick, jobs)
    md, html = build_report([out / "uda", out / "gen"], out, title="genda demo report")
    total = time.perf_counter() - t0
    print(
        f"demo finished in {total:.0f} s (domain adaptation {t_uda:.0f} s, generative "
        f"{total - t_uda:.0f} s): {md} and {html}"
    )
    return md
