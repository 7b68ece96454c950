"""Helpers shared by the benchmarks: where the data is, timing, memory and printing.

The machines these run on are often shared, so every benchmark measures the variants it
compares in the same process, interleaved, several times, and reports medians.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Protocol

REPO = Path(__file__).resolve().parents[1]
# The real data sets beside the checkout (never copied into the repository).
SHARED_DATA = REPO.parent / "shared" / "data"


def add_run_args(p: argparse.ArgumentParser, threads_help: str = "torch CPU threads") -> None:
    """``--device``, ``--threads`` and ``--seed``: how the training benchmarks (faces,
    gan_quality, ddpm_quality) run their engine runs; :func:`train_section` passes them on."""
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help=f"{threads_help} (0 = default)")
    p.add_argument("--seed", type=int, default=0)


def train_section(args: argparse.Namespace, **extra: Any) -> dict[str, Any]:
    """The ``train`` config section of a training benchmark's runs: ``--steps``,
    ``--batch-size`` and the :func:`add_run_args` options, plus the script's own ``extra``
    settings (progress, logging and checkpoint intervals)."""
    return {
        "steps": args.steps,
        "batch_size": args.batch_size,
        "seed": args.seed,
        "device": args.device,
        "threads": args.threads,
        **extra,
    }


def shared_data() -> Path:
    """The real data sets beside the checkout (``../shared/data``), or exit with a message."""
    root = SHARED_DATA
    if not root.is_dir():
        sys.exit(f"benchmark needs the real data sets in {root} (see docs); not found")
    return root


def bench_cache() -> Path:
    """Scratch space for files a benchmark derives once (never inside the repository)."""
    base = os.environ.get("GENDA_BENCH_CACHE") or Path.home() / ".cache" / "genda" / "bench"
    path = Path(base).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident memory in MiB of this process, or of its largest finished child.

    On Linux the process's own peak is ``VmHWM`` from ``/proc/self/status``: ``getrusage``'s
    ``ru_maxrss`` survives ``exec`` and would report the parent's size for a child started
    from a large process. Children (e.g. DataLoader workers) use ``getrusage``.
    """
    if not children:
        try:
            for ln in Path("/proc/self/status").read_text().splitlines():
                if ln.startswith("VmHWM:"):
                    return int(ln.split()[1]) / 1024
        except OSError:
            pass
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    kb = resource.getrusage(who).ru_maxrss  # KiB on Linux, bytes on macOS
    return kb / (1024 * 1024) if sys.platform == "darwin" else kb / 1024


