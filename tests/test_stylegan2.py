"""StyleGAN2: a few engine steps at 32 and 64 px, determinism, the modulated convolution
against its per-sample definition, style mixing, truncation (also ``--psi`` on the CLI), the
EMA copy and bad options."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_config
from PIL import Image

from genda.cli import main
from genda.config import ConfigError
from genda.data.prepare import DataInfo
from genda.engine.loop import build_method, load_method, train
from genda.nets import stylegan2 as nets

TINY = {"width": 8, "nz": 16, "mapping_layers": 2}


def config(size: int = 32, channels: int = 1, steps: int = 4, **hparams: Any):
    return tiny_config(
        "stylegan2", {"size": size, "channels": channels}, {"steps": steps}, **{**TINY, **hparams}
    )


def losses(run: Path) -> list[dict[str, str]]:
    with open(run / "history.csv", newline="") as f:
        return [{k: v for k, v in r.items() if k != "time_s"} for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def run32(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 steps at 32 px with R1 and path length due on every second step."""
    out = tmp_path_factory.mktemp("sg32")
    train(config(r1_every=2, pl_weight=2.0, pl_every=2), out)
    return out


def test_penalties_run_under_bf16_autocast(tmp_path: Path) -> None:
    """R1 and path length take gradients of gradients through Fabric's bf16 wrappers (the
    default on CPUs with AMX), which refuse a plain backward pass outside fabric.backward."""
    cfg = config(steps=2, r1_every=1, pl_weight=2.0, pl_every=1)
    cfg.train.precision = "bf16-mixed"
    train(cfg, tmp_path)
    rows = losses(tmp_path)
    assert all(math.isfinite(float(r["loss/r1"])) and float(r["loss/r1"]) > 0 for r in rows)


def test_trains_with_finite_losses_and_writes_figures(run32: Path) -> None:
    rows = losses(run32)
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4]
    for key in ("loss/d", "loss/g", "loss/r1", "d/real", "d/fake"):
        assert all(math.isfinite(float(r[key])) for r in rows), key
    assert float(rows[1]["loss/r1"]) > 0  # R1 ran on step 2
    metrics = json.loads((run32 / "metrics.json").read_text())
    assert "figures/style_mixing.png" in metrics["figures"].values()
    for rel in metrics["figures"].values():
        assert (run32 / rel).is_file(), rel
    arch = (run32 / "architecture.txt").read_text()
    assert "ModulatedConv2d" in arch and "MappingNetwork" in arch and "DBlock" in arch


def test_same_seed_same_losses_and_samples(run32: Path, tmp_path: Path) -> None:
    train(config(r1_every=2, pl_weight=2.0, pl_every=2), tmp_path)
    assert losses(tmp_path) == losses(run32)
    samples = []
    for run in (run32, tmp_path):
        torch.manual_seed(1)
        samples.append(load_method(run)[1].sample(3))
    assert torch.equal(samples[0], samples[1])


def test_64px_colour_with_attention_and_diffaugment(tmp_path: Path) -> None:
    train(config(64, 3, steps=2, attention="64", diffaug="translation"), tmp_path)
    _, m = load_method(tmp_path)
    assert "64" in m.nets["g"].attn and any(
        isinstance(x, nets.LinearAttention) for x in m.nets["d"].modules()
    )
    x = m.sample(2)
    assert x.shape == (2, 3, 64, 64) and torch.isfinite(x).all()
    assert float(x.min()) >= -1 and float(x.max()) <= 1


def test_ema_copy_trails_the_generator_and_is_used_for_samples(run32: Path) -> None:
    _, m = load_method(run32)
    assert m.sampler() is m.nets["g_ema"]
    assert not any(p.requires_grad for p in m.nets["g_ema"].parameters())
    g, ema = m.nets["g"], m.nets["g_ema"]
    assert any(not torch.equal(a, b) for a, b in zip(g.parameters(), ema.parameters(), strict=True))
    # The mapping network's running mean of w is tracked and copied into the EMA copy.
    assert float(ema.mapping.w_avg.abs().sum()) > 0
    assert torch.equal(ema.mapping.w_avg, g.mapping.w_avg)


