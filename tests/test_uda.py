"""The domain-adaptation table end to end on tiny embedded data, through the CLI."""

from __future__ import annotations

import csv
import json
import math

import pytest
import torch
import yaml

from genda.cli import main
from genda.config import ConfigError
from genda.engine.loop import resolve_config, train
from genda.engine.select import Selector
from genda.io import TABLE_COLUMNS, TABLE_OPTIONAL
from genda.metrics.selection import SCORES
from genda.nets.adversarial import ClassPriors, dann_lambda, dann_lr, grad_reverse

TINY = [
    "--steps",
    "4",
    "--batch-size",
    "16",
    "--set",
    "data.limit=96",
    "--set",
    "train.log_every=2",
    "--set",
    "train.device=cpu",
    "--no-progress",
]


def test_grad_reverse_flips_and_scales_gradient():
    x = torch.ones(3, requires_grad=True)
    grad_reverse(x, 0.5).sum().backward()
    assert torch.equal(x.grad, torch.full((3,), -0.5))


def test_dann_schedules_match_paper():
    assert dann_lambda(0.0) == 0.0 and abs(dann_lambda(1.0) - 0.99991) < 1e-4
    assert dann_lr(0.0) == 1.0 and abs(dann_lr(1.0) - 11**-0.75) < 1e-9


def test_uda_table_cli(tmp_path, capsys):
    out = tmp_path / "table"
    argv = [
        *("uda", "table", "--source", "digits", "--target", "digits-m", "--channels", "3"),
        *("--methods", "source-only,dann,target-only", "--out", str(out), *TINY),
    ]
    rc = main(argv)
    assert rc == 0
    rows = list(csv.DictReader((out / "table.csv").open()))
    assert list(rows[0]) == [*TABLE_COLUMNS, *TABLE_OPTIONAL]
    assert all(int(r["target_test_images"]) > 0 for r in rows)
    assert [r["method"] for r in rows] == ["source-only", "dann", "target-only"]
    assert all(0 <= float(r["target_accuracy"]) <= 100 for r in rows)
    md = (out / "table.md").read_text()
    for label in ("Trained on source", "Adaptation (DANN)", "Trained on target"):
        assert label in md
    run = out / "digits__digits-m" / "dann" / "seed0"
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["per_class_accuracy"]) == 10 and len(metrics["confusion"]) == 10
    assert metrics["figures"]  # the loop below checks something
    for rel in metrics["figures"].values():
        assert (run / rel).is_file(), rel
    assert (run / "architecture.txt").read_text().count("==") == 3
    assert yaml.safe_load((run / "config.yaml").read_text())["method"] == "dann"
    # re-running the same table reuses finished cells instead of retraining them
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("metrics.json")}
    capsys.readouterr()
    assert main(argv) == 0
    assert "Trained on source" in capsys.readouterr().out
    assert len(stamps) == 3 and {p: p.stat().st_mtime_ns for p in stamps} == stamps


def test_class_priors_reweight_the_source_to_the_target_mix():
    priors = ClassPriors(2, momentum=0.0)  # no averaging: the estimates are this batch's
    ys = torch.tensor([0, 1, 1, 1])  # source: 25 % / 75 %
    priors.update(ys, torch.tensor([[0.9, 0.1], [0.6, 0.4]]))  # target predicted 75 % / 25 %
    w = priors.weights(ys)
    torch.testing.assert_close(w, torch.tensor([3.0, 1 / 3, 1 / 3, 1 / 3]))
    torch.testing.assert_close(torch.bincount(ys, weights=w) / len(ys), priors.target)
    same = ClassPriors(3)
    same.update(torch.tensor([0, 1, 2]), torch.eye(3))
    torch.testing.assert_close(same.weights(torch.arange(3)), torch.ones(3))


