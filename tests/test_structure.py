"""The dependency rule, checked on the source: every genda layer imports only layers below it.

errors -> config, io -> cache -> data, nets -> viz -> metrics -> methods -> engine | report -> api ->
demo -> cli. ``engine`` and ``report`` sit side by side and never import each other: the
engine writes run directories and ``table.csv``, the report reads them.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "genda"
LAYERS = {
    "errors": 0,
    "config": 1,
    "io": 1,
    "cache": 2,
    "data": 3,
    "nets": 3,
    "schedulers": 3,
    "viz": 4,
    "metrics": 5,
    "methods": 6,
    "engine": 7,
    "report": 7,
    "api": 8,
    "demo": 9,
    "cli": 10,
}


def unit(module: str) -> str | None:
    """``genda.engine.loop`` -> ``engine``; ``genda`` itself (the lazy API) -> ``api``."""
    parts = module.split(".")
    return "api" if parts == ["genda"] else parts[1] if parts[0] == "genda" else None


def imports() -> list[tuple[str, str, str]]:
    """(importing unit, imported unit, file) for every genda import, lazy ones included."""
    out = []
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        if rel.name == "__init__" and rel.parent == Path("genda"):
            continue  # the package root only forwards names to genda.api on first use
        src = unit(".".join(rel.parts))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module == "genda":
                names = [f"genda.{a.name}" for a in node.names]  # from genda import cache
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                dst = unit(name)
                if dst is not None and dst != src:
                    out.append((src, dst, str(path.relative_to(PACKAGE.parent))))
    return out


def test_every_unit_has_a_layer() -> None:
    units = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir() if p.name[0] != "_"}
    units.discard("__pycache__")
    assert units <= set(LAYERS), sorted(units - set(LAYERS))


def test_layers_only_look_down() -> None:
    found = imports()
    assert found, "no imports found: the checker is broken"
    bad = [f"{f}: {s} imports {d}" for s, d, f in found if LAYERS[s] <= LAYERS[d]]
    assert not bad, "\n".join(bad)
