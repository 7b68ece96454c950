"""Bad input, hostile files and broken disks: every case ends in one line naming the file or
key, exit code 2, no traceback, no partial file, and nothing run from the input."""

from __future__ import annotations

import contextlib
import csv
import os
import pickle
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from genda import io as gio
from genda.cli import main

TRAIN = ["--set", "train.threads=1", "--set", "train.device=cpu", "--no-progress"]
TINY_GAN = [
    "train",
    "dcgan",
    "--data",
    "digits",
    "--steps",
    "2",
    "--batch-size",
    "16",
    "--size",
    "28",
    "--channels",
    "1",
    "--set",
    "data.limit=64",
    "--set",
    "hparams.width=8",
    *TRAIN,
]


def run_cli(capsys, *argv: str) -> tuple[int, str]:
    """Exit code and stderr of ``genda ARGV``; stderr must be one ``genda: error:`` line."""
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    if rc == 2:
        lines = [ln for ln in err.splitlines() if not ln.startswith("genda: warning:")]
        assert len(lines) == 1 and lines[0].startswith("genda: error: "), err
        assert "Traceback" not in err
    return rc, err


def no_temp_files(root: Path) -> bool:
    return not [p for p in root.rglob("*") if p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("gan") / "run"
    assert main([*TINY_GAN, "--out", str(run)]) == 0
    return run


def copy_run(run: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    for p in run.rglob("*"):
        if p.is_file():
            q = dest / p.relative_to(run)
            q.parent.mkdir(parents=True, exist_ok=True)
            q.write_bytes(p.read_bytes())
    return dest


# ---------------------------------------------------------------- 1. checkpoints run no code


class Payload:
    """Unpickling this calls ``os.system``: what a hostile ``last.pt`` would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_crafted_checkpoint_is_refused_and_its_payload_never_runs(gan_run, tmp_path, capsys):
    run = copy_run(gan_run, tmp_path / "evil")
    marker = tmp_path / "pwned"
    last = run / "checkpoints" / "last.pt"
    state = torch.load(last, weights_only=True)
    state["config"]["name"] = Payload(marker)
    with last.open("wb") as f:
        pickle.dump(state, f, protocol=2)  # torch.load reads plain pickles too
    for argv in (
        ("sample", run, "--n", "4", "--out", tmp_path / "s"),
        ("eval", run, "--n", "4"),
        (*TINY_GAN, "--out", run, "--resume"),
    ):
        rc, err = run_cli(capsys, *argv)
        assert rc == 2 and str(last) in err and "never runs code" in err
    assert not marker.exists()
    assert not (tmp_path / "s").exists()


def test_not_a_genda_checkpoint_names_what_is_missing(gan_run, tmp_path, capsys):
    run = copy_run(gan_run, tmp_path / "other")
    torch.save({"model": torch.zeros(2)}, run / "checkpoints" / "last.pt")
    rc, err = run_cli(capsys, "sample", run, "--n", "4", "--out", tmp_path / "s")
    assert rc == 2 and "not a genda checkpoint: missing config, method" in err


def test_truncated_checkpoint(gan_run, tmp_path, capsys):
    run = copy_run(gan_run, tmp_path / "cut")
    last = run / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    rc, err = run_cli(capsys, "eval", run, "--n", "4")
    assert rc == 2 and str(last) in err and "truncated or corrupt" in err


def test_class_names_cannot_lead_samples_out_of_their_folder(gan_run, tmp_path, capsys):
    run = copy_run(gan_run, tmp_path / "run")
    last = run / "checkpoints" / "last.pt"
    state = torch.load(last, weights_only=True)
    state["method"]["info"]["classes"][1] = "../../outside"
    torch.save(state, last)
    rc, err = run_cli(capsys, "sample", run, "--n", "4", "--out", tmp_path / "s" / "out")
    assert (
        rc == 2
        and f"{last}: class name '../../outside': class names must be plain folder names" in err
    )
    assert not (tmp_path / "outside").exists() and not (tmp_path / "s").exists()
    root = course_digits(tmp_path / "set", ["cat", "dog", "..", "cat"] * 3)
    rc, err = run_cli(capsys, "data", "show", f"course:{root}", "--out", tmp_path / "g.png")
    assert rc == 2 and "line 4: label '..' cannot name a class" in err


def test_checkpoint_of_another_method_or_size(gan_run, tmp_path, capsys):
    run = copy_run(gan_run, tmp_path / "run")
    rc, err = run_cli(capsys, *TINY_GAN[:1], "gan", *TINY_GAN[2:], "--out", run, "--resume")
    last = run / "checkpoints" / "last.pt"
    assert rc == 2 and f"{last}: checkpoint is for method 'dcgan', not 'gan'" in err
    rc, err = run_cli(capsys, *TINY_GAN, "--size", "32", "--out", run, "--resume")
    assert rc == 2 and f"{last}: " in err and "1x28px" in err and "1x32px" in err


# ---------------------------------------------------------------- 2. one writer per run


HOLDER = """
import sys, time
from genda.io import locked
with locked(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(600)
"""


@contextlib.contextmanager
def held_by_another_process(run: Path) -> Iterator[int]:
    """``run`` locked by a second process (killed on exit); yields its pid."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(run)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield holder.pid
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()


def test_second_writer_stops_at_once_and_a_killed_holder_does_not_block(tmp_path, capsys):
    run = tmp_path / "run"
    with held_by_another_process(run) as pid:
        t0 = time.perf_counter()
        rc, err = run_cli(capsys, *TINY_GAN, "--out", run)
        assert rc == 2 and f"pid {pid}" in err and "host " in err
        assert time.perf_counter() - t0 < 30  # stops at once, does not wait for the holder
        assert not (run / "config.yaml").exists()
    assert main([*TINY_GAN, "--out", str(run)]) == 0  # the stale lock file does not block
    assert (run / "metrics.json").is_file()


def test_eval_of_a_run_being_written_stops_before_sampling(gan_run, tmp_path, capsys, monkeypatch):
    from genda.engine import generate

    monkeypatch.setattr(generate, "generate", lambda *a, **k: pytest.fail("sampled a locked run"))
    run = copy_run(gan_run, tmp_path / "run")
    before = (run / "metrics.json").read_bytes()
    with held_by_another_process(run) as pid:
        rc, err = run_cli(capsys, "eval", run, "--n", "8", "--evaluator-steps", "1")
        assert rc == 2 and f"pid {pid}" in err
    assert (run / "metrics.json").read_bytes() == before
    assert not (run / "progress_accuracy.csv").exists()


def test_eval_refuses_a_foreign_metrics_file_before_sampling(gan_run, tmp_path, capsys):
    run = copy_run(gan_run, tmp_path / "run")
    (run / "metrics.json").write_text("[]")
    rc, err = run_cli(capsys, "eval", run, "--n", "8", "--evaluator-steps", "1")
    assert rc == 2 and "metrics.json: expected a JSON object" in err
    assert (run / "metrics.json").read_text() == "[]"


def test_failed_new_run_leaves_no_directory(tmp_path, capsys):
    rc, err = run_cli(
        capsys, "train", "dann", "--data", tmp_path / "nowhere", "--out", tmp_path / "r"
    )
    assert rc == 2 and not (tmp_path / "r").exists()


# ---------------------------------------------------------------- 3. one line, never a traceback


def test_report_on_missing_empty_and_corrupt_inputs(gan_run, tmp_path, capsys):
    rc, err = run_cli(capsys, "report", tmp_path / "missing", "--out", tmp_path / "rep")
    assert rc == 2 and "missing: no such directory" in err
    (tmp_path / "empty").mkdir()
    rc, err = run_cli(capsys, "report", tmp_path / "empty", "--out", tmp_path / "rep")
    assert rc == 2 and "no run directories" in err
    run = copy_run(gan_run, tmp_path / "bad")
    (run / "metrics.json").write_text("{not json")
    rc, err = run_cli(capsys, "report", run, "--out", tmp_path / "rep")
    assert rc == 2 and "bad: cannot read run files" in err
    assert not (tmp_path / "rep").exists()


def test_disk_full_while_writing_a_checkpoint(tmp_path, capsys, monkeypatch):
    def full_disk(obj, f) -> None:
        Path(f).write_bytes(b"PK\x03\x04 half")
        raise RuntimeError(
            "[enforce fail at inline_container.cc:672] . PytorchStreamWriter failed "
            "writing file data/0: file write failed"
        )

    monkeypatch.setattr(gio.torch, "save", full_disk)
    run = tmp_path / "run"
    rc, err = run_cli(capsys, *TINY_GAN, "--out", run)
    assert rc == 2 and f"cannot write {run / 'checkpoints' / 'last.pt'}" in err
    assert "file write failed" in err and "MiB free" in err and "inline_container" not in err
    assert not (run / "checkpoints" / "last.pt").exists() and no_temp_files(tmp_path)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (("train", "dann", "--data", "mnist:/no/such/root"), "/no/such/root"),
        (("train", "dann", "--set", "train.stpes=3"), "unknown config key 'train.stpes'"),
        (("train", "dann", "--set", "train.batch_size=0"), "train.batch_size: 0 is out of range"),
        (("train", "dann", "--set", "hparams.arch=vgg99"), "hparams.arch: invalid value 'vgg99'"),
        (("train", "acgan", "--data", "digits", "--attribute", "Smiling"), "has no attributes"),
        (("train", "nosuchmethod"), "nosuchmethod"),
        (("sample", "/no/such/run"), "no checkpoint at /no/such/run"),
    ],
)
def test_usage_errors(argv, needle, tmp_path, capsys):
    rc, err = run_cli(capsys, *argv, "--out", tmp_path / "r")
    assert rc == 2 and needle in err
    assert not (tmp_path / "r").exists()


def test_attribute_message_names_the_layouts_that_carry_attributes(tmp_path, capsys):
    rc, err = run_cli(
        capsys, "train", "acgan", "--data", "digits", "--attribute", "Smiling", "--out", tmp_path
    )
    assert "valid: " not in err and "course face layout" in err and "celeba" in err


# ---------------------------------------------------------------- 4./5. permissions, durability


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_files_get_the_umask_permissions(tmp_path, umask, monkeypatch):
    monkeypatch.setenv("GENDA_CACHE", str(tmp_path / "cache"))
    old = os.umask(umask)
    try:
        run = tmp_path / "run"
        assert main([*TINY_GAN, "--out", str(run)]) == 0
        assert main(["report", str(run), "--out", str(tmp_path / "rep")]) == 0
    finally:
        os.umask(old)
    files = [p for p in tmp_path.rglob("*") if p.is_file() and "tb" not in p.parts]
    names = {p.name for p in files}
    for expected in ("config.yaml", "metrics.json", "history.csv", "last.pt", "report.html"):
        assert expected in names
    assert any(p.suffix == ".png" for p in files) and any(p.parent.name == "cache" for p in files)
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask, p


def test_writes_are_fsynced_before_and_after_the_rename(tmp_path, monkeypatch):
    calls: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(gio.os, "fsync", lambda fd: calls.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(
        gio.os, "replace", lambda a, b: calls.append("replace") or real_replace(a, b)
    )
    gio.write_text(tmp_path / "a.txt", "x")
    assert calls == ["fsync", "replace", "fsync"]  # file data, rename, directory entry


# ---------------------------------------------------------------- 6./7. labels and image sizes


def course_digits(
    root: Path, labels: list[str], sizes: list[tuple[int, int]] | None = None
) -> Path:
    """A tiny course-layout digit set: ``data/*.png`` + train.csv / val.csv."""
    (root / "data").mkdir(parents=True)
    sizes = sizes or [(28, 28)] * len(labels)
    rng = np.random.default_rng(0)
    rows = []
    for i, (label, (w, h)) in enumerate(zip(labels, sizes, strict=True)):
        name = f"{i:03d}.png"
        Image.fromarray(rng.integers(0, 255, (h, w), dtype=np.uint8)).save(root / "data" / name)
        rows.append((name, label))
    for split, part in (("train", rows), ("val", rows[:4])):
        with (root / f"{split}.csv").open("w", newline="") as f:
            csv.writer(f).writerows([("image_name", "label"), *part])
    return root


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        ("11", "label '11' is not a class id"),
        ("-1", "label '-1' is not a class id"),
        ("four", "label 'four': the label column mixes integers and names"),
    ],
)
def test_course_labels_that_are_not_labels(tmp_path, capsys, monkeypatch, bad, needle):
    monkeypatch.setenv("GENDA_CACHE", "off")
    labels = [str(i % 10) for i in range(20)]
    labels[13] = bad
    root = course_digits(tmp_path / "set", labels)
    rc, err = run_cli(capsys, "data", "show", f"course:{root}", "--out", tmp_path / "g.png")
    assert rc == 2 and f"{root / 'train.csv'}: line 15: " in err and needle in err


