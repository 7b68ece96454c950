"""VAE: a few engine steps on tiny data, metrics and figures, determinism, bad input and
checkpoint mismatches. Kept fast: 28 px digits, 3 steps, narrow nets."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import tiny_config

from genda.config import ConfigError
from genda.data.domain import Dataset, Domain
from genda.data.prepare import DataInfo, ExperimentData, prepare
from genda.engine.checkpoint import CheckpointError
from genda.engine.loop import build_method, load_method, train


def config(steps: int = 3, data: dict | None = None, method: str = "vae", **hparams: Any):
    data = {"size": 28, "channels": 1, **(data or {})}
    extra = {"latent": 8} if method == "vae" else {}
    return tiny_config(method, data, {"steps": steps}, **{"width": 16, **extra, **hparams})


@pytest.fixture(scope="module")
def digits() -> ExperimentData:
    return prepare(config().data, 0)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, digits: ExperimentData) -> Path:
    out = tmp_path_factory.mktemp("vae")
    train(config(), out, data=digits)
    return out


def losses(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "history.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k != "time_s"} for r in csv.DictReader(f)]


def test_metrics_history_and_figures(run: Path, digits: ExperimentData) -> None:
    rows = losses(run)
    assert len(rows) >= 3  # the loop below checks something
    for key in ("loss/mse", "loss/kl", "loss/vae"):
        assert all(math.isfinite(float(r[key])) for r in rows[:3]), key
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 < metrics["recon_mse"] < 1 and metrics["kl"] >= 0
    assert "[0, 1]" in metrics["recon_mse_scale"]
    figs = metrics["figures"]
    assert set(figs.values()) >= {
        "figures/reconstructions.png",
        "figures/samples.png",
        "figures/latent_tsne_by_class.png",
        "figures/curves.png",
    }
    for rel in figs.values():
        assert (run / rel).is_file(), rel
    assert not (run / "figures" / "latent_tsne_by_domain.png").exists()
    _, m = load_method(run)
    x = m.sample(6)
    assert x.shape == (6, 1, 28, 28) and float(x.abs().max()) <= 1
    # recon_mse is the per-pixel MSE on [0, 1] images of posterior-mean reconstructions.
    test = m.prepare(digits.source.test.images)
    expected = float(((m.reconstruct(test) - test) / 2).pow(2).mean())
    assert metrics["recon_mse"] == pytest.approx(expected, rel=1e-4)


def test_same_seed_same_model_without_run_dir(run: Path, digits: ExperimentData) -> None:
    """A second run (no files: run_dir=None) ends with the very same model: same metrics."""
    metrics = train(config(), None, data=digits)
    assert "figures" not in metrics
    saved = json.loads((run / "metrics.json").read_text())
    assert (metrics["recon_mse"], metrics["kl"]) == (saved["recon_mse"], saved["kl"])
    samples = []
    for _ in range(2):
        torch.manual_seed(3)
        samples.append(load_method(run)[1].sample(4))
    assert torch.equal(samples[0], samples[1])


def test_kl_is_zero_at_the_prior() -> None:
    from genda.methods.vae import VAE

    assert torch.equal(VAE.kl(torch.zeros(2, 5), torch.zeros(2, 5)), torch.zeros(2))
    assert float(VAE.kl(torch.ones(1, 4), torch.zeros(1, 4))) == pytest.approx(2.0)


def test_tsne_by_attribute(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)

    def split(k: int) -> Domain:
        return Domain(
            torch.randint(0, 256, (k, 3, 32, 32), generator=g, dtype=torch.uint8),
            torch.full((k,), -1),
            "faces",
            attrs=torch.randint(0, 2, (k, 2), generator=g),
            attr_names=["Smiling", "Male"],
        )

    cfg = config(
        steps=2,
        data={"source": "faces", "size": 32, "channels": 3, "limit": 0},
        tsne_attribute="Smiling",
    )
    data = prepare(cfg.data, 0, datasets={"faces": Dataset("faces", split(24), split(12))})
    metrics = train(cfg, tmp_path, data=data)
    assert (
        metrics["figures"]["t-SNE of latent means by Smiling"] == "figures/latent_tsne_by_class.png"
    )


def test_bad_hparams_and_size() -> None:
    with pytest.raises(ConfigError, match="tsne_attribute.*'Smilling'.*Smiling, Male"):
        build_method(config(tsne_attribute="Smilling"), DataInfo(3, 32, [], ["Smiling", "Male"]))
    with pytest.raises(ConfigError, match="no attributes"):
        build_method(config(tsne_attribute="Smiling"), DataInfo(1, 28, ["0", "1"]))
    with pytest.raises(ConfigError, match=r"data\.size.*28, 32, 64"):
        build_method(config(), DataInfo(1, 16, ["0", "1"]))


def test_checkpoint_of_another_model_or_size(
    run: Path, digits: ExperimentData, tmp_path: Path
) -> None:
    state = torch.load(run / "checkpoints" / "last.pt", weights_only=False)["method"]
    info = digits.info
    with pytest.raises(CheckpointError, match="1x28px.*1x32px"):
        build_method(config(), DataInfo(1, 32, info.classes)).load_checkpoint_state(state)
    with pytest.raises(CheckpointError, match="network 'encoder' does not match"):
        build_method(config(latent=4), info).load_checkpoint_state(state)
    dcgan = tmp_path / "dcgan"
    train(config(steps=1, method="dcgan"), dcgan, data=digits)
    with pytest.raises(CheckpointError, match="for method 'dcgan', not 'vae'"):
        build_method(config(), info).load_checkpoint_state(
            torch.load(dcgan / "checkpoints" / "last.pt", weights_only=False)["method"]
        )
