"""Training throughput of genda's generative steps (DCGAN, DDPM) vs the conventional pipeline.

Why: the issue goal is that genda's DCGAN and DDPM training steps reach at least **1.2x**
the images/s of the conventional PIL + ``DataLoader`` pipeline on the *same* network and
batch, with the peak RSS of each benchmark printed, and DDPM training at batch 256 using no
more memory than the reference's 5.1 GiB. A generative step is dominated by the networks
(much more than DANN's small digit step in ``pipeline.py``), so what genda's in-memory
batches save is the data pipeline's share of the CPU; this script measures how much that is.

Reference figures given for the goal (2-core CPU; not measured here):

- DCGAN, pytorch/examples style, batch 64, 64x64: 2.35 s/iter (27 images/s), 1.1 GiB peak RSS;
- conditional diffusion, ContextUnet n_feat=128, T=400, batch 256, 28 px: 33 s/iter,
  5.1 GiB peak RSS (a different, larger network than genda's default U-Net).

Two cases (``--models dcgan,ddpm``):

- **dcgan**: the 7,000 64x64 CelebA faces of ``../shared/data/course/face/train``, genda's
  ``dcgan`` method (nz 100, width 64, Adam 2e-4 / (0.5, 0.999), BCE, one D then one G update
  per step) at batch ``--batch-dcgan`` (64);
- **ddpm**: MNIST 60,000 train digits, 28 px grey, genda's conditional ``ddpm`` (its default
  U-Net: width 32, levels 2, attention; ``--ddpm-width`` overrides; T = 400 as the
  reference; AdamW with warm-up + cosine, grad clip 1, EMA) at batch ``--batch-ddpm`` (256).

Pipelines (same networks, same initial weights, same optimisers, losses and updates):

- **baseline** (what the reference scripts do): a ``Dataset`` opening one PNG per
  ``__getitem__`` with PIL and applying torchvision transforms per sample (faces:
  ``Resize(64), CenterCrop(64), ToTensor(), Normalize`` as pytorch/examples' DCGAN; digits:
  ``pipeline.py``'s ``PngDigits`` on MNIST exported once as PNGs into the benchmark cache), a
  shuffled ``DataLoader`` with ``--workers``, and a plain loop (``zero_grad`` / forward / loss
  / ``backward`` / ``step``) with ``.item()`` on the logged values every step; fp32.
- **genda**: the real ``Runtime`` (Lightning Fabric) and ``Stream`` of in-memory uint8 batches
  and ``method.train_step``, with the loop's scalar accumulation (``common.GendaSteps``). Two
  rows by default: ``auto`` (genda's defaults: ``train.precision=auto`` is bf16 autocast on
  CPUs with AMX; the GANs also default to ``train.channels_last``, the DDPM to it in fp32
  only) and ``fp32``
  (``train.precision=32-true``, the same precision as the baseline: the like-for-like
  comparison the goal is judged on). ``--variants`` adds ``bf16``, ``channels_last``,
  ``fp32+channels_last``, ``contiguous`` and ``fp32+contiguous`` (memory format forced on or
  off) and ``fp32+compile`` (``train.compile=true``). A variant that resolves to the same
  settings as an earlier one (``auto`` on a CPU without AMX) is not run twice.

Steady state: after ``--warmup`` steps of each, blocks of ``--steps`` steps of every
pipeline are timed in turn, ``--reps`` times (the order alternating), and medians (min-max)
reported; before each baseline block the batches its workers prefetched meanwhile are
consumed by untimed steps. Peak RSS: one fresh process per pipeline running
``--rss-steps`` steps from nothing (genda: its data in memory; baseline: plus the PSS of its
live DataLoader workers).

    python benchmarks/gen_pipeline.py --threads 1
    python benchmarks/gen_pipeline.py --models ddpm --ddpm-width 64 --threads 1
    python benchmarks/gen_pipeline.py --smoke --threads 1          # a quick check that it runs
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    REPO,
    SHARED_DATA,
    EndlessLoader,
    GendaSteps,
    emit_json,
    machine,
    median,
    peak_rss_mb,
    pss_mb,
    run_json,
    spread,
    table,
    time_interleaved,
)
from pipeline import PngDigits, mnist_pngs  # noqa: E402

sys.path.insert(0, str(REPO))

MODELS = ("dcgan", "ddpm")
GOAL = 1.2  # genda images/s over the baseline's
DDPM_T = 400  # the reference's diffusion steps (does not change the cost of a step)
DDPM_RSS_REF_MB = 5.1 * 1024  # the reference's peak RSS at batch 256
REFERENCE = {
    "dcgan": "pytorch/examples DCGAN, batch 64, 64x64: 2.35 s/iter = 27 images/s, 1.1 GiB peak RSS",
    "ddpm": "ContextUnet n_feat=128, T=400, batch 256, 28 px: 33 s/iter = 7.8 images/s, "
    "5.1 GiB peak RSS",
}
# genda variants: name -> TrainConfig overrides ("auto" = genda's defaults).
VARIANTS: dict[str, dict[str, Any]] = {
    "auto": {},
    "fp32": {"precision": "32-true"},
    "bf16": {"precision": "bf16-mixed"},
    "fp32+channels_last": {"precision": "32-true", "channels_last": True},
    "channels_last": {"channels_last": True},
    "contiguous": {"channels_last": False},
    "fp32+contiguous": {"precision": "32-true", "channels_last": False},
    "fp32+compile": {"precision": "32-true", "compile": True},
}
# per model: default timed steps per block, default batch, smoke batch
STEPS = {"dcgan": 10, "ddpm": 5}
BATCH = {"dcgan": 64, "ddpm": 256}
SMOKE_BATCH = {"dcgan": 8, "ddpm": 16}


# ----------------------------------------------------------------------------- data


def faces_dir() -> Path:
    return SHARED_DATA / "course" / "face"


def missing_data(model: str) -> str | None:
    """Why ``model``'s data is unavailable (None: it is there)."""
    from genda.data.formats import mnist_files

    if model == "dcgan":
        need = faces_dir() / "train.csv"
        return None if need.is_file() else f"{need} not found"
    root = SHARED_DATA / "mnist"
    return None if mnist_files(root) else f"MNIST not found in {root}"