def test_course_label_names_become_sorted_classes(tmp_path, monkeypatch):
    from genda.data.spec import load_dataset

    monkeypatch.setenv("GENDA_CACHE", "off")
    root = course_digits(tmp_path / "set", ["cat", "dog", "ant", "cat"] * 3)
    assert load_dataset(f"course:{root}").train.classes == ["ant", "cat", "dog"]


def test_16_bit_images_keep_their_grey_levels_and_float_int32_or_huge_ones_are_refused(
    tmp_path, monkeypatch
):
    from genda.data.formats.files import decode_image
    from genda.errors import DataError

    ramp = (np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)  # 0..65520
    Image.fromarray(ramp).save(tmp_path / "16.png")
    grey = decode_image(tmp_path / "16.png")
    assert grey.dtype == np.uint8 and abs(grey.mean() - ramp.mean() / 256) < 1  # not white
    Image.fromarray(ramp.astype(np.float32)).save(tmp_path / "f.tiff")
    with pytest.raises(DataError, match="f.tiff: floating-point image"):
        decode_image(tmp_path / "f.tiff")
    Image.fromarray(ramp.astype(np.int32)).save(tmp_path / "i.tiff")  # PIL mode "I"
    with pytest.raises(DataError, match="i.tiff: 32-bit integer image; expected 8- or 16-bit"):
        decode_image(tmp_path / "i.tiff")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 3000)  # PIL itself only warns up to 6,000
    with pytest.raises(DataError, match="16.png: 64x64 pixels is more than"):
        decode_image(tmp_path / "16.png")


