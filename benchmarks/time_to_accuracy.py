"""Time to accuracy: genda's default DANN vs the conventional 100-epoch DANN recipe.

Issue goal: on real MNIST -> USPS, genda's default DANN reaches the target accuracy that the
conventional 100-epoch recipe *ends* with in <= 1/4 of that recipe's wall time. Steps per
second (``pipeline.py``) say nothing about this on their own: what a user waits for is an
accurate model, so this benchmark trains both to the end and compares accuracy-vs-seconds
curves on the same target test set (USPS test, 2,007 images).

- **baseline**: the DANN script that tutorials and course repositories copy (the
  ``CNNModel`` of the widely used PyTorch DANN reference), re-implemented here: features
  conv5x5 3->64, BN, max-pool 2, ReLU, conv5x5 64->50, BN, Dropout2d, max-pool 2, ReLU
  (800 features); label classifier 800->100 (BN, ReLU, Dropout) ->100 (BN, ReLU) ->10
  log-softmax; domain classifier 800->100 (BN, ReLU) ->2 log-softmax behind a gradient
  reversal layer with ``alpha = 2/(1+exp(-10 p))-1`` (p = progress over all iterations).
  Grey images replicated to 3 channels, 28 px, ``Normalize(0.5, 0.5)``; Adam lr 1e-3; NLL
  losses (source label + source domain + target domain, separate source and target
  forwards); 128 source + 128 target images per iteration from PIL-per-PNG ``Dataset``s and
  one ``DataLoader`` per domain (shuffled, ``drop_last``, ``--workers``, fresh iterators
  and worker processes every epoch); an epoch is ``min(len(source), len(target))``
  iterations (56 for MNIST -> USPS, so 100 epochs = 5,600 iterations); ``.item()`` of the
  losses every iteration. The PNG data set and the MNIST PNG cache are ``pipeline.py``'s.
- **genda**: ``genda.engine.loop.train`` on ``resolve_config({"method": "dann", ...})``
  with the method's defaults (steps from ``train.epochs``, batch size, augmentation,
  channels_last, automatic precision, checkpoints every 500 steps), plus
  ``train.eval_every`` so ``history.csv`` holds target accuracy against elapsed seconds.
  Pinned: ``train.device=cpu`` (the baseline runs on the CPU), ``train.threads``,
  ``train.progress=false``. Source ``mnist:`` (the IDX files), target ``course:`` (the
  same USPS PNGs the baseline reads).

Clocks (training seconds, evaluation excluded on both sides):

- baseline: summed per epoch, from creating the epoch's loader iterators (which starts
  its worker processes) until the last iteration's ``.item()`` and the iterators'
  shutdown; the clock is paused while the USPS test set is evaluated after each epoch.
  Building the datasets and the model and writing the MNIST PNG cache (once) are outside.
- genda: ``loop.train`` logs every evaluation row with its training clock, which stops
  while it evaluates. What is on genda's clock and not on the baseline's: checkpoint
  writes (``train.ckpt_every``). Reading and converting the data (``prepare``) and
  setting up the run happen before genda's loop and are reported separately.

"Reaches" is the first evaluation (every ``--eval-every`` genda steps) at or above the
baseline's final accuracy, so the genda time is an upper bound at that granularity. The
two runs are sequential, not interleaved: on a shared machine compare the load averages
printed with each run. The per-run t-SNE/confusion figures of genda's final evaluation are
skipped (they cost minutes and are on neither clock).

    .venv/bin/python benchmarks/time_to_accuracy.py --threads 1
    .venv/bin/python benchmarks/time_to_accuracy.py --smoke --threads 1   # wiring check

Writes ``OUT/time_to_accuracy.png`` (both curves), ``OUT/curves.csv`` and genda's run in
``OUT/genda_run`` (replaced on every run).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, emit_json, machine, table  # noqa: E402
from pipeline import SIZE, PngDigits, mnist_pngs, usps_pngs  # noqa: E402

sys.path.insert(0, str(REPO))

SHARED = REPO.parent / "shared" / "data"
GOAL = 0.25  # genda time to the baseline's final accuracy / baseline training time


@dataclass
class Curve:
    """Target accuracy (%) after ``steps`` optimisation steps and ``seconds`` of training."""

    name: str
    steps: list[int] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)

    def add(self, step: int, seconds: float, acc: float) -> None:
        self.steps.append(step)
        self.seconds.append(seconds)
        self.accuracy.append(acc)

    def first_reaching(self, acc: float) -> int | None:
        """Index of the first point at or above ``acc``, or ``None``."""
        return next((i for i, a in enumerate(self.accuracy) if a >= acc), None)


# ------------------------------------------------------------------------- baseline


class _ReverseGrad(torch.autograd.Function):
    """Identity forward, gradient times ``-alpha`` backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, alpha: float) -> torch.Tensor:
        ctx.alpha = alpha
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad.neg() * ctx.alpha, None