def data_config(model: str):
    from genda.config import DataConfig

    if model == "dcgan":
        return DataConfig(source=f"course:{faces_dir()}", size=64, channels=3)
    return DataConfig(source=f"mnist:{SHARED_DATA / 'mnist'}", size=28, channels=1)


def data_info(model: str):
    """What the networks are built from, without loading the data (the baseline reads files)."""
    from genda.data.formats import DIGIT_CLASSES
    from genda.data.prepare import DataInfo

    dc = data_config(model)
    return DataInfo(dc.channels, dc.size, [] if model == "dcgan" else list(DIGIT_CLASSES))


def hparams(model: str, args: argparse.Namespace) -> dict[str, Any]:
    if model == "dcgan":
        return {}
    return {"timesteps": DDPM_T, **({"width": args.ddpm_width} if args.ddpm_width else {})}


def genda_config(model: str, variant: str, args: argparse.Namespace, total_steps: int):
    from genda.engine.loop import resolve_config

    train = {
        "steps": total_steps,
        "batch_size": batch_size(model, args),
        "device": "cpu",
        "threads": args.threads,
        "progress": False,
        "ckpt_every": 0,
        **VARIANTS[variant],
    }
    raw = {
        "method": model,
        "data": dataclasses.asdict(data_config(model)),
        "train": train,
        "hparams": hparams(model, args),
    }
    return resolve_config(raw)


def resolved(cfg) -> tuple[str, bool, bool]:
    """(precision, channels_last, compile) a config trains with on this machine."""
    from genda.engine.precision import auto_precision
    from genda.engine.runtime import resolve_channels_last, resolve_device

    tc = cfg.train
    prec = auto_precision(resolve_device(tc.device)) if tc.precision == "auto" else tc.precision
    return prec, resolve_channels_last(tc.channels_last, prec), tc.compile


def batch_size(model: str, args: argparse.Namespace) -> int:
    return args.batch_dcgan if model == "dcgan" else args.batch_ddpm


# ------------------------------------------------------------------------- baseline


class FacePngs(torch.utils.data.Dataset):
    """pytorch/examples' DCGAN data: one PNG opened and transformed per ``__getitem__``."""

    def __init__(self, root: Path, size: int = 64) -> None:
        from torchvision import transforms as T

        with open(root / "train.csv", newline="") as fh:
            rows = list(csv.reader(fh))[1:]
        self.paths = [root / "train" / r[0] for r in rows if r]
        self.transform = T.Compose(
            [
                T.Resize(size),
                T.CenterCrop(size),
                T.ToTensor(),
                T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
            ]
        )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = Image.open(self.paths[i]).convert("RGB")
        return self.transform(img), 0  # ImageFolder's label; unused by DCGAN


