"""Build ``report.md`` + a self-contained ``report.html`` from run and table directories.

The report reads only the files described in ``docs/runs.md``, so any run can be reported
on later, elsewhere. Markdown links to figures copied into ``out/figures/``; the HTML embeds
the same figures as data URIs, so that single file can be mailed or archived on its own.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from genda.errors import ReportError
from genda.io import atomic_path, write_text
from genda.report.generative import generative_blocks
from genda.report.render import (
    Block,
    Code,
    Heading,
    Image,
    Paragraph,
    Table,
    to_html,
    to_markdown,
    with_toc,
)
from genda.report.tables import (
    TableSummary,
    method_label,
    order_methods,
    pair_label,
    read_table,
    summarise,
    table_blocks,
)
from genda.viz.figures import plot_confusion

# Directories inside a run that never hold runs or tables: not worth walking (tb/ can be huge).
_SKIP_DIRS = {"checkpoints", "tb", "figures"}
# Metrics worth a column in the overview table, in this order, when any run has them.
_HEADLINE = ("target_accuracy", "source_accuracy", "fid", "inception_score", "classifier_accuracy")


@dataclass(frozen=True)
class Run:
    path: Path
    label: str
    config: dict[str, Any]
    metrics: dict[str, Any]


def _is_run(d: Path) -> bool:
    return (d / "metrics.json").is_file() and (d / "config.yaml").is_file()


def discover(paths: Iterable[Path]) -> tuple[list[tuple[Path, str]], list[tuple[Path, str]]]:
    """Find ``(dir, label)`` of every table directory and every run directory under ``paths``.

    Labels are paths relative to the given folder (``uda_table/mnist__usps/dann/seed0``), or
    the directory's own name when a run or table is given directly: short, and the same
    whether a parent folder or the directories themselves are passed. A label already taken
    by another input is prefixed with that input's name.
    """
    found: dict[str, dict[Path, str]] = {"tables": {}, "runs": {}}
    taken: set[str] = set()
    for given in paths:
        root = Path(given)
        if root.is_file() and root.name in ("table.csv", "metrics.json", "config.yaml"):
            root = root.parent
        if not root.is_dir():
            raise ReportError(f"{given}: no such directory")
        root = root.resolve()
        base = root.parent if _is_run(root) or (root / "table.csv").is_file() else root
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(
                d for d in dirnames if d not in _SKIP_DIRS and not d.startswith(".")
            )
            d = Path(dirpath)
            kinds = [
                k
                for k, hit in (("tables", "table.csv" in filenames), ("runs", _is_run(d)))
                if hit and d not in found[k]
            ]
            if not kinds:
                continue
            label = d.relative_to(base).as_posix()
            if label in taken:
                label = f"{root.name}/{label}"
            taken.add(label)
            for kind in kinds:
                found[kind][d] = label
    tables, runs = (sorted(found[k].items(), key=lambda t: t[1]) for k in ("tables", "runs"))
    return tables, runs


def _matrices(paths: Iterable[Path]) -> list[Path]:
    """Directories holding a ``matrix.csv`` under ``paths`` (sorted, each once)."""
    found = {
        Path(d).resolve()
        for given in paths
        if Path(given).is_dir()
        for d, _, files in os.walk(given)
        if "matrix.csv" in files
    }
    return sorted(found)


def load_run(path: Path, label: str) -> Run:
    """Read a run's config and metrics; a broken file is reported by name."""
    try:
        config = yaml.safe_load((path / "config.yaml").read_text(encoding="utf-8")) or {}
        metrics = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, json.JSONDecodeError) as err:
        raise ReportError(f"{path}: cannot read run files: {err}") from err
    if not isinstance(metrics, dict):
        raise ReportError(f"{path / 'metrics.json'}: expected a JSON object")
    return Run(path, label, config if isinstance(config, dict) else {"config": config}, metrics)


def fmt(value: Any) -> str:
    """Human-readable, deterministic value text (6 significant digits for floats)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = f"{value:.6g}"
        # Keep floats recognisable as floats (lr 1.0 vs steps 1), as YAML/JSON wrote them.
        return text + ".0" if text.lstrip("-").isdigit() else text
    if value is None:
        return "—"
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def flatten(
    tree: Mapping[str, Any], prefix: str = "", keep_lists: bool = True
) -> list[tuple[str, str]]:
    """Nested mapping as ``(section.key, value)`` rows; lists kept as JSON or dropped."""
    rows: list[tuple[str, str]] = []
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            rows += flatten(value, f"{name}.", keep_lists)
        elif keep_lists or not isinstance(value, list | tuple):
            rows.append((name, fmt(value)))
    return rows


# Settings shown for every run beside all of its method's hyper-parameters.
KEY_SETTINGS = (
    "data.source",
    "data.target",
    "data.attribute",
    "data.size",
    "data.channels",
    "train.steps",
    "train.batch_size",
    "train.precision",
    "train.seed",
    "train.devices",
)


def method_defaults(method: str) -> dict[str, str]:
    """genda's default for every config key of ``method`` (flattened), {} if unknown."""
    import dataclasses

    from genda.config import ConfigError, ExperimentConfig, merge
    from genda.methods import get_method

    try:
        cls = get_method(method)
    except ConfigError:
        return {}
    tree = merge(ExperimentConfig(method=method).to_dict(), cls.defaults)
    tree["hparams"] = dataclasses.asdict(cls.Hparams())
    return dict(flatten(tree))


