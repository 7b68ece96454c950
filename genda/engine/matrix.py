"""``genda uda matrix``: train on each domain, test on every domain (the course reports'
cross-domain table), written as ``matrix.csv`` / ``matrix.md`` and a heat map.

Each row is one ``source-only`` run directory (``DIR/<domain>/seed<k>``) trained on that
domain's labelled train split; its cells are that classifier's accuracy on every domain's
test split, the diagonal being the in-domain accuracy. No target data is used in training,
so the matrix shows the raw domain gaps that adaptation methods start from. Rows train
through :func:`genda.engine.table.run_table`'s cell runner, so ``--jobs`` and resuming work
the same way.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from genda.config import DataConfig, from_dict, merge
from genda.data.domain import Domain
from genda.data.prepare import auto_scales, auto_shape, prepare
from genda.data.spec import load_dataset
from genda.engine.loop import load_method, resolve_config
from genda.engine.table import Cell, run_cells, spec_name
from genda.errors import DataError
from genda.io import write_csv, write_text
from genda.metrics.classification import classification_metrics, predict


def run_matrix(
    domains: list[str],
    out: Path,
    base: dict[str, Any] | None = None,
    seed: int = 0,
    log=print,
    jobs: int = 1,
) -> list[list[float]]:
    """Accuracy (percent) of a classifier trained on ``domains[i]`` on ``domains[j]``'s test split."""
    out = Path(out)
    base = base or {}
    dc = from_dict(DataConfig, base.get("data", {}), "data.")
    loaded = [load_dataset(d, download=dc.download) for d in domains]
    size, channels, why = auto_shape(loaded, dc.size, dc.channels)  # one for every row
    base = merge(base, {"data": {"size": size, "channels": channels}})
    # every domain framed like the narrowest-framed one (dc.source_scale, if given, for all)
    scales, why_scale = auto_scales(
        [d.converted(size, channels) for d in loaded], [dc.source_scale] * len(domains)
    )
    if why or why_scale:
        log(f"[matrix] chose {'; '.join(w for w in (why, why_scale) if w)}")
    names = [spec_name(d) for d in domains]
    cells = [
        Cell(
            (d, ""),
            "source-only",
            seed,
            resolve_config(
                merge(
                    base,
                    {
                        "method": "source-only",
                        "name": f"matrix/{n}/seed{seed}",
                        "data": {"source": d, "target": "", "source_scale": sc},
                        "train": {"seed": seed},
                    },
                )
            ),
            out / n / f"seed{seed}",
        )
        for d, n, sc in zip(domains, names, scales, strict=True)
    ]
    results = run_cells(cells, log, jobs)  # each row's metrics; raises naming any that failed
    dc = cells[0].cfg.data  # every row converts to the same size and channels
    tests = {c.pair[0]: prepare(replace(c.cfg.data, limit=0), 0).source.test for c in cells}
    acc: list[list[float]] = []
    for cell, metrics in zip(cells, results, strict=True):
        # Every cell in the run's precision where the CPU has it (bf16 autocast where `auto`
        # chose it; a GPU's fp16 falls back to fp32); the diagonal is the in-domain test
        # accuracy the run itself measured.
        precision = str(metrics.get("train_precision", ""))
        bf16 = precision if precision.startswith("bf16") else ""
        _, method = load_method(cell.run_dir, precision=bf16)
        own = metrics["source_accuracy"]
        acc.append(
            [
                own if i == len(acc) else _accuracy(method, tests[d], d)
                for i, d in enumerate(domains)
            ]
        )
    write_csv(
        out / "matrix.csv",
        ["train \\ test", *names],
        [[n, *(f"{a:.2f}" for a in row)] for n, row in zip(names, acc, strict=True)],
    )
    header = "| train \\ test | " + " | ".join(names) + " |"
    lines = [header, "|" + " --- |" * (len(names) + 1)]
    lines += [
        f"| {n} | " + " | ".join(f"{a:.1f}" for a in row) + " |"
        for n, row in zip(names, acc, strict=True)
    ]
    write_text(
        out / "matrix.md",
        "# Cross-domain accuracy (%)\n\nRows: trained (source-only) on; columns: tested on "
        f"({dc.channels}x{dc.size}px, seed {seed}; diagonal = in-domain test accuracy).\n\n"
        + "\n".join(lines)
        + "\n",
    )
    from genda.viz import plot_matrix

    plot_matrix(acc, names, out / "matrix.png")
    return acc


def _accuracy(method, test: Domain, spec: str) -> float:
    if test.classes != method.info.classes:
        raise DataError(
            f"{spec}: classes {test.classes} differ from the training domain's "
            f"{method.info.classes}; a cross-domain matrix needs one label set"
        )
    logits, y = predict(lambda x: method.classify(method.prepare(x)), test, torch.device("cpu"))
    return classification_metrics(logits, y, method.info.num_classes)["accuracy"]