class Baseline:
    """The conventional pipeline: per-sample PIL in a DataLoader, a plain training loop.

    The networks, their initial weights and the optimisers (and lr schedule) are genda's:
    the method object is only a container here, its ``train_step`` is never called.
    """

    def __init__(self, model: str, args: argparse.Namespace, total_steps: int) -> None:
        from genda.engine.loop import build_method

        cfg = genda_config(model, "fp32", args, total_steps)
        torch.manual_seed(cfg.train.seed)
        self.m = build_method(cfg, data_info(model))
        self.m.total_steps = total_steps
        self.m.configure(total_steps)
        self.m.train()
        self.workers, self.step_no = args.workers, 0
        ds = FacePngs(faces_dir()) if model == "dcgan" else PngDigits(mnist_pngs())
        self.loader = EndlessLoader(
            torch.utils.data.DataLoader(
                ds,
                batch_size=cfg.train.batch_size,
                shuffle=True,
                drop_last=True,
                num_workers=args.workers,
            )
        )

    def step(self) -> list[float]:
        raise NotImplementedError

    def run(self, n: int) -> None:
        for _ in range(n):
            self.step_no += 1
            self.step()

    def settle(self) -> None:
        """Consume the batches the workers prefetched while another pipeline was timed."""
        self.run(2 * self.workers)  # prefetch_factor (2) batches per worker

    def worker_pids(self) -> list[int]:
        return self.loader.worker_pids()

    def close(self) -> None:
        self.loader.close()


class DCGANBaseline(Baseline):
    def step(self) -> list[float]:
        real, _ = self.loader.next()
        g, d = self.m.nets["g"], self.m.nets["d"]
        opt_g, opt_d = self.m.optimizers["g"], self.m.optimizers["d"]
        n = len(real)
        ones, zeros = torch.ones(n), torch.zeros(n)
        fake = g(torch.randn(n, self.m.hp.nz))
        # D: real and fake batches separately (BatchNorm), each with its own backward.
        opt_d.zero_grad()
        out_real = d(real)[:, 0]
        loss_real = F.binary_cross_entropy_with_logits(out_real, ones)
        loss_real.backward()
        out_fake = d(fake.detach())[:, 0]
        loss_fake = F.binary_cross_entropy_with_logits(out_fake, zeros)
        loss_fake.backward()
        opt_d.step()
        # G: non-saturating loss through D.
        opt_g.zero_grad()
        out_gen = d(fake)[:, 0]
        loss_g = F.binary_cross_entropy_with_logits(out_gen, ones)
        loss_g.backward()
        opt_g.step()
        # What the reference prints every step (each .item() waits for the step).
        return [
            (loss_real + loss_fake).item(),
            loss_g.item(),
            torch.sigmoid(out_real).mean().item(),
            torch.sigmoid(out_fake).mean().item(),
            torch.sigmoid(out_gen).mean().item(),
        ]


class DDPMBaseline(Baseline):
    def step(self) -> list[float]:
        x0, y = self.loader.next()
        hp, unet = self.m.hp, self.m.nets["unet"]
        opt, sched = self.m.optimizers["main"], self.m.schedulers["main"]
        n = len(x0)
        drop = torch.rand(n) < hp.p_uncond  # classifier-free guidance: null context
        y = torch.where(drop, self.m.null_label, y)
        t = torch.randint(0, hp.timesteps, (n,))
        noise = torch.randn_like(x0)
        x_t = self.m.noise_schedule.add_noise(x0, noise, t)
        opt.zero_grad()
        loss = F.mse_loss(unet(x_t, t, y), noise)
        loss.backward()
        if hp.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(unet.parameters(), hp.grad_clip)
        opt.step()
        sched.step()
        if "ema" not in self.m.nets:
            return [loss.item()]
        ema = self.m.nets["ema"]
        with torch.no_grad():  # EMA of the weights, with genda's warm-up of the decay
            decay = min(hp.ema, (1 + self.step_no) / (10 + self.step_no))
            for pe, p in zip(ema.parameters(), unet.parameters(), strict=True):
                pe.lerp_(p, 1 - decay)
            for be, b in zip(ema.buffers(), unet.buffers(), strict=True):
                be.copy_(b)
        return [loss.item()]


def make_baseline(model: str, args: argparse.Namespace, total_steps: int) -> Baseline:
    cls = DCGANBaseline if model == "dcgan" else DDPMBaseline
    return cls(model, args, total_steps)


# ------------------------------------------------------------------------ measuring


