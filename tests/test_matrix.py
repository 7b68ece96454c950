"""``genda uda matrix``: one source-only row per domain, tested on every domain."""

from __future__ import annotations

import csv
import json

import yaml

from genda.cli import main

TINY = [
    *("--steps", "6", "--batch-size", "16", "--set", "data.limit=96", "--set", "train.threads=1"),
    *("--set", "train.device=cpu"),
]


def test_matrix_rows_diagonal_figure_and_report(tmp_path, capsys) -> None:
    out = tmp_path / "m"
    assert (
        main(["uda", "matrix", "--domains", "digits,digits-m,syndigits", "--out", str(out), *TINY])
        == 0
    )
    printed = capsys.readouterr().out
    assert "# Cross-domain accuracy" in printed
    # syndigits spreads wider, but over neighbouring digits, not a larger digit: kept as is
    assert "data.source_scale[syndigits]=1 " in printed and "syndigits: busy frame" in printed
    cfg = yaml.safe_load((out / "syndigits" / "seed0" / "config.yaml").read_text())
    assert cfg["data"]["source_scale"] == 1.0
    with (out / "matrix.csv").open() as f:
        header, *rows = list(csv.reader(f))
    assert header == ["train \\ test", "digits", "digits-m", "syndigits"]
    assert [r[0] for r in rows] == header[1:] and all(len(r) == 4 for r in rows)
    for i, row in enumerate(rows):  # the diagonal is the row's own in-domain test accuracy
        metrics = json.loads((out / row[0] / "seed0" / "metrics.json").read_text())
        assert float(row[1 + i]) == round(metrics["source_accuracy"], 2)
        assert all(0 <= float(a) <= 100 for a in row[1:])
    assert (out / "matrix.png").stat().st_size > 1000
    assert main(["report", str(out), "--out", str(tmp_path / "rep")]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Cross-domain accuracy: m" in md and "matrix.png" in md
