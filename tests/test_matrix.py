"""``genda uda matrix``: one source-only row per domain, tested on every domain."""

from __future__ import annotations

import csv
import json

import torch
import yaml

from genda.cli import main
from genda.data.prepare import prepare
from genda.engine import matrix
from genda.engine.loop import load_method, resolve_config, train
from genda.engine.matrix import _accuracy

TINY = [
    *("--steps", "6", "--batch-size", "16", "--set", "data.limit=96", "--set", "train.threads=1"),
    *("--set", "train.device=cpu"),
]


def test_matrix_rows_diagonal_figure_and_report(tmp_path, capsys, monkeypatch) -> None:
    out = tmp_path / "m"
    asked = []  # each row is reloaded in its run's precision where bf16, else in fp32

    def load(run_dir, precision=""):
        asked.append(precision)
        return load_method(run_dir, precision=precision)

    monkeypatch.setattr(matrix, "load_method", load)
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
        bf16 = metrics["train_precision"].startswith("bf16")
        assert asked[i] == (metrics["train_precision"] if bf16 else "")
        assert float(row[1 + i]) == round(metrics["source_accuracy"], 2)
        assert all(0 <= float(a) <= 100 for a in row[1:])
    assert (out / "matrix.png").stat().st_size > 1000
    assert main(["report", str(out), "--out", str(tmp_path / "rep")]) == 0
    md = (tmp_path / "rep" / "report.md").read_text()
    assert "## Cross-domain accuracy: m" in md and "matrix.png" in md


def test_a_reloaded_net_scores_in_its_runs_own_numerics(tmp_path) -> None:
    """Reloaded with the run's precision, a bf16-trained net scores a test set as the run
    did (the matrix's off-diagonal cells are such scores of other domains' test sets)."""
    cfg = resolve_config(
        {
            "method": "source-only",
            "data": {"source": "digits", "target": "digits-m", "size": 28, "channels": 1},
            "train": {
                **{"steps": 6, "batch_size": 16, "threads": 1, "device": "cpu"},
                **{"precision": "bf16-mixed", "progress": False},
            },
        }
    )
    metrics = train(cfg, tmp_path / "run")
    assert metrics["train_precision"] == "bf16-mixed"
    _, method = load_method(tmp_path / "run", precision="bf16-mixed")
    source = prepare(cfg.data, cfg.train.seed).source.test
    assert _accuracy(method, source, "digits") == metrics["source_accuracy"]
    _, fp32 = load_method(tmp_path / "run")
    x = fp32.prepare(source.images[:64])
    assert fp32.classify(x).dtype == torch.float32
    assert not torch.equal(method.classify(method.prepare(source.images[:64])), fp32.classify(x))
