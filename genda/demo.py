"""``genda demo``: the main job on the embedded data sets, ending with a report.

1. the domain-adaptation table (source-only / DANN / ADDA / self-training / target-only) on
   two embedded pairs, with t-SNE, confusion matrices and curves for every run;
2. small versions of every generative model on the embedded digits, each sampled and
   scored (classifier-FID, IS, classifier accuracy for conditional models);
3. ``report.md`` / ``report.html`` over all of it.

Budgets are chosen so the whole demo finishes in minutes on a 2-core CPU; every number in
the report is measured in that run. Runs are independent, so the demo runs ``jobs`` of
them side by side in one-thread processes (default: one per core, at most 4): on a small
CPU two one-thread runs finish sooner than two runs one after the other with two threads
each, whose small convolutions do not keep two cores busy.
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
DEMO_UDA_STEPS = 1000
# method -> (steps, extra hparams); small but real budgets on 28 px digits, sized so that a
# 2-core CPU without fast bf16 finishes the demo in under 8 minutes (benchmarks/README.md,
# "make demo"). The GANs train at 3/4 of their default width (about half the convolution
# cost per step) rather than for fewer steps: at 500 steps the EMA generator of the improved
# GAN has not yet pulled ahead. At half width DCGAN had not learnt digits by step 1,000
# (benchmarks/README.md, "make demo: where its time goes").
DEMO_GAN = {"width": 48}
DEMO_GENERATIVE = {
    "dcgan": (1000, DEMO_GAN),
    "gan": (1000, DEMO_GAN),
    "acgan": (500, DEMO_GAN),
    "vae": (500, {}),
    # DDIM-25 instead of 50: half the sampling time, FID within noise (benchmarks/README.md)
    "ddpm": (300, {"width": 16, "sample_steps": 25}),
}
DEMO_FRAMES = 10  # progress frames per generative model (a DDPM frame is a sampling run)


def default_jobs(quick: bool) -> int:
    """Processes to run side by side: one per core (at most 4); 1 for the tiny quick runs,
    where starting worker processes would cost more than it saves."""
    return 1 if quick else max(1, min(os.cpu_count() or 1, 4))


def uda_base(quick: bool) -> dict:
    """The raw config every demo table cell shares."""
    # Grey: colour is a nuisance shift between these embedded pairs (measured in an earlier
    # session: DANN on syndigits->digits did better in grey than in RGB at 1,500 steps).
    return {
        "data": {"size": 28, "channels": 1},
        "train": {
            "steps": 20 if quick else DEMO_UDA_STEPS,
            "batch_size": 64,
            "log_every": 10 if quick else 50,
            "ckpt_every": 0,
            "progress": False,  # side-by-side bars would garble each other
        },
    }


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
                "sample_every": 0 if quick else steps // DEMO_FRAMES,
                "progress": False,
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


def _evaluator(quick: bool) -> str:
    """Train (or find cached) the classifier every generative score uses."""
    from genda.metrics.evaluator import get_evaluator

    get_evaluator("digits", "", 28, 1, _evaluator_steps(quick))
    return "[gen] evaluation classifier ready"


def _cell(cell) -> str:
    """Train (or reuse) one table cell; its log line (the table itself is written after)."""
    from genda.engine.table import cell_line, run_cell

    return cell_line(cell, run_cell(cell.cfg, cell.run_dir))


def _timed(fn, *args) -> str:
    """``fn(*args)``'s log line with the task's whole time (training, scoring, figures), so
    a slow demo shows which of its runs to shrink."""
    t0 = time.perf_counter()
    line = fn(*args)
    return f"{line} [{time.perf_counter() - t0:.0f} s in all]"


def run_demo(out: Path, quick: bool = False, jobs: int | None = None) -> Path:
    """Run the demo into ``out`` (re-running resumes: finished runs are kept), ``jobs``
    runs at a time (default :func:`default_jobs`).

    Table cells and generative models are one pool of independent runs, started longest
    first (the DDPM, the adversarial cells, the GANs) so that no core idles at the end of
    one part while the other waits; the evaluation classifier the generative scores share
    is trained first, so the workers find it in the cache.
    """
    from dataclasses import replace

    from genda.api import uda_table
    from genda.engine.table import plan_table
    from genda.report.build import build_report

    jobs = default_jobs(quick) if jobs is None else jobs
    t0 = time.perf_counter()
    threads = 1 if jobs > 1 else 0
    cells = [
        replace(c, cfg=replace(c.cfg, train=replace(c.cfg.train, threads=threads)))
        for c in plan_table(DEMO_PAIRS, DEMO_UDA_METHODS, [0], out / "uda", uda_base(quick))
    ]
    tasks = [(_evaluator, (quick,))]
    tasks += [(_generative, ("ddpm", out / "gen", quick, threads))]
    slow = ("dann", "selftrain")  # the table's longest cells (2-3x the others)
    tasks += [(_cell, (c,)) for c in cells if c.method in slow]
    tasks += [(_generative, (m, out / "gen", quick, threads)) for m in ("gan", "dcgan", "acgan")]
    tasks += [(_cell, (c,)) for c in cells if c.method not in slow]
    tasks += [(_generative, ("vae", out / "gen", quick, threads))]
    if jobs <= 1:
        for fn, args in tasks:
            print(_timed(fn, *args), flush=True)
    else:
        ctx = multiprocessing.get_context("spawn")  # no forked OpenMP state in the workers
        with ProcessPoolExecutor(jobs, mp_context=ctx) as pool:
            for future in as_completed([pool.submit(_timed, fn, *args) for fn, args in tasks]):
                print(future.result(), flush=True)
    t_runs = time.perf_counter() - t0
    uda_table(DEMO_PAIRS, out / "uda", DEMO_UDA_METHODS, [0], uda_base(quick))  # all reused
    md, html = build_report([out / "uda", out / "gen"], out, title="genda demo report")
    total = time.perf_counter() - t0
    print(
        f"demo finished in {total:.0f} s ({len(tasks) - 1} runs, {jobs} at a time, in "
        f"{t_runs:.0f} s; tables, figures and report {total - t_runs:.0f} s): {md} and {html}"
    )
    return md
