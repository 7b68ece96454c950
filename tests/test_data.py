"""Data loading: embedded sets, real formats, the cache and the error messages."""

from __future__ import annotations

import bz2
import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import shared_subset
from PIL import Image

from genda.cache import cache_dir
from genda.data import EMBEDDED, DataError, Dataset, load_dataset
from genda.data.embedded import build_digits, build_digits_m, build_syndigits
from genda.data.mnistm import blend_with_photos, build_mnistm


@pytest.fixture(autouse=True)
def tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets an empty cache, so it exercises the readers and never the user's."""
    path = tmp_path / "cache"
    monkeypatch.setenv("GENDA_CACHE", str(path))
    return path


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Dataset]:
    """The embedded sets, built once for the module (syndigits takes a few seconds)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GENDA_CACHE", str(tmp_path_factory.mktemp("embedded-cache")))
        return {name: load_dataset(name) for name in EMBEDDED}


def same(a: Dataset, b: Dataset) -> bool:
    return all(
        torch.equal(getattr(a, s).images, getattr(b, s).images)
        and torch.equal(getattr(a, s).labels, getattr(b, s).labels)
        for s in ("train", "test")
    )


def save_png(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


# --------------------------------------------------------------------------- embedded


def test_embedded_shapes(embedded: dict[str, Dataset]) -> None:
    expected = {
        "digits": ((1, 28, 28), 1797),
        "digits-m": ((3, 28, 28), 1797),
        "syndigits": ((3, 32, 32), 12000),
    }
    for name, (shape, total) in expected.items():
        ds = embedded[name]
        assert ds.train.shape == ds.test.shape == shape
        assert len(ds.train) + len(ds.test) == total
        assert ds.train.classes == [str(i) for i in range(10)]
        assert ds.train.images.dtype == torch.uint8 and ds.train.labels.dtype == torch.int64
        assert min(ds.train.class_counts()) > 0 and min(ds.test.class_counts()) > 0
    assert len(embedded["digits"].test) == 359  # stratified 20%
    # digits-m keeps the digits, labels and split of digits; only the colours change.
    assert torch.equal(embedded["digits-m"].train.labels, embedded["digits"].train.labels)
    assert len(embedded["syndigits"].train) == 10_000


def test_embedded_deterministic(embedded: dict[str, Dataset]) -> None:
    assert same(build_digits(), embedded["digits"])
    assert same(build_digits_m(), embedded["digits-m"])
    a, b = build_syndigits(300, 100), build_syndigits(300, 100)
    assert same(a, b)
    assert not torch.equal(a.train.images[:100], a.test.images)  # distinct train/test seeds


def test_digits_look_like_mnist(embedded: dict[str, Dataset]) -> None:
    x = embedded["digits"].train.images
    assert x[:, :, :4].max() == 0 and x[:, :, -4:].max() == 0  # 4 px empty border
    assert x.max() == 255


def test_cache_written_atomically_and_reused(tmp_cache: Path) -> None:
    first = load_dataset("digits")
    files = list(tmp_cache.iterdir())
    assert len(files) == 1 and files[0].name.startswith("digits-") and files[0].suffix == ".pt"
    assert same(load_dataset("digits"), first)
    files[0].write_bytes(b"broken")  # a damaged cache is rebuilt, with a warning
    with pytest.warns(UserWarning, match="unreadable cache"):
        assert same(load_dataset("digits"), first)
    assert [p.name for p in tmp_cache.iterdir()] == [files[0].name]
    assert cache_dir() == tmp_cache


# --------------------------------------------------------------------------- real data


def test_mnist(shared_data: Path, monkeypatch) -> None:
    root = shared_subset(shared_data, "mnist")
    ds = load_dataset(f"mnist:{root}")
    assert (len(ds.train), len(ds.test)) == (60000, 10000)
    assert ds.train.shape == (1, 28, 28)
    assert abs(ds.train.images.float().mean().item() / 255 - 0.1307) < 1e-3
    assert ds.train.labels[:5].tolist() == [5, 0, 4, 1, 9]
    from genda.data.formats import mnist

    monkeypatch.setattr(mnist, "read_idx", lambda p: pytest.fail(f"{p} decoded again"))
    again = load_dataset(f"mnist:{root}")  # from the cache (its speed: benchmarks/)
    assert same(ds, again)


def test_usps_and_course_usps_agree(shared_data: Path) -> None:
    usps = load_dataset(f"usps:{shared_subset(shared_data, 'usps')}")
    course = load_dataset(f"course:{shared_subset(shared_data, 'course', 'usps')}")
    for ds in (usps, course):
        assert (len(ds.train), len(ds.test)) == (7291, 2007)
        assert ds.train.shape == (1, 16, 16)
        assert ds.train.classes == [str(i) for i in range(10)]
    for split in ("train", "test"):
        a, b = getattr(usps, split), getattr(course, split)
        assert torch.equal(a.labels, b.labels)
        assert (a.images.int() - b.images.int()).abs().max() <= 1


def test_course_faces(shared_data: Path) -> None:
    ds = load_dataset(f"course:{shared_subset(shared_data, 'course', 'face')}")
    assert (len(ds.train), len(ds.test)) == (7000, 1000)
    assert ds.train.shape == (3, 64, 64)
    assert ds.train.attrs is not None and ds.train.attrs.shape == (7000, 40)
    assert ds.train.attr_names[0] == "5_o_Clock_Shadow"
    smiling = ds.train.attrs[:, ds.train.attr_index("Smiling")].float().mean().item()
    assert 0.4 < smiling < 0.56
    assert bool((ds.train.labels == -1).all())


# --------------------------------------------------------------------------- course layout


def course_digits(root: Path, n: int = 6) -> Path:
    rng = np.random.default_rng(0)
    for split, csv in (("tr", "train.csv"), ("te", "val.csv")):
        rows = ["image_name,label"]
        for i in range(n):
            save_png(root / "data" / f"{split}{i}.png", rng.integers(0, 255, (16, 16), np.uint8))
            rows.append(f"{split}{i}.png,{i % 3}")
        (root / csv).write_text("\n".join(rows) + "\n")
    return root


def test_course_digits_layout(tmp_path: Path) -> None:
    root = course_digits(tmp_path / "toy")
    ds = load_dataset(f"course:{root}")
    assert ds.name == "toy" and ds.train.classes == ["0", "1", "2"]
    assert ds.train.labels.tolist() == [0, 1, 2, 0, 1, 2]
    png = np.array(Image.open(root / "data" / "tr1.png"))
    assert torch.equal(ds.train.images[1, 0], torch.from_numpy(png))


def test_course_faces_layout(tmp_path: Path) -> None:
    root = tmp_path / "faces"
    for split, csv in (("train", "train.csv"), ("val", "val.csv")):
        save_png(root / split / "a.png", np.zeros((8, 8, 3), np.uint8))
        save_png(root / split / "b.png", np.full((8, 8, 3), 200, np.uint8))
        (root / csv).write_text("image_name,Smiling,Male\na.png,1,0\nb.png,0,1\n")
    ds = load_dataset(f"course:{root}")
    assert ds.train.attr_names == ["Smiling", "Male"] and ds.train.shape == (3, 8, 8)
    assert ds.test.attrs is not None and ds.test.attrs.tolist() == [[1, 0], [0, 1]]


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing_csv", r"val\.csv"),
        ("corrupt_png", r"tr2\.png: cannot read image"),
        ("bad_label", r"val\.csv: line 3: label '7' is not one of the train classes"),
        ("columns", r"train\.csv: line 4: expected 2 columns"),
        ("empty", r"val\.csv: no rows after the header \(empty split\)"),
        ("missing_image", r"train\.csv: line 2: image .tr0\.png. not found"),
    ],
)
def test_course_errors(tmp_path: Path, case: str, expected: str) -> None:
    root = course_digits(tmp_path / "toy")
    val, train = root / "val.csv", root / "train.csv"
    if case == "missing_csv":
        val.unlink()
    elif case == "corrupt_png":
        (root / "data" / "tr2.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    elif case == "bad_label":
        val.write_text(val.read_text().replace("te1.png,1", "te1.png,7"))
    elif case == "columns":
        train.write_text(train.read_text().replace("tr2.png,2", "tr2.png,2,extra"))
    elif case == "empty":
        val.write_text("image_name,label\n")
    elif case == "missing_image":
        (root / "data" / "tr0.png").unlink()
    with pytest.raises(DataError, match=expected):
        load_dataset(f"course:{root}")
    assert not list(Path(os.environ["GENDA_CACHE"]).glob("*.pt"))  # nothing cached on failure


def test_course_bad_attribute(tmp_path: Path) -> None:
    root = tmp_path / "faces"
    for split, csv in (("train", "train.csv"), ("val", "val.csv")):
        save_png(root / split / "a.png", np.zeros((8, 8, 3), np.uint8))
        (root / csv).write_text("image_name,Smiling\na.png,yes\n")
    with pytest.raises(DataError, match=r"train\.csv: line 2: attribute Smiling is 'yes'"):
        load_dataset(f"course:{root}")


# --------------------------------------------------------------------------- folders


def test_folder_classes_split(tmp_path: Path) -> None:
    for cls in ("cat", "dog"):
        for i in range(10):
            save_png(tmp_path / "pets" / cls / f"{i}.png", np.full((12, 12, 3), i, np.uint8))
    save_png(tmp_path / "pets" / "dog" / "big.png", np.zeros((24, 24, 3), np.uint8))
    ds = load_dataset(f"folder:{tmp_path / 'pets'}")
    assert ds.train.classes == ["cat", "dog"] and ds.train.shape == (3, 12, 12)
    assert (len(ds.train), len(ds.test)) == (17, 4)
    assert ds.test.class_counts() == [2, 2]
    assert same(ds, load_dataset(f"folder:{tmp_path / 'pets'}"))


def test_folder_flat_presplit_and_attributes(tmp_path: Path) -> None:
    for i in range(5):
        save_png(tmp_path / "flat" / f"{i}.jpg", np.full((8, 8), 50 * i, np.uint8))
    flat = load_dataset(f"folder:{tmp_path / 'flat'}")
    assert flat.train.classes == [] and bool((flat.train.labels == -1).all())
    assert (len(flat.train), len(flat.test)) == (4, 1) and flat.train.shape == (1, 8, 8)

    for split in ("train", "test"):
        for value in (0, 1):
            save_png(
                tmp_path / "smile" / split / f"Smiling={value}" / "x.png",
                np.full((8, 8, 3), value * 255, np.uint8),
            )
    ds = load_dataset(f"folder:{tmp_path / 'smile'}")
    assert ds.train.classes == ["Smiling=0", "Smiling=1"] and ds.train.attr_names == ["Smiling"]
    assert ds.test.attrs is not None and ds.test.attrs[:, 0].tolist() == ds.test.labels.tolist()


def test_folder_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="need at least 2"):
        load_dataset(f"folder:{tmp_path / 'empty'}")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'nope'}")
    save_png(tmp_path / "split" / "train" / "a" / "0.png", np.zeros((8, 8), np.uint8))
    (tmp_path / "split" / "test").mkdir()
    with pytest.raises(DataError, match=r"split/test \(empty split\)"):
        load_dataset(f"folder:{tmp_path / 'split'}")
    (tmp_path / "split" / "test" / "a").mkdir(parents=True)
    (tmp_path / "split" / "test" / "a" / "0.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"test/a/0\.png: cannot read image"):
        load_dataset(f"folder:{tmp_path / 'split'}")


# --------------------------------------------------------------------------- MNIST(-M), USPS


def write_idx(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    header = b"\0\0\x08" + bytes([array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def tiny_mnist(root: Path) -> Path:
    raw = root / "MNIST" / "raw"
    for prefix, n in (("train", 20), ("t10k", 10)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte.gz", np.full((n, 28, 28), 255, np.uint8))
        write_idx(raw / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return root


def test_mnist_layout_and_errors(tmp_path: Path) -> None:
    root = tiny_mnist(tmp_path / "m")
    ds = load_dataset(f"mnist:{root}")
    assert (len(ds.train), len(ds.test)) == (20, 10) and ds.test.labels.tolist() == list(range(10))
    with pytest.raises(
        DataError, match=r"nothing/MNIST/raw/train-images-idx3-ubyte\.gz \(torchvision"
    ):
        load_dataset(f"mnist:{tmp_path / 'nothing'}")
    (root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz"):
        load_dataset(f"mnist:{root}")


def test_mnistm(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for i in range(3):
        save_png(tmp_path / "photos" / f"{i}.png", rng.integers(0, 255, (40, 50, 3), np.uint8))
    ds = load_dataset(f"mnistm:{tiny_mnist(tmp_path / 'm')},{tmp_path / 'photos'}")
    assert ds.name == "mnistm" and ds.train.shape == (3, 28, 28) and len(ds.test) == 10
    mnist = load_dataset(f"mnist:{tmp_path / 'm'}")
    again = build_mnistm(mnist, tmp_path / "photos")
    assert same(ds, again)
    # |photo - digit| with a white digit is the inverted photo patch.
    photo = torch.from_numpy(rng.integers(0, 255, (3, 30, 30), np.uint8))
    white = torch.full((1, 1, 30, 30), 255, dtype=torch.uint8)
    out = blend_with_photos(white, [photo], torch.Generator().manual_seed(0))
    assert torch.equal(out[0], 255 - photo)


def test_usps_file_format(tmp_path: Path) -> None:
    pixels = " ".join(f"{i + 1}:{-1 if i % 2 else 1}" for i in range(256))
    for name in ("usps.bz2", "usps.t.bz2"):
        with bz2.open(tmp_path / name, "wt") as f:
            f.write(f"1 {pixels}\n10 {pixels}\n")
    ds = load_dataset(f"usps:{tmp_path}")
    assert ds.train.labels.tolist() == [0, 9]
    assert ds.train.images[0, 0, 0, :2].tolist() == [255, 0]
    with bz2.open(tmp_path / "usps.t.bz2", "wt") as f:
        f.write(f"11 {pixels}\n")
    with pytest.raises(DataError, match=r"usps\.t\.bz2: line 1: label 11 outside 1\.\.10"):
        load_dataset(f"usps:{tmp_path}")
    with bz2.open(tmp_path / "usps.t.bz2", "wb") as f:
        f.write(b"\xff\xfe not text\n")
    with pytest.raises(DataError, match=r"usps:.*: a file of this data set is corrupt or not in"):
        load_dataset(f"usps:{tmp_path}")  # a reader's own error, as one line


def test_corrupt_or_short_mnist_files_are_data_errors(tmp_path: Path) -> None:
    raw = tiny_mnist(tmp_path / "m") / "MNIST" / "raw"
    gz = raw / "t10k-labels-idx1-ubyte.gz"
    data = gz.read_bytes()
    gz.write_bytes(data[:-20] + bytes(b ^ 0xFF for b in data[-20:-8]) + data[-8:])  # deflate
    with pytest.raises(DataError, match=r"^[^:]*t10k-labels-idx1-ubyte\.gz: "):
        load_dataset(f"mnist:{tmp_path / 'm'}")
    with gzip.open(gz, "wb") as f:
        f.write(b"\0\0\x08\x03\0\0")
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte\.gz: truncated IDX header"):
        load_dataset(f"mnist:{tmp_path / 'm'}")
    with gzip.open(gz, "wb") as f:  # a header promising far more than any data set holds
        f.write(b"\0\0\x08\x01" + struct.pack(">I", 2**31) + bytes(10))
    with pytest.raises(DataError, match=r"announces \(2147483648,\): too large"):
        load_dataset(f"mnist:{tmp_path / 'm'}")
    with gzip.open(gz, "wb") as f:  # more values than the header says
        f.write(b"\0\0\x08\x01" + struct.pack(">I", 10) + bytes(11))
    with pytest.raises(DataError, match=r"does not match its header \(\(10,\): 10 values, more"):
        load_dataset(f"mnist:{tmp_path / 'm'}")


def test_svhn_mat_files(tmp_path: Path) -> None:
    from scipy.io import savemat

    rng = np.random.default_rng(0)
    x = rng.integers(0, 255, (32, 32, 3, 4), dtype=np.uint8)  # SVHN's [H, W, C, N]
    y = np.array([[10], [1], [9], [10]], dtype=np.uint8)  # 10 stands for the digit 0
    for split in ("train", "test"):
        savemat(tmp_path / f"{split}_32x32.mat", {"X": x, "y": y})
    ds = load_dataset(f"svhn:{tmp_path}")
    assert ds.train.shape == (3, 32, 32) and ds.train.labels.tolist() == [0, 1, 9, 0]
    assert torch.equal(ds.test.images[2, :, 5, 7], torch.from_numpy(x[5, 7, :, 2]))
    savemat(tmp_path / "test_32x32.mat", {"X": x[:, :, 0], "y": y})
    with pytest.raises(DataError, match=r"test_32x32\.mat: X is uint8 \[32, 32, 4\]"):
        load_dataset(f"svhn:{tmp_path}")


def test_celeba_layout(tmp_path: Path) -> None:
    base = tmp_path / "celeba"
    names = [f"{i:06d}.jpg" for i in range(1, 5)]
    for name in names:
        save_png(base / "img_align_celeba" / name, np.full((218, 178, 3), 128, np.uint8))
    rows = [f"{n} {'1' if i % 2 else '-1'} -1" for i, n in enumerate(names)]
    (base / "list_attr_celeba.txt").write_text("4\nSmiling Male\n" + "\n".join(rows) + "\n")
    parts = "\n".join(f"{n} {p}" for n, p in zip(names, (0, 0, 1, 2), strict=True))
    (base / "list_eval_partition.txt").write_text(parts + "\n")
    ds = load_dataset(f"celeba:{tmp_path}")
    assert (len(ds.train), len(ds.test)) == (2, 1) and ds.train.shape == (3, 64, 64)
    assert ds.train.attr_names == ["Smiling", "Male"]
    assert ds.train.attrs is not None and ds.train.attrs.tolist() == [[0, 0], [1, 0]]
    with pytest.raises(DataError, match=r"list_attr_celeba\.txt"):
        load_dataset(f"celeba:{tmp_path / 'nothing'}")
    (base / "list_eval_partition.txt").write_text(parts + "\n000001.jpg 3\n")
    with pytest.raises(DataError, match=r"partition\.txt: line 5: expected 'IMAGE PARTITION'"):
        load_dataset(f"celeba:{tmp_path}")
    (base / "list_attr_celeba.txt").write_text("")
    with pytest.raises(DataError, match=r"list_attr_celeba\.txt: 0 lines; expected a header"):
        load_dataset(f"celeba:{tmp_path}")


def test_unknown_spec() -> None:
    with pytest.raises(DataError, match=r"(?s)unknown data set spec 'imagenet'.*mnist:ROOT"):
        load_dataset("imagenet")
    with pytest.raises(DataError, match="needs a path"):
        load_dataset("usps:")
    with pytest.raises(DataError, match=r"usps\.bz2"):
        load_dataset("usps:/definitely/not/here")
