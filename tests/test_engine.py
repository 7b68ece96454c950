"""The engine: config validation, checkpoints and ``--resume`` (single process, CPU)."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from genda.cli import main as cli_main
from genda.config import ConfigError, ExperimentConfig, from_dict, load_yaml, parse_overrides
from genda.data.prepare import prepare
from genda.engine import checkpoint as ckpt
from genda.engine.loop import (
    changed_settings,
    load_method,
    resolve_config,
    train,
    train_or_reuse,
)
from genda.errors import WriteError
from genda.io import LOCK_NAME, atomic_path, write_bytes
from genda.methods.dann import DANN

RAW = {
    "method": "dann",
    "data": {"source": "digits", "target": "digits-m", "size": 28, "channels": 1, "limit": 96},
    "train": {
        "steps": 8,
        "batch_size": 16,
        "ckpt_every": 3,
        "select": "im",  # resume keeps the selection too (the best of steps 3, 6 and 8)
        "log_every": 1,
        "threads": 1,
        "device": "cpu",
        "progress": False,
    },
}
CRASH_AT = 5


# ----------------------------------------------------------------------------- configs


def test_unknown_key_lists_the_valid_keys() -> None:
    with pytest.raises(ConfigError) as e:
        from_dict(ExperimentConfig, {"train": {"stpes": 10}})
    msg = str(e.value)
    assert msg.startswith("unknown config key 'train.stpes'")
    assert "valid keys: train.steps, train.epochs, train.batch_size" in msg


def test_unknown_section_lists_the_sections() -> None:
    with pytest.raises(
        ConfigError, match=r"unknown config key 'trian'; valid keys: method, name, data, train"
    ):
        from_dict(ExperimentConfig, {"trian": {}})


def test_channels_last_fp32_follows_the_precision() -> None:
    from genda.engine.runtime import Runtime, resolve_channels_last

    assert resolve_channels_last("fp32", "32-true") and not resolve_channels_last(
        "fp32", "bf16-mixed"
    )
    assert resolve_channels_last(True, "bf16-mixed") and not resolve_channels_last(False, "32-true")
    assert from_dict(ExperimentConfig, {"train": {"channels_last": "true"}}).train.channels_last
    with pytest.raises(
        ConfigError,
        match=r"train\.channels_last: invalid value 'maybe'; valid choices: true, false, fp32",
    ):
        from_dict(ExperimentConfig, {"train": {"channels_last": "maybe"}})
    tc = resolve_config({"method": "ddpm"}).train
    assert tc.channels_last == "fp32"  # the DDPM's default
    for precision, expected in (("32-true", True), ("bf16-mixed", False)):
        rt = Runtime(dataclasses.replace(tc, device="cpu", precision=precision))
        assert rt.channels_last is expected


def test_bad_choice_lists_the_choices() -> None:
    with pytest.raises(
        ConfigError,
        match=r"train\.device: invalid value 'tpu'; valid choices: auto, cpu, cuda, mps",
    ):
        from_dict(ExperimentConfig, {"train": {"device": "tpu"}})
    # method hyper-parameters are validated the same way, against the method's dataclass
    with pytest.raises(
        ConfigError, match=r"hparams\.optimizer: invalid value 'rmsprop'; valid choices: sgd, adam"
    ):
        resolve_config({**RAW, "hparams": {"optimizer": "rmsprop"}})


@pytest.mark.parametrize(
    ("section", "key", "value", "rng"),
    [
        ("train", "batch_size", 0, "[1, 65536]"),
        ("data", "size", 4, "[8, 256]"),
        ("train", "steps", -1, "[0, inf]"),
    ],
)
def test_out_of_range_value(section: str, key: str, value: int, rng: str) -> None:
    with pytest.raises(ConfigError) as e:
        from_dict(ExperimentConfig, {section: {key: value}})
    assert f"{section}.{key}: {value} is out of range {rng}" in str(e.value)


def test_wrong_type_and_bad_override() -> None:
    with pytest.raises(ConfigError, match=r"train\.steps: expected int, got 'many'"):
        from_dict(ExperimentConfig, {"train": {"steps": "many"}})
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_overrides(["train.steps"])
    assert parse_overrides(["train.steps=3", "hparams.lr=0.1"]) == {
        "train": {"steps": 3},
        "hparams": {"lr": 0.1},
    }


def test_malformed_overrides_configs_and_numbers_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"'hparams.lr=\[0.1': the value is not valid YAML"):
        parse_overrides(["hparams.lr=[0.1"])
    with pytest.raises(ConfigError, match="train was set to a value, not a section"):
        parse_overrides(["train=5", "train.steps=3"])
    for bad in ("nan", "inf"):
        with pytest.raises(ConfigError, match="train.epochs: .* is not a finite number"):
            from_dict(ExperimentConfig, {"train": {"epochs": float(bad)}})
    config = tmp_path / "c.yaml"
    config.write_bytes(b"train:\n  steps: \xff\n")
    with pytest.raises(ConfigError, match="c.yaml: not a UTF-8 text file"):
        load_yaml(config)
    config.write_text("train:\n  steps: [3\n")
    with pytest.raises(ConfigError, match=r"c.yaml: not valid YAML at line \d+, column \d+") as e:
        load_yaml(config)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "argv", [["uda", "table", "--seed", "0,1,"], ["data", "show", "digits", "--n", "0"]]
)
def test_bad_numbers_on_the_command_line_are_usage_errors(argv, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        cli_main([*argv, "--out", "unused"] if argv[0] == "uda" else argv)
    assert e.value.code == 2 and "expected" in capsys.readouterr().err


def test_cli_reports_config_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    rc = cli_main(["train", "dann", "--out", str(tmp_path / "x"), "--set", "train.bogus=1"])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("genda: error: unknown config key 'train.bogus'")
    assert not (tmp_path / "x").exists()  # nothing written for a rejected config


# --------------------------------------------------------------------- checkpoints


class Crash(RuntimeError):
    pass


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run A uninterrupted; run B crashed at step 5 (last checkpoint: step 3), then resumed."""
    root = tmp_path_factory.mktemp("engine")
    cfg = resolve_config(RAW)
    data = prepare(cfg.data, cfg.train.seed)
    threads = torch.get_num_threads()
    try:
        train(cfg, root / "A", data=data)
        orig = DANN.train_step

        def crashing(self, batch, step):
            if step == CRASH_AT:
                raise Crash(f"simulated crash at step {step}")
            return orig(self, batch, step)

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(DANN, "train_step", crashing)
            with pytest.raises(Crash):
                train(cfg, root / "B", data=data)
        interrupted = ckpt.load(root / "B")["step"]
        train(cfg, root / "B", resume=True, data=data)
    finally:
        torch.set_num_threads(threads)
    return {
        "A": root / "A",
        "B": root / "B",
        "interrupted_at": interrupted,
        "cfg": cfg,
        "data": data,
    }


