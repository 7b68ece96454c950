"""The one training loop every method runs through.

data streams -> ``method.train_step`` -> logging / evaluation / checkpoints. A reader can
follow a whole run in :func:`train`; what differs between methods lives in their files.
"""

from __future__ import annotations

import dataclasses
import math
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import torch

from genda.config import (
    ConfigError,
    ExperimentConfig,
    TrainConfig,
    from_dict,
    load_yaml,
    merge,
)
from genda.data.prepare import ExperimentData, prepare
from genda.data.stream import Stream
from genda.engine import checkpoint as ckpt
from genda.engine.log import History
from genda.engine.runtime import Runtime
from genda.engine.select import Selector
from genda.errors import GendaError, RunLockedError
from genda.io import (
    FOLDER_NAME_RULE,
    is_folder_name,
    locked,
    read_json,
    write_json,
    write_text,
    write_yaml,
)

# Progress frames (train.sample_every) of conditional models: this many samples per class,
# a row each; genda eval scores them for the accuracy-over-training figure.
PROGRESS_PER_CLASS = 4


def build_method(cfg: ExperimentConfig, info):
    """Instantiate the configured method with validated hyper-parameters."""
    from genda.methods import get_method

    cls = get_method(cfg.method)
    hp = from_dict(cls.Hparams, cfg.hparams, "hparams.")
    return cls(hp, info)


def resolve_config(raw: dict[str, Any]) -> ExperimentConfig:
    """Validate a raw config dict after applying the method's own defaults beneath it."""
    from genda.methods import get_method

    cls = get_method(raw.get("method", ExperimentConfig.method))
    defaults = cls.defaults
    given = raw.get("train") or {}
    if "epochs" in given and "steps" not in given:  # epochs asked for: not a default step count
        defaults = merge(defaults, {"train": {"steps": 0}})
    cfg = from_dict(ExperimentConfig, merge(defaults, raw))
    # Fill in every hyper-parameter so config.yaml (and the report) shows the full set.
    cfg.hparams = dataclasses.asdict(from_dict(cls.Hparams, cfg.hparams, "hparams."))
    return cfg


