"""Methods, one file each: what differs between them (networks, losses, train step)."""

from __future__ import annotations

from genda.config import ConfigError
from genda.methods.base import Method

_REGISTRY: dict[str, str] = {
    # name: "module:Class" (imported lazily so one method's dependencies never slow another)
    "source-only": "genda.methods.supervised:SourceOnly",
    "target-only": "genda.methods.supervised:TargetOnly",
    "dann": "genda.methods.dann:DANN",
    "ddpm": "genda.methods.ddpm:DDPM",
    "adda": "genda.methods.adda:ADDA",
    "dsn": "genda.methods.dsn:DSN",
    "pixelda": "genda.methods.pixelda:PixelDA",
    "selftrain": "genda.methods.selftrain:SelfTrain",
    "selftrain-dann": "genda.methods.selftrain_dann:SelfTrainDANN",
    "dcgan": "genda.methods.dcgan:DCGAN",
    "gan": "genda.methods.gan:GAN",
    "acgan": "genda.methods.acgan:ACGAN",
    "stylegan2": "genda.methods.stylegan2:StyleGAN2",
    "vae": "genda.methods.vae:VAE",
}


def method_names() -> list[str]:
    return list(_REGISTRY)


def get_method(name: str) -> type[Method]:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown method {name!r}; valid choices: {', '.join(_REGISTRY)}")
    import importlib

    mod, cls = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(mod), cls)