def history(run: Path) -> list[dict[str, str]]:
    with open(run / "history.csv", newline="") as fh:
        return [{k: v for k, v in row.items() if k != "time_s"} for row in csv.DictReader(fh)]


def test_resume_reproduces_the_uninterrupted_run(runs) -> None:
    assert runs["interrupted_at"] == 3  # the crash at step 5 lost steps 4-5
    a = json.loads((runs["A"] / "metrics.json").read_text())
    b = json.loads((runs["B"] / "metrics.json").read_text())
    keys = ("target_accuracy", "source_accuracy", "per_class_accuracy", "confusion", "steps")
    for k in (*keys, "selected_step", "selection_rule"):
        assert a[k] == b[k], k
    ha, hb = history(runs["A"]), history(runs["B"])
    assert [r["step"] for r in hb] == [str(s) for s in range(1, 9)]
    assert ha == hb  # every logged loss and accuracy, bit for bit (as written)
    wa, wb = ckpt.load(runs["A"]), ckpt.load(runs["B"])
    for net, sd in wa["method"]["nets"].items():
        for k, v in sd.items():
            assert torch.equal(v, wb["method"]["nets"][net][k]), (net, k)


def test_checkpoints_are_atomic(runs, tmp_path: Path) -> None:
    for run in (runs["A"], runs["B"]):
        assert not list(run.rglob("*.tmp")) and not list(run.rglob(".*.tmp"))
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["last.pt"]
    # a write that fails half-way leaves the previous file whole and no temp file behind
    target = tmp_path / "checkpoints" / "last.pt"
    write_bytes(target, b"whole")

    with pytest.raises(WriteError, match="disk full"), atomic_path(target) as tmp:
        tmp.write_bytes(b"half a checkpoi")
        raise OSError(28, "disk full")
    assert target.read_bytes() == b"whole"
    assert [p.name for p in target.parent.iterdir()] == ["last.pt"]


