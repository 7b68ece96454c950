"""Conditional DDPM: schedulers (no network), the U-Net, training steps and the sampling API."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import tiny_config

from genda.config import ConfigError
from genda.data.prepare import DataInfo, prepare
from genda.engine.loop import build_method, train
from genda.methods.ddpm import DDPM
from genda.nets.unet import UNet
from genda.schedulers import (
    BETA_SCHEDULES,
    SCHEDULERS,
    DDIMScheduler,
    DDPMScheduler,
    cosine_betas,
    linear_betas,
)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: on a shared 2-core machine two spinning threads run ~8x slower."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


TINY = {"width": 8, "levels": 2, "timesteps": 20, "sample_steps": 5, "ema": 0.9}


def tiny_cfg(steps: int = 3, seed: int = 0, **hp):
    train = {"steps": steps, "device": "cpu", "seed": seed}
    return tiny_config("ddpm", {"limit": 64}, train, **{**TINY, **hp})


@pytest.fixture(scope="module")
def digits_data():
    return prepare(tiny_cfg().data, 0)


@pytest.fixture(scope="module")
def model(digits_data) -> DDPM:
    cfg = tiny_cfg()
    torch.manual_seed(0)
    return build_method(cfg, digits_data.info).eval()


# -- schedulers ------------------------------------------------------------------------------


def test_alpha_products_and_forward_process() -> None:
    s = DDPMScheduler(100, 1e-4, 0.02)
    betas = torch.linspace(1e-4, 0.02, 100, dtype=torch.float64)
    assert torch.allclose(s.betas, betas)
    expected = torch.tensor(
        [math.prod(1 - b for b in betas[: t + 1].tolist()) for t in range(100)], dtype=torch.float64
    )
    assert torch.allclose(s.alphas_cumprod, expected, rtol=1e-10)
    # q(x_t | x_0) preserves unit variance: var = abar + (1 - abar) = 1.
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(20000, generator=g), torch.randn(20000, generator=g)
    xt = s.add_noise(x0, eps, torch.full((20000,), 70))
    assert abs(float(xt.std()) - 1) < 0.03
    assert torch.equal(linear_betas(5), torch.linspace(1e-4, 0.02, 5, dtype=torch.float64))


def test_set_timesteps_spacing_and_validation() -> None:
    s = DDIMScheduler(50)
    for steps in (1, 7, 25, 50):
        ts = s.set_timesteps(steps)
        assert len(ts) == steps and len(set(ts.tolist())) == steps
        assert int(ts[0]) == 49 and (steps == 1 or int(ts[-1]) == 0)
        assert bool((ts[:-1] > ts[1:]).all())
    assert s.set_timesteps(50).tolist() == list(range(49, -1, -1))
    for bad in (0, 51, -3):
        with pytest.raises(ValueError, match="1..50"):
            s.set_timesteps(bad)
    with pytest.raises(ValueError):
        DDPMScheduler(50, 0.02, 1e-4)
    with pytest.raises(ValueError, match="eta"):
        DDIMScheduler(50, eta=-0.1)


def test_ddim_eta1_with_all_steps_is_the_ddpm_step() -> None:
    """Song et al. 2021: eta = 1 over all T steps gives DDPM's ancestral update exactly."""
    ddpm, ddim = DDPMScheduler(60), DDIMScheduler(60, eta=1.0)
    ddpm.set_timesteps(60)
    ddim.set_timesteps(60)
    x, eps = torch.randn(4, 1, 5, 5), torch.randn(4, 1, 5, 5)
    for t in (59, 30, 1, 0):
        a = ddpm.step(eps, t, x, torch.Generator().manual_seed(t)).prev_sample
        b = ddim.step(eps, t, x, torch.Generator().manual_seed(t)).prev_sample
        assert torch.allclose(a, b, atol=1e-5), t


def _oracle_gaussian(sched, mu: float, s: float):
    """The exact eps-prediction E[eps | x_t] for data x_0 ~ N(mu, s^2)."""

    def eps(x: torch.Tensor, t: int) -> torch.Tensor:
        abar = float(sched.alphas_cumprod[t])
        return (1 - abar) ** 0.5 * (x - abar**0.5 * mu) / (abar * s * s + 1 - abar)

    return eps


def _run(sched, eps_fn, x: torch.Tensor, steps: int | None) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    for t in sched.set_timesteps(steps).tolist():
        x = sched.step(eps_fn(x, t), t, x, g).prev_sample
    return x