def implementation_details(config: Mapping[str, Any]) -> Table | None:
    """The run's hyper-parameters and key settings, each marked where it differs from
    genda's default for its method (``data.size``/``channels`` 0 = chosen per pair)."""
    method = config.get("method")
    defaults = method_defaults(method) if isinstance(method, str) else {}
    rows = []
    for key, value in flatten(config):
        if not (key.startswith("hparams.") or key in KEY_SETTINGS):
            continue
        default = defaults.get(key)
        if default is None or default == value:
            note = ""
        elif key in ("data.size", "data.channels") and default == "0":
            note = "chosen for the data"
        else:
            note = f"**changed** (default {default})"
        rows.append((key, value, note))
    return Table(("Setting", "Value", "vs genda's default"), tuple(rows)) if rows else None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


@dataclass
class _Builder:
    """Accumulates blocks and owns ``out/figures/`` naming (unique, deterministic)."""

    out: Path
    blocks: list[Block] = field(default_factory=list)
    used: set[str] = field(default_factory=set)

    def figure_path(self, label: str, name: str) -> Path:
        stem = f"{_slug(label)}__{_slug(Path(name).with_suffix('').as_posix())}"
        candidate, k = stem, 1
        while candidate in self.used:
            k += 1
            candidate = f"{stem}_{k}"
        self.used.add(candidate)
        return self.out / "figures" / f"{candidate}.png"

    def add_image(self, title: str, dest: Path) -> None:
        self.blocks.append(Image(title, dest, dest.relative_to(self.out).as_posix()))

    def copy_image(self, title: str, src: Path, label: str, name: str) -> None:
        dest = self.figure_path(label, name)
        with atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)
        self.add_image(title, dest)

    # --- runs --------------------------------------------------------------------------

    def add_run(self, run: Run) -> None:
        """Settings that matter (changes from genda's defaults marked), the architecture and
        the figures; then the whole config and every metric, collapsed in HTML."""
        b = self.blocks
        b.append(Heading(f"Run: {run.label}", 2))
        details = implementation_details(run.config)
        if details is not None:
            b += [Heading("Implementation details", 3), details]
        arch = run.path / "architecture.txt"
        if arch.is_file():
            b.append(Code(arch.read_text(encoding="utf-8", errors="replace"), "Architecture"))
        self.add_run_figures(run)
        if run.config:
            b.append(Code(yaml.safe_dump(run.config, sort_keys=False), "Full configuration"))
        scalars = flatten(
            {k: v for k, v in run.metrics.items() if k != "figures"}, keep_lists=False
        )
        if scalars:
            b.append(Code("\n".join(f"{k}: {v}" for k, v in scalars), "All metrics"))

    def add_run_figures(self, run: Run) -> None:
        """Listed figures first (in listed order), then unlisted PNGs, then a confusion plot."""
        listed = run.metrics.get("figures")
        listed = listed if isinstance(listed, Mapping) else {}
        start = len(self.blocks)
        self.blocks.append(Heading("Figures", 3))
        seen: set[Path] = set()
        missing: list[str] = []
        for title, rel in listed.items():
            src = (run.path / str(rel)).resolve()
            if src.is_file():
                seen.add(src)
                self.copy_image(str(title), src, run.label, str(rel))
            else:
                missing.append(f"{title} ({rel})")
        fig_dir = run.path / "figures"
        for src in sorted(fig_dir.glob("*.png")) if fig_dir.is_dir() else []:
            if src.resolve() not in seen:
                rel = src.relative_to(run.path).as_posix()
                self.copy_image(src.stem.replace("_", " "), src, run.label, rel)
                seen.add(src.resolve())
        names = [str(t).lower() for t in listed] + [p.name.lower() for p in seen]
        confusion = run.metrics.get("confusion")
        if isinstance(confusion, list) and confusion and not any("confusion" in n for n in names):
            dest = self.figure_path(run.label, "confusion")
            classes = run.metrics.get("classes") or [str(i) for i in range(len(confusion))]
            plot_confusion(confusion, classes, dest, "Confusion matrix (target test set)")
            self.add_image("Confusion matrix (target test set)", dest)
        if missing:
            self.blocks.append(Paragraph("Missing figure files: " + "; ".join(missing) + "."))
        if len(self.blocks) == start + 1:  # nothing under the heading
            self.blocks.pop()

    # --- tables -------------------------------------------------------------------------

    def add_table(self, path: Path, label: str, runs: list[Run]) -> None:
        summary = summarise(read_table(path / "table.csv"))
        self.blocks.append(Heading(f"Domain adaptation: {label}", 2))
        self.blocks += table_blocks(summary, level=2)
        inside = [r for r in runs if r.path.is_relative_to(path)]
        self.blocks += per_class_blocks(summary, inside)

    def add_matrix(self, path: Path) -> None:
        """The train x test accuracy matrix of ``genda uda matrix`` and its heat map."""
        with (path / "matrix.csv").open(newline="", encoding="utf-8") as f:
            header, *rows = list(csv.reader(f))
        self.blocks += [
            Heading(f"Cross-domain accuracy: {path.name}", 2),
            Paragraph(
                "Source-only classifiers: rows trained on, columns tested on (%); the "
                "diagonal is in-domain test accuracy."
            ),
            Table(tuple(header), tuple(tuple(r) for r in rows)),
        ]
        if (path / "matrix.png").is_file():
            self.copy_image("Cross-domain accuracy", path / "matrix.png", path.name, "matrix")

    def add_overview(self, runs: list[Run]) -> None:
        """One line per run, with the headline metrics any run reported."""
        keys = [k for k in _HEADLINE if any(k in r.metrics for r in runs)]
        header = ("Run", "Method", "Seed", "Steps", "Wall time (s)", *keys)
        rows = tuple(
            (
                r.label,
                *(fmt(r.metrics.get(k)) for k in ("method", "seed", "steps", "wall_time_s")),
                *(fmt(r.metrics.get(k)) for k in keys),
            )
            for r in runs
        )
        self.blocks += [Heading("Runs overview", 2), Table(header, rows)]


