"""Real MNIST <-> USPS: source-only / DANN / target-only, with wall time per pair.

Goal (issue 2): DANN >= 90% target accuracy on both directions, chosen without target
labels (fixed schedule, final step), in under 15 minutes per pair on a 2-core CPU.

    .venv/bin/python benchmarks/uda_real.py                 # both pairs, seed 0
    .venv/bin/python benchmarks/uda_real.py --seeds 0,1,2 --steps 2000
    .venv/bin/python benchmarks/uda_real.py --usps course:../shared/data/course/usps
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mnist", default=f"mnist:{SHARED / 'mnist'}")
    p.add_argument("--usps", default=f"usps:{SHARED / 'usps'}")
    p.add_argument("--methods", default="source-only,dann,target-only")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--seeds", default="0")
    p.add_argument("--augment", default="affine")
    p.add_argument("--out", help="table directory (default: a temporary one)")
    args = p.parse_args()
    if not (SHARED / "mnist").exists() or not (SHARED / "usps").exists():
        print(f"skipped: real data not found under {SHARED}")
        return 0

    from genda.engine.table import run_table

    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="genda-uda-real-"))
    base = {
        "data": {"size": 28, "channels": 1},
        "train": {
            "steps": args.steps,
            "batch_size": args.batch_size,
            "progress": False,
            "ckpt_every": 0,
            "log_every": 100,
        },
        "hparams": {"augment": args.augment},
    }
    seeds = [int(s) for s in args.seeds.split(",")]
    for src, tgt in ((args.mnist, args.usps), (args.usps, args.mnist)):
        t0 = time.perf_counter()
        run_table([(src, tgt)], args.methods.split(","), seeds, out, base)
        print(
            f"pair {src.split(':')[0]} -> {tgt.split(':')[0]}: {time.perf_counter() - t0:.0f} s wall "
            f"({len(seeds)} seed(s), {args.steps} steps per run)",
            flush=True,
        )
    rows = run_table(
        [(args.mnist, args.usps), (args.usps, args.mnist)],
        args.methods.split(","),
        seeds,
        out,
        base,
        log=lambda *_: None,
    )  # all cells done: just rewrites the table
    del rows
    print((out / "table.md").read_text())
    print(f"runs in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
