"""Sampling a trained generative run to PNG folders, and evaluating its samples.

Both work for every :class:`~genda.methods.generative.GenerativeMethod` through its one
``sample(n, labels, **options)`` call, so GANs, VAEs and diffusion models share the tool
chain. Options a method's ``sample`` does not name explicitly (``guidance`` on a GAN) are
rejected up front instead of being silently ignored.

Folder layout written by :func:`write_samples` (the image-folder layout, so the folder is
itself a ``folder:DIR`` data set)::

    class-conditional     DIR/<class>/<i>.png          e.g. DIR/7/00003.png
    attribute models      DIR/<attribute>=<0|1>/<i>.png
    unconditional         DIR/<i>.png
    always                DIR/grid.png                 (up to 10 per class, rows = classes)
"""

from __future__ import annotations

import functools
import inspect
import io
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from PIL import Image

from genda.config import ConfigError
from genda.data.formats import GRID_NAME
from genda.errors import DataError
from genda.io import locked, read_json, write_bytes, write_json
from genda.viz.images import to_uint8

T = TypeVar("T")


def sample_options(method) -> list[str]:
    """Keyword options ``method.sample`` accepts by name (besides ``n`` and ``labels``)."""
    params = inspect.signature(method.sample).parameters
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [k for k, p in params.items() if p.kind in kinds and k not in ("n", "labels")]


def check_options(method, options: dict[str, Any]) -> dict[str, Any]:
    """Drop unset (``None``) options; reject any the method's ``sample`` does not accept."""
    options = {k: v for k, v in options.items() if v is not None}
    accepted = sample_options(method)
    bad = [k for k in options if k not in accepted]
    if bad:
        flags = ", ".join("--" + k.replace("_", "-") for k in bad)
        raise ConfigError(
            f"method {method.name!r} does not accept {flags} when sampling "
            f"(its sample options: {', '.join(accepted) or 'none'})"
        )
    return options


def request_labels(method, n: int, per_class: bool = False) -> torch.Tensor | None:
    """Labels to request: ``n`` per class with ``per_class``, else ``n`` cycling through the
    classes (balanced); ``None`` for unconditional models."""
    k = method.info.num_classes
    if method.conditioning == "none" or k == 0:
        return None
    return torch.arange(k).repeat_interleave(n) if per_class else torch.arange(n) % k


@torch.no_grad()
def generate(
    method,
    n: int,
    labels: torch.Tensor | None = None,
    seed: int = 0,
    batch_size: int = 250,
    **options: Any,
) -> torch.Tensor:
    """uint8 ``[n, C, H, W]`` samples at the training resolution, reproducible from ``seed``.

    The caller's global RNG state is restored afterwards (sampling runs on a forked stream).
    """
    options = check_options(method, options)
    dev = method.device
    was_training = method.training
    method.eval()
    out = []
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        try:
            for i in range(0, n, batch_size):
                y = None if labels is None else labels[i : i + batch_size].to(dev)
                m = min(batch_size, n - i)
                try:
                    x = method.sample(m, y, **options)
                except ValueError as e:  # bad steps/guidance/labels: a usage error, not a crash
                    raise ConfigError(f"{method.name}: {e}") from e
                out.append(to_uint8(x))
        finally:
            method.train(was_training)
    images = torch.cat(out)
    s, c = method.info.size, method.info.channels
    if tuple(images.shape[1:]) != (c, s, s):
        raise ConfigError(
            f"{method.name}.sample returned {tuple(images.shape[1:])} images, expected {(c, s, s)}"
        )
    return images


def _save_png(x: torch.Tensor, path: Path) -> None:
    a = x.permute(1, 2, 0).numpy()
    buf = io.BytesIO()
    Image.fromarray(a[..., 0] if a.shape[-1] == 1 else np.ascontiguousarray(a)).save(
        buf, format="png"
    )
    write_bytes(path, buf.getvalue())