def test_refuses_to_overwrite_a_run(runs) -> None:
    before = (runs["A"] / "checkpoints" / "last.pt").stat().st_mtime_ns
    with pytest.raises(ckpt.CheckpointError, match="already holds a run; pass --resume"):
        train(runs["cfg"], runs["A"], data=runs["data"])
    assert (runs["A"] / "checkpoints" / "last.pt").stat().st_mtime_ns == before


def test_a_finished_run_without_its_checkpoint_is_not_overwritten(runs, tmp_path) -> None:
    run = tmp_path / "done"
    shutil.copytree(runs["A"], run)
    shutil.rmtree(run / "checkpoints")  # deleted to save space: the results stay

    def files() -> dict[Path, bytes]:
        return {p: p.read_bytes() for p in run.rglob("*") if p.is_file() and p.name != LOCK_NAME}

    before = files()
    with pytest.raises(ckpt.CheckpointError, match="holds a finished run"):
        train(runs["cfg"], run, data=runs["data"])
    assert files() == before


def test_resume_with_other_settings_is_refused(runs, tmp_path) -> None:
    run = tmp_path / "other"
    shutil.copytree(runs["A"], run)
    changed = dataclasses.replace(runs["cfg"], hparams={**runs["cfg"].hparams, "lr": 0.5})
    with pytest.raises(ckpt.CheckpointError, match=r"hparams.lr: 0.03 -> 0.5"):
        train(changed, run, resume=True, data=runs["data"])


def test_a_finished_run_made_before_a_setting_existed_is_not_reused(runs, tmp_path) -> None:
    """A finished run whose config.yaml lacks a key of today's config holds numbers made
    without that setting (selftrain runs from before ``hparams.tta`` scored the image alone):
    a table asking for today's settings must not report them. An unfinished one resumes, and
    its config.yaml then records the settings it finished with."""
    run = tmp_path / "old"
    shutil.copytree(runs["A"], run)
    stored = load_yaml(run / "config.yaml")
    del stored["hparams"]["lr"]
    now = runs["cfg"].to_dict()
    assert changed_settings(stored, now, resumed=False) == "hparams.lr: absent -> 0.03"
    assert "hparams.lr" not in changed_settings(stored, now, resumed=True)
    (run / "config.yaml").write_text(yaml.safe_dump(stored))
    with pytest.raises(ConfigError, match=r"other settings \(hparams.lr: absent -> 0.03\)"):
        train_or_reuse(runs["cfg"], run, runs["data"])
    # unfinished, it resumes under today's settings, records them, and is reused after
    (run / "metrics.json").unlink()
    state = ckpt.load(run)
    del state["config"]["hparams"]["lr"]
    ckpt.save(run / "checkpoints" / "last.pt", state)
    threads = torch.get_num_threads()
    try:
        finished = train_or_reuse(runs["cfg"], run, runs["data"])
    finally:
        torch.set_num_threads(threads)
    assert load_yaml(run / "config.yaml")["hparams"]["lr"] == 0.03
    assert train_or_reuse(runs["cfg"], run, runs["data"]) == finished
    (run / "config.yaml").unlink()
    with pytest.raises(ConfigError, match=r"finished run without its config.yaml"):
        train_or_reuse(runs["cfg"], run, runs["data"])