@pytest.mark.parametrize(
    "sampler,steps", [("ddpm", None), ("ddim-eta1", None), ("ddim", 20), ("ddim", 100)]
)
def test_samplers_reproduce_gaussian_data_statistics(sampler: str, steps: int | None) -> None:
    """With the exact noise predictor, every sampler must land on the data distribution.

    x_T is drawn from the true marginal q(x_T) (with T = 100 the linear schedule keeps
    sqrt(abar_T) ~ 0.6 of the signal), so any bias left is the sampler's own.
    """
    T, mu, s = 100, 0.3, 0.2
    sched = (
        DDPMScheduler(T, clip_sample=False)
        if sampler == "ddpm"
        else DDIMScheduler(T, clip_sample=False, eta=1.0 if sampler == "ddim-eta1" else 0.0)
    )
    abar = float(sched.alphas_cumprod[-1])
    z = torch.randn(20000, generator=torch.Generator().manual_seed(0))
    x_T = abar**0.5 * mu + (abar * s * s + 1 - abar) ** 0.5 * z
    x = _run(sched, _oracle_gaussian(sched, mu, s), x_T, steps)
    # 20 deterministic steps of stride 5 carry a visible discretisation error in the spread.
    tol = 0.03 if steps == 20 else 0.015
    assert abs(float(x.mean()) - mu) < 0.01
    assert abs(float(x.std()) - s) < tol


def test_deterministic_ddim_is_a_fixed_map_onto_the_data_point() -> None:
    """eta = 0 has no noise: two runs agree, and a point mass is recovered from any x_T."""
    T, c = 50, 0.5
    sched = DDIMScheduler(T, eta=0.0)

    def eps(x: torch.Tensor, t: int) -> torch.Tensor:  # exact for x_0 = c
        abar = float(sched.alphas_cumprod[t])
        return (x - abar**0.5 * c) / (1 - abar) ** 0.5

    x_T = torch.randn(64)
    a, b = _run(sched, eps, x_T.clone(), 10), _run(sched, eps, x_T.clone(), 10)
    assert torch.equal(a, b)
    assert torch.allclose(a, torch.full_like(a, c), atol=1e-4)


# -- network ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size,levels", [(28, 2), (32, 3), (15, 2)])
def test_unet_shapes_and_null_label(size: int, levels: int) -> None:
    net = UNet(3, 10, width=8, levels=levels)
    x = torch.randn(2, 3, size, size)
    out = net(x, torch.tensor([0, 19]), torch.tensor([3, 10]))  # label 10 = null context
    assert out.shape == x.shape
    with pytest.raises(IndexError):
        net(x, torch.tensor([0, 1]), torch.tensor([3, 11]))


# -- method -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, digits_data):
    """Two identical 4-step runs into run directories (shared: train() is the slow part)."""
    root = tmp_path_factory.mktemp("ddpm_runs")
    metrics = [
        train(tiny_cfg(steps=4, seed=3), root / name, data=digits_data) for name in ("a", "b")
    ]
    return root, metrics


def test_training_steps_are_finite_and_deterministic(two_runs) -> None:
    import csv

    from genda.engine.loop import load_method

    root, metrics = two_runs
    losses, weights, samples = [], [], []
    for name, m in zip(("a", "b"), metrics, strict=True):
        assert m["steps"] == 4 and m["method"] == "ddpm"
        with open(root / name / "history.csv") as f:
            losses.append([float(r["loss/mse"]) for r in csv.DictReader(f) if r.get("loss/mse")])
        _, meth = load_method(root / name)
        weights.append(meth.nets["ema"].state_dict())
        torch.manual_seed(11)
        samples.append(meth.sample(2, torch.tensor([1, 2]), steps=2))
    assert len(losses[0]) == 4 and all(math.isfinite(v) for v in losses[0])
    assert losses[0] == losses[1]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert torch.equal(samples[0], samples[1])


def test_sample_shapes_labels_reach_the_network_and_cfg_is_batched(model: DDPM) -> None:
    calls: list[tuple[int, torch.Tensor]] = []
    net = model.nets["ema"]
    orig = net.forward

    def spy(x, t, y):
        calls.append((len(x), y.clone()))
        return orig(x, t, y)

    net.forward = spy
    try:
        labels = torch.tensor([7, 3, 3])
        x = model.sample(3, labels, steps=4, guidance=1.5, sampler="ddim")
        assert x.shape == (3, 1, 28, 28) and float(x.abs().max()) <= 1
        assert len(calls) == 4  # one batched forward per DDIM step
        n, y = calls[0]
        assert n == 6 and y[:3].tolist() == [7, 3, 3] and y[3:].tolist() == [10, 10, 10]
        calls.clear()
        model.sample(2, torch.tensor([1, 2]), steps=3, guidance=0.0)
        assert [c[0] for c in calls] == [2, 2, 2]  # w = 0: conditional half only
        calls.clear()
        model.sample(2, torch.tensor([1, 2]), sampler="ddpm")
        assert len(calls) == model.hp.timesteps  # full ancestral sampling visits every t
    finally:
        del net.forward
    with pytest.raises(ValueError, match="labels"):
        model.sample(2, torch.tensor([1, 10]))
    with pytest.raises(ValueError, match="labels"):
        model.sample(3, torch.tensor([1, 2]))


