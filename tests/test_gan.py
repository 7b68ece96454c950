"""DCGAN, improved GAN and ACGAN: a few engine steps on tiny data, shapes, determinism,
conditioning, bad input and checkpoint mismatches. Kept fast: 28 px digits, 3 steps."""

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
from genda.data.domain import DataError, Dataset, Domain
from genda.data.prepare import DataInfo, ExperimentData, prepare
from genda.engine.checkpoint import CheckpointError
from genda.engine.loop import build_method, load_method, train
from genda.nets import gan as nets

GANS = ["dcgan", "gan", "acgan"]
# Exercise the improved GAN's optional paths too: random label flips (RNG in the step),
# soft labels, pixel-shuffle upsampling, EMA, the SN-GAN discriminator.
HPARAMS: dict[str, dict[str, Any]] = {
    "dcgan": {"width": 16},
    "gan": {
        "width": 16,
        "loss": "nonsaturating",
        "label_smoothing": 0.1,
        "label_flip": 0.05,
        "upsample": "pixelshuffle",
        "ema_decay": 0.9,
        "d_arch": "sngan",
        "diffaug": "color,translation,cutout",
        "consistency": 10.0,
    },
    "acgan": {"width": 16},
}


def config(method: str, steps: int = 3, data: dict | None = None, **hparams: Any):
    data = {"size": 28, "channels": 1, **(data or {})}
    return tiny_config(method, data, {"steps": steps}, **{**HPARAMS[method], **hparams})


@pytest.fixture(scope="module")
def digits() -> ExperimentData:
    return prepare(config("dcgan").data, 0)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory, digits: ExperimentData) -> dict[str, Path]:
    """One trained run directory per GAN, shared by the tests below."""
    out = {}
    for m in GANS:
        out[m] = tmp_path_factory.mktemp(m)
        train(config(m), out[m], data=digits)
    return out


def history(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


def losses(run_dir: Path) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k != "time_s"} for row in history(run_dir)]


