"""Generative metrics (classifier FID/IS, classifier accuracy, face detection) and the
``genda sample`` / ``genda eval`` commands end to end on a tiny DDPM run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genda.cli import main
from genda.config import ConfigError
from genda.data import load_dataset
from genda.metrics import generative as gm
from genda.metrics.evaluator import get_evaluator

EVAL_STEPS = 100  # enough for ~98% test accuracy on the embedded digits


_USER_CACHE = os.environ.get("GENDA_CACHE")


@pytest.fixture(autouse=True, scope="module")
def isolated_cache(tmp_path_factory):
    """A private cache (evaluators + data) and one torch thread (two spin on a busy 2-core box)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("GENDA_CACHE", str(tmp_path_factory.mktemp("genda_cache")))
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
    mp.undo()


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def evaluator():
    return get_evaluator("digits", steps=EVAL_STEPS)


def test_evaluator_is_accurate_and_cached(evaluator) -> None:
    assert evaluator.test_accuracy > 90
    assert evaluator.name == "classifier:digits" and evaluator.mode == "class"
    assert evaluator.path is not None and evaluator.path.is_file()
    assert evaluator.path.parent.name == "evaluators"
    again = get_evaluator("digits", steps=EVAL_STEPS)  # from the cache: same weights, no training
    assert again.test_accuracy == evaluator.test_accuracy
    sd1, sd2 = evaluator.net.state_dict(), again.net.state_dict()
    assert all(torch.equal(sd1[k], sd2[k]) for k in sd1)
    assert not list(evaluator.path.parent.glob("*.tmp"))


def test_evaluator_cache_follows_the_files_not_the_spec_string(tmp_path, monkeypatch) -> None:
    from genda.metrics.evaluator import _cache_path

    def folder(root: Path, value: int) -> None:
        (root / "faces" / "a").mkdir(parents=True)
        Image.fromarray(np.full((8, 8), value, np.uint8)).save(root / "faces" / "a" / "0.png")

    def entry() -> Path:
        return _cache_path(tmp_path / "cache", "folder:faces", "", 28, 1, 10, 0)

    for d, value in (("x", 0), ("y", 255)):
        folder(tmp_path / d, value)
    monkeypatch.chdir(tmp_path / "x")
    first = entry()
    assert entry() == first  # the same files: the same classifier
    monkeypatch.chdir(tmp_path / "y")  # another folder by the same relative name
    assert entry() != first
    monkeypatch.chdir(tmp_path / "x")
    Image.fromarray(np.full((8, 9), 9, np.uint8)).save(tmp_path / "x" / "faces" / "a" / "0.png")
    assert entry() != first  # an edited file


def test_classifier_fid_and_is_separate_real_from_noise(evaluator, digits) -> None:
    ex = gm.make_extractors(None, evaluator)
    assert ex.name == "classifier:digits"
    real_a, real_b = digits.train.images, digits.test.images
    noise = torch.randint(0, 256, (len(real_b), 1, 28, 28), dtype=torch.uint8)
    fid_real, fid_noise = gm.fid(real_a, real_b, ex.fid), gm.fid(real_a, noise, ex.fid)
    assert fid_real < 0.1 * fid_noise, (fid_real, fid_noise)
    # float [-1, 1] input gives the same score as its uint8 version
    as_float = real_b.float() / 127.5 - 1
    assert abs(gm.fid(real_a, as_float, ex.fid) - fid_real) < 1e-3 * max(fid_real, 1)
    is_real, _ = gm.inception_score(real_b, ex.inception)
    is_noise, _ = gm.inception_score(noise, ex.inception)
    assert is_real > 4 and is_noise < 2 and is_real > 2 * is_noise  # 10 classes: IS <= 10
    with pytest.raises(ValueError, match=">= 2"):
        gm.fid(real_a, real_b[:1], ex.fid)


def test_classifier_accuracy_follows_the_requested_labels(evaluator, digits) -> None:
    x, y = digits.test.images, digits.test.labels
    assert gm.classifier_accuracy(x, y, evaluator) > 90
    assert gm.classifier_accuracy(x, (y + 1) % 10, evaluator) < 10