def write_samples(
    run_dir: str | Path,
    out: str | Path,
    n: int,
    per_class: bool = False,
    seed: int = 0,
    device: str = "cpu",
    **options: Any,
) -> dict[str, Any]:
    """Sample a run into ``out`` in the image-folder layout; returns a summary dict."""
    from genda.engine.loop import load_method
    from genda.engine.runtime import resolve_device
    from genda.viz import save_grid

    if n < 1:
        raise ConfigError(f"--n must be >= 1, got {n}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise ConfigError(
            f"{out} is not empty; choose a new --out folder (samples are never mixed)"
        )
    _, method = load_method(run_dir, resolve_device(device))
    if method.kind != "generative":
        raise ConfigError(f"{run_dir} holds a {method.name!r} run, not a generative model")
    labels = request_labels(method, n, per_class)
    t0 = time.perf_counter()
    images = generate(method, len(labels) if labels is not None else n, labels, seed, **options)
    secs = time.perf_counter() - t0
    out.mkdir(parents=True, exist_ok=True)
    classes = method.info.classes
    if labels is None:
        for i, x in enumerate(images):
            _save_png(x, out / f"{i:05d}.png")
        grid, nrow = images[:64], 8
    else:
        counts: dict[int, int] = {}
        for x, y in zip(images, labels.tolist(), strict=True):
            d = out / classes[y]
            d.mkdir(exist_ok=True)
            i = counts.get(y, 0)
            counts[y] = i + 1
            _save_png(x, d / f"{i:05d}.png")
        rows = [images[labels == k][:10] for k in range(len(classes))]
        nrow = max(len(r) for r in rows)
        grid = torch.cat(
            [
                torch.cat([r, torch.full((nrow - len(r), *r.shape[1:]), 255, dtype=torch.uint8)])
                for r in rows
                if len(r)
            ]
        )
    save_grid(grid, out / GRID_NAME, nrow=nrow)
    return {
        "run": str(run_dir),
        "out": str(out),
        "images": len(images),
        "seconds": round(secs, 2),
        "images_per_s": round(len(images) / max(secs, 1e-9), 2),
        "conditioning": method.conditioning,
        "options": check_options(method, options),
    }


def _evaluator_key(dc) -> tuple[str, str, int, int]:
    """What names a run's evaluation classifier: its real data, attribute and shape."""
    return dc.source, dc.attribute, dc.size, dc.channels


def _is_face_data(spec: str, info) -> bool:
    """3-channel 64-px data with CelebA-style attributes (or a celeba/face spec)."""
    if info.channels != 3 or info.size != 64:
        return False
    return bool(info.attr_names) or any(w in spec.lower() for w in ("celeba", "face"))


@torch.no_grad()
def _score_pairs(method, n_pairs: int, seed: int, evaluator) -> dict[str, Any]:
    """:func:`~genda.metrics.generative.pair_accuracy` of ``n_pairs`` pairs drawn from noise
    seeded with ``seed`` (reproducible, independent of the global RNG)."""
    from genda.metrics.generative import pair_accuracy

    off, on = method.sample_pairs(n_pairs, (0, 1), seed=seed)
    return pair_accuracy(off.cpu(), on.cpu(), evaluator)


def one_writer(fn: Callable[..., T]) -> Callable[..., T]:
    """Hold the run directory's lock (its first argument) for the whole call, so a training
    or another eval of the same run stops at once, not after minutes of sampling, and no
    file of the run is written by two processes."""

    @functools.wraps(fn)
    def held(run_dir: str | Path, *args: Any, **kwargs: Any) -> T:
        with locked(run_dir):
            return fn(Path(run_dir), *args, **kwargs)

    return held


