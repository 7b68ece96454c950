"""Training throughput: genda's DANN step vs the conventional PIL + DataLoader pipeline.

Both sides train the same networks (``genda.nets.digits`` "lenet" encoder, classifier and
domain discriminator behind a gradient-reversal layer) with the same optimiser (SGD,
momentum 0.9, nesterov, weight decay 5e-4, the DANN lr annealing) on the same data
(MNIST -> USPS at 28 px, 128 source + 128 target images per step):

- **baseline** (the reference scripts): a ``Dataset`` that opens one PNG per sample with
  PIL and applies ``Resize(28), ToTensor(), Normalize((0.5,), (0.5,))``, one ``DataLoader``
  per domain (``--workers``, shuffled, ``drop_last``), ``loss.backward()`` and a
  ``loss.item()`` every step. MNIST is written once as PNGs in the course layout into a
  cache directory (``$GENDA_BENCH_CACHE``, default ``~/.cache/genda/bench``); the target
  is the real USPS PNGs in ``../shared/data/course/usps``.
- **genda**: ``Runtime`` (Lightning Fabric), in-memory uint8 ``Stream`` batches and
  ``DANN.train_step``, i.e. what ``genda.engine.loop.train`` runs each step (including its
  accumulation of logged scalars and one host sync every ``log_every`` steps), with
  ``hparams.augment=none`` like the baseline.

Steady state: after a warm-up, blocks of ``--steps`` steps of every pipeline are timed in
turn, ``--reps`` times (interleaved, because the machine may be shared), and the median
source images/s is reported. Before each baseline block its loaders' prefetch buffers are
drained untimed, so no block starts with batches decoded during another pipeline's turn.
End to end: ``--e2e-steps`` steps from nothing, including reading data (genda: from its
cache) and starting workers; genda's run goes through ``loop.train`` with the final
evaluation skipped. Peak RSS is measured in separate child processes, one per pipeline.

    python benchmarks/pipeline.py                      # workers 2 and 0, 2 genda variants
    python benchmarks/pipeline.py --threads 1 --steps 30 --reps 7
    python benchmarks/pipeline.py --variants default,contiguous,compile,bf16
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    REPO,
    EndlessLoader,
    GendaSteps,
    bench_cache,
    emit_json,
    machine,
    median,
    peak_rss_mb,
    pss_mb,
    run_json,
    shared_data,
    spread,
    table,
    time_interleaved,
)

sys.path.insert(0, str(REPO))

SIZE = 28
# genda variants: name -> (TrainConfig overrides, optimiser param-group overrides)
# "default" is what `genda train dann` runs (the method's defaults: channels_last on).
VARIANTS = {
    "default": ({}, {}),
    "contiguous": ({"channels_last": False}, {}),
    "compile": ({"compile": True}, {}),
    "foreach": ({}, {"foreach": True}),
    "fused": ({}, {"fused": True}),
    "bf16": ({"precision": "bf16-mixed"}, {}),
    "fp32": ({"precision": "32-true"}, {}),
}


# ----------------------------------------------------------------------------- data


def mnist_pngs() -> Path:
    """MNIST written once as 8-bit PNGs in the course layout (data/*.png + train.csv/val.csv)."""
    out = bench_cache() / "mnist_course"
    if (out / ".complete").exists():
        return out
    from genda.data.spec import load_dataset

    ds = load_dataset(f"mnist:{shared_data() / 'mnist'}")
    (out / "data").mkdir(parents=True, exist_ok=True)
    print(f"writing MNIST as PNGs into {out} (once) ...", flush=True)
    for split, prefix, csv_name in (("train", "tr", "train.csv"), ("test", "te", "val.csv")):
        dom = getattr(ds, split)
        with open(out / csv_name, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["image_name", "label"])
            for i, (img, y) in enumerate(zip(dom.images, dom.labels.tolist(), strict=True)):
                name = f"{prefix}{i:05d}.png"
                Image.fromarray(img[0].numpy()).save(out / "data" / name)
                w.writerow([name, y])
    (out / ".complete").touch()
    return out


def usps_pngs() -> Path:
    return shared_data() / "course" / "usps"


def data_config():
    from genda.config import DataConfig

    return DataConfig(
        source=f"mnist:{shared_data() / 'mnist'}",
        target=f"course:{usps_pngs()}",
        size=SIZE,
        channels=1,
    )


# ------------------------------------------------------------------------- baseline


class PngDigits(torch.utils.data.Dataset):
    """The reference scripts' dataset: open and transform one PNG per ``__getitem__``."""

    def __init__(self, root: Path, csv_name: str = "train.csv") -> None:
        from torchvision import transforms as T

        with open(root / csv_name, newline="") as fh:
            rows = list(csv.reader(fh))[1:]
        self.paths = [root / "data" / r[0] for r in rows]
        self.labels = [int(r[1]) for r in rows]
        self.transform = T.Compose([T.Resize(SIZE), T.ToTensor(), T.Normalize((0.5,), (0.5,))])

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        img = Image.open(self.paths[i]).convert("L")
        return self.transform(img), self.labels[i]


class Baseline:
    """The conventional pipeline: PIL per sample, DataLoader, ``loss.item()`` per step."""

    def __init__(self, batch_size: int, workers: int, total_steps: int, seed: int = 0) -> None:
        from genda.engine.loop import resolve_config
        from genda.nets import backbones
        from genda.nets.adversarial import DomainAdversarialLoss, dann_lambda, dann_lr

        torch.manual_seed(seed)
        hp = resolve_config({"method": "dann"}).hparams  # the networks genda's DANN trains
        self.enc, self.cls = backbones.build(hp["arch"], 1, SIZE, 10)
        disc = backbones.discriminator_for(
            hp["arch"], self.enc.out_dim, hp["disc_hidden"], hp["disc_layers"]
        )
        self.adv = DomainAdversarialLoss(disc)
        self.modules = torch.nn.ModuleList([self.enc, self.cls, disc]).train()
        self.opt = torch.optim.SGD(
            self.modules.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4, nesterov=True
        )
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lambda s: dann_lr(s / total_steps))
        self.lam = lambda step: dann_lambda((step - 1) / total_steps)
        self.total_steps, self.step_no, self.workers = total_steps, 0, workers
        kw = {"batch_size": batch_size, "shuffle": True, "drop_last": True, "num_workers": workers}
        # A new iterator (and, with workers, new processes) every epoch.
        self.loaders = [
            EndlessLoader(torch.utils.data.DataLoader(PngDigits(mnist_pngs()), **kw)),
            EndlessLoader(torch.utils.data.DataLoader(PngDigits(usps_pngs()), **kw)),
        ]

    def worker_pids(self) -> list[int]:
        return [pid for dl in self.loaders for pid in dl.worker_pids()]

    def step(self) -> float:
        (xs, ys), (xt, _) = self.loaders[0].next(), self.loaders[1].next()
        self.step_no += 1
        f = self.enc(torch.cat([xs, xt]))
        fs, ft = f[: len(xs)], f[len(xs) :]
        cls_loss = F.cross_entropy(self.cls(fs), ys)
        dom_loss, _ = self.adv(fs, ft, self.lam(self.step_no))
        loss = cls_loss + dom_loss
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        self.sched.step()
        return loss.item()

    def settle(self) -> None:
        """Consume the batches the workers prefetched while another pipeline was timed."""
        for _ in range(2 * self.workers):  # prefetch_factor (2) batches per worker
            self.step()

    def run(self, n: int) -> None:
        for _ in range(n):
            self.step()

    def close(self) -> None:
        for dl in self.loaders:
            dl.close()


# ---------------------------------------------------------------------------- genda


def genda_config(variant: str, batch_size: int, steps: int, threads: int):
    import dataclasses

    from genda.engine.loop import resolve_config

    train = {
        "steps": steps,
        "batch_size": batch_size,
        "device": "cpu",
        "threads": threads,
        "progress": False,
        "ckpt_every": 0,
        **VARIANTS[variant][0],
    }
    # No augmentation on either side: the baseline's transforms do none (DANN's default is
    # hparams.augment=affine, which would add batched jitter to genda's step only).
    return resolve_config(
        {
            "method": "dann",
            "data": dataclasses.asdict(data_config()),
            "train": train,
            "hparams": {"augment": "none"},
        }
    )


class Genda(GendaSteps):
    """What ``loop.train`` does per step, on a method set up by the real ``Runtime``."""

    def __init__(self, variant: str, data, batch_size: int, total_steps: int, threads: int) -> None:
        cfg = genda_config(variant, batch_size, total_steps, threads)
        super().__init__(cfg, data, total_steps, VARIANTS[variant][1])


# ------------------------------------------------------------------------ measuring


def end_to_end(kind: str, args, steps: int) -> dict:
    """Seconds for ``steps`` steps from nothing (data read + set-up + training)."""
    t0 = time.perf_counter()
    if kind == "genda":
        from genda.data.prepare import prepare
        from genda.engine.loop import train

        data = prepare(data_config(), 0)
        t_data = time.perf_counter() - t0
        cfg = genda_config(args.variant, args.batch_size, steps, args.threads)
        train(cfg, None, data=data, evaluate=False)
        return {"total_s": time.perf_counter() - t0, "data_s": t_data}
    workers = int(kind.split("=")[1])
    b = Baseline(args.batch_size, workers, steps)
    b.run(steps)
    total = time.perf_counter() - t0
    workers_pss = sum(pss_mb(pid) for pid in b.worker_pids())
    b.close()
    return {"total_s": total, "workers_pss_mb": workers_pss}


def child_main(args) -> None:
    """``--rss KIND``: one end-to-end run in a fresh process, reporting its peak RSS."""
    if args.threads:
        torch.set_num_threads(args.threads)
    res = end_to_end(args.rss, args, args.e2e_steps)
    res.update(rss_mb=peak_rss_mb())
    emit_json(res)


def run_child(kind: str, args) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--rss",
        kind,
        "--batch-size",
        str(args.batch_size),
        "--threads",
        str(args.threads),
        "--e2e-steps",
        str(args.e2e_steps),
        "--variant",
        args.variant,
    ]
    return run_json(cmd)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20, help="timed steps per block (steady state)")
    p.add_argument(
        "--reps", type=int, default=5, help="timed blocks per pipeline (median reported)"
    )
    p.add_argument("--warmup", type=int, default=5, help="untimed steps before the first block")
    p.add_argument("--batch-size", type=int, default=128, help="per domain (source and target)")
    p.add_argument("--workers", default="2,0", help="baseline DataLoader workers; comma list")
    p.add_argument(
        "--threads", type=int, default=0, help="torch threads, both pipelines (0 = torch default)"
    )
    p.add_argument(
        "--variants",
        default="default,contiguous",
        help=f"genda variants, comma list of: {', '.join(VARIANTS)}",
    )
    p.add_argument("--variant", default="default", help="genda variant for end-to-end and RSS runs")
    p.add_argument(
        "--e2e-steps", type=int, default=100, help="steps of the end-to-end runs (0 = skip)"
    )
    p.add_argument("--no-rss", action="store_true", help="skip the peak-RSS child processes")
    p.add_argument("--rss", help=argparse.SUPPRESS)  # internal: child process mode
    args = p.parse_args()
    if args.rss:
        return child_main(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    variants = [v for v in args.variants.split(",") if v]
    for v in variants + [args.variant]:
        if v not in VARIANTS:
            p.error(f"unknown variant {v!r}; valid: {', '.join(VARIANTS)}")
    workers = [int(w) for w in args.workers.split(",") if w != ""]

    from genda.data.prepare import prepare

    print(machine())
    mnist_pngs()
    data = prepare(data_config(), 0)
    total = args.warmup + args.reps * (args.steps + 4 * max(workers + [1])) + 10
    pipes: dict[str, object] = {}
    for v in variants:
        pipes[f"genda {v}"] = Genda(v, data, args.batch_size, total, args.threads)
    for w in workers:
        pipes[f"baseline workers={w}"] = Baseline(args.batch_size, w, total)
    rates = time_interleaved(pipes, args.warmup, args.steps, args.reps, args.batch_size)
    for pipe in pipes.values():
        if isinstance(pipe, Baseline):
            pipe.close()

    ref = median(rates[f"baseline workers={workers[0]}"]) if workers else None
    rows = []
    for name, xs in rates.items():
        ratio = f"{median(xs) / ref:.2f}x" if ref else "-"
        rows.append([name, spread(xs), f"{args.batch_size / median(xs) * 1e3:.0f}", ratio])
    print(
        f"\nsteady state, batch {args.batch_size}+{args.batch_size}, {args.steps} steps x {args.reps} "
        f"blocks, torch threads {torch.get_num_threads()}:"
    )
    print(
        table(
            [
                "pipeline",
                "source images/s median (min-max)",
                "ms/step",
                f"vs baseline workers={workers[0]}" if workers else "ratio",
            ],
            rows,
        )
    )
    result = {"machine": machine(), "steady": {k: median(v) for k, v in rates.items()}}

    if args.e2e_steps:
        kinds = ["genda"] + [f"baseline workers={w}" for w in workers]
        e2e: dict[str, list[float]] = {k: [] for k in kinds}
        extra: dict[str, dict] = {}
        for r in range(2):
            for k in kinds if r == 0 else kinds[::-1]:
                res = end_to_end(k, args, args.e2e_steps)
                e2e[k].append(res["total_s"])
                extra[k] = res
        rows = []
        for k, xs in e2e.items():
            note = f"data read {extra[k]['data_s']:.1f} s" if "data_s" in extra[k] else ""
            rows.append(
                [
                    k if k != "genda" else f"genda {args.variant}",
                    f"{median(xs):.1f}",
                    f"{args.e2e_steps * args.batch_size / median(xs):,.0f}",
                    note,
                ]
            )
        print(f"\nend to end, {args.e2e_steps} steps from nothing (median of 2):")
        print(table(["pipeline", "seconds", "source images/s", "note"], rows))
        result["e2e_s"] = {k: median(v) for k, v in e2e.items()}

    if not args.no_rss and args.e2e_steps:
        rows = []
        result["rss_mb"] = {}
        for k in ["genda"] + [f"baseline workers={w}" for w in workers]:
            res = run_child(k, args)
            workers_pss = res.get("workers_pss_mb", 0.0)
            rows.append([k, f"{res['rss_mb']:.0f}", f"{workers_pss:.0f}" if workers_pss else "-"])
            result["rss_mb"][k] = res
        print(f"\nmemory (MiB), one fresh process per pipeline, {args.e2e_steps} steps end to end:")
        print(
            table(
                ["pipeline", "peak RSS, main process", "DataLoader workers, PSS sum at the end"],
                rows,
            )
        )
    emit_json(result)


if __name__ == "__main__":
    main()
