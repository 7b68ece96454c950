"""ADDA, DSN, PixelDA and self-training: a few steps on tiny embedded data, the guarantee
that adaptation never reads target labels, exact resume across ADDA's phase boundary, and
the shared losses they are built from."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch
from conftest import tiny_config

from genda.data.prepare import ExperimentData, prepare
from genda.data.stream import Stream
from genda.engine.loop import build_method, resolve_config, train
from genda.methods import get_method
from genda.methods.base import unwrap
from genda.methods.losses import difference_loss, diversity, ema_update, gan_loss, simse

METHODS = ["adda", "dsn", "pixelda", "selftrain", "selftrain-dann"]


def config(method: str, **train_kw):
    data = {"target": "digits-m", "limit": 128}
    return tiny_config(method, data, {"ckpt_every": 500, **train_kw}, augment="affine")


@pytest.fixture(scope="module")
def data() -> ExperimentData:
    return prepare(config("dann").data)


@pytest.fixture
def fast_plots(monkeypatch: pytest.MonkeyPatch) -> list:
    """Stub the slow plots (t-SNE, matplotlib confusion/curves) with empty files; record the
    t-SNE's domain names. Image figures (``plot_pairs``) stay real."""
    import genda.viz

    tsne_calls: list = []

    def touch(path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        return path

    def tsne(features, labels, domains, prefix, classes, domain_names=("source", "target"), **kw):
        tsne_calls.append(domain_names)
        return touch(f"{prefix}_by_class.png"), touch(f"{prefix}_by_domain.png")

    monkeypatch.setattr(genda.viz, "plot_tsne", tsne)
    monkeypatch.setattr(
        genda.viz, "plot_confusion", lambda confusion, classes, path, **kw: touch(path)
    )
    monkeypatch.setattr(genda.viz, "plot_curves", lambda history, keys, path, **kw: touch(path))
    return tsne_calls


def states(method) -> dict[str, dict[str, torch.Tensor]]:
    return {
        k: {n: t.clone() for n, t in unwrap(net).state_dict().items()}
        for k, net in method.nets.items()
    }


def same_state(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def run_steps(
    name: str, data: ExperimentData, steps: int = 3, pretrain_steps: int = 0, on_step=None
):
    """Build ``name`` and run ``steps`` train steps by hand (no engine, no evaluation)."""
    cfg = config(name)
    if pretrain_steps:
        cfg.hparams["pretrain_steps"] = pretrain_steps
    torch.manual_seed(0)
    method = build_method(cfg, data.info)
    method.total_steps = steps
    method.configure(steps)
    streams = {
        s: Stream(data.split(s), cfg.train.batch_size, seed=i) for i, s in enumerate(method.streams)
    }
    method.train()
    for step in range(1, steps + 1):
        logs = method.train_step({s: st.next() for s, st in streams.items()}, step)
        if on_step is not None:
            on_step(method, step, logs)
    return method


@pytest.mark.parametrize("name", METHODS)
def test_method_trains_blind_to_target_labels_and_evaluates(name: str, data: ExperimentData):
    """A few steps give finite losses; garbage target labels (-1 would crash any loss that
    read them) change no weight; evaluation reports the target accuracy."""

    def check(method, step, logs):
        assert logs and all(math.isfinite(float(v.detach())) for v in logs.values()), (step, logs)

    garbage = dataclasses.replace(
        data.target,
        train=dataclasses.replace(
            data.target.train, labels=torch.full_like(data.target.train.labels, -1)
        ),
    )
    blind = run_steps(name, ExperimentData(data.source, garbage, data.info), on_step=check)
    method = run_steps(name, data)
    a, b = states(method), states(blind)
    assert all(same_state(a[k], b[k]) for k in a)
    method.eval()
    metrics = method.evaluate(data)
    assert 0 <= metrics["target_accuracy"] <= 100 and 0 <= metrics["source_accuracy"] <= 100
    assert method.classify(method.prepare(data.target.test.images[:5])).shape == (
        5,
        data.info.num_classes,
    )


def test_adda_phases(data: ExperimentData):
    """Phase 1 keeps M_t a copy of M_s; phase 2 moves only M_t and D (M_s, C frozen, BN included)."""
    seen: dict[int, dict] = {}

    def record(method, step, logs):
        seen[step] = states(method)
        method.train()  # as the engine does after an evaluation: phase 2 must re-freeze M_s itself

    run_steps("adda", data, steps=3, pretrain_steps=2, on_step=record)
    before, after = seen[2], seen[3]
    assert not same_state(seen[1]["encoder"], before["encoder"])
    assert same_state(before["encoder"], before["target_encoder"])
    assert same_state(before["encoder"], after["encoder"]) and same_state(
        before["classifier"], after["classifier"]
    )
    assert not same_state(before["target_encoder"], after["target_encoder"])
    assert not same_state(before["discriminator"], after["discriminator"])


class Interrupt(Exception):
    pass


def test_adda_resume_across_phase_boundary_equals_uninterrupted_run(
    tmp_path, monkeypatch, data, fast_plots
):
    """Checkpoints at 2 (phase 1) and 4 (phase 2) of 6 steps with P = 3: a run killed at
    steps 3 and 5 and resumed twice ends bit-identical to one that never stopped."""
    raw = {
        **config("adda", steps=6, ckpt_every=2).to_dict(),
        "hparams": {"pretrain_steps": 3, "augment": "affine"},
    }
    cfg = resolve_config(raw)
    whole = train(cfg, tmp_path / "whole", data=data)

    adda = get_method("adda")
    step_fn = adda.train_step

    def dying_at(kill: int):
        def step(self, batch, step):
            if step == kill:
                raise Interrupt
            return step_fn(self, batch, step)

        return step

    run = tmp_path / "resumed"
    monkeypatch.setattr(adda, "train_step", dying_at(3))
    with pytest.raises(Interrupt):
        train(cfg, run, data=data)
    monkeypatch.setattr(adda, "train_step", dying_at(5))
    with pytest.raises(Interrupt):
        train(cfg, run, resume=True, data=data)
    monkeypatch.setattr(adda, "train_step", step_fn)
    resumed = train(cfg, run, resume=True, data=data)

    for key in ("target_accuracy", "source_accuracy", "confusion", "per_class_accuracy"):
        assert whole[key] == resumed[key], key
    a = torch.load(tmp_path / "whole" / "checkpoints" / "last.pt", weights_only=False)["method"][
        "nets"
    ]
    b = torch.load(run / "checkpoints" / "last.pt", weights_only=False)["method"]["nets"]
    assert all(same_state(a[k], b[k]) for k in a)
    # the t-SNE shows source features from M_s and target features from M_t
    assert "source encoder" in fast_plots[-1][0] and "target encoder" in fast_plots[-1][1]
    assert all((run / "figures" / p.split("/", 1)[1]).exists() for p in resumed["figures"].values())


def test_pixelda_figure_shows_source_images_and_their_adaptation(tmp_path, data, fast_plots):
    method = run_steps("pixelda", data, steps=1).eval()
    metrics = method.evaluate(data, tmp_path / "figures")
    rel = metrics["figures"]["Source images and their adaptation"]
    assert (tmp_path / rel).stat().st_size > 0


# -- losses --------------------------------------------------------------------------------
def test_simse_ignores_a_constant_offset():
    x = torch.randn(4, 1, 8, 8)
    assert simse(x + 0.7, x).abs() < 1e-5 and simse(x, torch.zeros_like(x)) > 0


def test_difference_loss_is_zero_for_uncorrelated_codes():
    shared = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    private = torch.tensor([[0.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    assert difference_loss(shared, private) < 1e-8
    assert difference_loss(shared, shared) > 0.1


def test_diversity_and_gan_loss_and_ema():
    assert diversity(torch.zeros(5, 10)).abs() < 1e-6
    assert abs(float(diversity(torch.tensor([[20.0, 0, 0]] * 4))) - math.log(3)) < 1e-4
    assert abs(float(gan_loss(torch.zeros(3), True)) - math.log(2)) < 1e-6
    teacher, student = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    expected = 0.9 * teacher.weight.detach() + 0.1 * student.weight.detach()
    ema_update(teacher, student, 0.9)
    assert torch.allclose(teacher.weight, expected)


def test_strong_augment_keeps_shape_and_range():
    from genda.methods.selftrain import strong_augment

    x = torch.rand(8, 1, 28, 28) * 2 - 1
    y = strong_augment(x)
    assert y.shape == x.shape and y.min() >= -1 and y.max() <= 1 and not torch.equal(x, y)


@pytest.mark.parametrize("invert, per_image", [("image", True), ("channel", False)])
def test_strong_augment_inverts_polarity_per_image_or_channel(invert, per_image):
    from genda.methods.selftrain import strong_augment

    x = torch.rand(64, 3, 28, 28) * 2 - 1
    torch.manual_seed(0)
    plain = strong_augment(x, invert="none")
    torch.manual_seed(0)
    flipped = strong_augment(x, invert=invert)
    sign = (flipped * plain).flatten(2).sum(2).sign()  # [N, C]: +1 kept, -1 inverted
    assert torch.equal(flipped.abs(), plain.abs())
    assert (sign == 1).any() and (sign == -1).any()
    assert per_image == bool((sign == sign[:, :1]).all())  # channels flip together or not


@pytest.mark.parametrize("method", ["source-only", "dann", "adda"])
def test_jitter_inverts_polarity_of_the_training_view_when_asked(method):
    from genda.data.prepare import DataInfo

    info = DataInfo(1, 28, [str(i) for i in range(10)])
    x = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)
    plain = build_method(tiny_config(method, augment="none", invert="none"), info)
    flipping = build_method(tiny_config(method, augment="none", invert="image"), info)
    assert torch.equal(plain.jitter(x), plain.prepare(x))
    view, ref = flipping.jitter(x), flipping.prepare(x)
    sign = (view * ref).flatten(1).sum(1).sign()
    assert torch.equal(view.abs(), ref.abs()) and (sign == 1).any() and (sign == -1).any()


def test_auto_invert_follows_the_data_except_for_the_target_only_bound():
    from genda.data.prepare import DataInfo

    info = DataInfo(1, 28, [str(i) for i in range(10)], invert="image")
    assert build_method(tiny_config("dann"), info).invert == "image"
    assert build_method(tiny_config("target-only"), info).invert == "none"  # one domain
    assert build_method(tiny_config("dann", invert="none"), info).invert == "none"  # user's word


def test_selftrain_evaluates_the_teachers_mean_over_weak_views():
    """``hparams.tta``: target logits are the log of the teacher's mean probabilities over
    that many weak views, the same views on every call, with the global RNG left as it was;
    ``tta=0`` is the image alone."""
    from genda.data.augment import augment
    from genda.data.prepare import DataInfo

    info = DataInfo(1, 28, [str(i) for i in range(10)])
    x = torch.randint(0, 256, (16, 1, 28, 28), dtype=torch.uint8)
    alone = build_method(tiny_config("selftrain", tta=0), info).eval()
    plain = alone.classify(alone.prepare(x))
    assert torch.equal(alone.target_logits(x), plain)

    torch.manual_seed(1)
    views = build_method(tiny_config("selftrain", tta=4), info).eval()
    views.load_state_dict(alone.state_dict())
    rng = torch.get_rng_state()
    got = views.target_logits(x)
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.equal(views.target_logits(x), got)
    torch.manual_seed(0)
    hp = views.hp
    want = sum(
        views.classify(augment(views.prepare(x), hp.augment, hp.scale, hp.pad)).softmax(1)
        for _ in range(4)
    )
    assert torch.allclose(got, (want / 4).log(), atol=1e-6)
    assert not torch.allclose(got, plain.log_softmax(1), atol=1e-3)
