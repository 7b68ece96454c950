"""Typed experiment configuration: dataclasses, YAML files and ``key=value`` overrides.

Configs are plain dataclasses (nanoGPT style) so a reader sees every knob and its default
in one place. Validation lives in :func:`from_dict`, which rejects unknown keys and
invalid values with the valid choices listed, because a typo in a config should never
silently train the wrong model.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from genda.errors import ConfigError


def choice(default: Any, choices: list[Any], help: str = "") -> Any:
    """A field restricted to ``choices``."""
    return field(default=default, metadata={"choices": choices, "help": help})


def format_choices(choices: list[Any]) -> str:
    """``choices`` as a user types them in YAML or ``--set`` (booleans as true/false)."""
    return ", ".join(str(c).lower() if isinstance(c, bool) else str(c) for c in choices)


def bounded(default: Any, lo: float | None = None, hi: float | None = None, help: str = "") -> Any:
    """A numeric field restricted to ``[lo, hi]``."""
    return field(default=default, metadata={"min": lo, "max": hi, "help": help})


@dataclass
class DataConfig:
    """Which data sets, and how to convert them for this experiment."""

    source: str = "digits"
    target: str = ""  # domain adaptation only: the unlabelled target domain
    size: int = bounded(
        0, 0, 256, "image side after conversion; 0 = auto: the larger native side of the data"
    )
    channels: int = choice(
        0, [0, 1, 3], "1 = grey, 3 = RGB, 0 = auto: RGB if any of the data is colour, else grey"
    )
    # Digits of different data sets fill their frames differently (USPS digits fill 16 px,
    # MNIST's sit in a 20 px box of 28): a classifier learns stroke widths and sizes at one
    # scale, so auto shrinks the wider-spread domain's images into its frame to match.
    source_scale: float = bounded(
        0.0, 0.0, 1.0, "shrink source images to this fraction of the side; 0 = auto (match)"
    )
    target_scale: float = bounded(
        0.0, 0.0, 1.0, "shrink target images to this fraction of the side; 0 = auto (match)"
    )
    attribute: str = ""  # attribute models: which binary attribute is the label (e.g. Smiling)
    limit: int = bounded(0, 0, None, "use at most this many training images (0 = all)")
    download: bool = False
    strict: bool = False  # refuse image files whose size differs from the rest of their set

    def __post_init__(self) -> None:
        if 0 < self.size < 8:
            raise ConfigError(f"data.size: {self.size} is out of range [8, 256] (or 0 = auto)")


@dataclass
class TrainConfig:
    """How long and where to train."""

    steps: int = bounded(0, 0, None, "optimisation steps; 0 = derive from epochs")
    epochs: float = bounded(10.0, 0.0, None, "passes over the source training set")
    batch_size: int = bounded(128, 1, 65536)
    seed: int = 0
    device: str = choice("auto", ["auto", "cpu", "cuda", "mps"])
    precision: str = choice(
        "auto",
        ["auto", "32-true", "bf16-mixed", "16-mixed"],
        "auto = bf16-mixed on CUDA, AMX CPUs and AVX-512 BF16 CPUs where it times faster",
    )
    devices: int = bounded(1, 1, 1024, "data-parallel processes (Lightning Fabric DDP)")
    num_nodes: int = bounded(1, 1, 4096)
    deterministic: bool = False
    channels_last: bool | str = choice(
        False,
        [True, False, "fp32"],
        "channels_last memory format; fp32 = only when training in 32-true precision",
    )
    sync_batchnorm: bool = False  # CUDA DDP only: BatchNorm statistics over all ranks
    compile: bool = False
    threads: int = bounded(0, 0, 256, "torch CPU threads; 0 = torch default")
    log_every: int = bounded(50, 1, None)
    eval_every: int = bounded(
        0, 0, None, "evaluate during training every N steps (0 = only at the end)"
    )
    ckpt_every: int = bounded(500, 0, None, "checkpoint every N steps (0 = only at the end)")
    select: str = choice(
        "final",
        ["final", "im", "entropy"],
        "domain adaptation: evaluate the final model, or the one (of every ckpt_every steps) "
        "with the best score on unlabelled target train images: im = information "
        "maximisation, entropy = lowest prediction entropy",
    )
    sample_every: int = bounded(
        -1,
        -1,
        None,
        "generative runs: a fixed-noise sample grid every N steps, animated as "
        "figures/progress.gif (-1 = steps // 20 from 100 steps, about 20 frames; 0 = off)",
    )
    progress: bool = True


@dataclass
class ExperimentConfig:
    """One training run: a method, its hyper-parameters, the data and the schedule."""

    method: str = "dann"
    name: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    hparams: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _type_ok(value: Any, tp: Any) -> tuple[bool, Any]:
    """Check (and gently coerce: int->float, str->bool) ``value`` against annotation ``tp``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            ok, v = _type_ok(value, arg)
            if ok:
                return True, v
        return False, value
    if tp is type(None):
        return value is None, value
    if tp is bool:
        if isinstance(value, bool):
            return True, value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return True, value.lower() in ("true", "1", "yes")
        return False, value
    if tp is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return True, float(value)
        return False, value
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return True, value
        if isinstance(value, float) and value.is_integer():
            return True, int(value)
        return False, value
    if tp is str:
        return (True, str(value)) if isinstance(value, str | int | float) else (False, value)
    if origin in (list, tuple):
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        return isinstance(value, list | tuple), list(value)
    if origin is dict or tp is dict:
        return isinstance(value, dict), value
    return True, value


def from_dict(cls: type, data: dict[str, Any] | None, where: str = "") -> Any:
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and invalid values."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown config key {(where + unknown[0])!r}; valid keys: "
            f"{', '.join(where + k for k in fields)}"
        )
    kwargs = {}
    for name, value in data.items():
        key, tp = where + name, hints[name]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{key} must be a mapping of {', '.join(f.name for f in dataclasses.fields(tp))}"
                )
            kwargs[name] = from_dict(tp, value, key + ".")
            continue
        ok, value = _type_ok(value, tp)
        if not ok:
            raise ConfigError(f"{key}: expected {getattr(tp, '__name__', tp)}, got {value!r}")
        meta = fields[name].metadata
        if "choices" in meta and value not in meta["choices"]:
            raise ConfigError(
                f"{key}: invalid value {value!r}; valid choices: {format_choices(meta['choices'])}"
            )
        lo, hi = meta.get("min"), meta.get("max")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key}: {value!r} is not a finite number")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            rng = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
            raise ConfigError(f"{key}: {value!r} is out of range {rng}")
        kwargs[name] = value
    return cls(**kwargs)


def parse_overrides(items: list[str]) -> dict[str, Any]:
    """Turn ``["train.lr=0.1", "hparams.beta=2"]`` into a nested dict (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.key=value")
        key, raw = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {p} was set to a value, not a section")
        try:
            node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as e:
            first = str(e).splitlines()[0]
            raise ConfigError(f"override {item!r}: the value is not valid YAML ({first})") from None
    return out


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; ``extra`` wins."""
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def load_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as e:
        raise ConfigError(f"{p}: not a UTF-8 text file ({e.reason} at byte {e.start})") from None
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise ConfigError(f"{p}: not valid YAML{at}: {what}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a mapping with sections method/data/train/hparams")
    return data