def test_modulated_conv_equals_the_per_sample_definition() -> None:
    """Scale input, shared conv, scale output == conv with w'_oi = s_i w_oi / ||s w_o||."""
    torch.manual_seed(0)
    conv = nets.ModulatedConv2d(5, 7, 3, w_dim=4)
    x, w = torch.randn(3, 5, 6, 6), torch.randn(3, 4)
    s = conv.affine(w)
    want = []
    for i in range(3):
        wi = conv.weight * conv.scale * s[i][None, :, None, None]
        wi = wi / wi.pow(2).sum((1, 2, 3), keepdim=True).add(1e-8).sqrt()
        want.append(F.conv2d(x[i : i + 1], wi, padding=1))
    assert torch.allclose(conv(x, w), torch.cat(want), atol=1e-5)


def test_style_mixing_takes_fine_layers_from_the_second_latent() -> None:
    torch.manual_seed(0)
    g = nets.Generator(16, 1, 32, width=8, mapping_depth=2).eval()
    za, zb = torch.randn(2, 16), torch.randn(2, 16)
    ws = g.styles(za, zb, cut=3)
    assert torch.equal(ws[:, :3], g.styles(za)[:, :3])
    assert torch.equal(ws[:, 3:], g.styles(zb)[:, 3:])
    # All layers from z: the same as no mixing; a mix differs from both parents.
    torch.manual_seed(1)
    plain = g(za)
    torch.manual_seed(1)
    assert torch.equal(g(za, z2=zb, cut=g.num_ws), plain)
    torch.manual_seed(1)
    mixed = g(za, z2=zb, cut=3)
    assert not torch.allclose(mixed, plain)


def test_truncation_pulls_samples_to_the_mean_style(run32: Path) -> None:
    _, m = load_method(run32)
    torch.manual_seed(0)
    at_mean = m.sample(4, psi=0.0)
    # psi = 0: every sample uses w_avg, so images differ only through the per-pixel noise.
    assert at_mean.std(0).mean() < m.sample(4, psi=1.0).std(0).mean()
    with pytest.raises(ValueError, match="psi"):
        m.sample(2, psi=1.5)


def test_cli_psi_overrides_truncation_of_a_trained_run(run32: Path, tmp_path: Path, capsys) -> None:
    def spread(psi: str) -> float:
        out = tmp_path / psi
        assert main(["sample", str(run32), "--n", "4", "--psi", psi, "--out", str(out)]) == 0
        images = [np.asarray(Image.open(p), np.float32) for p in out.glob("[0-9]*.png")]
        assert len(images) == 4
        return float(np.stack(images).std(0).mean())

    assert spread("0") < spread("1")
    assert (
        main(["sample", str(run32), "--n", "2", "--psi", "1.5", "--out", str(tmp_path / "x")]) == 2
    )
    assert "psi must be in [0, 1]" in capsys.readouterr().err


def test_minibatch_std_sees_a_collapsed_batch() -> None:
    same = torch.randn(1, 3, 4, 4).expand(8, -1, -1, -1)
    varied = torch.randn(8, 3, 4, 4)
    assert float(nets.minibatch_std(same)[:, -1].max()) < 1e-3
    assert float(nets.minibatch_std(varied)[:, -1].min()) > 0.1


@pytest.mark.parametrize(
    ("hparams", "size", "match"),
    [({}, 28, r"data\.size.*8, 16, 32, 64"), ({"attention": "48"}, 32, "hparams.attention")],
)
def test_bad_size_or_attention_is_a_config_error(hparams: dict, size: int, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        build_method(config(size, **hparams), DataInfo(1, size, ["0", "1"]))
