"""Reports: the UDA results table (``table.csv``/``table.md``) and the Markdown/HTML report."""

from genda.report.build import ReportError, build_report, discover
from genda.report.tables import (
    LOWER_BOUND,
    UPPER_BOUND,
    format_table_md,
    observations,
    read_table,
    summarise,
    write_table_md,
)

__all__ = [
    "LOWER_BOUND",
    "UPPER_BOUND",
    "ReportError",
    "build_report",
    "discover",
    "format_table_md",
    "observations",
    "read_table",
    "summarise",
    "write_table_md",
]