def pss_mb(pid: int) -> float:
    """Proportional set size of a live process in MiB (shared pages split between sharers)."""
    try:
        for ln in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if ln.startswith("Pss:"):
                return int(ln.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call."""
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def median(xs: Iterable[float]) -> float:
    return statistics.median(list(xs))


def spread(xs: list[float]) -> str:
    """``median (min-max)`` formatted for a table cell."""
    return f"{median(xs):,.0f} ({min(xs):,.0f}-{max(xs):,.0f})"


def table(header: list[str], rows: list[list[object]]) -> str:
    """A Markdown table (pastes straight into benchmarks/README.md)."""
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join(
        [line(cells[0]), "| " + " | ".join("-" * w for w in widths) + " |"]
        + [line(r) for r in cells[1:]]
    )


def machine() -> str:
    """One line describing the CPU, torch and the load, printed with every result."""
    import torch

    cpu = "?"
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name"):
                cpu = ln.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads, load average {load:.1f}"
    )


def emit_json(obj: object) -> None:
    """Machine-readable result line (for --json and child processes)."""
    print("RESULT " + json.dumps(obj), flush=True)


def parse_json(output: str) -> dict:
    for ln in output.splitlines():
        if ln.startswith("RESULT "):
            return json.loads(ln[len("RESULT ") :])
    raise RuntimeError(f"no RESULT line in:\n{output[-2000:]}")


def run_json(cmd: list[str]) -> dict:
    """Run ``cmd`` (a fresh process, e.g. for a peak-RSS measurement) and parse its RESULT line."""
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stderr[-3000:]}")
    return parse_json(out.stdout)


# ----------------------------------------------------------------- training pipelines


class Pipe(Protocol):
    """A training pipeline under test: ``run(n)`` trains ``n`` steps; ``settle()`` is untimed
    work done before each timed block (e.g. consuming batches prefetched meanwhile)."""

    def run(self, n: int) -> None: ...

    def settle(self) -> None: ...


def time_interleaved(
    pipes: dict[str, Pipe], warmup: int, steps: int, reps: int, images_per_step: int
) -> dict[str, list[float]]:
    """Images/s of every pipeline in ``reps`` interleaved blocks of ``steps`` steps.

    Every pipeline is warmed up first (``warmup`` untimed steps). The order alternates
    between blocks, so a change of machine load during the run hits all pipelines alike.
    """
    for name, pipe in pipes.items():
        t = time.perf_counter()
        pipe.run(warmup)
        print(f"warm-up {name}: {time.perf_counter() - t:.1f} s", flush=True)
    rates: dict[str, list[float]] = {k: [] for k in pipes}
    names = list(pipes)
    for r in range(reps):
        for name in names if r % 2 == 0 else names[::-1]:
            pipe = pipes[name]
            pipe.settle()
            t = time.perf_counter()
            pipe.run(steps)
            rates[name].append(steps * images_per_step / (time.perf_counter() - t))
        print(
            f"rep {r + 1}/{reps}: " + ", ".join(f"{k} {v[-1]:.0f}" for k, v in rates.items()),
            flush=True,
        )
    return rates


class EndlessLoader:
    """Batches from a ``DataLoader`` forever, a new iterator per epoch as a training script's
    ``for epoch ...: for batch in loader`` does (so, with workers, new worker processes)."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader
        self.it: Iterator[Any] | None = iter(loader)

    def next(self) -> Any:
        try:
            return next(self.it)  # type: ignore[arg-type]
        except StopIteration:
            self.it = iter(self.loader)
            return next(self.it)

    def worker_pids(self) -> list[int]:
        return [w.pid for w in getattr(self.it, "_workers", [])]

    def close(self) -> None:
        self.it = None  # workers exit when their iterator is collected


class GendaSteps:
    """What ``genda.engine.loop.train`` does per step, on a method set up by the real
    ``Runtime`` (Lightning Fabric: device, precision, wrapped nets) and fed by ``Stream``.

    ``cfg`` is a resolved ``ExperimentConfig``, ``data`` the ``ExperimentData`` it trains on;
    ``param_overrides`` are set in every optimiser param group (e.g. ``{"foreach": True}``).
    Logged scalars are accumulated as tensors and synced to the host once per
    ``train.log_every`` steps and at the end of every :meth:`run`, as the loop does.
    """

    def __init__(
        self, cfg: Any, data: Any, total_steps: int, param_overrides: dict | None = None
    ) -> None:

        from genda.engine.loop import build_run
        from genda.engine.runtime import Runtime

        tc = cfg.train
        self.rt = Runtime(tc)
        self.method, self.streams, _ = build_run(cfg, data, self.rt, total_steps)
        for opt in self.method.optimizers.values():  # after Fabric's setup: same param groups
            for g in opt.param_groups:
                g.update(param_overrides or {})
        self.method.train()
        self.precision = self.rt.precision
        self.log_every, self.step_no = tc.log_every, 0
        self.sums: dict[str, Any] = {}

    def run(self, n: int) -> None:
        for _ in range(n):
            self.step_no += 1
            logs = self.method.train_step(
                {k: s.next() for k, s in self.streams.items()}, self.step_no
            )
            for k, v in logs.items():
                v = v.detach().float()
                self.sums[k] = self.sums[k] + v if k in self.sums else v
            if self.step_no % self.log_every == 0:
                self.flush()
        self.flush()  # end every timed block with the values on the host

    def settle(self) -> None:
        self.run(1)

    def flush(self) -> None:
        if self.sums:
            import torch

            self.rt.reduce_mean(torch.stack(list(self.sums.values()))).tolist()
            self.sums = {}
