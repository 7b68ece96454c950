"""The ``genda`` command line: a thin layer over the Python API.

Every option maps onto a config key (see ``genda train --help``); ``--config FILE`` and
``--set section.key=value`` reach every key, so the CLI never lags behind the configs.
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from genda.config import ConfigError, format_choices, load_yaml, merge, parse_overrides
from genda.errors import GendaError


def _comma_list(kind: type) -> Any:
    """An argparse type: ``0,1,2`` as a list of ``kind`` (a bad item is a usage error)."""

    def parse(text: str) -> list:
        try:
            return [kind(item) for item in text.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated {kind.__name__}s, e.g. 0,1,2; got {text!r}"
            ) from None

    return parse


def _positive(text: str) -> int:
    """An argparse type: an integer >= 1."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return int(text)


def _common_train_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training (each maps onto a config key)")
    g.add_argument("--config", help="YAML file with sections method/data/train/hparams")
    g.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override any config key, e.g. --set hparams.lr=0.02 (repeatable)",
    )
    g.add_argument("--steps", type=int, help="train.steps: optimisation steps (overrides --epochs)")
    g.add_argument("--epochs", type=float, help="train.epochs: passes over the source training set")
    g.add_argument("--batch-size", type=int, help="train.batch_size")
    g.add_argument("--size", type=int, help="data.size: image side after conversion")
    g.add_argument("--channels", type=int, choices=[1, 3], help="data.channels: 1 grey, 3 RGB")
    g.add_argument("--augment", choices=["none", "shift", "affine"], help="hparams.augment")
    g.add_argument("--device", help="train.device: auto, cpu, cuda or mps")
    g.add_argument(
        "--devices", type=int, help="train.devices: data-parallel processes (DDP via Fabric)"
    )
    g.add_argument("--precision", help="train.precision: auto, 32-true, bf16-mixed, 16-mixed")
    g.add_argument(
        "--download", action="store_true", help="data.download: allow torchvision downloads"
    )
    g.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _raw_config(args: argparse.Namespace) -> dict[str, Any]:
    """Merge --config, the named options and --set (later wins) into one raw config dict."""
    raw: dict[str, Any] = load_yaml(args.config) if args.config else {}
    named = {
        ("train", "steps"): args.steps,
        ("train", "epochs"): args.epochs,
        ("train", "batch_size"): args.batch_size,
        ("train", "device"): args.device,
        ("train", "devices"): args.devices,
        ("train", "precision"): args.precision,
        ("data", "size"): args.size,
        ("data", "channels"): args.channels,
        ("hparams", "augment"): args.augment,
        ("data", "download"): True if args.download else None,
        ("train", "progress"): False if args.no_progress else None,
    }
    for (section, key), value in named.items():
        if value is not None:
            raw = merge(raw, {section: {key: value}})
    return merge(raw, parse_overrides(args.set))


def cmd_data_show(args: argparse.Namespace) -> None:
    from genda.data.spec import load_dataset
    from genda.viz import save_grid

    ds = load_dataset(args.spec, download=args.download, strict=args.strict)
    print(ds.describe())
    out = Path(args.out) if args.out else Path(f"{ds.name}_samples.png")
    save_grid(ds.train.images[: args.n], out, nrow=10)
    print(f"sample grid: {out}")


def cmd_train(args: argparse.Namespace) -> None:
    from genda import api

    raw = merge(_raw_config(args), {"name": Path(args.out).name})
    run = api.train(
        args.method,
        args.data,
        args.target,
        args.out,
        args.resume,
        raw,
        attribute=args.attribute or None,
        seed=args.seed,
    )
    _print_metrics(run.metrics)


def _print_metrics(metrics: dict[str, Any]) -> None:
    if os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) != "0":
        return  # data-parallel runs: every rank holds the same metrics; print them once
    for k, v in metrics.items():
        if isinstance(v, int | float | str) and not isinstance(v, bool):
            print(f"{k}: {v}")