@pytest.mark.parametrize(
    "class_weights, select", [(False, "final"), (True, "final"), (False, "im")]
)
def test_dann_never_reads_target_labels(class_weights: bool, select: str):
    """Scrambling the target labels must not change a DANN run at all (nor the class
    weights' estimate, nor which checkpoint an unsupervised rule selects)."""
    from genda.data.prepare import prepare

    cfg = resolve_config(
        {
            "method": "dann",
            "data": {"source": "digits", "target": "digits-m", "limit": 64, "channels": 3},
            "train": {
                **{"steps": 3, "batch_size": 16, "progress": False},
                **{"select": select, "ckpt_every": 1},
            },
            "hparams": {"class_weights": class_weights},
        }
    )
    data = prepare(cfg.data)
    a = train(cfg, None, data=data)
    data.target.train.labels = torch.randint(0, 10, data.target.train.labels.shape)
    b = train(cfg, None, data=data)
    keys = ("target_accuracy", "source_accuracy", "selected_step")
    assert [a.get(k) for k in keys] == [b.get(k) for k in keys]


@pytest.mark.parametrize(
    "override, needle",
    [
        ({"hparams": {"optimizer": "rmsprop"}}, "valid choices: sgd, adam"),
        ({"hparams": {"lrr": 0.1}}, "valid keys"),
        ({"train": {"batch_size": 0}}, "out of range"),
        ({"method": "danny"}, "valid choices"),
    ],
)
def test_bad_config_names_key_and_choices(override, needle):
    raw = {"method": "dann", "data": {"source": "digits", "target": "digits-m"}, **override}
    with pytest.raises(ConfigError, match=needle):
        resolve_config(raw)


