"""``genda uda table``: train the lower bound, each adaptation method and the upper bound
for every source->target pair and seed, then write ``table.csv`` / ``table.md``.

Each cell is an ordinary run directory, so an interrupted table resumes cell by cell:
finished runs are kept, a run with a checkpoint but no metrics continues from it. The
engine writes ``table.csv`` (the numbers); :mod:`genda.report.tables` renders ``table.md``
from it, and :func:`genda.api.uda_table` does both.
"""

from __future__ import annotations

import contextlib
import csv
import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from genda.config import ExperimentConfig, merge
from genda.data.prepare import ExperimentData, prepare
from genda.data.spec import parse_spec
from genda.engine.loop import resolve_config, train_or_reuse
from genda.errors import DataError, GendaError
from genda.io import TABLE_COLUMNS, TABLE_OPTIONAL, write_csv


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "data"


def spec_name(spec: str) -> str:
    """Short name of a data spec: ``digits`` -> digits, ``mnist:/d/mnist`` -> mnist,
    ``course:/d/course/usps`` -> course-usps."""
    try:
        kind, paths = parse_spec(spec)
    except DataError:  # embedded (no path) or not a spec: loading it says what is wrong
        return slug(spec)
    base = paths[0].name
    return slug(kind if base.lower() == kind.lower() else f"{kind}-{base}")


@dataclass
class Cell:
    """One run of a table: a method on a pair with a seed, in its own run directory."""

    pair: tuple[str, str]
    method: str
    seed: int
    cfg: ExperimentConfig
    run_dir: Path

    def row(self, metrics: dict[str, Any]) -> dict[str, Any]:
        return {
            "method": self.method,
            "source": spec_name(self.pair[0]),
            "target": spec_name(self.pair[1]),
            "seed": self.seed,
            "target_accuracy": metrics["target_accuracy"],
            "target_test_images": sum(map(sum, metrics.get("confusion") or [])),
        }


def plan_table(
    pairs: list[tuple[str, str]],
    methods: list[str],
    seeds: list[int],
    out: Path,
    base: dict[str, Any] | None = None,
) -> list[Cell]:
    """The validated cells of a table, in table order (configs checked before any training).

    ``base`` is a raw config (sections ``data``/``train``/``hparams``) applied to every cell;
    ``hparams`` keys a method does not know are dropped for that method, so one table can
    share e.g. ``augment`` across methods.
    """
    from genda.methods import get_method

    base = base or {}
    cells = []
    for source, target in pairs:
        pair_dir = Path(out) / f"{spec_name(source)}__{spec_name(target)}"
        for method in methods:
            fields = set(get_method(method).Hparams.__dataclass_fields__)
            hp = {k: v for k, v in base.get("hparams", {}).items() if k in fields}
            for seed in seeds:
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
                cells.append(
                    Cell(
                        (source, target),
                        method,
                        seed,
                        resolve_config(raw),
                        pair_dir / method / f"seed{seed}",
                    )
                )
    return cells