@one_writer
def evaluate_run(
    run_dir: str | Path,
    n: int = 1000,
    inception_weights: str | Path | None = None,
    seed: int = 0,
    device: str = "cpu",
    evaluator_steps: int = 1000,
    max_real: int = 10000,
    verbose: bool = False,
    cache_root: str | Path | None = None,
    real: str | None = None,
    kid_subset: int = 0,
    **options: Any,
) -> dict[str, Any]:
    """Sample ``n`` images from a run, score them, merge the scores into ``metrics.json``.

    Real reference data is the run's own ``data.source`` (and ``data.attribute``) train split
    at the training size/channels, up to ``max_real`` images; ``real`` (a data spec, e.g. the
    validation faces) replaces it by all images of that set, recorded as ``fid_reference``.
    Scores (percent where a rate):

    ``fid`` / ``fid_extractor``, ``fid_real_test`` (FID of the run's real test split against
    the same reference: the floor an ideal model would reach with this many images), ``kid``
    (+ ``_std``, ``kid_subset_size``; ``kid_subset`` 0 = 1,000 or the sample count),
    ``precision`` / ``recall`` (+ density, coverage; k = 3) of the samples against as many
    reference images, all on the same extractor's features,
    ``inception_score`` (+ ``_std``) and ``inception_score_real``, ``classifier_accuracy`` of
    conditional samples with ``evaluator_accuracy`` (the classifier on real test images),
    ``face_detection_rate`` with ``face_detection_rate_real`` for 64-px RGB face data, and for
    a model conditioned on a binary attribute the :func:`~genda.metrics.generative.pair_accuracy`
    scores of ``n // 2`` same-noise pairs (attribute off / on). ``cache_root`` keeps the
    evaluation classifiers somewhere other than genda's cache (e.g. a smoke run's).
    """
    from genda.data.prepare import prepare
    from genda.engine.loop import load_method
    from genda.engine.runtime import resolve_device
    from genda.metrics import generative as gm
    from genda.metrics.evaluator import get_evaluator

    if n < 2:
        raise ConfigError(f"--n must be >= 2 for FID, got {n}")
    _metrics_of(run_dir)
    dev = resolve_device(device)
    cfg, method = load_method(run_dir, dev)
    if method.kind != "generative":
        raise ConfigError(f"{run_dir} holds a {method.name!r} run, not a generative model")
    options = check_options(method, options)
    inception = None
    if inception_weights:  # load (and validate) the weights before any long work
        try:
            inception = gm.make_extractors(inception_weights)
        except (OSError, ValueError) as e:
            raise ConfigError(f"--inception-weights: {e}") from e
        inception.fid.to(dev)
        inception.inception.to(dev)  # type: ignore[union-attr]
    dc = cfg.data
    # The full real distribution is the reference, even for a run trained with data.limit.
    data = prepare(replace(dc, limit=0), cfg.train.seed)
    real_train, real_test = data.source.train.images[:max_real], data.source.test.images
    if real:
        ref = prepare(replace(dc, source=real, target="", limit=0), cfg.train.seed).source
        real_train = torch.cat([ref.train.images, ref.test.images])[:max_real]

    labels = request_labels(method, n)
    t0 = time.perf_counter()
    fake = generate(method, n, labels, seed, **options)
    secs = time.perf_counter() - t0
    out: dict[str, Any] = {
        "eval_n": n,
        "eval_seed": seed,
        "eval_sample_options": options,
        "sample_images_per_s": round(n / max(secs, 1e-9), 2),
    }

    evaluator = None
    try:
        evaluator = get_evaluator(
            *_evaluator_key(dc), evaluator_steps, device=dev, cache_root=cache_root, verbose=verbose
        )
        out["evaluator_accuracy"] = evaluator.test_accuracy
        out["evaluator"] = evaluator.name
    except DataError as e:  # no labels at all: only Inception features can score FID
        if inception is None:
            raise ConfigError(f"cannot score {dc.source} without --inception-weights: {e}") from e
    ex = inception if inception is not None else gm.make_extractors(None, evaluator)
    f_ref, f_test, f_fake = (gm.embed(x, ex.fid) for x in (real_train, real_test, fake))
    out["fid"] = round(gm.fid_features(f_ref, f_fake), 4)
    out["fid_interval"] = [round(v, 4) for v in gm.fid_interval(f_ref, f_fake, seed=seed)]
    out["fid_extractor"] = ex.name
    out["fid_reference"] = real or f"{dc.source} (train split)"
    out["fid_real_test"] = round(gm.fid_features(f_ref, f_test), 4)
    try:
        kid, kid_std, kid_size = gm.kid_features(f_ref, f_fake, kid_subset, seed=seed)
    except ValueError as e:
        raise ConfigError(f"--kid-subset: {e}") from e
    out.update(kid=round(kid, 6), kid_std=round(kid_std, 6), kid_subset_size=kid_size)
    pick = torch.randperm(len(f_ref), generator=torch.Generator().manual_seed(seed))[:n]
    out.update(gm.precision_recall(f_ref[pick], f_fake))
    if ex.inception is not None:
        mean, std = gm.inception_score(fake, ex.inception)
        out["inception_score"], out["inception_score_std"] = round(mean, 4), round(std, 4)
        out["inception_score_real"] = round(gm.inception_score(real_test, ex.inception)[0], 4)
    if labels is not None and evaluator is not None and evaluator.mode != "attributes":
        out["classifier_accuracy"] = gm.classifier_accuracy(fake, labels, evaluator)
        if dc.attribute and hasattr(method, "sample_pairs") and n >= 2:
            out.update(_score_pairs(method, n // 2, seed, evaluator))
        out.update(progress_accuracy(run_dir, method, evaluator))
    if _is_face_data(dc.source, method.info):
        from genda.metrics.faces import DEFAULT_PARAMS, face_detection_rate

        out["face_detection_rate"] = face_detection_rate(fake)
        out["face_detection_rate_real"] = face_detection_rate(real_test[: max(n, 1000)])
        out["face_detection_params"] = DEFAULT_PARAMS.as_dict()

    _merge_metrics(run_dir, out)
    return out


def progress_accuracy(run_dir: Path, method, evaluator) -> dict[str, Any]:
    """Classifier accuracy of the fixed-noise progress frames over training ("accuracy
    growth"): each frame of a conditional model holds ``PROGRESS_PER_CLASS`` samples per
    class, read back exactly from its PNG. Writes ``progress_accuracy.csv`` (with 95% Wilson
    intervals on the frame's sample count) and ``figures/accuracy_growth.png``; nothing
    when the run saved no frames (``train.sample_every=0`` or a short run)."""
    from genda.engine.loop import PROGRESS_PER_CLASS
    from genda.io import write_csv
    from genda.metrics import generative as gm
    from genda.metrics.intervals import wilson
    from genda.viz import plot_xy, read_grid

    frames = [  # the training's own frames, named by their step (a stray copy is not one)
        f for f in sorted((run_dir / "figures" / "progress").glob("*.png")) if f.stem.isdigit()
    ]
    if not frames:
        return {}
    k, info = method.info.num_classes, method.info
    labels = torch.arange(k).repeat_interleave(PROGRESS_PER_CLASS)
    rows = []
    for f in frames:
        try:
            images = read_grid(f, len(labels), PROGRESS_PER_CLASS, info.size, info.channels)
        except ValueError as e:
            raise DataError(str(e)) from None
        acc = gm.classifier_accuracy(images, labels, evaluator)
        lo, hi = wilson(acc, len(labels))
        rows.append([int(f.stem), round(acc, 2), round(lo, 2), round(hi, 2), len(labels)])
    write_csv(
        run_dir / "progress_accuracy.csv",
        ["step", "classifier_accuracy", "ci_low", "ci_high", "images"],
        rows,
    )
    steps = [r[0] for r in rows]
    name = "classifier accuracy (%)"
    plot_xy(
        {name: (steps, [r[1] for r in rows])},
        run_dir / "figures" / "accuracy_growth.png",
        "training step",
        "%",
        f"{method.name}: accuracy of the fixed-noise samples over training "
        f"({len(labels)} per frame, 95% Wilson band)",
        bands={name: ([r[2] for r in rows], [r[3] for r in rows])},
    )
    title = "Accuracy growth: the progress frames' classifier accuracy over training"
    return {
        "progress_accuracy": [dict(zip(("step", "accuracy"), r[:2], strict=True)) for r in rows],
        "figures": {title: "figures/accuracy_growth.png"},
    }


def _metrics_of(run_dir: Path) -> dict[str, Any]:
    """The run's ``metrics.json`` ({} before the first evaluation), checked to be what genda
    writes, so an eval refuses someone else's file before sampling rather than after."""
    path = run_dir / "metrics.json"
    merged = read_json(path) if path.is_file() else {}
    if not isinstance(merged, dict) or not isinstance(merged.get("figures", {}), dict):
        raise DataError(f"{path}: expected a JSON object with a 'figures' object, as genda writes")
    return merged


def _merge_metrics(run_dir: Path, scores: dict[str, Any]) -> None:
    """Add ``scores`` to the run's ``metrics.json`` (``figures`` merged, not replaced); the
    caller holds the run's lock (:func:`one_writer`)."""
    merged = _metrics_of(run_dir)
    figures = {**merged.get("figures", {}), **scores.get("figures", {})}
    merged.update(scores)
    if figures:
        merged["figures"] = figures
    write_json(run_dir / "metrics.json", merged)


GUIDANCE_WEIGHTS = (0.0, 0.5, 1.0, 2.0, 4.0)


@one_writer
def guidance_sweep(
    run_dir: str | Path,
    weights: tuple[float, ...] | list[float] = GUIDANCE_WEIGHTS,
    n: int = 500,
    seed: int = 0,
    device: str = "cpu",
    evaluator_steps: int = 1000,
    cache_root: str | Path | None = None,
    verbose: bool = False,
    **options: Any,
) -> list[dict[str, Any]]:
    """Fidelity against diversity over the classifier-free guidance weight ``w``.

    For each ``w``: ``n`` class-balanced samples from the same seed, their classifier
    accuracy (are they the requested digits?) and, on the evaluation classifier's features
    against as many real training images, FID, precision and recall (recall falls when a
    larger ``w`` makes every digit of a class look alike). Writes ``guidance.csv`` and
    ``figures/guidance.png`` and merges ``guidance_sweep`` into ``metrics.json``.
    """
    from genda.data.prepare import prepare
    from genda.engine.loop import load_method
    from genda.engine.runtime import resolve_device
    from genda.io import write_csv
    from genda.metrics import generative as gm
    from genda.metrics.evaluator import get_evaluator
    from genda.viz import plot_xy

    _metrics_of(run_dir)
    cfg, method = load_method(run_dir, resolve_device(device))
    if "guidance" not in sample_options(method) or method.conditioning == "none":
        raise ConfigError(f"{run_dir}: a {method.name!r} run has no classifier-free guidance")
    if n < 4:
        raise ConfigError(f"--n must be >= 4 for precision/recall, got {n}")
    dc = cfg.data
    evaluator = get_evaluator(
        *_evaluator_key(dc),
        evaluator_steps,
        device=method.device,
        cache_root=cache_root,
        verbose=verbose,
    )
    if evaluator.mode == "attributes":
        raise ConfigError(f"{run_dir}: guidance sweep needs a class or single-attribute evaluator")
    feature = gm.make_extractors(None, evaluator).fid
    real = prepare(replace(dc, limit=0), cfg.train.seed).source.train.images
    pick = torch.randperm(len(real), generator=torch.Generator().manual_seed(seed))[:n]
    f_real = gm.embed(real[pick], feature)
    labels = request_labels(method, n)
    rows = []
    for w in weights:
        fake = generate(method, n, labels, seed, **{**options, "guidance": float(w)})
        f_fake = gm.embed(fake, feature)
        pr = gm.precision_recall(f_real, f_fake)
        rows.append(
            {
                "guidance": float(w),
                "classifier_accuracy": gm.classifier_accuracy(fake, labels, evaluator),
                "fid": round(gm.fid_features(f_real, f_fake), 4),
                "precision": pr["precision"],
                "recall": pr["recall"],
            }
        )
        if verbose:
            print(", ".join(f"{k} {v}" for k, v in rows[-1].items()), flush=True)
    write_csv(run_dir / "guidance.csv", list(rows[0]), [list(r.values()) for r in rows])
    ws = [r["guidance"] for r in rows]
    plot_xy(
        {
            "classifier accuracy (%)": (ws, [r["classifier_accuracy"] for r in rows]),
            "precision (%)": (ws, [100 * r["precision"] for r in rows]),
            "recall (%)": (ws, [100 * r["recall"] for r in rows]),
        },
        run_dir / "figures" / "guidance.png",
        "guidance weight w",
        "%",
        f"{method.name}: fidelity vs diversity over the guidance weight ({n} samples)",
    )
    figure = {"Guidance sweep: accuracy, precision and recall vs w": "figures/guidance.png"}
    _merge_metrics(
        run_dir, {"guidance_sweep": rows, "evaluator": evaluator.name, "figures": figure}
    )
    return rows


def folder_scores(
    dir_a: str | Path,
    dir_b: str | Path,
    inception_weights: str | Path | None = None,
    device: str = "cpu",
    evaluator_steps: int = 1000,
    kid_subset: int = 0,
    verbose: bool = False,
) -> dict[str, Any]:
    """FID, KID and precision/recall of image folder ``dir_b`` against ``dir_a`` (``genda
    fid``, like ``python -m pytorch_fid A B``).

    With ``inception_weights`` the standard Inception features; otherwise a classifier
    trained on ``dir_a``'s class folders (cached like every evaluator), whose scores compare
    only with others on the same classifier. Sub-folders are read recursively.
    """
    from genda.data.formats import image_files, read_images
    from genda.engine.runtime import resolve_device
    from genda.metrics import generative as gm
    from genda.metrics.evaluator import get_evaluator

    images = []
    for d in map(Path, (dir_a, dir_b)):
        if not d.is_dir():
            raise DataError(f"{d}: not a folder (expected a folder of image files)")
        files = image_files(d, recursive=True)
        if len(files) < 2:
            raise DataError(f"{d}: has {len(files)} image files; FID needs at least 2")
        images.append(read_images(files)["images"])
    dev = resolve_device(device)
    if inception_weights:
        try:
            ex = gm.make_extractors(inception_weights)
        except (OSError, ValueError) as e:
            raise ConfigError(f"--inception-weights: {e}") from e
        ex.fid.to(dev)
    else:
        root = Path(dir_a)
        if not any(p.is_dir() for p in root.iterdir()):
            raise ConfigError(
                f"{root} has no class folders to train a classifier on; pass "
                f"--inception-weights FILE ({gm.FID_WEIGHTS_HINT})"
            )
        a = images[0]
        evaluator = get_evaluator(
            f"folder:{root}",
            size=a.shape[-1],
            channels=a.shape[1],
            steps=evaluator_steps,
            device=dev,
            verbose=verbose,
        )
        ex = gm.make_extractors(None, evaluator)
    f_a, f_b = (gm.embed(x, ex.fid) for x in images)
    try:
        kid, kid_std, kid_size = gm.kid_features(f_a, f_b, kid_subset)
    except ValueError as e:
        raise ConfigError(f"--kid-subset: {e}") from e
    n = min(len(f_a), len(f_b))
    return {
        "fid": round(gm.fid_features(f_a, f_b), 4),
        "fid_extractor": ex.name,
        "images_a": len(f_a),
        "images_b": len(f_b),
        "kid": round(kid, 6),
        "kid_std": round(kid_std, 6),
        "kid_subset_size": kid_size,
        **gm.precision_recall(f_a[:n], f_b[:n]),
    }
