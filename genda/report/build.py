"""Build ``report.md`` + a self-contained ``report.html`` from run and table directories.

The report reads only the files described in ``docs/runs.md``, so any run can be reported
on later, elsewhere. Markdown links to figures copied into ``out/figures/``; the HTML embeds
the same figures as data URIs, so that single file can be mailed or archived on its own.
Figures are staged and published with the report only once every section has rendered, so a
rebuild that fails to render leaves the previous report and its figures as they were.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import statistics
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from genda.errors import ReportError
from genda.io import atomic_path, fsync_dir, locked, write_text
from genda.report.generative import generative_observations, generative_table
from genda.report.render import (
    Block,
    Bullets,
    Code,
    Gallery,
    Heading,
    Image,
    Paragraph,
    Table,
    to_html,
    to_markdown,
    with_toc,
)
from genda.report.sections import OTHER, SECTIONS, Section, name, section_of
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
# Lists the figures the last report put in ``out/figures/``: the only files a rebuild deletes,
# and files a report never shows as a run's own figures (when ``out`` is a run directory).
MANIFEST = ".genda-report-figures"


@dataclass(frozen=True)
class Run:
    path: Path
    label: str
    config: dict[str, Any]
    metrics: dict[str, Any]

    @property
    def method(self) -> str:
        """The run's method name, as metrics.json (else config.yaml) records it."""
        return str(self.metrics.get("method", self.config.get("method", "")))


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
    except (OSError, UnicodeDecodeError, yaml.YAMLError, json.JSONDecodeError) as err:
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
    "data.source_scale",
    "data.target_scale",
    "train.steps",
    "train.batch_size",
    "train.precision",
    "train.seed",
    "train.devices",
    "train.select",
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
    genda's default for its method (``data.*`` 0 = chosen per pair)."""
    method = config.get("method")
    defaults = method_defaults(method) if isinstance(method, str) else {}
    rows = []
    for key, value in flatten(config):
        if not (key.startswith("hparams.") or key in KEY_SETTINGS):
            continue
        if key.endswith(("_scale", ".select")) and not config.get("data", {}).get("target"):
            continue  # framing and checkpoint selection concern two domains only
        default = defaults.get(key)
        if default is None or default == value:
            note = ""
        elif (key.startswith("data.") and default in ("0", "0.0")) or (
            key.startswith("hparams.") and default == "auto"  # the engine records its choice
        ):
            note = "chosen for the data"
        else:
            note = f"**changed** (default {default or '—'})"
        rows.append((key, value, note))
    return Table(("Setting", "Value", "vs genda's default"), tuple(rows)) if rows else None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "x"