def _sample_options(args: argparse.Namespace) -> dict[str, Any]:
    """Sampling options given on the command line (unset ones are left to the model)."""
    return {
        "steps": args.steps,
        "guidance": args.guidance,
        "sampler": args.sampler,
        "eta": args.eta,
        "psi": args.psi,
    }


def cmd_sample(args: argparse.Namespace) -> None:
    from genda import api

    info = api.sample(
        args.run,
        args.n,
        seed=args.seed,
        out=args.out,
        per_class=args.per_class,
        device=args.device,
        **_sample_options(args),
    )
    print(
        f"wrote {info['images']} images to {info['out']} ({info['images_per_s']} images/s); "
        f"grid: {Path(info['out']) / 'grid.png'}"
    )


def cmd_eval(args: argparse.Namespace) -> None:
    from genda import api

    if args.guidance_sweep:
        unused = {"--real": args.real, "--inception-weights": args.inception_weights}
        unused["--kid-subset"] = args.kid_subset
        if given := [k for k, v in unused.items() if v]:
            raise ConfigError(
                f"--guidance-sweep scores on the evaluation classifier against the run's own "
                f"data; it takes no {', '.join(given)} (run genda eval without the sweep for those)"
            )
        weights = args.guidance_sweep
        options = _sample_options(args)
        options.pop("guidance")
        rows = api.guidance_sweep(
            args.run,
            weights=weights,
            n=args.n,
            seed=args.seed,
            device=args.device,
            evaluator_steps=args.evaluator_steps,
            verbose=True,
            **options,
        )
        print(
            f"wrote {Path(args.run) / 'guidance.csv'} ({len(rows)} weights) and figures/guidance.png"
        )
        return

    metrics = api.evaluate(
        args.run,
        n=args.n,
        seed=args.seed,
        real=args.real,
        **_scoring_options(args),
        **_sample_options(args),
    )
    _print_metrics(metrics)
    print(f"merged into {Path(args.run) / 'metrics.json'}")


def _sampling_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("sampling (only for models whose sample() accepts the option)")
    g.add_argument("--steps", type=int, help="sampler steps, 1..T (diffusion models)")
    g.add_argument("--guidance", type=float, help="classifier-free guidance weight w >= 0")
    g.add_argument("--sampler", help="diffusion sampler: ddim or ddpm")
    g.add_argument("--eta", type=float, help="DDIM noise scale in [0, 1]")
    g.add_argument(
        "--psi", type=float, help="truncation psi in [0, 1] (StyleGAN2; 1 = none, the FID setting)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed of the samples")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")


def cmd_fid(args: argparse.Namespace) -> None:
    from genda import api

    _print_metrics(api.fid(args.dir_a, args.dir_b, **_scoring_options(args)))


def _scoring_options(args: argparse.Namespace) -> dict[str, Any]:
    """What ``genda eval`` and ``genda fid`` pass alike (see :func:`_scoring_args`)."""
    return {
        "inception_weights": args.inception_weights,
        "device": args.device,
        "evaluator_steps": args.evaluator_steps,
        "kid_subset": args.kid_subset,
        "verbose": True,
    }


def _scoring_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--inception-weights",
        metavar="PATH",
        help="local Inception weights: the standard FID file (pt_inception-2015-12-05-*.pth) "
        "or torchvision's inception_v3; without it a classifier trained on the real data "
        "(never downloaded)",
    )
    p.add_argument(
        "--evaluator-steps",
        type=int,
        default=1000,
        help="training steps of the evaluation classifier (cached per data set)",
    )
    p.add_argument(
        "--kid-subset", type=int, default=0, help="KID subset size (0 = 1000 or the image count)"
    )


def cmd_uda_table(args: argparse.Namespace) -> None:
    from genda import api

    sources, targets = args.source.split(","), args.target.split(",")
    if len(sources) != len(targets):
        raise ConfigError(
            "--source and --target must list the same number of data sets (zipped into pairs)"
        )
    seeds = args.seed
    md = api.uda_table(
        list(zip(sources, targets, strict=True)),
        args.out,
        args.methods.split(","),
        seeds,
        _raw_config(args),
        jobs=args.jobs,
        cluster=args.cluster or "",
        cluster_options=parse_overrides(args.cluster_opt) if args.cluster_opt else None,
    )
    print(md.read_text())