def child_main(args: argparse.Namespace) -> None:
    """``--child MODEL:PIPE``: ``--rss-steps`` steps from nothing in this fresh process."""
    model, pipe = args.child.split(":", 1)
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    res: dict[str, Any] = {}
    if pipe == "baseline":
        b = make_baseline(model, args, args.rss_steps + 10)
        b.run(args.rss_steps)
        res["workers_pss_mb"] = sum(pss_mb(pid) for pid in b.worker_pids())
        b.close()
    else:
        from genda.data.prepare import prepare

        data = prepare(data_config(model), 0)
        total = args.rss_steps + 10
        g = GendaSteps(genda_config(model, pipe, args, total), data, total)
        g.run(args.rss_steps)
    res.update(rss_mb=peak_rss_mb(), seconds=time.perf_counter() - t0)
    emit_json(res)


def rss_child(model: str, pipe: str, args: argparse.Namespace) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", f"{model}:{pipe}", "--models", model]
    cmd += ["--threads", str(args.threads), "--workers", str(args.workers)]
    cmd += ["--rss-steps", str(args.rss_steps), "--ddpm-width", str(args.ddpm_width)]
    cmd += ["--batch-dcgan", str(args.batch_dcgan), "--batch-ddpm", str(args.batch_ddpm)]
    return run_json(cmd)


def describe(model: str, args: argparse.Namespace, method: Any) -> str:
    """The networks both pipelines train (``method``: genda's method object)."""
    hp = method.hp
    counts = {
        k: sum(p.numel() for p in net.parameters()) for k, net in method.nets.items() if k != "ema"
    }
    nets = ", ".join(f"{k} {n:,} parameters" for k, n in counts.items())
    if model == "dcgan":
        what = f"DCGAN on 64x64 faces, nz {hp.nz}, width {hp.width}"
    else:
        default = "" if args.ddpm_width else " (genda's default)"
        what = (
            f"conditional DDPM on MNIST 28 px, U-Net width {hp.width}{default}, levels "
            f"{hp.levels}, attention {hp.attention}, T {hp.timesteps}, EMA {hp.ema}"
        )
    return f"{what}; {nets}; batch {batch_size(model, args)}"