def total_steps(cfg: ExperimentConfig, data: ExperimentData, world: int = 1) -> int:
    if cfg.train.steps:
        return cfg.train.steps
    n = len(data.source.train)
    per_epoch = max(1, n // (cfg.train.batch_size * world))
    steps = math.ceil(cfg.train.epochs * per_epoch)
    if steps < 1:
        raise ConfigError("train.steps and train.epochs are both 0: nothing to train")
    return steps


def train(
    cfg: ExperimentConfig,
    run_dir: str | Path | None,
    resume: bool = False,
    data: ExperimentData | None = None,
    figures: bool = True,
    evaluate: bool = True,
) -> dict[str, Any]:
    """Train ``cfg`` into ``run_dir`` (``None``: no files, for tests) and return final metrics.

    ``figures=False`` skips the final figures (t-SNE and the like) and ``evaluate=False``
    the whole final evaluation, for benchmarks that time training alone.

    ``run_dir`` is locked for the whole run (:func:`genda.io.locked`), so a second process
    given the same ``--out`` stops at once instead of interleaving its files with this one's.
    """
    run_dir = Path(run_dir) if run_dir is not None else None
    rt = Runtime(cfg.train)
    with ExitStack() as lock:
        verdict = ""
        if rt.is_main and run_dir is not None:
            try:
                lock.enter_context(locked(run_dir))
            except GendaError as e:
                verdict = str(e)
        verdict = rt.broadcast(verdict)  # every rank stops if rank 0 could not lock
        if verdict:
            raise RunLockedError(verdict)
        return _train(cfg, run_dir, rt, resume, data, figures, evaluate)


# What decides a run's result besides data and hparams (threads, device, logging do not).
RESULT_TRAIN_KEYS = ("steps", "epochs", "batch_size", "seed")
# Settings whose default is chosen per run: a request for the default matches the choice.
AUTO = {"data.size": 0, "data.channels": 0, "data.source_scale": 0.0, "data.target_scale": 0.0}


def changed_settings(before: Any, now: dict[str, Any], resumed: bool = True) -> str:
    """The settings ``now`` would change in a run made with ``before``, as ``key: old -> new``.

    ``resumed``: ``now`` continues the run (resolved like it; ``train.steps`` may grow, as a
    GAN's training is extended); ``data`` and ``hparams`` are compared where both name them,
    so a checkpoint from before a newer genda added a key still resumes. Otherwise ``now``
    asks for a finished run's result: the ``train`` keys that decide it must match too, a
    key the run's config lacks is a change (its numbers predate that setting: selftrain runs
    from before ``hparams.tta`` scored the image alone), and auto values (``AUTO``,
    ``invert: auto``) match whatever the run chose."""
    before = before if isinstance(before, dict) else {}
    out = []
    for section in ("data", "hparams") if resumed else ("data", "hparams", "train"):
        old, new = before.get(section) or {}, now.get(section) or {}
        keys = set(RESULT_TRAIN_KEYS) & set(new) if section == "train" else set(new)
        for key in sorted(keys & set(old) if resumed else keys):
            name, value = f"{section}.{key}", new[key]
            auto = AUTO.get(name, "auto" if key == "invert" else None)
            if name == "data.download" or (not resumed and value == auto):
                continue
            if key not in old:
                out.append(f"{name}: absent -> {value!r}")
            elif old[key] != value:
                out.append(f"{name}: {old[key]!r} -> {value!r}")
    return ", ".join(out)


def train_or_reuse(
    cfg: ExperimentConfig, run_dir: str | Path, data: ExperimentData | None = None
) -> dict[str, Any]:
    """The metrics of ``run_dir``: read if the run finished, else resumed from its checkpoint,
    else trained from scratch. Tables, the demo and benchmarks rerun this way, so an
    interrupted batch of runs continues where it stopped and never repeats a finished run."""
    run_dir = Path(run_dir)
    done = run_dir / "metrics.json"
    if done.is_file():
        stored = run_dir / "config.yaml"
        if not stored.is_file():
            raise ConfigError(
                f"{run_dir} holds a finished run without its config.yaml, so whether its "
                "numbers are this request's cannot be told: choose another --out, or delete it"
            )
        if changed := changed_settings(load_yaml(stored), cfg.to_dict(), resumed=False):
            raise ConfigError(
                f"{run_dir} holds a finished run with other settings ({changed}); its "
                "numbers are not this request's: choose another --out, or delete that run"
            )
        return read_json(done)
    resume = (run_dir / "checkpoints" / "last.pt").is_file()
    return train(cfg, run_dir, resume=resume, data=data)


def make_streams(
    method, data: ExperimentData, tc: TrainConfig, device, rank: int = 0, world: int = 1
) -> dict[str, Stream]:
    """The training streams a method consumes, each with its own seed (the recipe every
    caller shares, so a benchmark or a DDP reference sees the batches a run sees)."""
    return {
        name: Stream(data.split(name), tc.batch_size, device, tc.seed + 7919 * i, rank, world)
        for i, name in enumerate(method.streams)
    }


def noise_seed(seed: int, rank: int) -> int:
    """Seed of a rank's noise and augmentation after the identical initialisation."""
    return seed + 1 + rank


def build_run(
    cfg: ExperimentConfig, data: ExperimentData, rt: Runtime, steps: int | None = None
) -> tuple[Any, dict[str, Stream], int]:
    """Phase 1 of a run: the seeded method with its optimisers for ``steps`` (default: from
    the config), set up on ``rt`` (device, precision, DDP), and its streams."""
    torch.manual_seed(cfg.train.seed)
    method = build_method(cfg, data.info)
    steps = steps or total_steps(cfg, data, rt.world)
    method.total_steps = steps
    method.configure(steps)
    streams = make_streams(method, data, cfg.train, rt.device, rt.rank, rt.world)
    rt.setup(method)
    torch.manual_seed(noise_seed(cfg.train.seed, rt.rank))
    return method, streams, steps


def _train(
    cfg: ExperimentConfig,
    run_dir: Path | None,
    rt: Runtime,
    resume: bool,
    data: ExperimentData | None,
    figures: bool = True,
    evaluate: bool = True,
) -> dict[str, Any]:
    tc = cfg.train
    torch.manual_seed(tc.seed)
    if data is None:
        data = prepare(cfg.data, tc.seed)
    notes = [data.chosen] if data.chosen else []  # config.yaml records what auto chose
    if data.chosen:
        chosen = {"size": data.info.size, "channels": data.info.channels}
        if cfg.data.target:
            chosen.update(source_scale=data.scales[0], target_scale=data.scales[1])
        cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, **chosen))
    method, streams, steps = build_run(cfg, data, rt)
    if cfg.hparams.get("invert") == "auto":  # the method resolves it from data.info.invert
        cfg = dataclasses.replace(cfg, hparams={**cfg.hparams, "invert": method.invert})
        notes.append(f"hparams.invert={method.invert} ({data.invert_note})")
    if notes and rt.is_main and not resume:
        print(f"[{cfg.name or cfg.method}] chose {'; '.join(notes)}", flush=True)
    selector = None
    if tc.select != "final":
        if method.kind != "uda" or rt.world > 1:
            raise ConfigError(
                f"train.select={tc.select}: checkpoint selection is for single-process "
                "domain-adaptation runs (use train.select=final)"
            )
        selector = Selector(tc.select)

    main = rt.is_main and run_dir is not None
    history = History(run_dir if main else None)
    start, elapsed = 0, 0.0
    last = run_dir / "checkpoints" / "last.pt" if run_dir else None
    if resume:
        if last is None or not last.exists():
            raise ckpt.CheckpointError(f"--resume: no checkpoint at {last}")
        state = ckpt.load(last, resume=True)
        try:
            method.load_checkpoint_state(state["method"])  # method and image size first
            if changed := changed_settings(state["config"], cfg.to_dict()):
                raise ckpt.CheckpointError(
                    f"--resume with other settings than the run was started with ({changed}); "
                    "resume with the run's own settings, or start a new --out"
                )
            for k, s in state["streams"].items():
                streams[k].load_state_dict(s)
            ranks = state.get("rng_ranks")  # per-rank RNG if the world is the same
            ckpt.set_rng_state(ranks[rt.rank] if ranks and len(ranks) == rt.world else state["rng"])
            start, elapsed = state["step"], state["elapsed"]
            history.restore(state["history"], start)
            if selector is not None and "selector" in state:
                selector.load_state_dict(state["selector"])
        except ckpt.CheckpointError as e:
            raise ckpt.CheckpointError(f"{last}: {e}") from None
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as e:
            raise ckpt.CheckpointError(
                f"{last}: its run state does not fit this run ({type(e).__name__}: {e})"
            ) from None
        if main:  # the settings it finishes with: a key a newer genda added, longer steps
            write_yaml(run_dir / "config.yaml", cfg.to_dict())
    elif last is not None and rt.broadcast(last.exists()):  # rank 0 decides, so all ranks stop
        raise ckpt.CheckpointError(
            f"{run_dir} already holds a run; pass --resume to continue it or choose another --out"
        )
    elif run_dir is not None and rt.broadcast((run_dir / "metrics.json").exists()):
        raise ckpt.CheckpointError(  # e.g. its checkpoints were deleted to save space
            f"{run_dir} holds a finished run (metrics.json); choose another --out"
        )
    elif main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_yaml(run_dir / "config.yaml", cfg.to_dict())
        write_text(run_dir / "architecture.txt", method.architecture())

    def save_checkpoint(step: int) -> None:
        rng = rt.gather_object(ckpt.rng_state())  # collective: every rank calls save_checkpoint
        if main:
            ckpt.save(
                last,
                {
                    "step": step,
                    "elapsed": clock(),
                    "method": method.checkpoint_state(),
                    "rng": rng[0],
                    "rng_ranks": rng,
                    "streams": {k: s.state_dict() for k, s in streams.items()},
                    "history": history.rows,
                    "config": cfg.to_dict(),
                    **({"selector": selector.state_dict()} if selector is not None else {}),
                },
            )
            history.save()

    def clock() -> float:
        """Training seconds so far. Periodic evaluations are off the clock, so accuracy-vs-time
        curves (and ``wall_time_s``) do not depend on how often a run was evaluated."""
        return elapsed + time.perf_counter() - t0 - paused

    # auto: about 20 frames, and none for runs too short to show progress (< 100 steps)
    every = tc.sample_every if tc.sample_every >= 0 else (steps // 20 if steps >= 100 else 0)
    frames = (
        run_dir / "figures" / "progress"
        if main and figures and every and method.kind == "generative"
        else None
    )

    def select(step: int) -> None:
        """Score the model for ``train.select`` (off the clock, like evaluation) and log it."""
        nonlocal paused
        t_select = time.perf_counter()
        score = selector.observe(step, method, data, rt)
        paused += time.perf_counter() - t_select
        history.log(step, clock(), {f"select/{tc.select}": score})

    method.train()
    sums: dict[str, torch.Tensor] = {}
    count = 0
    paused = 0.0
    t0 = time.perf_counter()
    bar = None
    if tc.progress and rt.is_main:
        from tqdm.auto import tqdm  # a widget in Jupyter/Colab, text in a terminal

        in_notebook = tqdm.__module__.startswith("tqdm.notebook")
        bar = tqdm(
            total=steps,
            initial=start,
            desc=f"{cfg.method}",
            dynamic_ncols=True,
            leave=False,
            # None: no bar when stderr is not a terminal (CI logs); a notebook's stderr is
            # never a terminal, but its widget is what the user is watching.
            disable=False if in_notebook else None,
        )
    for step in range(start + 1, steps + 1):
        batch = {k: s.next() for k, s in streams.items()}
        logs = method.train_step(batch, step)
        for k, v in logs.items():
            v = v.detach().float()
            sums[k] = sums[k] + v if k in sums else v
        count += 1
        if step % tc.log_every == 0 or step == steps:
            keys = list(sums)
            means = rt.reduce_mean(
                torch.stack([sums[k] for k in keys]) / count
            ).tolist()  # one sync
            values = dict(zip(keys, means, strict=True))
            history.log(step, clock(), values)
            sums, count = {}, 0
            if bar is not None:
                bar.set_postfix({k: f"{v:.3g}" for k, v in list(values.items())[:4]})
        if tc.eval_every and step % tc.eval_every == 0 and step != steps:
            t_eval = time.perf_counter()
            scores = _scalars(rt.evaluate(method, data))
            paused += time.perf_counter() - t_eval
            history.log(step, clock(), scores)
        if frames is not None and step % every == 0:
            t_frame = time.perf_counter()
            _progress_frame(method, rt, frames / f"{step:07d}.png")
            paused += time.perf_counter() - t_frame
        if tc.ckpt_every and step % tc.ckpt_every == 0 and step != steps:
            if selector is not None:  # scored first, so the checkpoint holds this score too
                select(step)
            save_checkpoint(step)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    wall = clock()
    save_checkpoint(steps)
    chosen = {}
    if selector is not None:
        select(steps)
        selector.restore(method)
        chosen = {"selection_rule": selector.describe(steps), "selected_step": selector.best[1]}
    method.eval()
    fig_dir = run_dir / "figures" if main and figures else None
    metrics = rt.evaluate(method, data, fig_dir) if evaluate else {}  # rank 0 only
    metrics.update(chosen)
    history.log(steps, wall, _scalars(metrics))
    if frames is not None and "figures" in metrics and frames.is_dir():
        from genda.viz import save_gif

        save_gif(sorted(frames.glob("*.png")), run_dir / "figures" / "progress.gif")
        metrics["figures"]["Training progress (fixed noise)"] = "figures/progress.gif"
    metrics = {
        "method": cfg.method,
        "seed": tc.seed,
        "steps": steps,
        "wall_time_s": round(wall, 2),
        "train_precision": rt.precision,  # "precision" is the generative precision/recall score
        "parameters": method.parameter_counts(),
        "source": cfg.data.source,
        **({"target": cfg.data.target} if cfg.data.target else {}),
        **metrics,
    }
    if main:
        history.save()
        if (run_dir / "history.csv").exists() and "figures" in metrics:
            from genda.viz import plot_curves

            plot_curves(
                run_dir / "history.csv",
                [k for k in history.rows[-1] if k not in ("step", "time_s")],
                run_dir / "figures" / "curves.png",
                title=f"{cfg.method} training curves",
            )
            metrics["figures"]["Loss and accuracy curves"] = "figures/curves.png"
        write_json(run_dir / "metrics.json", metrics)
    history.close()
    rt.barrier()
    return metrics


def _progress_frame(method: Any, rt: Runtime, path: Path) -> None:
    """One sample grid from the same noise every time (the training RNG is left untouched),
    on rank 0 without DDP, in eval mode."""
    from genda.methods.generative import eval_mode
    from genda.viz import save_grid

    with eval_mode(method), rt.local(method), torch.random.fork_rng(), torch.no_grad():
        torch.manual_seed(0)
        images, nrow = method.grid(per_class=PROGRESS_PER_CLASS, n=32, **method.progress_options)
    save_grid(images, path, nrow=nrow)


def _scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in metrics.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }


