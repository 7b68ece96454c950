"""Benchmark: the UDA table on real MNIST <-> USPS (28 px, grey) for every genda method.

Trains source-only, DANN, ADDA, DSN, PixelDA, self-training and target-only for each pair
and seed through ``genda uda table`` (:func:`genda.api.uda_table`), then prints
``table.md`` and the mean training wall time of each method. The data are read from
``../shared/data`` beside the checkout (``mnist/MNIST/raw``, ``usps/usps.bz2``); the
benchmark skips cleanly when they are absent. Re-running with the same ``--out`` reuses
finished runs (and resumes interrupted ones), like ``genda uda table``.

Targets (issue): ADDA >= 89.4 % (MNIST->USPS) and 90.1 % (USPS->MNIST), the ADDA paper's
numbers; the best genda method >= 97 % on both pairs.

Examples::

    python benchmarks/uda_methods.py                        # 3 seeds x 2000 steps, all methods
    python benchmarks/uda_methods.py --seeds 0 --steps 20 --limit 512 --methods dann,adda  # smoke
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
METHODS = "source-only,dann,adda,dsn,pixelda,selftrain,target-only"
PAIRS = "mnist:usps,usps:mnist"


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (default 0,1,2)")
    p.add_argument("--steps", type=int, default=2000, help="training steps per run (default 2000)")
    p.add_argument(
        "--batch-size", type=int, default=128, help="per-domain batch size (default 128)"
    )
    p.add_argument(
        "--methods", default=METHODS, help=f"comma-separated methods (default {METHODS})"
    )
    p.add_argument(
        "--pairs", default=PAIRS, help=f"source:target pairs among mnist, usps (default {PAIRS})"
    )
    p.add_argument(
        "--augment",
        default="affine",
        choices=["none", "shift", "affine"],
        help="hparams.augment for every method (default affine)",
    )
    p.add_argument(
        "--limit",
        type=int,
        default=0,
        help="at most this many training images per domain (smoke runs)",
    )
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    p.add_argument("--device", default="auto", help="train.device (default auto)")
    p.add_argument(
        "--out",
        default=str(REPO / "runs" / "bench_uda_methods"),
        help="table directory (default runs/bench_uda_methods; re-running resumes it)",
    )
    p.add_argument(
        "--data", default=str(DATA), help=f"folder holding mnist/ and usps/ (default {DATA})"
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    root = Path(args.data)
    specs = {"mnist": f"mnist:{root / 'mnist'}", "usps": f"usps:{root / 'usps'}"}
    if not (root / "mnist").is_dir() or not (root / "usps").is_dir():
        print(f"skipped: real MNIST/USPS not found under {root} (need mnist/ and usps/)")
        return 0
    try:
        pairs = [tuple(specs[d] for d in p.split(":")) for p in args.pairs.split(",")]
    except KeyError as e:
        print(f"error: unknown domain {e} in --pairs; valid: {', '.join(specs)}", file=sys.stderr)
        return 2
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = args.methods.split(",")

    from genda.api import uda_table
    from genda.engine.table import spec_name

    base = {
        "data": {"size": 28, "channels": 1, "limit": args.limit},
        "train": {
            "steps": args.steps,
            "batch_size": args.batch_size,
            "threads": args.threads,
            "device": args.device,
            "progress": False,
            "log_every": 100,
        },
        "hparams": {"augment": args.augment},
    }
    out = Path(args.out)
    t0 = time.perf_counter()
    table = uda_table(pairs, out, methods, seeds, base)
    total = time.perf_counter() - t0

    print("\n" + table.read_text())
    print(
        f"Training wall time per run (mean over seeds; {args.steps} steps, batch {args.batch_size}+"
        f"{args.batch_size}; evaluation and figures excluded):\n"
    )
    names = [f"{spec_name(s)}->{spec_name(t)}" for s, t in pairs]
    print("| method | " + " | ".join(names) + " |")
    print("|---" * (len(names) + 1) + "|")
    for m in methods:
        cells = []
        for s, t in pairs:
            runs = sorted((out / f"{spec_name(s)}__{spec_name(t)}" / m).glob("seed*/metrics.json"))
            walls = [
                json.loads(r.read_text())["wall_time_s"]
                for r in runs
                if int(r.parent.name.removeprefix("seed")) in seeds
            ]
            cells.append(f"{statistics.fmean(walls):.1f} s" if walls else "-")
        print(f"| {m} | " + " | ".join(cells) + " |")
    print(f"\ntotal (this invocation, including evaluation and figures): {total:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
