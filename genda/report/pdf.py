"""``report.pdf``: the HTML report printed by a headless Chromium (or Chrome) the machine has.

A browser renders exactly what the reader sees in report.html (tables, embedded figures,
code), so the PDF needs no second layout engine. Nothing is installed or downloaded here:
without a browser the error says how to get one.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from genda.errors import ReportError
from genda.io import atomic_path

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_browser() -> str | None:
    """The first headless-capable browser on ``PATH``."""
    return next((path for b in BROWSERS if (path := shutil.which(b))), None)


def html_to_pdf(html: Path, pdf: Path, timeout_s: float = 120) -> Path:
    """Print ``html`` to ``pdf`` (A4, background colours kept) with a headless browser."""
    browser = find_browser()
    if browser is None:
        raise ReportError(
            "--pdf needs Chromium or Chrome on PATH (e.g. apt-get install chromium); "
            f"or open {html} in a browser and print it to PDF"
        )
    with tempfile.TemporaryDirectory(prefix="genda-pdf-") as profile, atomic_path(pdf) as tmp:
        cmd = [
            browser,
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-pdf-header-footer",
            f"--user-data-dir={profile}",
            f"--print-to-pdf={tmp}",
            html.resolve().as_uri(),
        ]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as e:
            raise ReportError(f"{browser} did not print {html} within {timeout_s:.0f} s") from e
        if done.returncode != 0 or not Path(tmp).is_file() or Path(tmp).stat().st_size == 0:
            tail = (done.stderr or "").strip().splitlines()[-1:] or ["no output"]
            raise ReportError(f"{browser} could not print {html} to PDF: {tail[0]}")
    return pdf