def test_sampling_is_reproducible_with_a_seed(model: DDPM) -> None:
    torch.manual_seed(5)
    a = model.sample(3, torch.tensor([0, 1, 2]), steps=3)
    torch.manual_seed(5)
    b = model.sample(3, torch.tensor([0, 1, 2]), steps=3)
    assert torch.equal(a, b)


def test_cosine_betas_follow_the_squared_cosine() -> None:
    """Nichol & Dhariwal: abar(t) = f(t)/f(0), f(t) = cos^2((t/T + s)/(1+s) pi/2)."""
    T = 1000
    abar = DDPMScheduler(T, beta_schedule="cosine").alphas_cumprod
    f = lambda t: math.cos((t / T + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    assert abar[499].item() == pytest.approx(f(500) / f(0), rel=1e-9)
    assert bool((abar[1:] < abar[:-1]).all()) and abar[-1] < 1e-4
    assert cosine_betas(T).max() <= 0.999
    # the linear schedule leaves far less signal in the middle of the process
    assert DDPMScheduler(T).alphas_cumprod[499] < 0.5 * abar[499]
    with pytest.raises(ValueError, match="beta schedule must be one of linear, cosine"):
        DDPMScheduler(T, beta_schedule="sigmoid")


def test_sampler_choices_come_from_the_registries(model: DDPM) -> None:
    """hparams list what genda/schedulers.py registers; a scheduler object samples exactly
    like its registered name, and one with another noise schedule is refused."""
    with pytest.raises(ConfigError, match="valid choices: ddim, ddpm"):
        tiny_cfg(sampler="euler")
    assert list(BETA_SCHEDULES) == ["linear", "cosine"] and "ddim" in SCHEDULERS
    y = torch.tensor([0, 1])
    torch.manual_seed(3)
    by_name = model.sample(2, y, steps=4, sampler="ddim", eta=0.5)
    obj = DDIMScheduler(20, eta=0.5)  # TINY: 20 timesteps, linear betas
    torch.manual_seed(3)
    assert torch.equal(by_name, model.sample(2, y, steps=4, sampler=obj))
    with pytest.raises(ValueError, match="noise schedule differs"):
        model.sample(1, y[:1], sampler=DDIMScheduler(20, beta_schedule="cosine"))


def test_invalid_sampling_options_raise(model: DDPM) -> None:
    y = torch.tensor([0])
    for kw, msg in [
        ({"guidance": -0.5}, "guidance"),
        ({"steps": 0}, "steps"),
        ({"steps": 21}, "1..20"),
        ({"steps": 2.5}, "steps"),
        ({"sampler": "euler"}, "sampler"),
        ({"eta": 2.0}, "eta"),
        ({"return_trajectory_at": [21]}, "0..20"),
    ]:
        with pytest.raises(ValueError, match=msg):
            model.sample(1, y, **kw)


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="hparams.timesteps"):
        tiny_cfg(timesteps=5)
    with pytest.raises(ConfigError, match="hparams.timesteps"):
        tiny_cfg(timesteps=100000)
    with pytest.raises(ConfigError, match="hparams.guidance"):
        tiny_cfg(guidance=-1)
    info = DataInfo(1, 28, [str(i) for i in range(10)])
    with pytest.raises(ConfigError, match="sample_steps"):
        build_method(tiny_cfg(sample_steps=30), info)
    with pytest.raises(ConfigError, match="beta_start"):
        build_method(tiny_cfg(beta_start=0.03), info)


def test_conditioning_follows_the_data() -> None:
    cfg = tiny_cfg()
    assert build_method(cfg, DataInfo(1, 16, [str(i) for i in range(10)])).conditioning == "class"
    attr = build_method(cfg, DataInfo(3, 16, ["Smiling=0", "Smiling=1"]))
    assert attr.conditioning == "attribute"
    unc = build_method(cfg, DataInfo(3, 16, []))
    assert unc.conditioning == "none"
    assert unc.sample(2, None, steps=2).shape == (2, 3, 16, 16)


def test_reverse_trajectory_snaps_to_visited_times(model: DDPM) -> None:
    torch.manual_seed(0)
    x, traj = model.sample(2, torch.tensor([4, 5]), steps=5, return_trajectory_at=[20, 11, 0])
    times = [t for t, _ in traj]
    assert times[0] == 20 and times[-1] == 0 and len(times) == 3
    assert traj[0][1].shape == (2, 1, 28, 28)
    assert torch.equal(traj[-1][1], x.cpu())
    assert float(traj[0][1].std()) > 0.8  # the start is pure noise


def test_run_dir_has_sample_grid_and_reverse_strip(two_runs) -> None:
    from PIL import Image

    root, metrics = two_runs
    figs = metrics[0]["figures"]
    assert (root / "a" / figs["Samples (10 per class, rows = classes)"]).is_file()
    assert (root / "a" / figs["Reverse diffusion (DDPM ancestral)"]).is_file()
    with Image.open(root / "a" / "figures" / "samples.png") as im:
        assert im.size == (10 * 30 + 2, 10 * 30 + 2)  # 10x10 grid of 28-px cells, 2-px padding