def test_cli_reports_bad_input_cleanly(tmp_path, capsys):
    rc = main(
        [
            "train",
            "dann",
            "--data",
            f"mnist:{tmp_path}/nowhere",
            "--target",
            "digits",
            "--out",
            str(tmp_path / "r"),
            *TINY,
        ]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "genda: error:" in err and "nowhere" in err
    assert not (tmp_path / "r").exists()  # nothing half-written


def test_auto_size_and_channels_pick_per_pair(tmp_path, capsys) -> None:
    from genda.data.domain import Dataset, Domain
    from genda.data.prepare import auto_shape

    def domain_set(name: str, c: int, s: int) -> Dataset:
        d = Domain(
            torch.zeros(4, c, s, s, dtype=torch.uint8), torch.arange(4) % 2, name, ["0", "1"]
        )
        return Dataset(name, d, d)

    grey16, grey28, colour32 = (
        domain_set("g16", 1, 16),
        domain_set("g28", 1, 28),
        domain_set("c32", 3, 32),
    )
    assert auto_shape([grey16, grey28])[:2] == (28, 1)
    assert auto_shape([grey28, colour32])[:2] == (32, 3)
    assert auto_shape([colour32, grey16])[:2] == (32, 3)
    assert auto_shape([colour32, grey16], size=28, channels=1) == (28, 1, "")  # overrides win
    assert "c32 is colour" in auto_shape([grey28, colour32])[2]

    run = tmp_path / "r"
    rc = main(
        [
            "train",
            "source-only",
            "--data",
            "digits",
            "--target",
            "syndigits",
            "--out",
            str(run),
            *TINY,
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "chose data.size=32 (larger native side: digits 28, syndigits 32)" in out
    assert "hparams.invert=image (light strokes on dark: digits 100.0%, syndigits" in out
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert (cfg["data"]["size"], cfg["data"]["channels"]) == (32, 3)
    assert cfg["hparams"]["invert"] == "image"  # syndigits' strokes are light or dark


def _blobs(name: str, radius: float, background: int, n: int = 64, size: int = 28):
    """Grey ``size`` px images of one random-position bright blob on a flat background:
    content spreads about ``radius`` (fraction of the side) from the centre."""
    from genda.data.domain import Dataset, Domain

    g = torch.Generator().manual_seed(0)
    c = (torch.arange(size) + 0.5) / size - 0.5
    yy, xx = c.view(1, -1, 1), c.view(1, 1, -1)
    cy, cx = [(torch.rand(n, 1, 1, generator=g) * 2 - 1) * radius for _ in range(2)]
    blob = ((yy - cy) ** 2 + (xx - cx) ** 2 < 0.1**2).float()
    x = (background + blob * (255 - background)).to(torch.uint8).unsqueeze(1)
    d = Domain(x, torch.arange(n) % 2, name, ["0", "1"])
    return Dataset(name, d, d)


def test_auto_invert_only_where_the_stroke_polarity_mixes_differ() -> None:
    from genda.data.domain import Dataset, Domain
    from genda.data.prepare import auto_invert, light_share

    light = _blobs("light", 0.1, 0)  # bright blobs on black
    x, y = light.train.images, light.train.labels

    def dataset(name: str, images: torch.Tensor) -> Dataset:
        d = Domain(images, y, name, ["0", "1"])
        return Dataset(name, d, d)

    dark = dataset("dark", 255 - x)
    mixed = dataset(
        "mixed", torch.where(torch.arange(len(x)).view(-1, 1, 1, 1) % 2 == 0, x, 255 - x)
    )
    assert [light_share(d.train) for d in (light, dark, mixed)] == [1.0, 0.0, 0.5]
    assert auto_invert([light, light])[0] == "none"
    assert auto_invert([dark, dark])[0] == "none"
    assert auto_invert([mixed, mixed])[0] == "none"  # the mixes agree: nothing to equalise
    assert auto_invert([light, dark])[0] == "image"  # one polarity each, but not the same
    mode, why = auto_invert([light, mixed])
    assert mode == "image" and why == "light strokes on dark: light 100.0%, mixed 50.0%"


def test_auto_scale_shrinks_the_wider_framed_domain(tmp_path) -> None:
    from genda.config import DataConfig
    from genda.data.prepare import auto_scales, prepare, spread

    narrow, wide = _blobs("narrow", 0.2, 0), _blobs("wide", 0.4, 30)
    assert spread(wide) > 1.5 * spread(narrow)
    for pair in ([narrow, wide], [wide, narrow]):  # whichever side is wider shrinks
        scales, why = auto_scales(pair, [0, 0])
        i = pair.index(wide)
        assert scales[1 - i] == 1.0 and 0.4 < scales[i] < 0.8
        assert "content spread" in why
    assert auto_scales([narrow, _blobs("alike", 0.2, 90)], [0, 0])[0] == [1.0, 1.0]
    assert auto_scales([narrow, wide], [1.0, 0.9]) == ([1.0, 0.9], "")  # overrides win
    busy = _blobs("busy", 0.4, 30)  # same digits, on a background that varies at the edge
    noise = torch.randint(0, 120, busy.train.images.shape, generator=torch.Generator())
    busy.train.images = busy.train.images.maximum(noise.to(torch.uint8))
    scales, why = auto_scales([narrow, busy], [0, 0])
    assert scales == [1.0, 1.0] and "busy: busy frame edge" in why

    data = prepare(
        DataConfig(source="narrow", target="wide"),
        datasets={"narrow": narrow, "wide": wide},
    )
    shrunk = data.target.train.images
    assert shrunk.shape == wide.train.images.shape
    assert data.scales[0] == 1.0 and data.scales[1] < 1.0
    assert spread(data.target) < 1.1 * spread(narrow)  # now framed like the source
    assert (shrunk[:, :, 0] == 30).all()  # the frame is filled with the border colour
    assert "data.target_scale=" in data.chosen


def test_standardize_removes_per_image_brightness_and_contrast():
    from genda.nets.digits import standardize

    x = torch.rand(4, 3, 8, 8) * 2 - 1
    y = standardize(x * 0.8 + 0.1)
    assert torch.allclose(y.mean((2, 3)), torch.zeros(4, 3), atol=1e-5)
    assert torch.allclose(standardize(x), y, atol=0.02)  # invariant to a per-image affine map


def test_adabn_uses_target_statistics_and_restores_trained_ones():
    """AdaBN changes what the target is evaluated with, never the trained model."""
    from genda.data.prepare import prepare
    from genda.engine.loop import build_method
    from genda.nets.digits import standardize

    cfg = resolve_config(
        {
            "method": "source-only",
            "data": {"source": "digits", "target": "digits-m", "limit": 64, "channels": 3},
        }
    )
    data = prepare(cfg.data)
    method = build_method(cfg, data.info).eval()
    bn = method.nets["encoder"].conv[1]
    before = bn.running_mean.clone()
    with method.target_batchnorm(data.target.train):
        x = method.prepare(data.target.train.images).float()
        first = method.nets["encoder"].conv[0](standardize(x))
        assert torch.allclose(bn.running_mean, first.mean((0, 2, 3)), atol=1e-4)
    assert torch.equal(bn.running_mean, before) and not bn.training


def test_uda_budget_is_steps_unless_epochs_are_asked_for() -> None:
    assert resolve_config({"method": "dann"}).train.steps == 3000
    by_epochs = resolve_config({"method": "dann", "train": {"epochs": 2}})
    assert (by_epochs.train.steps, by_epochs.train.epochs) == (0, 2.0)
    both = resolve_config({"method": "dann", "train": {"epochs": 2, "steps": 50}})
    assert both.train.steps == 50
    assert resolve_config({"method": "ddpm"}).train.steps == 0  # generative: epochs as before


def test_selection_scores_reward_confident_spread_predictions():
    k = 4
    uniform = torch.full((8, k), 1 / k)
    one_class = torch.eye(k)[torch.zeros(8, dtype=torch.long)]
    spread = torch.eye(k)[torch.arange(8) % k]
    im, ent = SCORES["im"][0], SCORES["entropy"][0]
    assert abs(im(uniform)) < 1e-6 and abs(im(one_class)) < 1e-6
    assert abs(im(spread) - math.log(k)) < 1e-5
    assert ent(one_class) == ent(spread) > ent(uniform)  # entropy alone cannot tell them apart


def test_selector_restores_the_best_scoring_weights():
    from contextlib import nullcontext
    from types import SimpleNamespace

    net = torch.nn.Linear(1, 2, bias=False)
    method = torch.nn.Module()
    method.nets = torch.nn.ModuleDict({"classifier": net})
    # probabilities from the weights: a confident, spread prediction when the weights differ
    method.target_probs = lambda data: torch.stack(
        [net.weight[:, 0].softmax(0), net.weight[:, 0].flip(0).softmax(0)]
    ).detach()
    rt = SimpleNamespace(local=lambda m: nullcontext())
    selector = Selector("im")
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[5.0], [-5.0]]))
    selector.observe(10, method, None, rt)
    with torch.no_grad():
        net.weight.zero_()  # uniform predictions: a worse score
    selector.observe(20, method, None, rt)
    selector.restore(method)
    assert torch.equal(net.weight, torch.tensor([[5.0], [-5.0]]))
    assert selector.best[1] == 10 and "step 10 of 20, of 2 scored" in selector.describe(20)