def test_images_of_another_size_are_reported_or_refused(tmp_path, capsys, monkeypatch, recwarn):
    monkeypatch.setenv("GENDA_CACHE", "off")
    sizes = [(28, 28)] * 10
    sizes[5] = (40, 20)
    root = course_digits(tmp_path / "set", [str(i) for i in range(10)], sizes)
    rc, err = run_cli(capsys, "data", "show", f"course:{root}", "--out", tmp_path / "g.png")
    assert rc == 0
    said = [str(w.message) for w in recwarn if "like the rest" in str(w.message)]
    assert (
        len(said) == 1 and "1 of 10 images in set/train" in said[0] and "005.png (40x20)" in said[0]
    )
    rc, err = run_cli(
        capsys, "data", "show", f"course:{root}", "--strict", "--out", tmp_path / "h.png"
    )
    assert rc == 2 and "data.strict=true refuses them" in err and not (tmp_path / "h.png").exists()


def test_corrupt_png(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GENDA_CACHE", "off")
    root = course_digits(tmp_path / "set", [str(i) for i in range(10)])
    (root / "data" / "005.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    rc, err = run_cli(capsys, "data", "show", f"course:{root}", "--out", tmp_path / "g.png")
    assert rc == 2 and "005.png: cannot read image" in err


def test_reading_the_umask_does_not_change_it(monkeypatch):
    from genda.io import file_mode

    calls = []
    monkeypatch.setattr(os, "umask", lambda m: calls.append(m) or 0o022)
    status = Path("/proc/self/status").read_text().splitlines()
    old = int(next(ln for ln in status if ln.startswith("Umask:")).split()[1], 8)
    assert file_mode() == 0o666 & ~old and calls == []  # read, never set (threads race on it)
