"""Run logging: history.csv (the report's source), TensorBoard, and the console."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from genda.io import write_text


class History:
    """Step-wise scalars kept in memory and rewritten atomically as ``history.csv``.

    Rows live in the checkpoint too, so a resumed run's history is exactly the
    uninterrupted one's; TensorBoard gets the same scalars.
    """

    def __init__(self, run_dir: Path | None) -> None:
        self.run_dir = run_dir
        self.rows: list[dict[str, float]] = []
        self.tb = None  # opened lazily so a resumed run can purge steps past its checkpoint

    def _writer(self, purge_step: int | None = None):
        if self.tb is None and self.run_dir is not None:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(self.run_dir / "tb"), purge_step=purge_step)
        return self.tb

    def log(self, step: int, time_s: float, values: dict[str, float]) -> None:
        row = {"step": step, "time_s": round(time_s, 3), **values}
        if self.rows and self.rows[-1]["step"] == step:
            self.rows[-1].update(row)
        else:
            self.rows.append(row)
        tb = self._writer()
        if tb is not None:
            for k, v in values.items():
                tb.add_scalar(k, v, step)

    def restore(self, rows: list[dict[str, float]], step: int) -> None:
        self.rows = [r for r in rows if r["step"] <= step]
        self._writer(purge_step=step + 1)

    def save(self) -> None:
        if self.run_dir is None:
            return
        keys: list[str] = []
        for r in self.rows:
            keys += [k for k in r if k not in keys]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=keys, restval="")
        w.writeheader()
        w.writerows(self.rows)
        write_text(self.run_dir / "history.csv", buf.getvalue())
        if self.tb is not None:
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