def _mean_columns(per_seed: list[list[float]]) -> list[float]:
    """Element-wise mean over seeds; seeds with a different class count than the first are
    left out rather than misaligned."""
    same = [v for v in per_seed if len(v) == len(per_seed[0])]
    return [statistics.fmean(col) for col in zip(*same, strict=True)]


def per_class_blocks(summary: TableSummary, runs: list[Run]) -> list[Block]:
    """Per pair: class × method table of per-class target accuracy, averaged over seeds.

    Classes are rows (there may be 31 of them), methods are columns (there are few).
    """
    grouped: dict[tuple[str, tuple[str, str]], list[list[float]]] = {}
    classes: dict[tuple[str, str], list[str]] = {}
    for r in runs:
        m = r.metrics
        if not isinstance(m.get("per_class_accuracy"), list) or "source" not in m:
            continue
        pair = (str(m["source"]), str(m["target"]))
        grouped.setdefault((str(m.get("method")), pair), []).append(
            [float(v) for v in m["per_class_accuracy"]]
        )
        classes.setdefault(pair, [str(c) for c in m.get("classes") or []])
    blocks: list[Block] = []
    pairs = summary.pairs + [
        p for p in dict.fromkeys(p for _, p in grouped) if p not in summary.pairs
    ]
    for pair in pairs:
        # Same row order as the main table; methods only seen in runs go after.
        methods = [
            m
            for m in order_methods([*summary.methods, *(m for m, _ in grouped)])
            if (m, pair) in grouped
        ]
        means = {m: _mean_columns(grouped[m, pair]) for m in methods}
        k = max((len(v) for v in means.values()), default=0)
        if not k:
            continue
        names = classes.get(pair) or []
        names = names if len(names) == k else [str(i) for i in range(k)]
        rows = tuple(
            (names[i], *(f"{means[m][i]:.1f}" if i < len(means[m]) else "—" for m in methods))
            for i in range(k)
        )
        blocks += [
            Heading(f"Per-class target accuracy (%): {pair_label(pair)}", 3),
            Table(("Class", *(method_label(m) for m in methods)), rows),
        ]
    return blocks


def build_report(
    paths: list[Path], out: Path, title: str = "genda report", pdf: bool = False
) -> tuple[Path, Path]:
    """Write ``out/report.md`` and ``out/report.html`` (and with ``pdf`` ``out/report.pdf``,
    printed by a headless browser) for every run and table under ``paths``.

    Tables come first (they summarise), then an overview of runs, then each run in detail.
    """
    tables, found_runs = discover(paths)
    if not tables and not found_runs:
        raise ReportError(
            "no run directories (metrics.json + config.yaml) or table directories "
            "(table.csv) under: " + ", ".join(str(p) for p in paths)
        )
    out = Path(out)
    runs = [load_run(p, label) for p, label in found_runs]
    builder = _Builder(out)
    builder.blocks += [
        Heading(title, 1),
        Paragraph(f"{len(tables)} table(s) and {len(runs)} run(s)."),
    ]
    for path, label in tables:
        builder.add_table(path, label, runs)
    for path in _matrices(paths):
        builder.add_matrix(path)
    builder.blocks += generative_blocks([(r.label, r.metrics) for r in runs])
    if runs:
        builder.add_overview(runs)
    for run in runs:
        builder.add_run(run)
    blocks = with_toc(builder.blocks)
    md = write_text(out / "report.md", to_markdown(blocks))
    page = write_text(out / "report.html", to_html(blocks, title))
    if pdf:
        from genda.report.pdf import html_to_pdf

        html_to_pdf(page, out / "report.pdf")
    return md, page