def fake_faces(n: int = 24, size: int = 32) -> Dataset:
    """A tiny attribute data set (CelebA-like: no classes, binary attributes)."""
    g = torch.Generator().manual_seed(0)

    def split(k: int) -> Domain:
        return Domain(
            torch.randint(0, 256, (k, 3, size, size), generator=g, dtype=torch.uint8),
            torch.full((k,), -1),
            "faces",
            attrs=torch.randint(0, 2, (k, 2), generator=g),
            attr_names=["Smiling", "Male"],
        )

    return Dataset("faces", split(n), split(n // 2))


@pytest.mark.parametrize("method", GANS)
def test_run_dir_files_losses_and_samples(method: str, runs: dict[str, Path]) -> None:
    run = runs[method]
    arch = (run / "architecture.txt").read_text()
    assert "== g (" in arch and "== d (" in arch
    rows = history(run)
    assert [int(r["step"]) for r in rows[:3]] == [1, 2, 3]
    for key in ("loss/d", "loss/g", "d/real", "d/fake"):
        assert all(math.isfinite(float(r[key])) for r in rows[:3]), key
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["method"] == method and metrics["steps"] == 3
    assert metrics["figures"]  # the loop below checks something
    for rel in metrics["figures"].values():
        assert (run / rel).is_file(), rel
    _, m = load_method(run)
    torch.manual_seed(0)
    x = m.sample(5)
    assert x.shape == (5, 1, 28, 28) and x.dtype == torch.float32
    assert float(x.min()) >= -1 and float(x.max()) <= 1 and torch.isfinite(x).all()


@pytest.mark.parametrize("method", GANS)
def test_train_without_run_dir(method: str, digits: ExperimentData) -> None:
    metrics = train(config(method, steps=2), None, data=digits)
    assert metrics["steps"] == 2 and "figures" not in metrics
    if method == "acgan":
        assert 0 <= metrics["aux_test_accuracy"] <= 100


@pytest.mark.parametrize("method", GANS)
def test_same_seed_same_losses_and_samples(
    method: str, runs: dict[str, Path], digits: ExperimentData, tmp_path: Path
) -> None:
    train(config(method), tmp_path, data=digits)
    assert losses(tmp_path) == losses(runs[method])
    samples = []
    for run in (runs[method], tmp_path):
        torch.manual_seed(1)
        samples.append(load_method(run)[1].sample(4))
    assert torch.equal(samples[0], samples[1])


def test_gan_samples_with_ema_generator(runs: dict[str, Path]) -> None:
    _, m = load_method(runs["gan"])
    assert m.sampler() is m.nets["g_ema"]
    g, ema = m.nets["g"], m.nets["g_ema"]
    assert not any(p.requires_grad for p in ema.parameters())
    # 3 steps with the warm-up decay: the average trails the live weights.
    assert any(not torch.equal(a, b) for a, b in zip(g.parameters(), ema.parameters(), strict=True))


def test_gan_resume_matches_uninterrupted_run(digits: ExperimentData, tmp_path: Path) -> None:
    full, part = tmp_path / "full", tmp_path / "part"
    train(config("gan", steps=4), full, data=digits)
    train(config("gan", steps=2), part, data=digits)
    train(config("gan", steps=4), part, resume=True, data=digits)
    assert losses(part)[:4] == losses(full)[:4]
    a, b = load_method(full)[1], load_method(part)[1]
    for k in a.nets:
        for (name, x), y in zip(
            a.nets[k].state_dict().items(), b.nets[k].state_dict().values(), strict=True
        ):
            assert torch.equal(x, y), f"{k}.{name}"


def test_diff_augment_is_differentiable_and_random() -> None:
    x = torch.rand(8, 3, 28, 28, requires_grad=True)
    y = nets.diff_augment(x, "color,translation,cutout")
    assert y.shape == x.shape
    y.sum().backward()
    assert x.grad is not None and bool((x.grad != 0).any())  # G learns through the transforms
    ones = torch.ones(64, 1, 8, 8)
    holes = (nets.rand_cutout(ones) == 0).sum((1, 2, 3))  # a 4x4 square, clipped at the border
    assert bool((holes <= 16).all()) and bool((holes > 0).all()) and bool((holes == 16).any())
    filled = (nets.rand_translation(ones) == 0).sum((1, 2, 3))  # shifts of up to 1 px: 0 fills
    assert bool((filled <= 15).all()) and bool((filled > 0).any())
    assert torch.equal(nets.diff_augment(x, "none"), x)
    with pytest.raises(ValueError, match="valid: color, translation, cutout"):
        nets.diff_augment(x, "translation,flip")


def test_bad_diffaug_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="hparams.diffaug.*flip"):
        build_method(config("gan", diffaug="flip"), DataInfo(1, 28, ["0", "1"]))


def test_pacgan_scores_packs(digits: ExperimentData) -> None:
    d = nets.discriminator(1, 28, width=4, norm="spectral", pack=2)
    assert d(torch.randn(6, 1, 28, 28)).shape == (3, 1)
    with pytest.raises(ValueError, match="multiple of the packing 2"):
        d(torch.randn(5, 1, 28, 28))
    metrics = train(config("gan", steps=2, pack=2, consistency=10.0), None, data=digits)
    assert metrics["steps"] == 2
    with pytest.raises(ConfigError, match="hparams.pack"):
        build_method(config("acgan", pack=2), DataInfo(1, 28, ["0", "1"]))


def test_dcgan_is_the_papers_model_and_gan_is_spectral() -> None:
    info = DataInfo(1, 28, ["0", "1"])
    dcgan, gan = build_method(config("dcgan"), info), build_method(config("gan"), info)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in dcgan.nets["d"].modules())
    assert "g_ema" not in dcgan.nets  # model A: no EMA generator
    d = gan.nets["d"]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())
    convs = [m for m in d.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(hasattr(m, "parametrizations") for m in convs)


def test_hinge_rejects_label_options() -> None:
    with pytest.raises(ConfigError, match="nonsaturating"):
        build_method(config("gan", loss="hinge", label_smoothing=0.1), DataInfo(1, 28, ["0", "1"]))


@pytest.mark.parametrize("method", GANS)
def test_unsupported_size_is_a_config_error(method: str) -> None:
    with pytest.raises(ConfigError, match=r"data\.size.*28, 32, 64"):
        build_method(config(method), DataInfo(1, 48, [str(i) for i in range(10)]))


@pytest.mark.parametrize("size", nets.SIZES)
@pytest.mark.parametrize("upsample", nets.UPSAMPLE)
def test_net_shapes(size: int, upsample: str) -> None:
    g = nets.generator(10, 3, size, width=4, upsample=upsample)
    x = g(torch.randn(2, 10))
    assert x.shape == (2, 3, size, size)
    for norm in ("batch", "spectral"):
        for deep in (False, True):
            d = nets.discriminator(3, size, width=4, out=11, norm=norm, deep=deep)
            assert d(x).shape == (2, 11)


def test_acgan_labels_reach_the_generator(runs: dict[str, Path]) -> None:
    _, m = load_method(runs["acgan"])
    z = torch.randn(1, m.hp.nz).repeat(10, 1)
    x = m.sample(10, torch.arange(10), noise=z)
    assert x.shape == (10, 1, 28, 28)
    assert all(not torch.equal(x[0], x[i]) for i in range(1, 10))
    same = m.sample(2, torch.tensor([3, 3]), noise=z[:2])
    assert torch.equal(same[0], same[1])  # eval mode: a sample depends on its noise and label only
    a, b = m.sample_pairs(3, labels=(1, 7))
    assert a.shape == b.shape == (3, 1, 28, 28) and not torch.equal(a, b)
    with pytest.raises(ValueError, match=r"0\.\.9"):
        m.sample(2, torch.tensor([0, 10]))
    with pytest.raises(ValueError, match=r"2 values"):
        m.sample(2, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="noise"):
        m.sample(2, torch.tensor([1, 2]), noise=torch.randn(2, 3))


def test_acgan_on_attribute_makes_pairs(tmp_path: Path) -> None:
    cfg = config(
        "acgan",
        steps=2,
        data={"source": "faces", "size": 32, "channels": 3, "attribute": "Smiling", "limit": 0},
    )
    data = prepare(cfg.data, 0, datasets={"faces": fake_faces()})
    assert data.info.classes == ["Smiling=0", "Smiling=1"]
    metrics = train(cfg, tmp_path, data=data)
    assert metrics["figures"]["Same noise, opposite attribute"] == "figures/pairs.png"
    assert (tmp_path / "figures" / "pairs.png").is_file()
    _, m = load_method(tmp_path)
    a, b = m.sample_pairs(4)
    assert a.shape == (4, 3, 32, 32) and not torch.equal(a, b)
    with pytest.raises(ValueError, match="Smiling=0, Smiling=1"):
        m.sample(1, torch.tensor([2]))


def test_eval_scores_same_noise_pairs_of_an_attribute_model(tmp_path: Path) -> None:
    """``evaluate_run`` on an ACGAN conditioned on a CSV attribute adds the pair scores, and
    ``cache_root`` keeps its evaluator out of genda's shared cache."""
    from PIL import Image

    from genda.engine.generate import evaluate_run

    root, g = tmp_path / "faces", torch.Generator().manual_seed(0)
    for split, n in (("train", 16), ("val", 8)):
        (root / split).mkdir(parents=True)
        rows = ["image_name,Smiling,Male"]
        for i in range(n):
            pixels = torch.randint(0, 256, (32, 32, 3), generator=g, dtype=torch.uint8)
            Image.fromarray(pixels.numpy()).save(root / split / f"{i}.png")
            rows.append(f"{i}.png,{i % 2},{i // 2 % 2}")
        (root / f"{split}.csv").write_text("\n".join(rows) + "\n")
    data = {"source": f"course:{root}", "size": 32, "channels": 3, "attribute": "Smiling"}
    run = tmp_path / "run"
    train(config("acgan", steps=2, data={**data, "limit": 0}), run)
    scores = evaluate_run(run, n=9, evaluator_steps=3, cache_root=tmp_path / "cache")
    assert scores["pair_n"] == 4
    for key in ("pair_accuracy", "pair_accuracy_off", "pair_accuracy_on", "pairs_both_correct"):
        assert 0 <= scores[key] <= 100
    assert scores["pair_accuracy"] == (scores["pair_accuracy_off"] + scores["pair_accuracy_on"]) / 2
    assert list((tmp_path / "cache").glob("*.pt")), "evaluator not kept in cache_root"
    assert json.loads((run / "metrics.json").read_text())["pair_n"] == 4


def test_unknown_attribute_lists_valid_ones() -> None:
    cfg = config(
        "acgan", data={"source": "faces", "size": 32, "channels": 3, "attribute": "Smilling"}
    )
    with pytest.raises(DataError, match="unknown attribute 'Smilling'; valid: Smiling, Male"):
        prepare(cfg.data, 0, datasets={"faces": fake_faces()})


def test_acgan_needs_labels() -> None:
    with pytest.raises(ConfigError, match="data.attribute.*Smiling, Male"):
        build_method(config("acgan"), DataInfo(3, 32, [], ["Smiling", "Male"]))


def test_checkpoint_of_another_model_or_size(runs: dict[str, Path], tmp_path: Path) -> None:
    state = torch.load(runs["dcgan"] / "checkpoints" / "last.pt", weights_only=False)
    info = DataInfo(1, 28, [str(i) for i in range(10)])
    with pytest.raises(CheckpointError, match="for method 'dcgan', not 'gan'"):
        build_method(config("gan"), info).load_checkpoint_state(state["method"])
    with pytest.raises(CheckpointError, match="1x28px.*1x32px"):
        build_method(config("dcgan"), DataInfo(1, 32, info.classes)).load_checkpoint_state(
            state["method"]
        )
    with pytest.raises(CheckpointError, match="network 'g' does not match"):
        build_method(config("dcgan", nz=64), info).load_checkpoint_state(state["method"])
    # A run directory whose checkpoint disagrees with its config (e.g. a copied last.pt).
    state["config"]["method"] = "acgan"
    (tmp_path / "checkpoints").mkdir()
    torch.save(state, tmp_path / "checkpoints" / "last.pt")
    with pytest.raises(CheckpointError, match="for method 'dcgan', not 'acgan'"):
        load_method(tmp_path)


def test_progress_frames_become_a_gif_without_changing_training(tmp_path: Path, digits) -> None:
    """``train.sample_every``: one fixed-noise grid per N steps, animated as progress.gif
    (one frame per grid); the frames leave the training RNG and weights as they were."""
    from PIL import Image

    def run(name: str, every: int) -> Path:
        cfg = config("dcgan", steps=4)
        cfg.train.sample_every = every
        train(cfg, tmp_path / name, data=digits)
        return tmp_path / name

    with_frames, without = run("frames", 2), run("none", 0)
    frames = sorted((with_frames / "figures" / "progress").glob("*.png"))
    assert [f.name for f in frames] == ["0000002.png", "0000004.png"]
    with Image.open(with_frames / "figures" / "progress.gif") as gif:
        assert gif.n_frames == 2
    assert not (without / "figures" / "progress.gif").exists()
    metrics = json.loads((with_frames / "metrics.json").read_text())
    assert metrics["figures"]["Training progress (fixed noise)"] == "figures/progress.gif"
    assert losses(with_frames) == losses(without)


def test_grid_png_reads_back_exactly(tmp_path: Path) -> None:
    from genda.viz import read_grid, save_grid

    x = torch.randint(0, 256, (7, 1, 28, 28), dtype=torch.uint8)
    save_grid(x, tmp_path / "g.png", nrow=4)
    assert torch.equal(read_grid(tmp_path / "g.png", 7, 4, 28, 1), x)
    with pytest.raises(ValueError, match="not a grid"):
        read_grid(tmp_path / "g.png", 7, 4, 64, 1)


def test_eval_scores_progress_frames_as_accuracy_growth(tmp_path: Path, digits) -> None:
    """A conditional model's progress frames (4 per class) become progress_accuracy.csv,
    one row per frame with a Wilson interval, and the accuracy-growth figure."""
    from genda.engine.generate import evaluate_run

    cfg = config("acgan", steps=3)
    cfg.train.sample_every = 1
    train(cfg, tmp_path, data=digits)
    scores = evaluate_run(tmp_path, n=20, evaluator_steps=20, cache_root=tmp_path / "cache")
    with open(tmp_path / "progress_accuracy.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2, 3]
    for r in rows:
        assert int(r["images"]) == 40  # 4 per class, 10 classes
        assert float(r["ci_low"]) <= float(r["classifier_accuracy"]) <= float(r["ci_high"])
    assert (tmp_path / "figures" / "accuracy_growth.png").is_file()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert "figures/accuracy_growth.png" in metrics["figures"].values()
    assert [p["step"] for p in scores["progress_accuracy"]] == [1, 2, 3]
