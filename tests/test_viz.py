"""Every figure function writes a readable PNG atomically (no temporary file left behind)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genda import viz


def assert_png(path: Path) -> None:
    path = Path(path)
    assert path.is_file() and path.stat().st_size > 0
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.width > 0 and im.height > 0
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_to_uint8_maps_value_range_and_passes_uint8_through() -> None:
    x = torch.tensor([-1.0, 0.0, 1.0, 3.0]).view(1, 1, 2, 2)
    assert viz.to_uint8(x).flatten().tolist() == [0, 128, 255, 255]
    u = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    assert torch.equal(viz.to_uint8(u), u)
    assert viz.to_uint8(x, value_range=(0.0, 4.0)).flatten().tolist() == [0, 0, 64, 191]
    with pytest.raises(ValueError, match="N,C,H,W"):
        viz.to_uint8(torch.zeros(3, 4, 4))


def test_save_grid_float_and_uint8(tmp_path: Path) -> None:
    out = viz.save_grid(torch.rand(12, 3, 8, 8) * 2 - 1, tmp_path / "sub" / "g.png", nrow=4)
    assert_png(out)
    with Image.open(out) as im:  # 4 columns x 3 rows of 8px images with 2px padding
        assert im.size == (4 * 10 + 2, 3 * 10 + 2)
    assert_png(
        viz.save_grid(torch.randint(0, 256, (5, 1, 8, 8), dtype=torch.uint8), tmp_path / "u.png")
    )


def test_plot_tsne_writes_both_views_and_subsamples(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(80, 16)).astype(np.float32)
    labels, domains = np.arange(80) % 10, np.arange(80) % 2
    by_class, by_domain = viz.plot_tsne(
        torch.from_numpy(feats),
        labels,
        domains,
        tmp_path / "tsne",
        [str(i) for i in range(10)],
        max_points=60,
        n_threads=1,
    )
    assert by_class == tmp_path / "tsne_by_class.png"
    assert by_domain == tmp_path / "tsne_by_domain.png"
    assert_png(by_class)
    assert_png(by_domain)


def test_plot_tsne_uses_the_runs_thread_count(tmp_path: Path, monkeypatch) -> None:
    """scikit-learn's OpenMP would take every core; a one-thread run's t-SNE keeps to one."""
    import threadpoolctl

    seen: list[int | None] = []
    real = threadpoolctl.threadpool_limits

    def spy(limits=None, user_api=None):
        seen.append(limits)
        return real(limits=limits, user_api=user_api)

    monkeypatch.setattr(threadpoolctl, "threadpool_limits", spy)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    rng = np.random.default_rng(0)
    viz.plot_tsne(
        rng.normal(size=(20, 4)), np.arange(20) % 2, np.zeros(20), tmp_path / "t", ["a", "b"]
    )
    assert seen == [1]


def test_plot_curves_sparse_history(tmp_path: Path) -> None:
    csv = tmp_path / "history.csv"
    csv.write_text(
        "step,time_s,loss_cls,loss_dom,target_acc\n0,0.1,2.0,0.7,\n10,0.2,1.0,,\n"
        "20,0.3,0.5,0.5,55.0\n"
    )
    series = viz.read_history(csv, ["loss_dom", "target_acc", "absent"])
    assert series == {"loss_dom": ([0.0, 20.0], [0.7, 0.5]), "target_acc": ([20.0], [55.0])}
    assert_png(
        viz.plot_curves(
            csv, ["loss_cls", "loss_dom", "target_acc", "absent"], tmp_path / "curves.png", "DANN"
        )
    )
    assert_png(viz.plot_curves(csv, ["absent"], tmp_path / "empty.png", "nothing logged"))


def test_plot_confusion(tmp_path: Path) -> None:
    m = torch.randint(0, 20, (10, 10))
    m[3] = 0  # a class with no samples must not divide by zero
    assert_png(viz.plot_confusion(m, [str(i) for i in range(10)], tmp_path / "c.png", "cm"))
    with pytest.raises(ValueError, match="square"):
        viz.plot_confusion(np.zeros((2, 3)), ["a", "b"], tmp_path / "bad.png", "bad")


def test_plot_strip_one_and_several_rows(tmp_path: Path) -> None:
    labels = [f"t={t}" for t in (999, 500, 0)]
    assert_png(viz.plot_strip(torch.rand(3, 3, 8, 8) * 2 - 1, labels, tmp_path / "s1.png"))
    rows = torch.randint(0, 256, (2, 3, 1, 8, 8), dtype=torch.uint8)
    assert_png(viz.plot_strip(rows, labels, tmp_path / "s2.png"))
    with pytest.raises(ValueError, match="labels"):
        viz.plot_strip(rows, labels[:2], tmp_path / "bad.png")


def test_plot_pairs_and_recon(tmp_path: Path) -> None:
    a, b = torch.rand(4, 3, 8, 8) * 2 - 1, torch.rand(4, 3, 8, 8) * 2 - 1
    assert_png(viz.plot_pairs(a, b, tmp_path / "pairs.png"))
    assert_png(viz.plot_pairs(a, b, tmp_path / "adapted.png", titles=("source", "adapted")))
    assert_png(viz.plot_recon(a, b, ((a - b) ** 2).mean((1, 2, 3)), tmp_path / "recon.png"))
    with pytest.raises(ValueError):
        viz.plot_recon(a, b[:3], [0.1] * 4, tmp_path / "bad.png")


def test_plot_xy(tmp_path: Path) -> None:
    series = {"genda": ([0, 10, 20], [50.0, 80.0, 90.0]), "baseline": (np.arange(4), np.ones(4))}
    assert_png(viz.plot_xy(series, tmp_path / "xy.png", "seconds", "accuracy (%)", "speed"))