def test_inception_features_load_a_local_weights_file(tmp_path) -> None:
    from torchvision.models import inception_v3

    path = tmp_path / "inception.pt"
    torch.manual_seed(0)
    torch.save(inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict(), path)
    feats, logits = gm.InceptionFeatures(path, "features"), gm.InceptionFeatures(path, "logits")
    x = torch.randint(0, 256, (2, 1, 28, 28), dtype=torch.uint8)
    assert feats(x).shape == (2, 2048) and logits(x).shape == (2, 1000)
    assert gm.make_extractors(path).name == "inception-torchvision"
    with pytest.raises(FileNotFoundError, match="never downloads"):
        gm.InceptionFeatures(tmp_path / "missing.pt")
    torch.save({"fc.weight": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="inception_v3"):
        gm.InceptionFeatures(tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="not Inception-v3 weights.*pt_inception-2015-12-05"):
        gm.load_inception(tmp_path / "bad.pt")


def test_standard_fid_weights_are_recognised_by_their_keys(tmp_path) -> None:
    """The TF FID network (1008 classes, no auxiliary head; here randomly initialised, as no
    real weights exist offline) under any file name: torch-fidelity's extractor runs it;
    identical sets give FID 0, different ones a far larger value."""
    from torchvision.models import inception_v3

    torch.manual_seed(0)
    net = inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=True)
    path = tmp_path / "weights-inception-2015-12-05-whatever.pth"
    torch.save(net.state_dict(), path)
    ex = gm.load_inception(path)
    assert ex.name == "inception-fid"
    a = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    b = torch.randint(0, 64, (3, 1, 32, 32), dtype=torch.uint8)  # grey: repeated to RGB
    fa, fb = gm.embed(a, ex.fid), gm.embed(b, ex.fid)
    assert fa.shape == (3, 2048) and ex.inception(a).shape == (3, 1008)
    assert gm.fid_features(fa, fa) <= 1e-6 * gm.fid_features(fa, fb)


def test_fid_bootstrap_interval_covers_other_draws_of_the_same_model() -> None:
    """The interval from one sample of a model holds the FIDs of most independent samples
    of the same model (about 83% for an interval of +-1.96 sd, as two draws differ by
    sqrt(2) sd), and its own FID: resampling with replacement must not shift it upwards."""
    g = torch.Generator().manual_seed(0)
    real = torch.randn(2000, 32, generator=g, dtype=torch.float64)

    def model_sample() -> torch.Tensor:
        return torch.randn(300, 32, generator=g, dtype=torch.float64) * 1.1 + 0.3

    fake = model_sample()
    lo, hi = gm.fid_interval(real, fake, rounds=40)
    assert lo < gm.fid_features(real, fake) < hi
    others = [gm.fid_features(real, model_sample()) for _ in range(20)]
    assert sum(lo <= v <= hi for v in others) >= 12, (lo, hi, others)
    assert gm.fid_interval(real, fake, rounds=40) == (lo, hi)  # seeded


def test_kid_and_precision_recall_on_known_cases() -> None:
    g = torch.Generator().manual_seed(0)
    real = torch.randn(400, 16, generator=g, dtype=torch.float64)
    same = torch.randn(400, 16, generator=g, dtype=torch.float64)
    shifted = same + 1.5
    collapsed = real[:1] + 0.01 * torch.randn(400, 16, generator=g, dtype=torch.float64)
    kid_same, std_same, size = gm.kid_features(real, same, subset_size=200)
    kid_shift, _, _ = gm.kid_features(real, shifted, subset_size=200)
    assert size == 200 and abs(kid_same) < 3 * std_same + 1e-3 and kid_shift > 10 * std_same
    assert gm.kid_features(real, same[:50])[2] == 50  # default: the smaller set's size
    with pytest.raises(ValueError, match="at most the 50 images"):
        gm.kid_features(real, same[:50], subset_size=100)
    pr = gm.precision_recall(real, real)
    assert pr["precision"] == pr["recall"] == 1.0
    mode_collapse = gm.precision_recall(real, collapsed)
    assert mode_collapse["precision"] == 1.0 and mode_collapse["recall"] < 0.05
    assert gm.precision_recall(real, shifted)["precision"] < 0.5