def test_train_select_chooses_by_score_and_says_so(tmp_path):
    cfg = resolve_config(
        {
            "method": "dann",
            "data": {"source": "digits", "target": "digits-m", "limit": 64},
            "train": {"steps": 6, "batch_size": 16, "progress": False, "ckpt_every": 2},
        }
    )
    cfg.train.select = "im"
    metrics = train(cfg, tmp_path / "run")
    rows = list(csv.DictReader((tmp_path / "run" / "history.csv").open()))
    scores = {int(r["step"]): float(r["select/im"]) for r in rows if r.get("select/im")}
    assert sorted(scores) == [2, 4, 6]
    assert metrics["selected_step"] == max(scores, key=scores.get)
    assert "information maximisation" in metrics["selection_rule"]
    assert "no target labels" in metrics["selection_rule"]


def test_adabn_and_selection_sample_the_whole_split():
    """A folder data set is stored class by class: the images AdaBN and the selection
    scores read must span it, not be its first classes."""
    from genda.data.domain import evenly_spaced

    by_class = torch.arange(10).repeat_interleave(3000)  # 30,000 "images", sorted by class
    picked = evenly_spaced(by_class, 10000)
    assert len(picked) == 10000 and torch.bincount(picked).min() >= 990
    fewer = evenly_spaced(by_class[::2], 10000)  # 15,000: less than twice the sample
    assert len(fewer) == 10000 and torch.bincount(fewer).min() >= 990
    assert torch.equal(evenly_spaced(by_class[:50], 10000), by_class[:50])
