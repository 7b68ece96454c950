"""``genda uda table --jobs N``: cells side by side equal the serial table, a failed cell
does not lose the others, and a half-finished parallel table resumes."""

from __future__ import annotations

import pytest

from genda.api import uda_table
from genda.errors import GendaError

PAIR = ("digits", "digits-m")
TINY = {
    "data": {"limit": 96},
    "train": {"steps": 6, "batch_size": 16, "threads": 1, "device": "cpu", "progress": False},
}
METHODS = ["source-only", "dann"]


def table(tmp_path, name: str, jobs: int, pairs=(PAIR,), cluster: str = "") -> str:
    return uda_table(
        list(pairs), tmp_path / name, METHODS, [0], TINY, log=print, jobs=jobs, cluster=cluster
    )


def test_parallel_equals_serial_and_resumes(tmp_path) -> None:
    serial = (table(tmp_path, "serial", 1).parent / "table.csv").read_text()
    parallel_dir = table(tmp_path, "parallel", 2).parent
    assert (parallel_dir / "table.csv").read_text() == serial  # same thread count: bitwise
    # half-finished: one cell lost its metrics (killed before the end), one its whole run
    (parallel_dir / "digits__digits-m/dann/seed0/metrics.json").unlink()
    for f in sorted((parallel_dir / "digits__digits-m/source-only/seed0").rglob("*"), reverse=True):
        f.unlink() if f.is_file() else f.rmdir()
    table(tmp_path, "parallel", 2)
    assert (parallel_dir / "table.csv").read_text() == serial
    # the cluster path: submitit's local executor (Slurm's job array elsewhere)
    local = table(tmp_path, "submitit", 2, cluster="local").parent
    assert (local / "table.csv").read_text() == serial and (local / "submitit").is_dir()


def test_a_failed_cell_is_reported_and_the_others_kept(tmp_path) -> None:
    bad = ("digits", f"mnist:{tmp_path / 'missing'}")
    with pytest.raises(GendaError, match=r"2 of 4 runs failed .*table.csv.*missing"):
        table(tmp_path, "t", 2, pairs=(PAIR, bad))
    rows = (tmp_path / "t" / "table.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 and all("digits-m" in r for r in rows[1:])
    assert (tmp_path / "t" / "table.md").is_file()


def test_a_later_table_into_the_same_folder_adds_its_rows(tmp_path) -> None:
    out = tmp_path / "t"
    uda_table([PAIR], out, ["source-only"], [0], TINY, log=print)
    first = (out / "table.csv").read_text().splitlines()
    uda_table([PAIR], out, ["dann"], [0], TINY, log=print)  # a method added later
    rows = (out / "table.csv").read_text().splitlines()
    assert rows[:2] == first and len(rows) == 3 and rows[2].startswith("dann,")
    longer = {**TINY, "train": {**TINY["train"], "steps": 7}}  # not the finished cell's run
    with pytest.raises(GendaError, match=r"other settings \(train.steps: 6 -> 7\)"):
        uda_table([PAIR], out, ["dann"], [0], longer, log=print)
    assert (out / "table.csv").read_text().splitlines() == rows
    (out / "table.csv").write_text("name,score\nx,1\n")  # someone else's file: not overwritten
    with pytest.raises(GendaError, match=r"table.csv: not a genda table.csv .*move it away"):
        uda_table([PAIR], out, ["dann"], [0], TINY, log=print)
    assert (out / "table.csv").read_text() == "name,score\nx,1\n"
