"""``train.precision=auto``: bf16 autocast where this machine runs it faster than fp32.

CUDA GPUs and CPUs with AMX multiply bf16 natively: bf16. CPUs with neither AMX nor
AVX-512 BF16 emulate bf16 and are slower in it: fp32. CPUs with AVX-512 BF16 but no AMX
differ by model (an AMD EPYC ran the DANN step 1.7x faster in bf16; a Xeon without AMX
exposed ran it at the same speed and the DCGAN/DDPM steps 1.3-1.4x slower; see
``benchmarks/README.md``), so there genda times a small conv net in both precisions once
and keeps the answer in ``$GENDA_CACHE/precision.json``, keyed by CPU model, torch version
and thread count (about a second, the first time only).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from genda.errors import GendaError
from genda.io import write_json

# bf16 must beat fp32 by this factor: below it the measurement is within run-to-run noise
# and fp32 keeps the bit-for-bit simpler arithmetic.
MIN_SPEEDUP = 1.15
CACHE_NAME = "precision.json"


def cpu_features() -> dict[str, bool | str]:
    """What the CPU can do, as torch sees it (tests pass their own dict instead)."""
    return {
        "model": _cpu_model(),
        "amx": bool(getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()),
        "avx512_bf16": bool(getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()),
    }


def _cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's name with its family and model numbers: under KVM the name alone is often
    just "AMD EPYC" for generations that differ in bf16 speed (Zen 3 and Zen 4)."""
    try:
        fields: dict[str, str] = {}
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if not line.strip():
                break  # the first processor's block is enough
            fields.setdefault(key.strip(), value.strip())
        if "model name" in fields:
            ids = [f"{k} {fields[k]}" for k in ("cpu family", "model") if k in fields]
            return ", ".join([fields["model name"], *ids])
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


def time_step(dtype: torch.dtype | None, repeats: int = 6) -> float:
    """Median seconds of one forward+backward of a digit-sized conv net, under bf16
    autocast (``dtype=torch.bfloat16``) or in fp32 (``None``)."""
    torch.manual_seed(0)
    net = nn.Sequential(  # a LeNet block (the UDA nets) and a 3x3 block (GAN / U-Net convs)
        nn.Conv2d(3, 32, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(64, 10),
    ).to(memory_format=torch.channels_last)
    x = torch.randn(32, 3, 28, 28).contiguous(memory_format=torch.channels_last)
    times = []
    for i in range(repeats + 2):  # two warm-up iterations (oneDNN picks its kernels)
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype is not None):
            loss = net(x).float().square().mean()
        loss.backward()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def auto_precision(
    accel: str,
    features: dict[str, bool | str] | None = None,
    cache: Path | None = None,
    timer: Callable[[torch.dtype | None], float] = time_step,
) -> str:
    """``bf16-mixed`` or ``32-true`` for ``train.precision=auto`` on device ``accel``."""
    if accel == "cuda":
        return "bf16-mixed"
    if accel != "cpu":
        return "32-true"
    f = features if features is not None else cpu_features()
    if f["amx"]:
        return "bf16-mixed"
    if not f["avx512_bf16"]:
        return "32-true"
    if cache is None:
        from genda.cache import cache_dir, cache_enabled

        cache = cache_dir() / CACHE_NAME if cache_enabled() else None
    key = f"{f['model']}|torch {torch.__version__}|{torch.get_num_threads()} threads"
    known: dict = {}
    if cache is not None and cache.is_file():
        try:
            known = json.loads(cache.read_text())
        except (OSError, ValueError):
            known = {}  # a damaged cache is measured again
    if key not in known:
        fp32, bf16 = timer(None), timer(torch.bfloat16)
        known[key] = {"fp32_ms": round(fp32 * 1e3, 2), "bf16_ms": round(bf16 * 1e3, 2)}
        try:
            if cache is not None:
                write_json(cache, known)
        except (OSError, GendaError):  # an unwritable cache only costs the measurement
            pass
    m = known[key]
    return "bf16-mixed" if m["fp32_ms"] >= MIN_SPEEDUP * m["bf16_ms"] else "32-true"