def bench_model(model: str, args: argparse.Namespace) -> dict[str, Any]:
    from genda.data.prepare import prepare

    batch = batch_size(model, args)
    steps = args.steps or STEPS[model]
    total = args.warmup + args.reps * (steps + 2 * args.workers + 1) + 10
    print(f"\n== {model}", flush=True)
    if model == "ddpm":
        mnist_pngs()  # the baseline's PNGs, written once
    t = time.perf_counter()
    data = prepare(data_config(model), 0)
    print(f"genda data in memory: {time.perf_counter() - t:.1f} s", flush=True)

    pipes: dict[str, Any] = {}
    labels: dict[str, str] = {}  # row name -> variant (or "baseline")
    seen: dict[tuple[str, bool, bool], str] = {}
    for v in args.variants:
        cfg = genda_config(model, v, args, total)
        key = resolved(cfg)
        if key in seen:
            print(f"genda {v}: same settings as genda {seen[key]} here ({key[0]}); not run twice")
            continue
        seen[key] = v
        name = f"genda {v} ({key[0]}{', channels_last' if key[1] else ''}{', compile' if key[2] else ''})"
        pipes[name], labels[name] = GendaSteps(cfg, data, total), v
    base_name = f"baseline fp32, {args.workers} workers"
    pipes[base_name], labels[base_name] = make_baseline(model, args, total), "baseline"
    print(describe(model, args, pipes[base_name].m), flush=True)

    rates = time_interleaved(pipes, args.warmup, steps, args.reps, batch)
    pipes[base_name].close()

    rss: dict[str, dict[str, Any]] = {}
    if not args.no_rss:
        for name, kind in labels.items():
            rss[name] = rss_child(model, kind, args)

    ref = median(rates[base_name])
    rows = []
    for name, xs in rates.items():
        r = rss.get(name, {})
        workers = r.get("workers_pss_mb", 0.0)
        rows.append(
            [
                name,
                spread(xs),
                f"{batch / median(xs) * 1e3:,.0f}",
                f"{median(xs) / ref:.2f}x",
                f"{r['rss_mb']:,.0f}" if r else "-",
                f"{workers:,.0f}" if workers else "-",
                f"{r['rss_mb'] + workers:,.0f}" if r else "-",
            ]
        )
    print(
        f"\n{model}: batch {batch}, {steps} steps x {args.reps} blocks, torch threads "
        f"{torch.get_num_threads()}; memory: fresh process per pipeline, {args.rss_steps} steps"
    )
    print(
        table(
            [
                "pipeline",
                "images/s median (min-max)",
                "ms/step",
                "vs baseline",
                "peak RSS MiB",
                "workers PSS MiB",
                "total MiB",
            ],
            rows,
        )
    )
    print(f"reference (given, not measured here): {REFERENCE[model]}")
    verdicts: dict[str, Any] = {}
    for name in rates:
        if name == base_name:
            continue
        ratio = median(rates[name]) / ref
        ok = ratio >= GOAL
        verdicts[name] = {"ratio": ratio, "goal_met": ok}
        fair = " (same precision as the baseline)" if "32-true" in name else ""
        print(f"goal >= {GOAL}x: {name}{fair}: {ratio:.2f}x -> {'met' if ok else 'NOT met'}")
    if model == "ddpm" and rss:
        if batch == 256:
            for name, r in rss.items():
                total_mb = r["rss_mb"] + r.get("workers_pss_mb", 0.0)
                ok = total_mb <= DDPM_RSS_REF_MB
                print(
                    f"memory goal <= 5.1 GiB at batch 256: {name}: {total_mb / 1024:.2f} GiB -> "
                    f"{'met' if ok else 'NOT met'}"
                )
                verdicts.setdefault(name, {})["rss_goal_met"] = ok
        else:
            print(f"memory goal (5.1 GiB) is for batch 256; this run used batch {batch}")
    return {
        "batch": batch,
        "steps": steps,
        "reps": args.reps,
        "images_per_s": {k: median(v) for k, v in rates.items()},
        "images_per_s_all": rates,
        "rss": rss,
        "verdicts": verdicts,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="dcgan,ddpm", help="comma list of: dcgan, ddpm")
    p.add_argument(
        "--steps",
        type=int,
        default=0,
        help=f"timed steps per block (0 = per model: {', '.join(f'{k} {v}' for k, v in STEPS.items())})",
    )
    p.add_argument("--reps", type=int, default=5, help="timed blocks per pipeline (median)")
    p.add_argument("--warmup", type=int, default=3, help="untimed steps before the first block")
    p.add_argument("--workers", type=int, default=2, help="baseline DataLoader workers")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    p.add_argument("--batch-dcgan", type=int, default=0, help="DCGAN batch (0 = 64)")
    p.add_argument("--batch-ddpm", type=int, default=0, help="DDPM batch (0 = 256)")
    p.add_argument(
        "--ddpm-width", type=int, default=0, help="DDPM U-Net width (0 = genda's default, 32)"
    )
    p.add_argument(
        "--variants",
        default="auto,fp32",
        help=f"genda rows, comma list of: {', '.join(VARIANTS)}",
    )
    p.add_argument("--rss-steps", type=int, default=3, help="steps of each peak-RSS process")
    p.add_argument("--no-rss", action="store_true", help="skip the peak-RSS child processes")
    p.add_argument(
        "--smoke",
        action="store_true",
        help="check that it runs: 1 step x 1 block, warm-up 1, tiny batches (8 / 16)",
    )
    p.add_argument("--child", help=argparse.SUPPRESS)  # internal: peak-RSS process
    args = p.parse_args()
    if args.smoke:
        args.steps, args.reps, args.warmup, args.rss_steps = 1, 1, 1, 1
    for m in MODELS:
        attr = f"batch_{m}"
        if not getattr(args, attr):
            setattr(args, attr, (SMOKE_BATCH if args.smoke else BATCH)[m])
    models = [m for m in args.models.split(",") if m]
    bad = [m for m in models if m not in MODELS]
    if bad:
        p.error(f"unknown model(s) {', '.join(bad)}; valid: {', '.join(MODELS)}")
    if args.child:
        return child_main(args)
    args.variants = [v for v in args.variants.split(",") if v]
    bad = [v for v in args.variants if v not in VARIANTS]
    if bad:
        p.error(f"unknown variant(s) {', '.join(bad)}; valid: {', '.join(VARIANTS)}")
    if args.threads:
        torch.set_num_threads(args.threads)

    runnable = []
    for m in models:
        why = missing_data(m)
        if why:
            print(f"skipping {m}: its data is absent ({why})")
        else:
            runnable.append(m)
    if not runnable:
        print("gen_pipeline: no data for any requested model; nothing measured")
        return
    print(machine())
    result: dict[str, Any] = {"machine": machine(), "models": {}}
    for m in runnable:
        result["models"][m] = bench_model(m, args)
    emit_json(result)


if __name__ == "__main__":
    main()
