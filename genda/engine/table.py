"""``genda uda table``: train the lower bound, each adaptation method and the upper bound
for every source->target pair and seed, then write ``table.csv`` / ``table.md``.

Each cell is an ordinary run directory, so an interrupted table resumes cell by cell:
finished runs are kept, a run with a checkpoint but no metrics continues from it. The
engine writes ``table.csv`` (the numbers); :mod:`genda.report.tables` renders ``table.md``
from it, and :func:`genda.api.uda_table` does both.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from genda.config import DataConfig, from_dict, merge
from genda.data.prepare import prepare
from genda.engine.loop import resolve_config, train_or_reuse
from genda.io import TABLE_COLUMNS, write_csv


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "data"


def spec_name(spec: str) -> str:
    """Short name of a data spec: ``digits`` -> digits, ``mnist:/d/mnist`` -> mnist,
    ``course:/d/course/usps`` -> course-usps."""
    if ":" not in spec:
        return slug(spec)
    kind, root = spec.split(":", 1)
    base = Path(root.split(",")[0]).name
    return slug(kind if base.lower() == kind.lower() else f"{kind}-{base}")


def run_table(
    pairs: list[tuple[str, str]],
    methods: list[str],
    seeds: list[int],
    out: Path,
    base: dict[str, Any] | None = None,
    log=print,
) -> list[dict[str, Any]]:
    """Train every (pair, method, seed) cell under ``out`` and write ``out/table.csv``.

    ``base`` is a raw config (sections ``data``/``train``/``hparams``) applied to every cell;
    ``hparams`` keys a method does not know are dropped for that method, so one table can
    share e.g. ``augment`` across methods.
    """
    from genda.methods import get_method

    base = base or {}
    rows: list[dict[str, Any]] = []
    for source, target in pairs:
        dc = from_dict(
            DataConfig, merge(base.get("data", {}), {"source": source, "target": target}), "data."
        )
        data = None  # loaded once per pair, on first use
        pair_dir = out / f"{spec_name(source)}__{spec_name(target)}"
        for method in methods:
            fields = {f for f in get_method(method).Hparams.__dataclass_fields__}
            hp = {k: v for k, v in base.get("hparams", {}).items() if k in fields}
            for seed in seeds:
                run_dir = pair_dir / method / f"seed{seed}"
                raw = merge(
                    base,
                    {
                        "method": method,
                        "name": f"{pair_dir.name}/{method}/seed{seed}",
                        "data": {"source": source, "target": target},
                        "train": {"seed": seed},
                        "hparams": hp,
                    },
                )
                cfg = resolve_config(raw)
                done = (run_dir / "metrics.json").exists()
                if data is None and not done:
                    data = prepare(dc, 0)
                metrics = train_or_reuse(cfg, run_dir, data)
                log(
                    f"[table] {method} {pair_dir.name} seed {seed}: "
                    f"target {metrics['target_accuracy']:.2f}%"
                    + (" (done before)" if done else f" ({metrics['wall_time_s']:.0f} s)")
                )
                rows.append(
                    {
                        "method": method,
                        "source": spec_name(source),
                        "target": spec_name(target),
                        "seed": seed,
                        "target_accuracy": metrics["target_accuracy"],
                    }
                )
    write_table_csv(rows, out)
    return rows


def write_table_csv(rows: list[dict[str, Any]], out: Path) -> Path:
    """``out/table.csv``: one row per run, accuracy in percent with 2 decimals."""
    for row in rows:
        missing = [c for c in TABLE_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"table row {row} lacks column(s) {', '.join(missing)}")
    return write_csv(
        Path(out) / "table.csv",
        TABLE_COLUMNS,
        [
            (r["method"], r["source"], r["target"], int(r["seed"]), f"{r['target_accuracy']:.2f}")
            for r in rows
        ],
    )
