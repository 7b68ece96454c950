"""``genda demo``: the main job on the embedded data sets, ending with a report.

Budgets are chosen so the whole demo finishes in a few minutes on a 2-core CPU; every
number it prints is measured in that run.
"""

from __future__ import annotations

import time
from pathlib import Path

DEMO_PAIRS = [("digits", "digits-m"), ("syndigits", "digits")]


def run_demo(out: Path, quick: bool = False) -> Path:
    """Run the UDA table on the embedded pairs and write ``out/report.{md,html}``."""
    from genda.engine.table import run_table
    from genda.report.build import build_report

    t0 = time.perf_counter()
    steps = 20 if quick else 600
    base = {"data": {"size": 28, "channels": 3},
            "train": {"steps": steps, "batch_size": 64, "log_every": 10 if quick else 50,
                      "ckpt_every": 0, "progress": not quick},
            "hparams": {"augment": "affine"}}
    run_table(DEMO_PAIRS, ["source-only", "dann", "target-only"], [0], out / "uda", base)
    md, html = build_report([out / "uda"], out, title="genda demo report")
    print(f"demo finished in {time.perf_counter() - t0:.0f} s: {md} and {html}")
    return md
