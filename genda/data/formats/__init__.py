"""Readers for the on-disk data layouts genda accepts: one module per format family, the
shared decoding, assembly and data-set cache in :mod:`~genda.data.formats.files`.

Every reader turns files into a :class:`Dataset` of uint8 tensors once; later loads come
from the cache (one ``.pt`` file per data set), because gunzipping IDX files or decoding
thousands of PNGs costs seconds to minutes while loading a tensor file costs milliseconds.

Readers never touch the network unless ``download=True`` is passed, and then only through
torchvision's own downloaders, so files land in the layout torchvision users already have.
Bad input raises :class:`DataError` naming the file (and CSV line) and the expected layout.
"""

from genda.data.formats.celeba import celeba_crop, load_celeba
from genda.data.formats.course import load_course
from genda.data.formats.files import (
    CACHE_VERSION,
    DIGIT_CLASSES,
    IMAGE_EXTS,
    cached,
    decode_image,
    files_under,
    image_files,
    make_dataset,
    read_images,
    split_indices,
)
from genda.data.formats.folder import ATTR_DIR, GRID_NAME, load_folder
from genda.data.formats.mnist import load_mnist, mnist_files, read_idx
from genda.data.formats.svhn import load_svhn
from genda.data.formats.usps import load_usps

__all__ = [
    "ATTR_DIR",
    "CACHE_VERSION",
    "DIGIT_CLASSES",
    "GRID_NAME",
    "IMAGE_EXTS",
    "cached",
    "celeba_crop",
    "decode_image",
    "files_under",
    "image_files",
    "load_celeba",
    "load_course",
    "load_folder",
    "load_mnist",
    "load_svhn",
    "load_usps",
    "make_dataset",
    "mnist_files",
    "read_idx",
    "read_images",
    "split_indices",
]