def test_resume_without_a_checkpoint(tmp_path: Path, runs) -> None:
    with pytest.raises(ckpt.CheckpointError, match="no checkpoint"):
        train(runs["cfg"], tmp_path / "empty", resume=True, data=runs["data"])


def test_checkpoint_of_another_method(runs) -> None:
    other = resolve_config({**RAW, "method": "source-only"})
    with pytest.raises(
        ckpt.CheckpointError, match="checkpoint is for method 'dann', not 'source-only'"
    ):
        train(other, runs["A"], resume=True, data=runs["data"])


def test_corrupt_checkpoint(tmp_path: Path, runs) -> None:
    run = tmp_path / "corrupt"
    (run / "checkpoints").mkdir(parents=True)
    data = (runs["A"] / "checkpoints" / "last.pt").read_bytes()
    (run / "checkpoints" / "last.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ckpt.CheckpointError, match="not a readable genda checkpoint"):
        load_method(run)
    cfg, method = load_method(runs["A"])  # the intact one loads for evaluation
    assert cfg.method == "dann" and not method.training


# ----------------------------------------------------------------------------- precision


def test_auto_precision_follows_what_the_cpu_does_fast(tmp_path: Path) -> None:
    from genda.engine.precision import auto_precision

    def never(_dtype):  # CPUs whose answer is known must not be timed
        raise AssertionError("timed a CPU whose answer is known")

    amx = {"model": "xeon", "amx": True, "avx512_bf16": True}
    plain = {"model": "old", "amx": False, "avx512_bf16": False}
    assert auto_precision("cuda", plain, tmp_path / "p.json", never) == "bf16-mixed"
    assert auto_precision("cpu", amx, tmp_path / "p.json", never) == "bf16-mixed"
    assert auto_precision("cpu", plain, tmp_path / "p.json", never) == "32-true"
    assert auto_precision("mps", amx, tmp_path / "p.json", never) == "32-true"

    calls: list = []

    def timer(speedup: float):
        return lambda dtype: calls.append(dtype) or (1.0 / speedup if dtype else 1.0)

    epyc = {"model": "EPYC", "amx": False, "avx512_bf16": True}
    xeon = {"model": "Xeon no AMX", "amx": False, "avx512_bf16": True}
    cache = tmp_path / "precision.json"
    assert auto_precision("cpu", epyc, cache, timer(1.7)) == "bf16-mixed"
    assert auto_precision("cpu", xeon, cache, timer(1.0)) == "32-true"
    assert len(calls) == 4  # fp32 and bf16, once per CPU model
    assert auto_precision("cpu", epyc, cache, never) == "bf16-mixed"  # cached, not re-timed
    assert auto_precision("cpu", xeon, cache, never) == "32-true"
    cache.write_text("{broken")
    assert auto_precision("cpu", xeon, cache, timer(1.3)) == "bf16-mixed"  # re-measured


def test_the_precision_cache_tells_cpu_generations_with_one_name_apart(tmp_path: Path) -> None:
    """Under KVM a Zen 3 and a Zen 4 EPYC both call themselves "AMD EPYC"; the cache key
    carries the family and model numbers so one's timing is not reused for the other."""
    from genda.engine.precision import _cpu_model

    def info(model: int) -> Path:
        block = "processor\t: {}\ncpu family\t: 25\nmodel\t\t: {}\nmodel name\t: AMD EPYC\n"
        f = tmp_path / f"cpuinfo{model}"
        f.write_text("\n".join(block.format(p, 99 if p else model) for p in (0, 1)))
        return f

    assert _cpu_model(info(1)) == "AMD EPYC, cpu family 25, model 1"  # first block only
    assert _cpu_model(info(17)) == "AMD EPYC, cpu family 25, model 17"
