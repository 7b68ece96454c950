"""The domain-adaptation results table: ``table.csv`` / ``table.md`` and what they say.

Layout follows the usual UDA papers: the source-only model is the lower bound, each
adaptation method gets its own row, the target-trained model is the upper bound, and
each ``source → target`` pair is a column of ``mean ± std (n seeds)`` target accuracies.
"""

from __future__ import annotations

import csv
import os
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from genda.io import TABLE_COLUMNS, write_text
from genda.report.render import Block, Bullets, Heading, Paragraph, Table, md_table, to_markdown

LOWER_BOUND = "source-only"
UPPER_BOUND = "target-only"

Pair = tuple[str, str]


@dataclass(frozen=True)
class Cell:
    """Target accuracy of one method on one pair, over seeds (percent)."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: list[float]) -> Cell:
        """Sample standard deviation (0 for a single seed, where it is undefined)."""
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        return cls(statistics.fmean(values), std, len(values))

    def __str__(self) -> str:
        return f"{self.mean:.1f} ± {self.std:.1f} ({self.n} seed{'' if self.n == 1 else 's'})"


@dataclass(frozen=True)
class TableSummary:
    """Cells keyed by ``(method, pair)``; ``methods`` ordered lower bound, methods, upper bound."""

    pairs: list[Pair]
    methods: list[str]
    cells: dict[tuple[str, Pair], Cell]

    @property
    def adaptation_methods(self) -> list[str]:
        return [m for m in self.methods if m not in (LOWER_BOUND, UPPER_BOUND)]


# How method names are written in tables and sentences (papers' spelling).
DISPLAY_NAMES = {
    "dann": "DANN",
    "adda": "ADDA",
    "dsn": "DSN",
    "pixelda": "PixelDA",
    "selftrain": "Self-training",
    "dcgan": "DCGAN",
    "acgan": "ACGAN",
    "vae": "VAE",
    "ddpm": "DDPM",
    "gan": "Improved GAN",
}


def display_name(method: str) -> str:
    return DISPLAY_NAMES.get(method, method)


def method_label(method: str) -> str:
    """Row label of a method in every table of the report."""
    if method == LOWER_BOUND:
        return "Trained on source (lower bound)"
    if method == UPPER_BOUND:
        return "Trained on target (upper bound)"
    return f"Adaptation ({display_name(method)})"


def pair_label(pair: Pair, sep: str = " → ") -> str:
    return f"{pair[0]}{sep}{pair[1]}"


def _ordered(values: Iterable[str]) -> list[str]:
    """Unique values in first-seen order, so tables follow the order runs were listed."""
    return list(dict.fromkeys(values))


def order_methods(methods: Iterable[str]) -> list[str]:
    """Lower bound first, adaptation methods as given, upper bound last."""
    seen = _ordered(methods)
    middle = [m for m in seen if m not in (LOWER_BOUND, UPPER_BOUND)]
    return (
        ([LOWER_BOUND] if LOWER_BOUND in seen else [])
        + middle
        + ([UPPER_BOUND] if UPPER_BOUND in seen else [])
    )


def summarise(rows: Iterable[Mapping[str, object]]) -> TableSummary:
    """Group ``table.csv`` rows (strings or numbers) into per-method, per-pair cells."""
    values: dict[tuple[str, Pair], list[float]] = {}
    for row in rows:
        missing = [c for c in TABLE_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"table row {dict(row)} lacks column(s) {', '.join(missing)}")
        pair = (str(row["source"]), str(row["target"]))
        values.setdefault((str(row["method"]), pair), []).append(float(row["target_accuracy"]))
    return TableSummary(
        pairs=_ordered(p for _, p in values),
        methods=order_methods(m for m, _ in values),
        cells={k: Cell.of(v) for k, v in values.items()},
    )


def accuracy_table(summary: TableSummary) -> Table:
    """The main table: one row per method, one column per pair; '—' where nothing ran."""
    header = ("Target accuracy (%)", *(pair_label(p) for p in summary.pairs))
    rows = tuple(
        (
            method_label(m),
            *(str(summary.cells[m, p]) if (m, p) in summary.cells else "—" for p in summary.pairs),
        )
        for m in summary.methods
    )
    return Table(header, rows)


def format_table_md(rows: Iterable[Mapping[str, object]]) -> str:
    """Markdown pipe table of ``table.csv`` rows, laid out as in the report."""
    return md_table(accuracy_table(summarise(rows)))


def _observe(summary: TableSummary, method: str, pair: Pair) -> str | None:
    """One sentence comparing a method to the source-only (and target-only) bound on a pair."""
    cell, lower = summary.cells.get((method, pair)), summary.cells.get((LOWER_BOUND, pair))
    if cell is None or lower is None:
        return None
    upper = summary.cells.get((UPPER_BOUND, pair))
    name = pair_label(pair, "→")
    if cell.mean <= lower.mean:
        text = (
            f"{display_name(method)} did not improve {name} target accuracy over source-only training: "
            f"{cell.mean:.1f}% vs {lower.mean:.1f}%."
        )
    else:
        text = f"{display_name(method)} raised {name} target accuracy from {lower.mean:.1f}% to {cell.mean:.1f}%"
        if upper is not None and cell.mean >= upper.mean:
            text += f", reaching the target-trained bound ({upper.mean:.1f}%)."
        elif upper is not None:
            gap = 100 * (cell.mean - lower.mean) / (upper.mean - lower.mean)
            text += (
                f", closing {gap:.0f}% of the gap to the target-trained bound ({upper.mean:.1f}%)."
            )
        else:
            text += "."
    spread = max(cell.std, lower.std)
    if min(cell.n, lower.n) > 1 and abs(cell.mean - lower.mean) < spread:
        text += f" The difference is within the seed-to-seed spread (std up to {spread:.1f})."
    return text


def observations(summary: TableSummary) -> list[str]:
    """Plain-language findings computed from the table, one per method and pair, plus the best."""
    found: list[str] = []
    for pair in summary.pairs:
        found += filter(None, (_observe(summary, m, pair) for m in summary.adaptation_methods))
        ran = [
            (summary.cells[m, pair].mean, m)
            for m in summary.adaptation_methods
            if (m, pair) in summary.cells
        ]
        if not ran:
            continue
        best_acc, best = max(ran, key=lambda t: t[0])  # first listed wins ties: max is stable
        lower = summary.cells.get((LOWER_BOUND, pair))
        if lower is not None and best_acc <= lower.mean:
            found.append(
                f"No adaptation method beat source-only training on "
                f"{pair_label(pair, '→')} ({lower.mean:.1f}%)."
            )
        elif len(ran) > 1:
            found.append(
                f"Best adaptation method on {pair_label(pair, '→')}: {best} ({best_acc:.1f}%)."
            )
    return found


def table_blocks(summary: TableSummary, level: int = 2) -> list[Block]:
    """Main table + observations, shared by ``table.md`` and the report."""
    blocks: list[Block] = [
        Paragraph("Target-domain test accuracy in percent, mean ± sample std over seeds."),
        accuracy_table(summary),
    ]
    found = observations(summary)
    if found:
        blocks += [Heading("Observations", level + 1), Bullets(tuple(found))]
    return blocks


def read_table(path: str | os.PathLike[str]) -> list[dict[str, str]]:
    """Rows of a ``table.csv``."""
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_table_md(table_dir: str | os.PathLike[str]) -> Path:
    """Write ``table.md`` (main table + observations) from the ``table.csv`` beside it."""
    table_dir = Path(table_dir)
    summary = summarise(read_table(table_dir / "table.csv"))
    md = to_markdown([Heading("Domain adaptation results", 1), *table_blocks(summary)])
    return write_text(table_dir / "table.md", md)
