"""The domain-adaptation table on the real digit pairs, with genda's defaults: target accuracy
and training seconds of every (pair, method, seed).

Pairs: MNIST -> MNIST-M, MNIST-M -> USPS, USPS -> MNIST-M, MNIST -> USPS, USPS -> MNIST, from
``../shared/data`` (MNIST-M built from MNIST and the BSDS500 photos by the paper's recipe;
``--mnistm course:DIR`` takes the released one). Nothing but the pair is configured unless
given here, so the table shows what ``genda uda table --source S --target T`` does.

    .venv/bin/python benchmarks/uda_real.py --seeds 0 --threads 2
    .venv/bin/python benchmarks/uda_real.py --pairs mnist:mnistm,usps:mnist --seeds 0,1,2 \\
        --threads 1 --jobs 2 --out runs/bench_uda_real   # re-running resumes the table

``--best`` also runs the best genda method, named before measuring (``BEST``: one method with
the same hyper-parameters on every pair, never chosen per pair), into ``OUT/best``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
PAIRS = "mnist:mnistm,mnistm:usps,usps:mnistm,mnist:usps,usps:mnist"
# Self-training on top of DANN with SHOT's digit net, its teacher scored over 8 weak views.
BEST = ("selftrain-dann", ["hparams.arch=dtn", "hparams.tta=8"])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--pairs", default=PAIRS, help=f"comma-separated SOURCE:TARGET (default {PAIRS})"
    )
    p.add_argument("--mnist", default=f"mnist:{SHARED / 'mnist'}")
    p.add_argument("--usps", default=f"usps:{SHARED / 'usps'}")
    p.add_argument("--mnistm", default=f"mnistm:{SHARED / 'mnist'},{SHARED / 'bsds500' / 'train'}")
    p.add_argument("--methods", default="source-only,dann,target-only")
    p.add_argument("--seeds", default="0")
    p.add_argument("--steps", type=int, help="train.steps (default: genda's own budget)")
    p.add_argument("--threads", type=int, default=0, help="train.threads (0 = torch default)")
    p.add_argument("--jobs", type=int, default=1, help="runs side by side (see genda uda table)")
    p.add_argument("--set", action="append", default=[], help="extra SECTION.KEY=VALUE")
    p.add_argument(
        "--best", action="store_true", help=f"also run {BEST[0]} {' '.join(BEST[1])} into OUT/best"
    )
    p.add_argument("--out", default="runs/bench_uda_real")
    args = p.parse_args()
    if not (SHARED / "mnist").exists() or not (SHARED / "usps").exists():
        print(f"skipped: real data not found under {SHARED}")
        return 0

    from genda.api import uda_table
    from genda.config import merge, parse_overrides
    from genda.engine.table import spec_name

    specs = {"mnist": args.mnist, "usps": args.usps, "mnistm": args.mnistm}
    pairs = [tuple(specs[d] for d in pair.split(":")) for pair in args.pairs.split(",")]
    train = {"progress": False, "threads": args.threads}
    if args.steps:
        train["steps"] = args.steps
    base = merge({"train": train}, parse_overrides(args.set))
    methods, seeds = args.methods.split(","), [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    runs = [(out, methods, base)]
    if args.best:
        runs.append((out / "best", [BEST[0]], merge(base, parse_overrides(BEST[1]))))
    for folder, names, config in runs:
        print(uda_table(pairs, folder, names, seeds, config, jobs=args.jobs).read_text())
        print("| pair | method | training s per run (mean) | steps |")
        print("| --- | --- | --- | --- |")
        for source, target in pairs:
            pair = f"{spec_name(source)}__{spec_name(target)}"
            for method in names:
                metrics = [
                    json.loads((folder / pair / method / f"seed{s}" / "metrics.json").read_text())
                    for s in seeds
                ]
                secs = statistics.mean(r["wall_time_s"] for r in metrics)
                print(f"| {pair} | {method} | {secs:.0f} | {metrics[0]['steps']} |")
    print(f"runs in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
