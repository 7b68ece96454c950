"""The domain-adaptation results table: ``table.csv`` / ``table.md`` and what they say.

Layout follows the usual UDA papers: the source-only model is the lower bound, each
adaptation method gets its own row, the target-trained model is the upper bound, and
each ``source → target`` pair is a column of target accuracies with a 95% interval: for
one seed the Wilson interval of a proportion over the target test images (the noise of the
test set), for several seeds the t-interval of the mean over seeds (the noise of training).
Observations call a difference real only when the two intervals do not overlap.
"""

from __future__ import annotations

import csv
import os
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from genda.io import TABLE_COLUMNS, write_text
from genda.metrics.intervals import t_interval, wilson
from genda.report.render import Block, Bullets, Heading, Paragraph, Table, md_table, to_markdown
from genda.report.sections import NAMES

LOWER_BOUND = "source-only"
UPPER_BOUND = "target-only"

Pair = tuple[str, str]


@dataclass(frozen=True)
class Cell:
    """Target accuracy of one method on one pair over seeds (percent), with its 95% interval
    (``None`` for one seed of an old table that does not say its test-set size)."""

    mean: float
    std: float
    n: int
    interval: tuple[float, float] | None = None

    @classmethod
    def of(cls, values: list[float], images: int = 0) -> Cell:
        """Several seeds: t-interval over seeds; one: Wilson interval over ``images``."""
        if len(values) > 1:
            return cls(
                statistics.fmean(values), statistics.stdev(values), len(values), t_interval(values)
            )
        interval = wilson(values[0], images) if images > 0 else None
        return cls(values[0], 0.0, 1, interval)

    def overlaps(self, other: Cell) -> bool:
        """True when either interval is unknown or the two overlap: then the difference
        between the two is within noise."""
        if self.interval is None or other.interval is None:
            return True
        return self.interval[0] <= other.interval[1] and other.interval[0] <= self.interval[1]

    def __str__(self) -> str:
        seeds = f"{self.n} seed{'' if self.n == 1 else 's'}"
        if self.interval is None:
            return f"{self.mean:.1f} ({seeds})"
        lo, hi = self.interval
        return f"{self.mean:.1f} [{lo:.1f}, {hi:.1f}] ({seeds})"

    def brief(self) -> str:
        """``52.1% [49.5, 54.7]`` for sentences."""
        if self.interval is None:
            return f"{self.mean:.1f}%"
        return f"{self.mean:.1f}% [{self.interval[0]:.1f}, {self.interval[1]:.1f}]"


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
def display_name(method: str) -> str:
    """A method's name in table rows and sentences (``DANN``, ``Self-training``)."""
    return NAMES.get(method, method)


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
    images: dict[tuple[str, Pair], int] = {}
    for row in rows:
        missing = [c for c in TABLE_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"table row {dict(row)} lacks column(s) {', '.join(missing)}")
        key = (str(row["method"]), (str(row["source"]), str(row["target"])))
        values.setdefault(key, []).append(float(row["target_accuracy"]))
        images[key] = int(row.get("target_test_images") or 0)
    return TableSummary(
        pairs=_ordered(p for _, p in values),
        methods=order_methods(m for m, _ in values),
        cells={k: Cell.of(v, images[k]) for k, v in values.items()},
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
    """One sentence comparing a method to the source-only (and target-only) bound on a pair:
    "raised"/"lowered" only when the 95% intervals do not overlap, else "within noise"."""
    cell, lower = summary.cells.get((method, pair)), summary.cells.get((LOWER_BOUND, pair))
    if cell is None or lower is None:
        return None
    upper = summary.cells.get((UPPER_BOUND, pair))
    name, who = pair_label(pair, "→"), display_name(method)
    numbers = f"{cell.brief()} vs {lower.brief()} source-only"
    if cell.overlaps(lower):
        return f"{who} on {name} is within noise of source-only training: {numbers}."
    if cell.mean < lower.mean:
        text = f"{who} lowered {name} target accuracy below source-only training: {numbers}"
        if upper is not None and (lower.overlaps(upper) or lower.mean >= upper.mean):
            return text + (
                f"; source-only is already level with the target-trained bound "
                f"({upper.brief()}), so there was no shift left to remove and the "
                "adaptation term only added noise."
            )
        return text + "."
    text = f"{who} raised {name} target accuracy: {numbers}"
    if upper is not None and not cell.overlaps(upper) and cell.mean < upper.mean:
        gap = 100 * (cell.mean - lower.mean) / (upper.mean - lower.mean)
        return (
            text + f", closing {gap:.0f}% of the gap to the target-trained bound ({upper.brief()})."
        )
    if upper is not None:
        return text + f", within noise of the target-trained bound ({upper.brief()})."
    return text + "."


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
        if lower is not None and all(
            summary.cells[m, pair].mean <= lower.mean or summary.cells[m, pair].overlaps(lower)
            for _, m in ran
        ):
            found.append(
                f"No adaptation method beat source-only training on "
                f"{pair_label(pair, '→')} ({lower.brief()}) by more than the noise."
            )
        elif len(ran) > 1:
            best_cell = summary.cells[best, pair]
            tied = [
                display_name(m)
                for _, m in ran
                if m != best and summary.cells[m, pair].overlaps(best_cell)
            ]
            text = f"Best adaptation method on {pair_label(pair, '→')}: {display_name(best)} ({best_cell.brief()})"
            found.append(text + (f"; within noise of {', '.join(tied)}." if tied else "."))
    return found


def table_blocks(summary: TableSummary, level: int = 2) -> list[Block]:
    """Main table + observations, shared by ``table.md`` and the report."""
    blocks: list[Block] = [
        Paragraph(
            "Target-domain test accuracy in percent with its 95% interval: one seed, the Wilson "
            "interval over the target test images; several seeds, the mean and t-interval over "
            "seeds."
        ),
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