def run_table(
    pairs: list[tuple[str, str]],
    methods: list[str],
    seeds: list[int],
    out: Path,
    base: dict[str, Any] | None = None,
    log=print,
    jobs: int = 1,
    cluster: str = "",
    cluster_options: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Train every (pair, method, seed) cell under ``out`` and write ``out/table.csv``.

    Rows an earlier invocation wrote into the same ``table.csv`` are kept unless this one
    measured the same (method, pair, seed) again, so a table can grow method by method
    (``--methods adda`` later adds ADDA's rows); delete ``table.csv`` to start a new one.

    ``jobs > 1`` runs that many cells at once in separate processes, each with its share of
    the threads (``train.threads``, else the CPU count, divided by ``jobs``; at least 1). A
    cell gives the same result as in a serial table with the same thread count. A failed
    cell is reported and the others go on; the table then holds the finished cells and a
    :class:`~genda.errors.GendaError` names the failed ones (rerunning retries only them).
    """
    cells = plan_table(pairs, methods, seeds, out, base)
    earlier = earlier_rows(Path(out) / "table.csv")  # refused before any training
    results = run_cells(cells, log, jobs, False, cluster, cluster_options, Path(out) / "submitit")
    rows = [c.row(r) for c, r in zip(cells, results, strict=True) if isinstance(r, dict)]
    new = {_row_key(r) for r in rows}
    kept = [r for r in earlier if _row_key(r) not in new]
    write_table_csv(kept + rows, Path(out))
    _raise_failed(cells, results, f"the others are in {Path(out) / 'table.csv'}")
    return rows


def run_cells(
    cells: list[Cell],
    log=print,
    jobs: int = 1,
    raise_failed: bool = True,
    cluster: str = "",
    cluster_options: dict[str, Any] | None = None,
    folder: Path | None = None,
) -> list[dict[str, Any] | str]:
    """Each cell's metrics (or the line saying why it failed), serially or ``jobs`` at once.

    ``cluster`` (``slurm``, ``local`` or ``auto``) submits the cells through submitit
    instead, as one job array with at most ``jobs`` running at a time; ``cluster_options``
    go to submitit's ``update_parameters`` (e.g. ``slurm_partition``, ``timeout_min``,
    ``gpus_per_node``). Job logs go to ``folder`` (default: beside the first run).
    """
    results: dict[int, dict[str, Any] | str] = {}
    if cluster:
        folder = folder or cells[0].run_dir.parent / "submitit"
        results = dict(enumerate(_submit(cells, log, jobs, cluster, cluster_options or {}, folder)))
    elif jobs <= 1:
        data: dict[str, ExperimentData] = {}  # loaded once per pair (and conversion)
        for i, cell in enumerate(cells):
            key = repr(cell.cfg.data)
            if key not in data and not (cell.run_dir / "metrics.json").exists():
                with contextlib.suppress(GendaError):  # run_cell reports it as the cell's failure
                    data[key] = prepare(cell.cfg.data, 0)
            results[i] = run_cell(cell.cfg, cell.run_dir, data.get(key))
            log(cell_line(cell, results[i]))
    else:
        threads = max(1, (cells[0].cfg.train.threads or os.cpu_count() or 1) // jobs)
        ctx = multiprocessing.get_context("spawn")  # no forked OpenMP state in the workers
        with ProcessPoolExecutor(jobs, mp_context=ctx) as pool:
            futures = {
                pool.submit(
                    run_cell,
                    replace(c.cfg, train=replace(c.cfg.train, threads=threads)),
                    c.run_dir,
                ): i
                for i, c in enumerate(cells)
            }
            for future in as_completed(futures):
                i = futures[future]
                results[i] = future.result()
                log(cell_line(cells[i], results[i]))
    ordered = [results[i] for i in range(len(cells))]
    if raise_failed:
        _raise_failed(cells, ordered, "rerun to retry them")
    return ordered


def _submit(
    cells: list[Cell], log, jobs: int, cluster: str, options: dict[str, Any], folder: Path
) -> list[dict[str, Any] | str]:
    """Run the cells as a submitit job array (Slurm, or local subprocesses for testing)."""
    try:
        import submitit
    except ImportError:
        raise GendaError(
            f"--cluster {cluster} needs submitit: pip install 'genda[cluster]' (or submitit)"
        ) from None
    executor = submitit.AutoExecutor(
        folder=folder / "%j", cluster=None if cluster == "auto" else cluster
    )
    threads = cells[0].cfg.train.threads or 1
    params = {"name": "genda", "timeout_min": 240, "cpus_per_task": threads}
    executor.update_parameters(**params, slurm_array_parallelism=max(1, jobs), **options)
    submitted = executor.map_array(run_cell, [c.cfg for c in cells], [c.run_dir for c in cells])
    log(f"[table] submitted {len(submitted)} runs to {executor.cluster} (logs in {folder})")
    out: list[dict[str, Any] | str] = []
    for cell, job in zip(cells, submitted, strict=True):
        try:
            result = job.result()
        except Exception as e:  # noqa: BLE001  a job that died (time limit, node failure)
            result = f"job {job.job_id} failed: {str(e).strip().splitlines()[-1] if str(e).strip() else e}"
        log(cell_line(cell, result))
        out.append(result)
    return out


def _raise_failed(cells: list[Cell], results: list, note: str) -> None:
    failed = [
        f"{c.run_dir}: {r}" for c, r in zip(cells, results, strict=True) if isinstance(r, str)
    ]
    if failed:
        raise GendaError(f"{len(failed)} of {len(cells)} runs failed ({note}): {'; '.join(failed)}")


def run_cell(
    cfg: ExperimentConfig, run_dir: Path, data: ExperimentData | None = None
) -> dict[str, Any] | str:
    """A cell's metrics, or the one-line reason it failed (in a worker process too).

    Data are prepared with seed 0 for every cell, as a serial table shares them per pair."""
    try:
        if data is None and not (run_dir / "metrics.json").exists():
            data = prepare(cfg.data, 0)
        return train_or_reuse(cfg, run_dir, data)
    except GendaError as e:
        return str(e)
    except Exception as e:  # noqa: BLE001  a crashed cell must not take the table down
        return f"{type(e).__name__}: {e}"


def cell_line(cell: Cell, result: dict[str, Any] | str) -> str:
    """The log line of a finished (or failed) cell."""
    where = f"[{cell.cfg.name}]"
    if isinstance(result, str):
        return f"{where}: FAILED: {result}"
    acc = result.get("target_accuracy", result.get("source_accuracy"))
    kind = "target" if "target_accuracy" in result else "test"
    return f"{where}: {kind} {acc:.2f}% ({result['wall_time_s']:.0f} s)"


def _row_key(row: dict[str, Any]) -> tuple[str, str, str, int]:
    return row["method"], row["source"], row["target"], int(row["seed"])


def earlier_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of an existing ``table.csv`` (none if there is none); a file that is not a
    genda table is refused rather than overwritten."""
    if not path.is_file():
        return []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        for r in rows:
            r["seed"], r["target_accuracy"] = int(r["seed"]), float(r["target_accuracy"])
            r["target_test_images"] = int(r.get("target_test_images") or 0)
    except (OSError, UnicodeDecodeError, KeyError, TypeError, ValueError) as e:
        raise DataError(
            f"{path}: not a genda table.csv ({type(e).__name__}: {e}); expected the columns "
            f"{', '.join(TABLE_COLUMNS + TABLE_OPTIONAL)}; move it away to start a new table"
        ) from None
    return rows


def write_table_csv(rows: list[dict[str, Any]], out: Path) -> Path:
    """``out/table.csv``: one row per run, accuracy in percent with 2 decimals, and the
    number of target test images it was measured on (for its binomial interval)."""
    for row in rows:
        missing = [c for c in TABLE_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"table row {row} lacks column(s) {', '.join(missing)}")
    return write_csv(
        Path(out) / "table.csv",
        TABLE_COLUMNS + TABLE_OPTIONAL,
        [
            (
                r["method"],
                r["source"],
                r["target"],
                int(r["seed"]),
                f"{r['target_accuracy']:.2f}",
                r.get("target_test_images") or "",
            )
            for r in rows
        ],
    )
