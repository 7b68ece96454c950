"""Data set specs: one short string names any data genda can read.

``digits``, ``digits-m``, ``syndigits`` are built in (see :mod:`genda.data.embedded`);
``KIND:PATH`` reads local files in a known layout (see :mod:`genda.data.formats`), e.g.
``mnist:~/data`` or ``course:hw/usps``. Strings keep configs and command lines simple and
let a config name data without code.
"""

from __future__ import annotations

from pathlib import Path

from genda.data.domain import DataError, Dataset
from genda.data.embedded import EMBEDDED, load_embedded
from genda.data.formats import (
    load_celeba,
    load_course,
    load_folder,
    load_mnist,
    load_svhn,
    load_usps,
)
from genda.data.mnistm import load_mnistm

# kind -> example spec with its layout, shown when a spec is wrong.
KINDS = {
    "mnist": "mnist:ROOT       ROOT/MNIST/raw/*-ubyte[.gz] (torchvision MNIST layout)",
    "usps": "usps:ROOT        ROOT/usps.bz2, ROOT/usps.t.bz2 (torchvision USPS files)",
    "svhn": "svhn:ROOT        ROOT/train_32x32.mat, ROOT/test_32x32.mat",
    "celeba": "celeba:ROOT      ROOT/celeba/img_align_celeba/*.jpg + list_*.txt",
    "course": "course:DIR       DIR/train.csv, DIR/val.csv + DIR/data/*.png or DIR/{train,val}/",
    "folder": "folder:DIR       DIR/<class>/*.png|jpg, or a flat folder; DIR/train + DIR/test",
    "mnistm": "mnistm:MNIST_ROOT,PHOTOS_DIR   MNIST blended with colour photos (e.g. BSDS500)",
}


def _usage() -> str:
    lines = [f"  {name:<16} built in" for name in EMBEDDED]
    lines += [f"  {example}" for example in KINDS.values()]
    return "valid data sets:\n" + "\n".join(lines) + "\nexample: mnist:~/data"


def load_dataset(spec: str, download: bool = False) -> Dataset:
    """Load the data set a spec names; ``download=True`` lets mnist/usps/svhn/celeba fetch
    missing files with torchvision (nothing else ever touches the network)."""
    spec = spec.strip()
    if spec in EMBEDDED:
        return load_embedded(spec)
    kind, sep, arg = spec.partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in KINDS:
        raise DataError(f"unknown data set spec {spec!r}\n{_usage()}")
    if not arg.strip():
        raise DataError(f"{kind}: needs a path, e.g. {KINDS[kind].split()[0]}")
    if kind == "mnistm":
        parts = [p.strip() for p in arg.split(",")]
        if len(parts) != 2 or not all(parts):
            raise DataError(f"mnistm: expected mnistm:MNIST_ROOT,PHOTOS_DIR, got {spec!r}")
        return load_mnistm(
            Path(parts[0]).expanduser(), Path(parts[1]).expanduser(), download=download
        )
    path = Path(arg.strip()).expanduser()
    if kind == "course":
        return load_course(path)
    if kind == "folder":
        return load_folder(path)
    loaders = {"mnist": load_mnist, "usps": load_usps, "svhn": load_svhn, "celeba": load_celeba}
    return loaders[kind](path, download=download)
