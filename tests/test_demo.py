"""``genda demo --quick``: the main job end to end on the embedded data, at tiny budgets."""

from __future__ import annotations

import csv
from pathlib import Path

from genda.cli import main
from genda.demo import DEMO_GENERATIVE, DEMO_PAIRS, DEMO_UDA_METHODS


def test_quick_demo_writes_table_runs_and_report(tmp_path: Path) -> None:
    """Two runs at a time, as the full demo does on a 2-core machine."""
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--jobs", "2", "--out", str(out)]) in (0, None)
    with open(out / "uda" / "table.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    cells = {(r["method"], r["source"], r["target"]) for r in rows}
    assert cells == {(m, s, t) for m in DEMO_UDA_METHODS for s, t in DEMO_PAIRS}
    assert all(0 <= float(r["target_accuracy"]) <= 100 for r in rows)
    for method in DEMO_GENERATIVE:
        assert (out / "gen" / method / "metrics.json").is_file(), method
    report = (out / "report.md").read_text()
    for name in ("ADDA", "DANN", "lower bound", "upper bound", "acgan", "ddpm", "vae"):
        assert name in report, name
    assert (out / "report.html").stat().st_size > 10_000
    # One section per problem, in the fixed order; the contents list links to each.
    import re

    from genda.report.sections import SECTIONS

    headings = re.findall(r"^## (.+)$", report, flags=re.M)
    order = [s.heading for s in SECTIONS]
    assert headings == [h for h in order if h in headings]
    assert headings[:4] == ["GAN models", "ACGAN", "VAE", "Diffusion"]
    assert "Domain adaptation" in headings and "Adaptation methods beyond DANN" in headings
    page = (out / "report.html").read_text()
    ids = set(re.findall(r'<h\d id="([^"]+)"', page))
    links = re.findall(r'<a href="#([^"]+)"', page)
    assert links and set(links) <= ids
    text = re.sub(r"<(script|style)>.*?</\1>|<[^>]+>", "", page, flags=re.S)
    assert "`" not in text and "± 0.0" not in text
    # Every method's t-SNE of one pair side by side, and each run's figures in a gallery.
    assert "#### t-SNE by class: digits → digits-m" in report
    assert page.count('<div class="gallery">') >= len(DEMO_GENERATIVE)
    # Every compared number carries its interval: FIDs their bootstrap interval, table
    # cells their Wilson interval (one seed).
    fids = re.findall(r"\| (\d+\.\d+)( \[\d+\.\d+, \d+\.\d+\])? \(classifier:", report)
    assert fids and all(interval for _, interval in fids)
    assert re.search(r"\| Adaptation \(DANN\) \| \d+\.\d \[\d+\.\d, \d+\.\d\] \(1 seed\)", report)
