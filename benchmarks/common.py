"""Helpers shared by the benchmarks: where the data is, timing, memory and printing.

The machines these run on are often shared, so every benchmark measures the variants it
compares in the same process, interleaved, several times, and reports medians.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shared_data() -> Path:
    """The real data sets beside the checkout (``../shared/data``), or exit with a message."""
    root = REPO.parent / "shared" / "data"
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
