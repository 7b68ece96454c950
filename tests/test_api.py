"""The Python API without the CLI: the README's notebook example, run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import genda

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_example() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("### Python API (Jupyter, Colab)", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_readme_notebook_example_runs(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GENDA_CACHE", str(tmp_path / "cache"))
    torch.set_num_threads(1)  # conftest gives the next test its thread count back
    scope: dict = {}
    exec(compile(readme_example(), str(README), "exec"), scope)  # noqa: S102
    assert scope["images"].shape == (16, 1, 28, 28) and scope["images"].dtype == torch.uint8
    assert 0 <= scope["run"].metrics["target_accuracy"] <= 100
    assert scope["table"].read_text().startswith("# Domain adaptation results")
    assert (tmp_path / "runs/nb/report/report.html").is_file()
    cfg, method = genda.load(tmp_path / "runs/nb/dann")
    assert cfg.method == "dann" and not method.training


def test_unknown_option_names_the_valid_ones() -> None:
    with pytest.raises(genda.api.ConfigError, match="unknown option 'stpes'; valid: data"):
        genda.train("dann", stpes=3)


def test_every_api_function_is_reachable_from_the_package() -> None:
    from genda import api

    public = {n for n, f in vars(api).items() if callable(f) and f.__module__ == "genda.api"}
    public -= {"raw_config"}  # a helper of the functions below, not part of the API
    assert public <= set(genda.__all__)
    assert genda.fid is api.fid and genda.guidance_sweep is api.guidance_sweep


def test_sample_into_a_folder_refuses_classes(tmp_path) -> None:
    from genda.errors import ConfigError

    with pytest.raises(ConfigError, match="takes no classes"):
        genda.sample(tmp_path / "run", classes=[1, 2], out=tmp_path / "samples")