@dataclass
class _Builder:
    """Accumulates blocks and names the report's figures (unique, deterministic); they are
    written to ``stage`` until the report is published into ``out/figures/``."""

    stage: Path
    blocks: list[Block] = field(default_factory=list)
    used: set[str] = field(default_factory=set)
    # Figures already shown in a section's gallery (a pair's t-SNE row): not again per run.
    shown: set[Path] = field(default_factory=set)
    explained: bool = False  # the generative scores' explanation is given once, first

    def figure_path(self, label: str, name: str) -> Path:
        stem = f"{_slug(label)}__{_slug(Path(name).with_suffix('').as_posix())}"
        candidate, k = stem, 1
        while candidate in self.used:
            k += 1
            candidate = f"{stem}_{k}"
        self.used.add(candidate)
        return self.stage / f"{candidate}.png"

    def image(self, title: str, dest: Path) -> Image:
        return Image(title, dest, f"figures/{dest.name}")

    def copy_image(self, title: str, src: Path, label: str, name: str) -> Image:
        dest = self.figure_path(label, name)
        with atomic_path(dest) as tmp:
            shutil.copyfile(src, tmp)
        return self.image(title, dest)

    # --- runs --------------------------------------------------------------------------

    def add_run(self, run: Run, level: int = 3) -> None:
        """One model: the settings that matter (changes from genda's defaults marked), the
        architecture (collapsed), its figures side by side, then the whole config and every
        metric (collapsed in HTML)."""
        b = self.blocks
        b.append(Heading(f"{name(run.method)}: {run.label}", level))
        details = implementation_details(run.config)
        if details is not None:
            b += [Heading("Implementation details", level + 1), details]
        arch = run.path / "architecture.txt"
        if arch.is_file():
            b.append(Code(arch.read_text(encoding="utf-8", errors="replace"), "Architecture"))
        self.add_run_figures(run, level + 1)
        if run.config:
            b.append(Code(yaml.safe_dump(run.config, sort_keys=False), "Full configuration"))
        scalars = flatten(
            {k: v for k, v in run.metrics.items() if k != "figures"}, keep_lists=False
        )
        if scalars:
            b.append(Code("\n".join(f"{k}: {v}" for k, v in scalars), "All metrics"))

    def listed_figures(self, run: Run) -> tuple[list[tuple[str, Path]], list[str]]:
        """``(title, file)`` of the run's figures: listed ones in listed order, then unlisted
        PNGs in ``figures/``; and the listed ones whose file is missing. Only PNG files inside
        the run directory count: a ``metrics.json`` (someone else's) naming ``../../x`` or a
        link out of the run cannot copy another file into the report."""
        listed = run.metrics.get("figures")
        listed = listed if isinstance(listed, Mapping) else {}
        root = run.path.resolve()
        found: list[tuple[str, Path]] = []
        missing: list[str] = []

        def inside(src: Path) -> bool:
            return src.suffix.lower() == ".png" and src.is_relative_to(root) and src.is_file()

        for title, rel in listed.items():
            src = (run.path / str(rel)).resolve()
            if inside(src):
                found.append((str(title), src))
            else:
                missing.append(f"{title} ({rel})")
        seen = {src for _, src in found}
        fig_dir = run.path / "figures"
        # a report written into this run: its copies are not the run's figures
        seen |= {(fig_dir / n).resolve() for n in report_figures(fig_dir)}
        for src in sorted(fig_dir.glob("*.png")) if fig_dir.is_dir() else []:
            if src.resolve() not in seen and inside(src.resolve()):
                found.append((src.stem.replace("_", " "), src.resolve()))
        return found, missing

    def add_run_figures(self, run: Run, level: int) -> None:
        """The run's figures in one gallery, plus a confusion plot when only numbers exist."""
        found, missing = self.listed_figures(run)
        images = [
            self.copy_image(title, src, run.label, src.relative_to(run.path.resolve()).as_posix())
            for title, src in found
            if src not in self.shown
        ]
        names = [t.lower() for t, _ in found] + [src.name.lower() for _, src in found]
        confusion = run.metrics.get("confusion")
        if isinstance(confusion, list) and confusion and not any("confusion" in n for n in names):
            dest = self.figure_path(run.label, "confusion")
            classes = run.metrics.get("classes") or [str(i) for i in range(len(confusion))]
            plot_confusion(confusion, classes, dest, "Confusion matrix (target test set)")
            images.append(self.image("Confusion matrix (target test set)", dest))
        notes = []
        if any(src in self.shown for _, src in found):
            notes.append("Its t-SNE plots are in the pair's gallery above.")
        if missing:
            notes.append("Missing figure files: " + "; ".join(missing) + ".")
        if images or notes:
            self.blocks.append(Heading("Figures", level))
        if images:
            self.blocks.append(Gallery(tuple(images)))
        if notes:
            self.blocks.append(Paragraph(" ".join(notes)))

    # --- tables -------------------------------------------------------------------------

    def add_table(self, path: Path, label: str, runs: list[Run]) -> None:
        """The UDA table, its per-class breakdown and, per pair, every method's t-SNE side
        by side (first seed): the figure the course reports compare methods by."""
        summary = summarise(read_table(path / "table.csv"))
        self.blocks.append(Heading(f"Table: {label}", 3))
        self.blocks += table_blocks(summary, level=3)
        inside = [r for r in runs if r.path.is_relative_to(path)]
        self.blocks += per_class_blocks(summary, inside, level=4)
        for pair in summary.pairs:
            self.add_tsne_gallery(pair, summary.methods, inside)

    def add_tsne_gallery(self, pair: tuple[str, str], methods: list[str], runs: list[Run]) -> None:
        first: dict[str, Run] = {}
        for r in sorted(runs, key=lambda r: (str(r.metrics.get("seed")), r.label)):
            m = r.metrics
            if (str(m.get("source")), str(m.get("target"))) == pair:
                first.setdefault(str(m.get("method")), r)
        rows: dict[str, list[Image]] = {"class": [], "domain": []}
        for method in order_methods(methods):
            run = first.get(method)
            for title, src in self.listed_figures(run)[0] if run else []:
                kind = next((k for k in rows if f"t-sne by {k}" in title.lower()), None)
                if kind is not None:
                    rel = src.relative_to(run.path.resolve()).as_posix()
                    rows[kind].append(self.copy_image(name(method), src, run.label, rel))
                    self.shown.add(src)
        for kind, images in rows.items():
            if images:
                self.blocks += [
                    Heading(f"t-SNE by {kind}: {pair_label(pair)}", 4),
                    Gallery(tuple(images), per_row=len(images)),
                ]

    def add_matrix(self, path: Path) -> None:
        """The train x test accuracy matrix of ``genda uda matrix`` and its heat map."""
        with (path / "matrix.csv").open(newline="", encoding="utf-8") as f:
            header, *rows = list(csv.reader(f))
        self.blocks += [
            Heading(f"Cross-domain accuracy: {path.name}", 3),
            Paragraph(
                "Source-only classifiers: rows trained on, columns tested on (%); the "
                "diagonal is in-domain test accuracy."
            ),
            Table(tuple(header), tuple(tuple(r) for r in rows)),
        ]
        if (path / "matrix.png").is_file():
            image = self.copy_image(
                "Cross-domain accuracy", path / "matrix.png", path.name, "matrix"
            )
            self.blocks.append(image)

    # --- sections -----------------------------------------------------------------------

    def add_section(
        self,
        section: Section,
        runs: list[Run],
        tables: list[tuple[Path, str]],
        matrices: list[Path],
        all_runs: list[Run],
    ) -> None:
        """One problem: results first, then each model, then what the numbers say."""
        if not (runs or tables or matrices):
            return
        self.blocks += [Heading(section.heading, 2), Paragraph(section.intro)]
        pairs = [(r.label, r.metrics) for r in runs]
        if section.generative:
            table = generative_table(pairs, explain=not self.explained)
            self.explained = self.explained or bool(table)
            self.blocks += table
        for path, label in tables:
            self.add_table(path, label, all_runs)
        for path in matrices:
            self.add_matrix(path)
        for run in runs:
            self.add_run(run)
        notes = generative_observations(pairs) if section.generative else []
        if notes:
            self.blocks += [Heading(f"Observations: {section.heading}", 3), Bullets(tuple(notes))]


