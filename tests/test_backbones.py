"""The backbone registry: every backbone builds, runs at 28 and 32 px in grey and colour,
and plugs into every UDA method without the method knowing which it is."""

from __future__ import annotations

import pytest
import torch

from genda.data.prepare import DataInfo
from genda.engine.loop import build_method, resolve_config
from genda.nets import backbones
from genda.nets.backbones import BACKBONES


@pytest.mark.parametrize("name", list(BACKBONES))
@pytest.mark.parametrize(("channels", "size"), [(1, 28), (3, 32)])
def test_backbone_shapes(name: str, channels: int, size: int) -> None:
    enc, head = backbones.build(name, channels, size, 10, input_norm=True)
    x = torch.randn(4, channels, size, size)
    f = enc(x)
    assert f.shape == (4, enc.out_dim) and head(f).shape == (4, 10)
    disc = backbones.discriminator_for(name, enc.out_dim)
    assert disc(f).shape == (4, 1)


def test_lenet_paper_is_the_papers_net() -> None:
    enc, head = backbones.build("lenet-paper", 1, 28, 10)
    convs = [m for m in enc.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size) for c in convs] == [(32, (5, 5)), (48, (5, 5))]
    assert not any(
        isinstance(m, torch.nn.modules.batchnorm._BatchNorm | torch.nn.Dropout2d)
        for m in enc.modules()
    )
    linears = [m.out_features for m in head.modules() if isinstance(m, torch.nn.Linear)]
    assert linears == [100, 100, 10] and enc.out_dim == 48 * 4 * 4
    disc = backbones.discriminator_for("lenet-paper", enc.out_dim)
    for net in (head, disc):  # the paper's head and domain classifier have none either
        assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules())


@pytest.mark.parametrize(
    "method", ["source-only", "dann", "adda", "dsn", "selftrain", "selftrain-dann"]
)
def test_every_uda_method_takes_any_backbone(method: str) -> None:
    cfg = resolve_config({"method": method, "hparams": {"arch": "resnet"}})
    m = build_method(cfg, DataInfo(3, 32, [str(i) for i in range(10)]))
    assert isinstance(m.nets["encoder"], backbones.Backbone)
    assert "== encoder" in m.architecture() and "_Block" in m.architecture()
    # DANN's discriminator reads the encoder's features: it builds no second encoder
    encoders = [k for k, net in m.nets.items() if isinstance(net, backbones.Backbone)]
    teacher = ["teacher_encoder"]  # the EMA teacher
    copies = {"adda": ["target_encoder"], "selftrain": teacher, "selftrain-dann": teacher}
    assert encoders == ["encoder", *copies.get(method, [])]


@pytest.mark.parametrize("method", ["selftrain", "selftrain-dann"])
def test_the_teacher_labels_without_dropout(method: str) -> None:
    """The teacher runs in train mode (its BatchNorm tracks target statistics) but its
    pseudo-labels must not depend on dropout: two forwards of one batch agree."""
    cfg = resolve_config({"method": method, "hparams": {"arch": "dtn"}})  # dropout 0.1-0.5
    m = build_method(cfg, DataInfo(3, 32, [str(i) for i in range(10)]))
    m.train()
    x = torch.randn(8, 3, 32, 32)
    dropout = torch.nn.modules.dropout._DropoutNd
    assert any(isinstance(mod, dropout) for mod in m.nets["encoder"].modules())
    assert not any(isinstance(mod, dropout) for mod in m.nets["teacher_encoder"].modules())
    with torch.no_grad():
        assert torch.equal(m.classify(x), m.classify(x))
        student = lambda: m.nets["classifier"](m.nets["encoder"](x))  # noqa: E731
        assert not torch.equal(student(), student())  # the student keeps its dropout
    teacher_keys = m.nets["teacher_encoder"].state_dict().keys()
    assert teacher_keys == m.nets["encoder"].state_dict().keys()  # checkpoints unchanged


def test_unknown_backbone_lists_the_valid_ones() -> None:
    from genda.config import ConfigError

    with pytest.raises(
        ConfigError, match="hparams.arch: invalid value 'vgg99'; valid choices: lenet"
    ):
        resolve_config({"method": "dann", "hparams": {"arch": "vgg99"}})


@pytest.mark.parametrize("key, value", [("bn", "domain"), ("class_weights", True)])
def test_dsn_refuses_dann_options_it_does_not_implement(key, value) -> None:
    from genda.config import ConfigError

    with pytest.raises(ConfigError, match=f"hparams.{key}: invalid value"):
        resolve_config({"method": "dsn", "hparams": {key: value}})
    resolve_config({"method": "dann", "hparams": {key: value}})  # DANN has both


def test_a_size_the_backbone_cannot_take_is_a_config_error() -> None:
    from genda.config import ConfigError

    cfg = resolve_config({"method": "dann", "hparams": {"arch": "lenet-paper"}})
    with pytest.raises(ConfigError, match="data.size 12: backbone 'lenet-paper' cannot take 12px"):
        build_method(cfg, DataInfo(1, 12, [str(i) for i in range(10)]))