class ReferenceDANN(nn.Module):
    """The reference script's ``CNNModel`` (layer order as there: BN before pool and ReLU)."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.feature = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=5),
            nn.BatchNorm2d(64),
            nn.MaxPool2d(2),
            nn.ReLU(True),
            nn.Conv2d(64, 50, kernel_size=5),
            nn.BatchNorm2d(50),
            nn.Dropout2d(),
            nn.MaxPool2d(2),
            nn.ReLU(True),
        )
        self.class_classifier = nn.Sequential(
            nn.Linear(50 * 4 * 4, 100),
            nn.BatchNorm1d(100),
            nn.ReLU(True),
            nn.Dropout(),
            nn.Linear(100, 100),
            nn.BatchNorm1d(100),
            nn.ReLU(True),
            nn.Linear(100, classes),
            nn.LogSoftmax(dim=1),
        )
        self.domain_classifier = nn.Sequential(
            nn.Linear(50 * 4 * 4, 100),
            nn.BatchNorm1d(100),
            nn.ReLU(True),
            nn.Linear(100, 2),
            nn.LogSoftmax(dim=1),
        )

    def forward(self, x: torch.Tensor, alpha: float) -> tuple[torch.Tensor, torch.Tensor]:
        x = x.expand(x.shape[0], 3, SIZE, SIZE)  # grey -> 3 channels, as the reference does
        f = self.feature(x).flatten(1)
        return self.class_classifier(f), self.domain_classifier(_ReverseGrad.apply(f, alpha))


def _tensors(ds: PngDigits) -> tuple[torch.Tensor, torch.Tensor]:
    """A whole PNG data set decoded once (for the untimed evaluations)."""
    xs, ys = zip(*(ds[i] for i in range(len(ds))), strict=True)
    return torch.stack(xs), torch.tensor(ys)


@torch.no_grad()
def _accuracy(model: ReferenceDANN, x: torch.Tensor, y: torch.Tensor, bs: int = 500) -> float:
    model.eval()
    correct = sum(
        int((model(x[i : i + bs], 0.0)[0].argmax(1) == y[i : i + bs]).sum())
        for i in range(0, len(x), bs)
    )
    model.train()
    return round(100 * correct / len(x), 2)


def run_baseline(epochs: int, workers: int, batch: int, seed: int) -> Curve:
    """Train the reference recipe; target test accuracy after every epoch (clock paused)."""
    torch.manual_seed(seed)
    model = ReferenceDANN().train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    kw: dict[str, Any] = {
        "batch_size": batch,
        "shuffle": True,
        "drop_last": True,
        "num_workers": workers,
    }
    source = torch.utils.data.DataLoader(PngDigits(mnist_pngs()), **kw)
    target = torch.utils.data.DataLoader(PngDigits(usps_pngs()), **kw)
    x_test, y_test = _tensors(PngDigits(usps_pngs(), "val.csv"))
    per_epoch = min(len(source), len(target))
    total = epochs * per_epoch
    print(
        f"baseline: {epochs} epochs x {per_epoch} iterations, batch {batch}+{batch}, "
        f"{workers} workers per loader, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    curve = Curve("baseline")
    train_s = 0.0
    for epoch in range(epochs):
        t = time.perf_counter()
        it_s, it_t = iter(source), iter(target)
        for i in range(per_epoch):
            p = (i + epoch * per_epoch) / total
            alpha = 2.0 / (1.0 + math.exp(-10 * p)) - 1
            xs, ys = next(it_s)
            model.zero_grad()
            cls_out, dom_s = model(xs, alpha)
            err_s_label = F.nll_loss(cls_out, ys)
            err_s_domain = F.nll_loss(dom_s, torch.zeros(len(xs), dtype=torch.long))
            xt, _ = next(it_t)
            _, dom_t = model(xt, alpha)
            err_t_domain = F.nll_loss(dom_t, torch.ones(len(xt), dtype=torch.long))
            (err_s_label + err_s_domain + err_t_domain).backward()
            opt.step()
            losses = (err_s_label.item(), err_s_domain.item(), err_t_domain.item())
        del it_s, it_t  # shut this epoch's workers down on the clock (the next epoch starts new)
        train_s += time.perf_counter() - t
        acc = _accuracy(model, x_test, y_test)  # clock paused
        curve.add((epoch + 1) * per_epoch, train_s, acc)
        print(
            f"  epoch {epoch + 1}/{epochs}: {train_s:.1f} s, USPS test {acc:.2f}%, last losses "
            + " ".join(f"{v:.3f}" for v in losses),
            flush=True,
        )
    return curve


# ---------------------------------------------------------------------------- genda


def run_genda(
    out: Path, steps: int, eval_every: int, threads: int, seed: int
) -> tuple[Curve, dict[str, Any]]:
    """genda's default DANN through ``loop.train``; its eval rows with evaluation time removed."""
    from genda.data.prepare import prepare
    from genda.engine.loop import resolve_config, total_steps, train

    train_cfg: dict[str, Any] = {
        "device": "cpu",
        "threads": threads,
        "progress": False,
        "eval_every": eval_every,
        "seed": seed,
    }
    if steps:
        train_cfg["steps"] = steps
    cfg = resolve_config(
        {
            "method": "dann",
            "data": {
                "source": f"mnist:{SHARED / 'mnist'}",
                "target": f"course:{SHARED / 'course' / 'usps'}",
            },
            "train": train_cfg,
        }
    )
    run_dir = out / "genda_run"
    if run_dir.exists():
        shutil.rmtree(run_dir)  # loop.train refuses a directory holding a run
    t = time.perf_counter()
    data = prepare(cfg.data, cfg.train.seed)
    prep_s = time.perf_counter() - t
    n = total_steps(cfg, data)
    from genda.engine.precision import auto_precision

    precision = auto_precision("cpu") if cfg.train.precision == "auto" else cfg.train.precision
    print(
        f"genda: dann defaults, {n} steps, batch {cfg.train.batch_size}+{cfg.train.batch_size}, "
        f"augment={cfg.hparams['augment']}, channels_last={cfg.train.channels_last}, "
        f"precision={precision}, eval every {eval_every} steps, "
        f"load average {os.getloadavg()[0]:.1f} (data read + converted in {prep_s:.1f} s)",
        flush=True,
    )
    t = time.perf_counter()
    # no per-run t-SNE / confusion figures: minutes on no clock
    train(cfg, run_dir, data=data, figures=False)
    call_s = time.perf_counter() - t
    with open(run_dir / "history.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if (r.get("target_accuracy") or "").strip()]
    curve = Curve("genda")
    for r in rows:  # loop.train's clock stops during evaluations: time_s is training time
        curve.add(int(r["step"]), float(r["time_s"]), float(r["target_accuracy"]))
    info = {
        "steps": n,
        "data_prep_s": round(prep_s, 2),
        "train_call_s": round(call_s, 2),
        "precision": precision,
        "run_dir": str(run_dir),
    }
    return curve, info


# ------------------------------------------------------------------------ reporting


def plot(baseline: Curve, genda: Curve, reach: int | None, path: Path) -> Path:
    from matplotlib.figure import Figure

    from genda.viz import save_figure

    fig = Figure(figsize=(7.5, 4.5), layout="constrained")
    ax = fig.subplots()
    for c, label in (
        (baseline, f"conventional DANN ({len(baseline.steps)} epochs, PIL + DataLoader)"),
        (genda, "genda DANN (defaults)"),
    ):
        ax.plot(c.seconds, c.accuracy, marker="o", markersize=2.5, linewidth=1.2, label=label)
    final = baseline.accuracy[-1]
    ax.axhline(
        final, color="grey", linestyle="--", linewidth=0.8, label=f"baseline final {final:.1f}%"
    )
    ax.axvline(
        baseline.seconds[-1] * GOAL,
        color="grey",
        linestyle=":",
        linewidth=0.8,
        label="1/4 of baseline time (goal)",
    )
    if reach is not None:
        ax.plot(
            genda.seconds[reach],
            genda.accuracy[reach],
            "k*",
            markersize=10,
            label=f"genda reaches it: {genda.seconds[reach]:.0f} s",
        )
    ax.set_xlabel("training seconds (evaluation excluded)")
    ax.set_ylabel("USPS test accuracy (%)")
    ax.set_title("MNIST -> USPS: target accuracy vs training time")
    ax.set_ylim(max(0.0, min(baseline.accuracy + genda.accuracy) - 5), 100)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return save_figure(fig, path)


def write_curves(curves: list[Curve], path: Path) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["pipeline", "step", "train_s", "target_accuracy"])
        for c in curves:
            for row in zip(c.steps, c.seconds, c.accuracy, strict=True):
                w.writerow([c.name, row[0], f"{row[1]:.3f}", row[2]])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=None, help="baseline epochs (100; smoke 2)")
    p.add_argument("--out", type=Path, default=Path("runs/bench_tta"))
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    p.add_argument("--workers", type=int, default=2, help="baseline DataLoader workers per loader")
    p.add_argument("--batch-size", type=int, default=128, help="baseline, per domain")
    p.add_argument(
        "--genda-steps", type=int, default=None, help="override genda's steps (0 = its default)"
    )
    p.add_argument("--eval-every", type=int, default=None, help="genda eval period (100; smoke 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="tiny run: 2 epochs, 60 genda steps")
    args = p.parse_args()
    epochs = args.epochs if args.epochs is not None else (2 if args.smoke else 100)
    genda_steps = args.genda_steps if args.genda_steps is not None else (60 if args.smoke else 0)
    eval_every = args.eval_every if args.eval_every is not None else (20 if args.smoke else 100)
    needed = [SHARED / "mnist", SHARED / "course" / "usps"]
    if not all(d.is_dir() for d in needed):
        print(f"skipped: real data not found ({', '.join(map(str, needed))})")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    print(machine(), flush=True)

    mnist_pngs()  # written once, before any clock
    baseline = run_baseline(epochs, args.workers, args.batch_size, args.seed)
    genda, info = run_genda(args.out, genda_steps, eval_every, args.threads, args.seed)

    base_s, base_acc = baseline.seconds[-1], baseline.accuracy[-1]
    reach = genda.first_reaching(base_acc)
    own = baseline.first_reaching(base_acc)
    ratio = genda.seconds[reach] / base_s if reach is not None else None
    fig = plot(baseline, genda, reach, args.out / "time_to_accuracy.png")
    write_curves([baseline, genda], args.out / "curves.csv")

    def at(c: Curve, i: int | None) -> str:
        return "never" if i is None else f"{c.seconds[i]:.1f} s (step {c.steps[i]})"

    verdict = f"{ratio:.3f} ({'met' if ratio <= GOAL else 'not met'})" if ratio is not None else ""
    rows = [
        [
            f"baseline, {epochs} epochs",
            baseline.steps[-1],
            f"{base_acc:.2f}",
            f"{base_s:.1f}",
            at(baseline, own),
            "1 (reference)",
        ],
        [
            "genda dann, defaults",
            genda.steps[-1],
            f"{genda.accuracy[-1]:.2f}",
            f"{genda.seconds[-1]:.1f}",
            at(genda, reach),
            f"**{verdict}**" if ratio is not None else "- (not reached)",
        ],
    ]
    print(f"\nMNIST -> USPS, USPS test accuracy; {machine()}")
    print(
        table(
            [
                "pipeline",
                "steps",
                "final acc (%)",
                "training s",
                f"first at >= {base_acc:.2f}%",
                f"time / baseline time (goal <= {GOAL:g})",
            ],
            rows,
        )
    )
    print(
        f"\ntraining s exclude evaluation on both sides (both clocks pause for it). genda's clock "
        f"starts after reading + converting its data ({info['data_prep_s']:.1f} s) and set-up "
        f"(whole train() call {info['train_call_s']:.1f} s); precision {info['precision']}."
    )
    print(f"figure: {fig}\ncurves: {args.out / 'curves.csv'}")
    emit_json(
        {
            "machine": machine(),
            "baseline": {
                "epochs": epochs,
                "steps": baseline.steps[-1],
                "final_accuracy": base_acc,
                "train_s": round(base_s, 2),
                "workers": args.workers,
            },
            "genda": {
                "final_accuracy": genda.accuracy[-1],
                "train_s": round(genda.seconds[-1], 2),
                "reach_s": None if reach is None else round(genda.seconds[reach], 2),
                "reach_step": None if reach is None else genda.steps[reach],
                **info,
            },
            "ratio": None if ratio is None else round(ratio, 4),
            "goal": GOAL,
            "goal_met": ratio is not None and ratio <= GOAL,
            "figure": str(fig),
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