def cmd_uda_matrix(args: argparse.Namespace) -> None:
    from genda import api

    domains = [d for d in args.domains.split(";" if ";" in args.domains else ",") if d]
    if len(domains) < 2:
        raise ConfigError("--domains needs at least two data specs, comma-separated")
    md = api.uda_matrix(domains, args.out, args.seed, _raw_config(args), jobs=args.jobs)
    print(md.read_text())


def cmd_report(args: argparse.Namespace) -> None:
    from genda import api

    md, html = api.write_report(args.runs, args.out, title=args.title, pdf=args.pdf)
    print(f"wrote {md} and {html}" + (f" and {Path(args.out) / 'report.pdf'}" if args.pdf else ""))


def cmd_demo(args: argparse.Namespace) -> None:
    from genda.demo import run_demo

    run_demo(Path(args.out), quick=args.quick, jobs=args.jobs)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="genda", description=__doc__.splitlines()[0] if __doc__ else ""
    )
    sub = p.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="inspect data sets").add_subparsers(
        dest="data_cmd", required=True
    )
    show = data.add_parser("show", help="print size, shape, class counts; save a sample grid")
    show.add_argument(
        "spec",
        help="data spec: digits, digits-m, syndigits, mnist:ROOT, usps:ROOT, "
        "svhn:ROOT, celeba:ROOT, course:DIR, folder:DIR, mnistm:MNIST_ROOT,PHOTOS",
    )
    show.add_argument("--out", help="sample grid PNG (default <name>_samples.png)")
    show.add_argument("--n", type=_positive, default=100, help="images in the grid")
    show.add_argument("--download", action="store_true")
    show.add_argument(
        "--strict", action="store_true", help="refuse images whose size differs from the rest"
    )
    show.set_defaults(func=cmd_data_show)

    tr = sub.add_parser("train", help="train one method into a run directory")
    tr.add_argument("method", help="method name (see `genda methods`)")
    tr.add_argument("--data", help="data.source: the (source) data spec")
    tr.add_argument("--target", help="data.target: the target data spec (domain adaptation)")
    tr.add_argument("--attribute", help="data.attribute: binary attribute used as label (faces)")
    tr.add_argument("--out", required=True, help="run directory")
    tr.add_argument("--seed", type=int, help="train.seed")
    tr.add_argument(
        "--resume", action="store_true", help="continue from RUN_DIR/checkpoints/last.pt"
    )
    _common_train_args(tr)
    tr.set_defaults(func=cmd_train)

    uda = sub.add_parser("uda", help="domain adaptation").add_subparsers(
        dest="uda_cmd", required=True
    )
    tab = uda.add_parser(
        "table", help="train lower bound / methods / upper bound and write the table"
    )
    tab.add_argument("--source", required=True, help="source spec(s), comma-separated")
    tab.add_argument(
        "--target", required=True, help="target spec(s), comma-separated, zipped with --source"
    )
    tab.add_argument("--methods", default="source-only,dann,target-only")
    tab.add_argument(
        "--seed",
        type=_comma_list(int),
        default=[0],
        help="seed or comma-separated seeds, e.g. 0,1,2",
    )
    tab.add_argument("--out", required=True, help="table directory (re-running resumes it)")
    tab.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs side by side in separate processes, threads divided between them",
    )
    tab.add_argument(
        "--cluster",
        choices=["slurm", "local", "auto"],
        help="submit the runs as a submitit job array (slurm; local = subprocesses); "
        "--jobs caps how many run at once",
    )
    tab.add_argument(
        "--cluster-opt",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="submitit parameter, e.g. slurm_partition=gpu, timeout_min=120, gpus_per_node=1",
    )
    _common_train_args(tab)
    tab.set_defaults(func=cmd_uda_table)

    mat = uda.add_parser(
        "matrix", help="train on each domain, test on every domain: matrix.csv/.md + heat map"
    )
    mat.add_argument(
        "--domains",
        required=True,
        help="data specs, separated by ';' or ',' (mnistm:A,B specs need ';')",
    )
    mat.add_argument("--seed", type=int, default=0)
    mat.add_argument("--out", required=True, help="matrix directory (re-running resumes it)")
    mat.add_argument("--jobs", type=int, default=1, help="rows side by side in processes")
    _common_train_args(mat)
    mat.set_defaults(func=cmd_uda_matrix)

    smp = sub.add_parser("sample", help="sample a generative run into an image folder (+ grid.png)")
    smp.add_argument("run", help="run directory of a trained generative model")
    smp.add_argument("--n", type=int, default=100, help="images (per class with --per-class)")
    smp.add_argument("--per-class", action="store_true", help="--n images for every class")
    smp.add_argument("--out", required=True, help="output folder (new or empty)")
    _sampling_args(smp)
    smp.set_defaults(func=cmd_sample)

    ev = sub.add_parser(
        "eval", help="FID/IS, classifier accuracy, face-detection rate -> metrics.json"
    )
    ev.add_argument("run", help="run directory of a trained generative model")
    ev.add_argument("--n", type=int, default=1000, help="generated images to score")
    ev.add_argument(
        "--real", metavar="SPEC", help="score against this real data set instead of data.source"
    )
    ev.add_argument(
        "--guidance-sweep",
        type=_comma_list(float),
        metavar="W,W,...",
        help="instead: accuracy, FID, precision and recall at each guidance weight (e.g. 0,0.5,1,2,4)",
    )
    _scoring_args(ev)
    _sampling_args(ev)
    ev.set_defaults(func=cmd_eval)

    fd = sub.add_parser("fid", help="FID/KID/precision/recall of image folder B against A")
    fd.add_argument("dir_a", help="reference images (class folders train the classifier)")
    fd.add_argument("dir_b", help="images to score")
    fd.add_argument("--device", default="auto")
    _scoring_args(fd)
    fd.set_defaults(func=cmd_fid)

    rep = sub.add_parser("report", help="write report.md + report.html from runs and tables")
    rep.add_argument(
        "runs", nargs="+", help="run directories, table directories or folders of them"
    )
    rep.add_argument("--out", required=True)
    rep.add_argument("--title", default="genda report")
    rep.add_argument("--pdf", action="store_true", help="also report.pdf (headless Chromium)")
    rep.set_defaults(func=cmd_report)

    demo = sub.add_parser("demo", help="the main job on embedded data, ending with a report")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--quick", action="store_true", help="tiny budgets (smoke test)")
    demo.add_argument(
        "--jobs",
        type=int,
        default=None,
        help="runs side by side in one-thread processes (default: one per core, at most 4; "
        "1 with --quick)",
    )
    demo.set_defaults(func=cmd_demo)

    meth = sub.add_parser("methods", help="list methods and their hyper-parameters")
    meth.set_defaults(func=cmd_methods)
    return p


def cmd_methods(args: argparse.Namespace) -> None:
    import dataclasses

    from genda.methods import get_method, method_names

    for name in method_names():
        cls = get_method(name)
        print(f"{name} ({cls.kind})")
        for f in dataclasses.fields(cls.Hparams):
            choices = f.metadata.get("choices")
            extra = f"  choices: {format_choices(choices)}" if choices else ""
            print(f"    hparams.{f.name} = {f.default!r}{extra}")
    from genda.nets.backbones import BACKBONES

    print("backbones (hparams.arch of the UDA methods)")
    for name, spec in BACKBONES.items():
        print(f"    {name:<12} {spec.about}")


def _one_line_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001
    """Warnings as the user reads them: what happened, without genda's source location."""
    return f"genda: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand. Every user-facing failure is one line on stderr and exit code 2."""
    args = build_parser().parse_args(argv)
    warnings.formatwarning = _one_line_warning
    try:
        args.func(args)
    except GendaError as e:
        print(f"genda: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a file genda was pointed at cannot be read or written
        where = f"{e.filename}: " if e.filename else ""
        print(f"genda: error: {where}{e.strerror or e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
