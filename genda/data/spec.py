"""Data set specs: one short string names any data genda can read.

``digits``, ``digits-m``, ``syndigits`` are built in (see :mod:`genda.data.embedded`);
``KIND:PATH`` reads local files in a known layout (see :mod:`genda.data.formats`), e.g.
``mnist:~/data`` or ``course:hw/usps``. Strings keep configs and command lines simple and
let a config name data without code.
"""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

from genda.data.domain import DataError, Dataset
from genda.data.embedded import EMBEDDED, load_embedded
from genda.data.formats import (
    files_under,
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
    """The valid specs in one line (each kind's layout is in ``KINDS`` and the README)."""
    kinds = [example.split()[0] for example in KINDS.values()]
    return f"valid: {', '.join([*EMBEDDED, *kinds])} (e.g. mnist:~/data)"


def load_dataset(spec: str, download: bool = False, strict: bool = False) -> Dataset:
    """Load the data set a spec names; ``download=True`` lets mnist/usps/svhn/celeba fetch
    missing files with torchvision (nothing else ever touches the network).

    Image files of another size than the rest of their set were cropped and resized; this is
    said once per data set, and ``strict=True`` refuses such a set instead.
    """
    try:
        ds = _load(spec.strip(), download)
    except DataError:
        raise  # already one line naming the file
    except (
        EOFError,
        zlib.error,
        struct.error,
        UnicodeDecodeError,
        ValueError,
        IndexError,
        KeyError,
    ) as e:
        # A reader met a file that is not what its layout says (a corrupt .gz, a short IDX
        # header, a truncated list file): one line naming the data set, never a traceback.
        raise DataError(
            f"{spec}: a file of this data set is corrupt or not in the {_kind(spec)} layout "
            f"({type(e).__name__}: {e})"
        ) from None
    for d in (ds.train, ds.test):
        if not d.resized:
            continue
        h, w = d.images.shape[2:]
        text = (
            f"{spec}: {d.resized} of {len(d)} images in {d.name} are not {w}x{h} like the rest "
            f"(e.g. {d.resized_example})"
        )
        if strict:
            raise DataError(f"{text}; data.strict=true refuses them")
        warnings.warn(f"{text}; they were centre-cropped and resized", stacklevel=2)
    return ds


def spec_inputs(spec: str) -> tuple[str, list[Path]]:
    """``spec`` with its paths made absolute, and every file under them: the key of anything
    cached from the data set (the evaluation classifiers), so that editing the data, or naming
    another folder by the same relative path, makes a new entry (the data cache's rule)."""
    spec = spec.strip()
    if spec in EMBEDDED:
        return spec, []
    kind, paths = parse_spec(spec)
    paths = [p.absolute() for p in paths]
    return f"{kind}:{','.join(map(str, paths))}", files_under(*paths)


def parse_spec(spec: str) -> tuple[str, list[Path]]:
    """A file spec's kind and paths: ``mnistm`` names two (``MNIST_ROOT,PHOTOS_DIR``), every
    other kind one (a comma is then part of the path). The one parser loading and cache keys
    share, so both read a spec alike."""
    kind, sep, arg = spec.strip().partition(":")
    kind = kind.strip().lower()
    if not sep or kind not in KINDS:
        raise DataError(f"unknown data set spec {spec!r}; {_usage()}")
    if not arg.strip():
        raise DataError(f"{kind}: needs a path, e.g. {KINDS[kind].split()[0]}")
    parts = [p.strip() for p in arg.split(",")] if kind == "mnistm" else [arg.strip()]
    if kind == "mnistm" and (len(parts) != 2 or not all(parts)):
        raise DataError(f"mnistm: expected mnistm:MNIST_ROOT,PHOTOS_DIR, got {spec!r}")
    return kind, [Path(part).expanduser() for part in parts]


def _kind(spec: str) -> str:
    kind = spec.strip().partition(":")[0].lower()
    return KINDS[kind].split(maxsplit=1)[1] if kind in KINDS else "expected"


def _load(spec: str, download: bool) -> Dataset:
    if spec in EMBEDDED:
        return load_embedded(spec)
    kind, paths = parse_spec(spec)
    if kind == "mnistm":
        return load_mnistm(*paths, download=download)
    if kind == "course":
        return load_course(paths[0])
    if kind == "folder":
        return load_folder(paths[0])
    loaders = {"mnist": load_mnist, "usps": load_usps, "svhn": load_svhn, "celeba": load_celeba}
    return loaders[kind](paths[0], download=download)