def _mean_columns(per_seed: list[list[float]]) -> list[float]:
    """Element-wise mean over seeds; seeds with a different class count than the first are
    left out rather than misaligned."""
    same = [v for v in per_seed if len(v) == len(per_seed[0])]
    return [statistics.fmean(col) for col in zip(*same, strict=True)]


def per_class_blocks(summary: TableSummary, runs: list[Run], level: int = 3) -> list[Block]:
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
            Heading(f"Per-class target accuracy (%): {pair_label(pair)}", level),
            Table(("Class", *(method_label(m) for m in methods)), rows),
        ]
    return blocks


def _run_order(run: Run, section: Section) -> tuple:
    """Runs of a section by pair, then in the section's method order (lower bound,
    adaptation, upper bound), then by label (seeds)."""
    m, method = run.metrics, run.method.lower()
    rank = section.methods.index(method) if method in section.methods else len(section.methods)
    return (str(m.get("source", "")), str(m.get("target", "")), rank, run.label)


def build_report(
    paths: list[Path], out: Path, title: str = "genda report", pdf: bool = False
) -> tuple[Path, Path]:
    """Write ``out/report.md`` and ``out/report.html`` (and with ``pdf`` ``out/report.pdf``,
    printed by a headless browser) for every run and table under ``paths``.

    One section per problem, in the order of :data:`genda.report.sections.SECTIONS` (GANs,
    ACGAN, VAE, diffusion, domain adaptation, further adaptation methods), then any other runs.
    """
    tables, found_runs = discover(paths)
    if not tables and not found_runs:
        raise ReportError(
            "no run directories (metrics.json + config.yaml) or table directories "
            "(table.csv) under: " + ", ".join(str(p) for p in paths)
        )
    out = Path(out)
    runs = [load_run(p, label) for p, label in found_runs]
    with locked(out / "figures"):  # one report at a time publishes into a folder
        stage = Path(tempfile.mkdtemp(prefix=".stage-", dir=out / "figures"))
        try:
            return _build(paths, out, stage, tables, runs, title, pdf)
        finally:
            shutil.rmtree(stage, ignore_errors=True)