def load_method(run_dir: str | Path, device: str = "cpu", precision: str = ""):
    """Rebuild a trained method from its run directory (config + last checkpoint).

    ``precision`` (e.g. a run's ``train_precision``, ``bf16-mixed``): its nets are wrapped
    for that precision as a run wraps them, so that a score computed now is in the run's
    precision (a net reloaded in fp32 can round a near-tie between two classes the other
    way); otherwise plain fp32 nets."""
    from genda.data.prepare import DataInfo

    path = Path(run_dir)
    path = path / "checkpoints" / "last.pt" if path.is_dir() else path
    state = ckpt.load(path)
    try:
        cfg = resolve_config(state["config"])
        info = DataInfo(**state["method"]["info"])
        if bad := [c for c in info.classes if not isinstance(c, str) or not is_folder_name(c)]:
            raise ckpt.CheckpointError(
                f"class name {bad[0]!r}: class names must be {FOLDER_NAME_RULE}"
            )
        method = build_method(cfg, info)
        method.load_checkpoint_state(state["method"], weights_only=True)
    except (ckpt.CheckpointError, ConfigError, TypeError) as e:  # TypeError: foreign info keys
        raise ckpt.CheckpointError(f"{path}: {e}") from None
    if precision:
        tc = dataclasses.replace(  # one process, and no process-wide switch for a reload
            cfg.train,
            device=device,
            precision=precision,
            devices=1,
            num_nodes=1,
            compile=False,
            sync_batchnorm=False,
            threads=0,
            deterministic=False,
        )
        Runtime(tc).setup(method)
    return cfg, method.to(device).eval()
