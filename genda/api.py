"""genda's Python API: what the CLI does, as functions a notebook can call.

Each function composes the engine (training, sampling, evaluation, tables) and the report;
the ``genda`` command line is a thin argument parser over these. Example::

    import genda
    run = genda.train("dann", data="digits", target="digits-m", out="runs/dann", steps=600)
    print(run.metrics["target_accuracy"])
    images = genda.sample("runs/ddpm", n=16, classes=[3] * 16)   # uint8 [16, C, H, W]
    genda.write_report(["runs"], out="runs/report")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from genda.config import ConfigError, ExperimentConfig, load_yaml, merge

# Keyword shortcuts -> the config key they set (the CLI's named options).
SHORTCUTS = {
    "steps": ("train", "steps"),
    "epochs": ("train", "epochs"),
    "batch_size": ("train", "batch_size"),
    "seed": ("train", "seed"),
    "device": ("train", "device"),
    "devices": ("train", "devices"),
    "precision": ("train", "precision"),
    "threads": ("train", "threads"),
    "progress": ("train", "progress"),
    "size": ("data", "size"),
    "channels": ("data", "channels"),
    "attribute": ("data", "attribute"),
    "limit": ("data", "limit"),
    "download": ("data", "download"),
    "augment": ("hparams", "augment"),
}
SECTIONS = ("data", "train", "hparams")


@dataclass
class Run:
    """A finished run: its directory, validated config and final metrics."""

    dir: Path | None
    config: ExperimentConfig
    metrics: dict[str, Any]


def raw_config(config: str | Path | dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
    """A raw config from a YAML file or dict, then section dicts (``train={...}``,
    ``hparams={...}``) and shortcuts (``steps=600``; see ``SHORTCUTS``) on top; ``None``
    values are skipped, unknown keywords are a :class:`~genda.errors.ConfigError`."""
    raw: dict[str, Any] = (
        load_yaml(config) if isinstance(config, str | Path) else dict(config or {})
    )
    for key, value in options.items():
        if value is None:
            continue
        if key in SECTIONS:
            raw = merge(raw, {key: dict(value)})
        elif key in SHORTCUTS:
            section, name = SHORTCUTS[key]
            raw = merge(raw, {section: {name: value}})
        else:
            valid = ", ".join([*SECTIONS, *SHORTCUTS])
            raise ConfigError(f"unknown option {key!r}; valid: {valid}")
    return raw


def train(
    method: str,
    data: str | None = None,
    target: str | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    config: str | Path | dict[str, Any] | None = None,
    **options: Any,
) -> Run:
    """Train ``method`` on ``data`` (and the unlabelled ``target`` for adaptation) into ``out``.

    ``options``: shortcuts such as ``steps=600, seed=1, size=32`` or whole sections such
    as ``hparams={"lr": 0.02}``. ``out=None`` trains without writing files.
    """
    from genda.engine.loop import resolve_config
    from genda.engine.loop import train as train_run

    raw = raw_config(config, **options)
    sources = {"source": data, "target": target}
    raw = merge(raw, {"method": method, "data": {k: v for k, v in sources.items() if v}})
    if out is not None:
        raw.setdefault("name", Path(out).name)
    cfg = resolve_config(raw)
    return Run(Path(out) if out else None, cfg, train_run(cfg, out, resume=resume))


def load(run: str | Path, device: str = "cpu") -> tuple[ExperimentConfig, torch.nn.Module]:
    """The config and trained method of a run directory (checkpoint loaded safely)."""
    from genda.engine.loop import load_method

    return load_method(run, device)


def sample(
    run: str | Path,
    n: int = 64,
    classes: list[int] | torch.Tensor | None = None,
    seed: int = 0,
    out: str | Path | None = None,
    per_class: bool = False,
    device: str = "cpu",
    **options: Any,
) -> torch.Tensor | dict[str, Any]:
    """Samples of a generative run: uint8 ``[n, C, H, W]``, or, with ``out``, a folder in the
    image-folder layout (returns its summary). ``classes`` picks the class of each image of a
    conditional model; ``options`` are sampler options (``steps``, ``guidance``, ...)."""
    from genda.engine.generate import generate, request_labels, write_samples
    from genda.engine.runtime import resolve_device

    if out is not None:
        if classes is not None:
            raise ConfigError(
                "sample(out=...) writes n images per the model's class mix or "
                "per_class; it takes no classes (leave out one or the other)"
            )
        return write_samples(run, out, n, per_class, seed, device, **options)
    _, method = load(run, resolve_device(device))
    labels = torch.as_tensor(classes) if classes is not None else request_labels(method, n)
    return generate(method, len(labels) if labels is not None else n, labels, seed, **options)


def evaluate(run: str | Path, n: int = 1000, **kwargs: Any) -> dict[str, Any]:
    """FID/IS, classifier accuracy and face rate of a generative run (merged into its
    ``metrics.json``); ``kwargs`` as :func:`genda.engine.generate.evaluate_run`."""
    from genda.engine.generate import evaluate_run

    return evaluate_run(run, n=n, **kwargs)


def guidance_sweep(run: str | Path, **kwargs: Any) -> list[dict[str, Any]]:
    """Classifier accuracy, FID, precision and recall of a guided model per guidance weight
    (``guidance.csv``, ``figures/guidance.png``); ``kwargs`` as
    :func:`genda.engine.generate.guidance_sweep`."""
    from genda.engine.generate import guidance_sweep as sweep

    return sweep(run, **kwargs)


def fid(dir_a: str | Path, dir_b: str | Path, **kwargs: Any) -> dict[str, Any]:
    """FID/KID/precision/recall of image folder ``dir_b`` against ``dir_a``; ``kwargs`` as
    :func:`genda.engine.generate.folder_scores`."""
    from genda.engine.generate import folder_scores

    return folder_scores(dir_a, dir_b, **kwargs)


def uda_table(
    pairs: list[tuple[str, str]],
    out: str | Path,
    methods: tuple[str, ...] | list[str] = ("source-only", "dann", "target-only"),
    seeds: tuple[int, ...] | list[int] = (0,),
    config: str | Path | dict[str, Any] | None = None,
    log: Any = print,
    jobs: int = 1,
    cluster: str = "",
    cluster_options: dict[str, Any] | None = None,
    **options: Any,
) -> Path:
    """Train every (source, target) pair x method x seed under ``out``; write ``table.csv``
    and ``table.md`` and return the path of ``table.md``. Rerunning resumes the table;
    ``jobs`` runs that many cells side by side, ``cluster="slurm"`` submits them as a
    submitit job array (see :func:`genda.engine.table.run_cells`)."""
    from genda.engine.table import earlier_rows, run_table
    from genda.report.tables import write_table_md

    base = raw_config(config, **options)
    earlier_rows(Path(out) / "table.csv")  # someone else's file: refused, never rendered
    try:
        run_table(
            list(pairs),
            list(methods),
            list(seeds),
            Path(out),
            base,
            log,
            jobs,
            cluster,
            cluster_options,
        )
    finally:  # the finished cells are rendered even when some failed
        if (Path(out) / "table.csv").is_file():
            write_table_md(out)
    return Path(out) / "table.md"


def uda_matrix(
    domains: list[str],
    out: str | Path,
    seed: int = 0,
    config: str | Path | dict[str, Any] | None = None,
    log: Any = print,
    jobs: int = 1,
    **options: Any,
) -> Path:
    """Train source-only on each domain and test it on every domain; write ``matrix.csv``,
    ``matrix.md`` and ``matrix.png`` under ``out`` and return the path of ``matrix.md``."""
    from genda.engine.matrix import run_matrix

    run_matrix(list(domains), Path(out), raw_config(config, **options), seed, log, jobs)
    return Path(out) / "matrix.md"


def write_report(
    paths: list[str | Path], out: str | Path, title: str = "genda report", pdf: bool = False
) -> tuple[Path, Path]:
    """Write ``out/report.md`` and ``out/report.html`` (``pdf``: also ``report.pdf``, via a
    headless Chromium) over runs and tables under ``paths``."""
    from genda.report.build import build_report

    return build_report([Path(p) for p in paths], Path(out), title=title, pdf=pdf)