def _build(
    paths: list[Path],
    out: Path,
    stage: Path,
    tables: list[tuple[Path, str]],
    runs: list[Run],
    title: str,
    pdf: bool,
) -> tuple[Path, Path]:
    builder = _Builder(stage)
    builder.blocks += [
        Heading(title, 1),
        Paragraph(f"{len(tables)} table(s) and {len(runs)} run(s), one section per problem."),
    ]
    grouped: dict[str, list[Run]] = {}
    for r in runs:
        grouped.setdefault(section_of(r.method).heading, []).append(r)
    for section in (*SECTIONS, OTHER):
        members = sorted(grouped.get(section.heading, []), key=lambda r: _run_order(r, section))
        try:
            builder.add_section(
                section,
                members,
                tables if section.tables else [],
                _matrices(paths) if section.tables else [],
                runs,
            )
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            # A run's metrics.json / config.yaml or a table.csv (maybe someone else's) holds
            # values of another shape: one line, and no report half-written.
            where = ", ".join(str(r.path) for r in members) or ", ".join(map(str, tables))
            raise ReportError(
                f"cannot render section {section.heading!r}: a file under {where} holds an "
                f"unexpected value ({type(e).__name__}: {e})"
            ) from None
    blocks = with_toc(builder.blocks)
    markdown, html = to_markdown(blocks), to_html(blocks, title)
    published = publish_figures(stage, out / "figures")
    md = write_text(out / "report.md", markdown)
    page = write_text(out / "report.html", html)
    retire_figures(out / "figures", published)
    if pdf:
        from genda.report.pdf import html_to_pdf

        html_to_pdf(page, out / "report.pdf")
    return md, page


def publish_figures(stage: Path, figures: Path) -> list[str]:
    """Move the staged figures into ``figures/`` and return their names. The ``MANIFEST``
    lists them beside the previous report's first, so a crash part-way leaves none unlisted."""
    new = sorted(f.name for f in stage.glob("*.png"))
    record_figures(figures, [*report_figures(figures), *new])
    for fig in new:
        os.replace(stage / fig, figures / fig)
    fsync_dir(figures)
    return new


def retire_figures(figures: Path, published: list[str]) -> None:
    """Once the new report is written: delete the figures the previous report made that this
    one no longer shows (only names in ``MANIFEST``, never a path; compared without case, as
    some file systems do), and list this report's alone."""
    keep = {fig.casefold() for fig in published}
    for fig in report_figures(figures):
        if fig.casefold() not in keep and re.fullmatch(r"[A-Za-z0-9._-]+\.png", fig):
            (figures / fig).unlink(missing_ok=True)
    record_figures(figures, published)


def report_figures(figures: Path) -> list[str]:
    """The names a report published into ``figures/`` (its ``MANIFEST``; none if absent)."""
    listed = figures / MANIFEST
    return listed.read_text(encoding="utf-8").split() if listed.is_file() else []


def record_figures(figures: Path, names: list[str]) -> None:
    """Write ``figures/``'s ``MANIFEST``: ``names``, sorted and once each."""
    write_text(figures / MANIFEST, "".join(f"{fig}\n" for fig in sorted(set(names))))
