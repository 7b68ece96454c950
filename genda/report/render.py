"""A tiny document model rendered to both Markdown and self-contained HTML.

The report is built once as a list of blocks and rendered twice, so the ``.md`` and the
``.html`` always say the same thing, and the HTML needs no Markdown parser: no surprises
from table or code-fence edge cases, and byte-for-byte deterministic output.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Code:
    """Preformatted text; collapsible in HTML (architectures are long)."""

    text: str
    summary: str


@dataclass(frozen=True)
class Image:
    """A PNG: ``file`` is read for embedding in HTML, ``rel`` is the Markdown link target."""

    title: str
    file: Path
    rel: str


Block = Heading | Paragraph | Bullets | Table | Code | Image

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; } h2 { border-bottom: 1px solid #eee; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; }
th { background: #f3f3f3; } tr:nth-child(even) td { background: #fafafa; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
figure { display: inline-block; margin: 0.5em 1em 1em 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #555; }
details summary { cursor: pointer; }
""".strip()


def _md_cell(text: str) -> str:
    """Escape what would break a Markdown table row."""
    return text.replace("|", "\\|").replace("\n", " ")


def md_table(table: Table) -> str:
    """One pipe table; used alone by :func:`genda.report.tables.format_table_md`."""
    lines = [
        "| " + " | ".join(_md_cell(h) for h in table.header) + " |",
        "|" + "|".join(" --- " for _ in table.header) + "|",
    ]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines)


def to_markdown(blocks: list[Block]) -> str:
    """Render blocks as GitHub-flavoured Markdown (images linked, not embedded)."""
    parts: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            parts.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Paragraph):
            parts.append(b.text)
        elif isinstance(b, Bullets):
            parts.append("\n".join(f"- {item}" for item in b.items))
        elif isinstance(b, Table):
            parts.append(md_table(b))
        elif isinstance(b, Code):
            fence = "````" if "```" in b.text else "```"
            parts.append(f"{b.summary}:\n\n{fence}text\n{b.text.rstrip()}\n{fence}")
        elif isinstance(b, Image):
            parts.append(f"**{b.title}**\n\n![{b.title}]({b.rel})")
    return "\n\n".join(parts) + "\n"


def _data_uri(file: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(file.read_bytes()).decode("ascii")


def _html_block(b: Block) -> str:
    e = html.escape
    if isinstance(b, Heading):
        return f"<h{b.level}>{e(b.text)}</h{b.level}>"
    if isinstance(b, Paragraph):
        return f"<p>{e(b.text)}</p>"
    if isinstance(b, Bullets):
        return "<ul>\n" + "\n".join(f"<li>{e(i)}</li>" for i in b.items) + "\n</ul>"
    if isinstance(b, Table):
        head = "".join(f"<th>{e(h)}</th>" for h in b.header)
        body = "\n".join(
            "<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in b.rows
        )
        return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"
    if isinstance(b, Code):
        return (
            f"<details><summary>{e(b.summary)}</summary>\n"
            f"<pre>{e(b.text.rstrip())}</pre>\n</details>"
        )
    if isinstance(b, Image):
        return (
            f'<figure><img src="{_data_uri(b.file)}" alt="{e(b.title)}">'
            f"<figcaption>{e(b.title)}</figcaption></figure>"
        )
    raise TypeError(f"unknown block {type(b).__name__}")


def to_html(blocks: list[Block], title: str) -> str:
    """Render blocks as one standalone HTML page with images inlined as data URIs."""
    body = "\n".join(_html_block(b) for b in blocks)
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>\n{CSS}\n</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )
