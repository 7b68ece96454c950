"""Report building from hand-written run and table directories (layout of docs/runs.md)."""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from PIL import Image

from genda.engine.table import write_table_csv
from genda.io import TABLE_COLUMNS, TABLE_OPTIONAL
from genda.report import ReportError, build_report, format_table_md, write_table_md

# (source, target) -> method -> target accuracy per seed (percent).
RESULTS = {
    ("MNIST", "USPS"): {
        "source-only": [74.1, 76.1, 75.1],
        "DANN": [91.0, 91.6, 91.3],
        "ADDA": [80.0, 82.0, 81.0],
        "target-only": [97.5],
    },
    ("USPS", "MNIST"): {
        "source-only": [60.0, 62.0, 61.0],
        "DANN": [70.0, 72.0, 71.0],
        "ADDA": [60.1, 60.3, 60.2],
        "target-only": [99.0],
    },
}
CLASSES = ["zero", "one", "two"]


def write_png(path: Path, color: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (6, 4), color).save(path)


def write_run(d: Path, method: str, source: str, target: str, seed: int, acc: float) -> None:
    """One run directory; per-class accuracy is acc-1, acc, acc+1 so its mean is checkable."""
    d.mkdir(parents=True)
    config = {
        "method": {"name": method},
        "data": {"source": source, "target": target},
        "train": {"lr": 0.001, "steps": 100, "seed": seed},
        "hparams": {"lambda": 1.0},
    }
    (d / "config.yaml").write_text(yaml.safe_dump(config))
    (d / "architecture.txt").write_text(
        "Net(\n  (fc): Linear(in_features=4, out_features=3)\n)\nparams: 15\n"
    )
    metrics = {
        "method": method,
        "seed": seed,
        "steps": 100,
        "wall_time_s": 1.5,
        "source": source,
        "target": target,
        "target_accuracy": acc,
        "source_accuracy": 99.0,
        "per_class_accuracy": [acc - 1, acc, acc + 1],
        "confusion": [[5, 1, 0], [0, 6, 0], [1, 0, 5]],
        "classes": CLASSES,
        "selected_step": 100,
        "selection_rule": "last",
        "figures": {},
    }
    if method == "DANN" and seed == 0:
        write_png(d / "figures" / "curves.png", (200, 0, 0))
        write_png(d / "figures" / "extra_plot.png", (0, 200, 0))  # not listed in metrics.json
        metrics["figures"] = {
            "Training curves": "figures/curves.png",
            "Gone": "figures/missing.png",
        }
    (d / "metrics.json").write_text(json.dumps(metrics))


@pytest.fixture(scope="module")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``root/uda_table`` (a table directory with its runs) and ``root/single`` (a lone run)."""
    root = tmp_path_factory.mktemp("runs")
    table = root / "uda_table"
    rows = []
    for (source, target), methods in RESULTS.items():
        for method, accs in methods.items():
            for seed, acc in enumerate(accs):
                rows.append(
                    {
                        "method": method,
                        "source": source,
                        "target": target,
                        "seed": seed,
                        "target_accuracy": acc,
                        "target_test_images": 2007 if target == "USPS" else 10000,
                    }
                )
                write_run(
                    table / f"{source}__{target}" / method / f"seed{seed}",
                    method,
                    source,
                    target,
                    seed,
                    acc,
                )
    write_table_csv(rows, table)
    write_table_md(table)
    write_run(root / "single", "DANN", "SVHN", "MNIST", 0, 66.6)
    return root


@pytest.fixture(scope="module")
def report(runs_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return build_report([runs_root], tmp_path_factory.mktemp("out") / "report")


def test_write_table_csv_and_md(runs_root: Path) -> None:
    table = runs_root / "uda_table"
    with open(table / "table.csv", newline="") as f:
        reader = csv.reader(f)
        assert next(reader) == [*TABLE_COLUMNS, *TABLE_OPTIONAL]
        first = next(reader)
    assert first == ["source-only", "MNIST", "USPS", "0", "74.10", "2007"]
    md = (table / "table.md").read_text()
    assert "| Target accuracy (%) | MNIST → USPS | USPS → MNIST |" in md
    row = "| Trained on source (lower bound) | 75.1 [72.6, 77.6] (3 seeds) | 61.0 [58.5, 63.5] (3 seeds) |"
    assert row in md and "± 0.0" not in md
    assert not list(table.glob(".*.tmp"))


def test_format_table_md_row_order() -> None:
    rows = [
        {"method": m, "source": "A", "target": "B", "seed": 0, "target_accuracy": a}
        for m, a in (("target-only", 99), ("MCD", 80), ("source-only", 50), ("DANN", 70))
    ]
    lines = format_table_md(rows).splitlines()
    assert lines[0] == "| Target accuracy (%) | A → B |"
    assert [line.split(" | ")[0] for line in lines[2:]] == [
        "| Trained on source (lower bound)",
        "| Adaptation (MCD)",
        "| Adaptation (DANN)",
        "| Trained on target (upper bound)",
    ]
    assert lines[3] == "| Adaptation (MCD) | 80.0 (1 seed) |"  # no test-set size: no interval


def test_intervals_wilson_t_and_within_noise() -> None:
    """One seed: the Wilson interval over the test images; several: the t-interval over
    seeds; a difference inside both intervals is called "within noise", never "raised"."""
    from scipy.stats import t

    from genda.report.tables import Cell, observations, summarise

    one = Cell.of([52.1], images=360)  # 188 of 360 right
    p, n, z = 188 / 360, 360, 1.959964
    centre, half = (
        (p + z * z / (2 * n)) / (1 + z * z / n),
        z * (p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5 / (1 + z * z / n),
    )
    assert one.interval == pytest.approx((100 * (centre - half), 100 * (centre + half)), abs=1e-4)
    lo, hi = one.interval
    assert str(one) == f"52.1 [{lo:.1f}, {hi:.1f}] (1 seed)"
    seeds = Cell.of([50.0, 52.0, 54.0])
    half = t.ppf(0.975, 2) * 2.0 / 3**0.5
    assert seeds.interval == pytest.approx((52.0 - half, 52.0 + half))
    tie = [
        {"method": m, "source": "A", "target": "B", "seed": 0, "target_accuracy": a}
        | {"target_test_images": 360}
        for m, a in (("source-only", 52.1), ("dann", 54.6), ("target-only", 97.0))
    ]
    found = " ".join(observations(summarise(tie)))
    assert "DANN on A→B is within noise of source-only training: 54.6% [" in found
    assert "raised" not in found and "No adaptation method beat source-only" in found
    clear = [dict(r, target_test_images=100000) for r in tie]  # same numbers, 100k images
    assert "DANN raised A→B target accuracy" in " ".join(observations(summarise(clear)))
    for source_only, why in ((97.1, True), (80.0, False)):  # the reason only when it holds
        worse = [
            dict(r, target_accuracy=a)
            for r, a in zip(clear, (source_only, source_only - 5, 97.0), strict=True)
        ]
        found = " ".join(observations(summarise(worse)))
        assert "DANN lowered A→B target accuracy below source-only training" in found
        assert ("level with the target-trained bound" in found) is why


def test_report_md_tables_and_observations(report: tuple[Path, Path]) -> None:
    md = report[0].read_text()
    assert "| Target accuracy (%) | MNIST → USPS | USPS → MNIST |" in md
    assert "| Adaptation (DANN) | 91.3 [90.6, 92.0] (3 seeds) | 71.0 [68.5, 73.5] (3 seeds) |" in md
    assert "| Trained on target (upper bound) | 97.5 [96.7, 98.1] (1 seed) |" in md
    # gap closed = (91.3 - 75.1) / (97.5 - 75.1) = 72.3 %; ADDA: 5.9 / 22.4 = 26.3 %
    assert (
        "DANN raised MNIST→USPS target accuracy: 91.3% [90.6, 92.0] vs 75.1% [72.6, 77.6] "
        "source-only, closing 72% of the gap to the target-trained bound (97.5% [96.7, 98.1])."
    ) in md
    assert "ADDA raised MNIST→USPS target accuracy: 81.0% [78.5, 83.5] vs 75.1%" in md
    assert (
        "ADDA on USPS→MNIST is within noise of source-only training: "
        "60.2% [60.0, 60.4] vs 61.0% [58.5, 63.5] source-only."
    ) in md
    assert "Best adaptation method on MNIST→USPS: DANN (91.3% [90.6, 92.0])." in md
    assert "Best adaptation method on USPS→MNIST: DANN (71.0% [68.5, 73.5])." in md
    # per-class table: rows are classes, columns methods, mean over seeds of acc-1, acc, acc+1
    assert "## Domain adaptation\n" in md and "### Table: uda_table" in md
    assert "#### Per-class target accuracy (%): MNIST → USPS" in md
    assert "| zero | 74.1 | 90.3 | 80.0 | 96.5 |" in md
    assert "| two | 62.0 | 72.0 | 61.2 | 100.0 |" in md


def test_report_md_runs(report: tuple[Path, Path]) -> None:
    md_path, _ = report
    md = md_path.read_text()
    assert "### DANN: single" in md
    assert "### DANN: uda_table/MNIST__USPS/DANN/seed0" in md
    assert "| hparams.lambda | 1.0 |  |" in md and "lr: 0.001" in md  # details; full config
    assert "```text\nNet(\n  (fc): Linear(in_features=4, out_features=3)\n)" in md
    assert "target_accuracy: 66.6" in md and "selection_rule: last" in md
    assert "per_class_accuracy:" not in md  # lists are not scalar metrics
    assert "Missing figure files: Gone (figures/missing.png)." in md
    figures = md_path.parent / "figures"
    for name in (
        "uda_table_MNIST__USPS_DANN_seed0__figures_curves.png",
        "uda_table_MNIST__USPS_DANN_seed0__figures_extra_plot.png",
        "single__confusion.png",
    ):
        assert f"(figures/{name})" in md
        assert (figures / name).stat().st_size > 0
    assert "![Training curves](figures/uda_table_MNIST__USPS_DANN_seed0__figures_curves.png)" in md
    assert "![extra plot](" in md
    # the lone run is not part of any table's per-class breakdown
    assert "SVHN → MNIST" not in md


def test_implementation_details_mark_what_differs_from_genda_defaults() -> None:
    from genda.engine.loop import resolve_config
    from genda.report.build import implementation_details

    cfg = resolve_config({"method": "dann", "hparams": {"lr": 0.02}, "train": {"steps": 500}})
    cfg.data.size = 28  # as a run records what auto chose
    rows = {r[0]: r for r in implementation_details(cfg.to_dict()).rows}
    assert rows["hparams.lr"] == ("hparams.lr", "0.02", "**changed** (default 0.03)")
    assert rows["train.steps"][2] == "**changed** (default 3000)"
    assert rows["hparams.disc_hidden"] == ("hparams.disc_hidden", "1024", "")
    assert rows["data.size"][2] == "chosen for the data"
    cfg.hparams["invert"] = "image"  # what hparams.invert=auto chose
    rows = {r[0]: r for r in implementation_details(cfg.to_dict()).rows}
    assert rows["hparams.invert"][2] == "chosen for the data"
    cfg.train.precision = "bf16-mixed"  # train.precision=auto is resolved at run time, not recorded
    rows = {r[0]: r for r in implementation_details(cfg.to_dict()).rows}
    assert rows["train.precision"][2] == "**changed** (default auto)"
    assert "train.threads" not in rows and "train.progress" not in rows
    assert "data.target_scale" not in rows  # no target domain: nothing to frame alike
    cfg.data.target, cfg.data.target_scale = "usps", 0.79
    rows = {r[0]: r for r in implementation_details(cfg.to_dict()).rows}
    assert rows["data.target_scale"] == ("data.target_scale", "0.79", "chosen for the data")


def test_report_html_self_contained(report: tuple[Path, Path]) -> None:
    page = report[1].read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "<table>" in page and '<img src="data:image/png;base64,' in page
    assert "<details><summary>Architecture</summary>" in page
    assert 'src="figures/' not in page
    assert "<td>Adaptation (DANN)</td><td>91.3 [90.6, 92.0] (3 seeds)</td>" in page


def test_report_is_deterministic(
    runs_root: Path, report: tuple[Path, Path], tmp_path: Path
) -> None:
    md, page = build_report([runs_root / "uda_table", runs_root / "single"], tmp_path / "again")
    assert md.read_bytes() == report[0].read_bytes()
    assert page.read_bytes() == report[1].read_bytes()


def test_report_has_a_contents_list_whose_links_resolve(report: tuple[Path, Path]) -> None:
    import re

    md, page = report[0].read_text(), report[1].read_text()
    ids = set(re.findall(r'<h\d id="([^"]+)"', page))
    links = re.findall(r'<a href="#([^"]+)"', page)
    assert links and set(links) <= ids
    assert "- [Domain adaptation](#domain-adaptation)" in md
    text = re.sub(r"<(script|style)>.*?</\1>|<[^>]+>", "", page, flags=re.S)
    assert "`" not in text and "± 0.0" not in text  # inline code became <code>


def test_report_without_inputs_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match="no run directories"):
        build_report([tmp_path], tmp_path / "out")
    with pytest.raises(ReportError, match="no such directory"):
        build_report([tmp_path / "absent"], tmp_path / "out")


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# Screenshots for a person to look at (kept after the run): $GENDA_SCREENSHOTS or /tmp.
SCREENSHOTS = Path(os.environ.get("GENDA_SCREENSHOTS", tempfile.gettempdir()))


def test_report_renders_in_headless_chromium(report: tuple[Path, Path], tmp_path: Path) -> None:
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists() and shutil.which(str(CHROMIUM))):
        pytest.skip("chromium / chromedriver not installed")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.set_window_size(1280, 900)
        driver.get(report[1].resolve().as_uri())
        overflow = driver.execute_script(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;"
        )
        broken = driver.execute_script(
            "return Array.from(document.querySelectorAll('a[href^=\"#\"]'))"
            ".filter(a => !document.getElementById(a.getAttribute('href').slice(1)))"
            ".map(a => a.getAttribute('href'));"
        )
        text = driver.execute_script("return document.body.innerText;")
        driver.save_screenshot(str(SCREENSHOTS / "report_1280.png"))
        tables = driver.execute_script(
            "return Array.from(document.querySelectorAll('table')).map("
            "t => Array.from(t.rows).map(r => r.innerText));"
        )
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth]);"
        )
        summary = (
            driver.find_element("tag name", "details").find_element("tag name", "summary").text
        )
    finally:
        driver.quit()
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px at 1280 px"
    assert not broken and "Contents" in text and "`" not in text
    main = tables[0]
    assert [row.split("\t")[0] for row in main] == [
        "Target accuracy (%)",
        "Trained on source (lower bound)",
        "Adaptation (DANN)",
        "Adaptation (ADDA)",
        "Trained on target (upper bound)",
    ]
    assert "91.3 [90.6, 92.0] (3 seeds)" in main[2]
    assert any("zero\t74.1\t90.3\t80.0\t96.5" in row for t in tables for row in t)
    assert len(images) >= 3
    assert all(complete and width > 0 for complete, width in images)
    assert summary == "Architecture"


def test_generative_section_compares_like_with_like() -> None:
    from genda.report.generative import generative_observations, generative_table
    from genda.report.render import to_markdown

    common = {
        "source": "digits",
        "steps": 1000,
        "fid_extractor": "classifier:digits",
        "eval_n": 500,
    }
    runs = [
        ("a", {"method": "dcgan", "fid": 13.9, "fid_interval": [13.1, 14.8], **common}),
        ("b", {"method": "gan", "fid": 11.8, "fid_interval": [11.0, 12.6], **common}),
        ("c", {"method": "gan", "fid": 9.0, **{**common, "steps": 2000}}),  # other budget
        (
            "d",
            {
                "method": "acgan",
                "fid": 3.0,
                "classifier_accuracy": 97.5,
                "evaluator_accuracy": 99.7,
                **common,
            },
        ),
        ("e", {"method": "dann", "target_accuracy": 90.0}),  # not generative: left out
        (
            "f",
            {
                "method": "acgan",
                "fid": 5.0,
                "pair_n": 500,
                "pair_accuracy": 91.3,
                "pair_accuracy_off": 95.0,
                "pair_accuracy_on": 87.6,
                "pairs_both_correct": 83.2,
                **common,
            },
        ),
    ]
    md = to_markdown(generative_table(runs)) + " ".join(generative_observations(runs))
    assert (
        "The improved GAN beats DCGAN on digits at 1000 steps: "
        "FID 11.80 [11.00, 12.60] vs 13.90 [13.10, 14.80]"
    ) in md
    assert md.count("beats DCGAN") == 1  # the 2000-step run has no DCGAN to compare with
    assert "97.5% of its samples" in md and "99.7% on real test images" in md
    assert "| e |" not in md
    assert "in 500 pairs drawn from the same noise" in md and "judges 91.3% of the images" in md
    assert "both images right in 83.2% of pairs" in md
    worse = [("a", {"method": "dcgan", "fid": 9.0, "fid_interval": [8.5, 9.6], **common})]
    assert "is worse than DCGAN" in " ".join(generative_observations([*worse, runs[1]]))
    # a 1% difference inside both intervals (the 13.22 vs 13.34) is only noise
    tie = [
        ("a", {"method": "dcgan", "fid": 13.34, "fid_interval": [12.6, 14.1], **common}),
        ("b", {"method": "gan", "fid": 13.22, "fid_interval": [12.5, 14.0], **common}),
    ]
    assert "is within noise of DCGAN" in " ".join(generative_observations(tie))
    no_interval = [("a", {"method": "dcgan", "fid": 13.9, **common}), ("b", runs[1][1])]
    assert "within noise" in " ".join(generative_observations(no_interval))
    sized = [
        ("a", {**runs[0][1], "parameters": {"g": 1_000_000, "d": 5}}),
        ("b", {**runs[1][1], "parameters": {"g": 250_000, "d": 5}}),
    ]
    assert "; generators of 250,000 vs 1,000,000 parameters)" in " ".join(
        generative_observations(sized)
    )
    sized[1][1]["parameters"] = {"g": 1_000_000}
    assert "generators of" not in " ".join(generative_observations(sized))
    assert generative_table([("e", runs[4][1])]) == []


def test_report_pdf_has_the_sections(runs_root: Path, tmp_path: Path) -> None:
    from genda.report.pdf import find_browser

    if find_browser() is None:
        pytest.skip("no Chromium/Chrome to print the PDF with")
    pypdf = pytest.importorskip("pypdf")
    build_report([runs_root], tmp_path / "r", pdf=True)
    reader = pypdf.PdfReader(tmp_path / "r" / "report.pdf")
    text = " ".join(page.extract_text() for page in reader.pages)
    for section in ("Contents", "Domain adaptation", "Table: uda_table", "DANN: single"):
        assert section in text, section
    assert not list((tmp_path / "r").glob(".*.tmp"))


def test_report_pdf_without_a_browser_says_how_to_get_one(
    runs_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import genda.report.pdf

    monkeypatch.setattr(genda.report.pdf, "find_browser", lambda: None)
    with pytest.raises(ReportError, match="apt-get install chromium"):
        build_report([runs_root], tmp_path / "r", pdf=True)
    assert (tmp_path / "r" / "report.html").is_file()  # the HTML is still written


def test_names_from_other_peoples_files_cannot_inject_html() -> None:
    from genda.report.render import Heading, Paragraph, Table, to_html

    evil = '[x](#"autofocus=""onfocus="alert(1))<script>alert(2)</script>'
    page = to_html(
        [Heading("t", 1), Heading(evil), Paragraph(evil), Table(("run",), ((evil,),))], "t"
    )
    assert "<script>alert" not in page and 'onfocus="' not in page and "&quot;" in page
    safe = to_html([Paragraph("see [the table](#results-1)")], "t")
    assert '<a href="#results-1">the table</a>' in safe  # real heading links still work


def test_a_run_cannot_pull_files_from_outside_it_into_the_report(tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    write_png(secret, (1, 2, 3))
    run = tmp_path / "runs" / "r"
    write_run(run, "DANN", "MNIST", "USPS", 1, 90.0)
    (run / "figures").mkdir()
    (run / "figures" / "link.png").symlink_to(secret)  # an unlisted figure linking out
    metrics = json.loads((run / "metrics.json").read_text())
    metrics["figures"] = {"Stolen": "../../secret.png"}
    (run / "metrics.json").write_text(json.dumps(metrics))
    md, _ = build_report([tmp_path / "runs"], tmp_path / "out")
    copied = [p.read_bytes() for p in (tmp_path / "out").rglob("*.png")]
    assert secret.read_bytes() not in copied
    assert "Missing figure files: Stolen (../../secret.png)." in md.read_text()


@pytest.mark.parametrize(
    "change, fails",
    [
        ({"confusion": [[1, 2]]}, True),  # not square: no confusion plot can be drawn
        ({"fid": "x", "fid_extractor": "classifier:digits"}, False),  # shown as written
        ({"target_accuracy": "n/a"}, False),
    ],
)
def test_a_run_file_of_another_shape_renders_or_is_one_report_error(
    tmp_path: Path, change: dict, fails: bool
) -> None:
    run = tmp_path / "runs" / "r"
    write_run(run, "DANN", "MNIST", "USPS", 1, 90.0)
    metrics = {**json.loads((run / "metrics.json").read_text()), **change}
    (run / "metrics.json").write_text(json.dumps(metrics))
    if fails:
        with pytest.raises(ReportError) as e:
            build_report([tmp_path / "runs"], tmp_path / "out")
        assert str(run) in str(e.value) and "\n" not in str(e.value)
        assert not (tmp_path / "out" / "report.md").exists()  # nothing half-written
    else:
        md, _ = build_report([tmp_path / "runs"], tmp_path / "out")
        assert str(next(iter(change.values()))) in md.read_text()


def test_a_rebuild_publishes_its_figures_only_with_its_report(tmp_path: Path) -> None:
    """A failed rebuild leaves the previous report and figures as they were (no new figure
    beside the old report, no stage left); a successful one removes the figures the previous
    report made and no longer shows, but never a file of someone else's in ``figures/``."""
    runs, out = tmp_path / "runs", tmp_path / "out"
    write_run(runs / "a", "DANN", "MNIST", "USPS", 0, 90.0)  # seed 0: two figures
    write_run(runs / "b", "DANN", "MNIST", "USPS", 1, 91.0)  # a confusion plot only
    build_report([runs], out)
    theirs = out / "figures" / "notes.png"
    write_png(theirs, (1, 2, 3))
    pngs = lambda: {p.name: p.read_bytes() for p in (out / "figures").glob("*.png")}  # noqa: E731
    before = pngs()
    report = (out / "report.md").read_text()
    assert any(n.startswith("b__") for n in before) and any(n.startswith("a__") for n in before)
    write_png(runs / "a" / "figures" / "curves.png", (0, 0, 200))  # a's figure is redrawn
    bad = json.loads((runs / "b" / "metrics.json").read_text())
    (runs / "b" / "metrics.json").write_text(json.dumps({**bad, "confusion": [[1, 2]]}))
    with pytest.raises(ReportError):
        build_report([runs], out)
    assert pngs() == before
    assert (out / "report.md").read_text() == report
    assert sorted(p.name for p in out.iterdir()) == ["figures", "report.html", "report.md"]
    assert not list((out / "figures").glob(".stage-*"))
    shutil.rmtree(runs / "b")
    build_report([runs], out)
    now = {p.name for p in (out / "figures").iterdir()}
    assert not any(n.startswith("b__") for n in now)  # run b is gone from the report
    assert {n for n in before if n.startswith("a__")} <= now and theirs.name in now


def test_a_report_written_into_a_run_does_not_report_its_own_copies(tmp_path: Path) -> None:
    run = tmp_path / "a"
    write_run(run, "DANN", "MNIST", "USPS", 0, 90.0)
    build_report([run], run)
    first = sorted(p.name for p in (run / "figures").glob("*.png"))
    build_report([run], run)
    assert sorted(p.name for p in (run / "figures").glob("*.png")) == first
    assert {"curves.png", "extra_plot.png"} <= set(first)  # the run's own files are kept