def test_cli_fid_compares_two_folders(digits, tmp_path: Path, capsys) -> None:
    from PIL import Image

    def write(root: Path, images, labels, by_class: bool) -> Path:
        for i, (im, y) in enumerate(zip(images, labels, strict=True)):
            d = root / str(int(y)) if by_class else root
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(im[0].numpy()).save(d / f"{i}.png")
        return root

    tr = digits.train
    a = write(tmp_path / "a", tr.images[:300], tr.labels[:300], by_class=True)
    b = write(tmp_path / "b", tr.images[300:400], tr.labels[300:400], by_class=False)
    args = ["fid", str(a), str(b), "--evaluator-steps", "50", "--device", "cpu"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "fid_extractor: classifier:folder:" in out and "recall:" in out and "kid:" in out
    assert main(["fid", str(b), str(a)]) == 2  # no class folders and no Inception weights
    assert "no class folders" in capsys.readouterr().err


def test_face_detection_rate_on_real_faces_and_noise(shared_data: Path, monkeypatch) -> None:
    from genda.metrics.faces import face_detection_rate

    face = shared_data / "course" / "face"
    if not face.is_dir():
        pytest.skip(f"{face} is absent")
    # The user's data cache: decoding the 8,000 face PNGs again would take most of the budget.
    if _USER_CACHE is None:
        monkeypatch.delenv("GENDA_CACHE")
    else:
        monkeypatch.setenv("GENDA_CACHE", _USER_CACHE)
    real = load_dataset(f"course:{face}").test.images  # the 1,000 val crops
    assert face_detection_rate(real) >= 90
    noise = torch.randint(
        0, 256, (200, 3, 64, 64), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )
    assert face_detection_rate(noise) <= 1


# -- end to end through the CLI ----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("gen") / "ddpm"
    rc = main(
        [
            "train",
            "ddpm",
            "--data",
            "digits",
            "--out",
            str(run),
            "--steps",
            "3",
            "--batch-size",
            "16",
            "--device",
            "cpu",
            "--no-progress",
            "--set",
            "data.limit=64",
            "--set",
            "train.threads=1",
            "--set",
            "hparams.width=8",
            "--set",
            "hparams.timesteps=20",
            "--set",
            "hparams.sample_steps=4",
        ]
    )
    assert rc == 0
    return run


def test_cli_sample_writes_the_image_folder_layout(tiny_run: Path, tmp_path: Path, capsys) -> None:
    from PIL import Image

    def sample(out: Path) -> int:
        args = ["--n", "2", "--per-class", "--steps", "3", "--guidance", "1", "--seed", "1"]
        return main(["sample", str(tiny_run), *args, "--out", str(out)])

    out = tmp_path / "samples"
    assert sample(out) == 0
    assert "wrote 20 images" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [str(i) for i in range(10)]
    for d in (out / str(i) for i in range(10)):
        files = sorted(d.iterdir())
        assert [p.name for p in files] == ["00000.png", "00001.png"]
        with Image.open(files[0]) as im:
            assert im.size == (28, 28) and im.mode == "L"
    assert (out / "grid.png").is_file()
    # same seed, same images
    out2 = tmp_path / "again"
    assert sample(out2) == 0
    assert (out / "3" / "00001.png").read_bytes() == (out2 / "3" / "00001.png").read_bytes()
    # the folder reads back as a labelled data set (the preview grid.png is not a sample)
    ds = load_dataset(f"folder:{out}")
    assert ds.train.classes == [str(i) for i in range(10)] and len(ds.train) + len(ds.test) == 20


def test_cli_sample_rejects_bad_options(tiny_run: Path, tmp_path: Path, capsys) -> None:
    assert (
        main(["sample", str(tiny_run), "--n", "2", "--steps", "99", "--out", str(tmp_path / "a")])
        == 2
    )
    assert "1..20" in capsys.readouterr().err
    assert (
        main(
            ["sample", str(tiny_run), "--n", "2", "--guidance", "-1", "--out", str(tmp_path / "b")]
        )
        == 2
    )
    assert "guidance" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("x")
    assert main(["sample", str(tiny_run), "--n", "2", "--out", str(tmp_path / "full")]) == 2
    assert "not empty" in capsys.readouterr().err


def test_pair_accuracy_counts_both_halves(evaluator, digits) -> None:
    """Digits 0 and 1 stand in for an attribute off and on."""
    x, y = digits.test.images, digits.test.labels
    zeros, ones = x[y == 0][:20], x[y == 1][:20]
    right = gm.pair_accuracy(zeros, ones, evaluator)
    assert (
        right["pair_n"] == 20 and right["pair_accuracy"] > 90 and right["pairs_both_correct"] > 80
    )
    assert gm.pair_accuracy(ones, zeros, evaluator)["pair_accuracy"] < 10
    same = gm.pair_accuracy(zeros, zeros, evaluator)  # the condition changes nothing
    assert 40 <= same["pair_accuracy"] <= 60 and same["pairs_both_correct"] < 10


def test_options_a_model_does_not_take_are_rejected() -> None:
    from genda.engine.generate import check_options

    class GANLike:
        name = "dcgan"

        def sample(self, n, labels=None, **options):
            raise AssertionError("never called")

    assert check_options(GANLike(), {"guidance": None, "steps": None}) == {}
    with pytest.raises(ConfigError, match="does not accept --guidance"):
        check_options(GANLike(), {"guidance": 2.0})


def test_cli_eval_merges_metrics(tiny_run: Path, capsys) -> None:
    before = json.loads((tiny_run / "metrics.json").read_text())
    assert (
        main(
            [
                "eval",
                str(tiny_run),
                "--n",
                "20",
                "--steps",
                "2",
                "--device",
                "cpu",
                "--evaluator-steps",
                str(EVAL_STEPS),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "fid:" in printed and "classifier_accuracy:" in printed
    after = json.loads((tiny_run / "metrics.json").read_text())
    assert (
        after["method"] == before["method"] and after["figures"] == before["figures"]
    )  # merged, not replaced
    # the run's numeric precision and the samples' precision score are different keys
    assert after["train_precision"] == before["train_precision"] and after["train_precision"]
    assert isinstance(after["precision"], float)
    assert after["fid_extractor"] == "classifier:digits"
    assert after["fid"] >= 0 and after["fid"] > after["fid_real_test"]
    assert 0 <= after["classifier_accuracy"] <= 100 and after["evaluator_accuracy"] > 90
    assert after["inception_score"] >= 1 and after["eval_sample_options"] == {"steps": 2}
    assert "face_detection_rate" not in after  # digits are not faces
    assert after["kid_subset_size"] == 20 and 0 <= after["recall"] <= 1
    lo, hi = after["fid_interval"]
    assert lo <= hi and lo > 0
    assert after["fid_reference"] == "digits (train split)"
    real = ["--real", "digits-m", "--evaluator-steps", str(EVAL_STEPS)]
    assert main(["eval", str(tiny_run), "--n", "20", "--steps", "2", *real]) == 0
    against = json.loads((tiny_run / "metrics.json").read_text())
    assert against["fid_reference"] == "digits-m" and against["fid"] != after["fid"]
    assert main(["eval", str(tiny_run), "--n", "4", "--inception-weights", "/nonexistent.pt"]) == 2
    assert "never downloads" in capsys.readouterr().err


def test_cli_guidance_sweep_writes_table_figure_and_metrics(tiny_run: Path, capsys) -> None:
    args = ["eval", str(tiny_run), "--guidance-sweep", "0,2", "--n", "20", "--steps", "2"]
    assert main([*args, "--evaluator-steps", str(EVAL_STEPS), "--device", "cpu"]) == 0
    assert "guidance.csv (2 weights)" in capsys.readouterr().out
    rows = (tiny_run / "guidance.csv").read_text().splitlines()
    assert rows[0] == "guidance,classifier_accuracy,fid,precision,recall" and len(rows) == 3
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert [r["guidance"] for r in metrics["guidance_sweep"]] == [0.0, 2.0]
    assert all(0 <= r["recall"] <= 1 and r["fid"] >= 0 for r in metrics["guidance_sweep"])
    assert (
        tiny_run / metrics["figures"]["Guidance sweep: accuracy, precision and recall vs w"]
    ).is_file()
    assert "Samples" in " ".join(metrics["figures"])  # the run's own figures are kept


def test_cli_guidance_sweep_refuses_options_it_would_ignore(tiny_run: Path, capsys) -> None:
    before = (tiny_run / "metrics.json").read_bytes()
    args = ["eval", str(tiny_run), "--guidance-sweep", "0,2", "--real", "digits"]
    assert main([*args, "--kid-subset", "10"]) == 2
    assert "takes no --real, --kid-subset" in capsys.readouterr().err
    assert (tiny_run / "metrics.json").read_bytes() == before
