"""A tiny document model rendered to both Markdown and self-contained HTML.

The report is built once as a list of blocks and rendered twice, so the ``.md`` and the
``.html`` always say the same thing, and the HTML needs no Markdown parser: no surprises
from table or code-fence edge cases, and byte-for-byte deterministic output.
"""

from __future__ import annotations

import base64
import html
import re
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


@dataclass(frozen=True)
class Gallery:
    """Figures side by side: ``per_row`` to a row (0: as many as fit, 3 in Markdown), e.g.
    every method's t-SNE of one pair in one row."""

    images: tuple[Image, ...]
    per_row: int = 0


@dataclass(frozen=True)
class Toc:
    """The table of contents: Markdown links ``[text](#id)``."""

    items: tuple[str, ...]


Block = Heading | Paragraph | Bullets | Table | Code | Image | Gallery | Toc

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px;
       margin: 2em auto; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; } h2 { border-bottom: 1px solid #eee; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; display: block;
        max-width: 100%; overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left;
         overflow-wrap: anywhere; }
p, li { overflow-wrap: anywhere; }
code { background: #f3f3f3; padding: 0 0.2em; border-radius: 3px; font-size: 0.9em; }
nav.toc { background: #fafafa; border: 1px solid #eee; padding: 0.5em 1em; }
nav.toc ul { margin: 0.2em 0; padding-left: 1.2em; }
th { background: #f3f3f3; } tr:nth-child(even) td { background: #fafafa; }
pre { background: #f6f8fa; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
figure { display: inline-block; margin: 0.5em 1em 1em 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #eee; cursor: zoom-in; }
figure img.zoom { position: fixed; inset: 0; margin: auto; max-width: 96vw; max-height: 96vh;
                  width: auto; z-index: 10; background: #fff; box-shadow: 0 0 0 100vmax #000a;
                  cursor: zoom-out; }
figcaption { font-size: 0.9em; color: #555; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(300px, 1fr));
           gap: 0.8em; align-items: start; margin: 0.5em 0 1em; }
.gallery figure { margin: 0; }
details summary { cursor: pointer; }
""".strip()


# A click enlarges a figure to the window and a second click (or Escape) shrinks it back.
ZOOM_JS = """
document.addEventListener("click", e => {
  const z = document.querySelector("img.zoom");
  if (z) { z.classList.remove("zoom"); if (z === e.target) return; }
  if (e.target.matches("figure img")) e.target.classList.add("zoom");
});
document.addEventListener("keydown", e => {
  if (e.key === "Escape") document.querySelector("img.zoom")?.classList.remove("zoom");
});
""".strip()


def anchors(blocks: list[Block]) -> dict[int, str]:
    """Stable ``id`` of every heading (by block index), as GitHub derives them, so the same
    table-of-contents links work in the HTML and in Markdown on GitHub/HackMD: lower case,
    punctuation dropped, spaces to hyphens, ``-1``, ``-2`` ... for repeats."""
    seen: dict[str, int] = {}
    out: dict[int, str] = {}
    for i, b in enumerate(blocks):
        if isinstance(b, Heading):
            slug = re.sub(r"[^\w\- ]", "", b.text.lower().replace("`", "")).replace(" ", "-")
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            out[i] = slug if n == 0 else f"{slug}-{n}"
    return out


def with_toc(blocks: list[Block], levels: tuple[int, ...] = (2,)) -> list[Block]:
    """``blocks`` with a table of contents of the ``levels`` headings after the title."""
    ids = anchors(blocks)
    items = tuple(
        f"[{b.text}](#{ids[i]})"
        for i, b in enumerate(blocks)
        if isinstance(b, Heading) and b.level in levels
    )
    if not items:
        return blocks
    at = 1 if blocks and isinstance(blocks[0], Heading) and blocks[0].level == 1 else 0
    return [*blocks[:at], Toc(items), *blocks[at:]]


def _inline(text: str) -> str:
    """Escaped HTML of one line of Markdown-ish text: `code` spans, **bold** and [text](#id)
    links. Run names, classes and table cells come from other people's files: quotes are
    escaped too, and a link target is only ever a heading id (word characters and hyphens)."""
    out = html.escape(text, quote=True)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    out = re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"\[([^\]]+)\]\((#[\w-]+)\)", r'<a href="\2">\1</a>', out)


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
        elif isinstance(b, Bullets | Toc):
            parts.append("\n".join(f"- {item}" for item in b.items))
        elif isinstance(b, Table):
            parts.append(md_table(b))
        elif isinstance(b, Code):
            fence = "````" if "```" in b.text else "```"
            parts.append(f"{b.summary}:\n\n{fence}text\n{b.text.rstrip()}\n{fence}")
        elif isinstance(b, Image):
            parts.append(f"**{b.title}**\n\n![{b.title}]({b.rel})")
        elif isinstance(b, Gallery):
            # GitHub and HackMD render images inside table cells: one row of figures each.
            per_row = b.per_row or 3
            for i in range(0, len(b.images), per_row):
                row = b.images[i : i + per_row]
                header = tuple(im.title for im in row)
                cells = (tuple(f"![{im.title}]({im.rel})" for im in row),)
                parts.append(md_table(Table(header, cells)))
    return "\n\n".join(parts) + "\n"


def _data_uri(file: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(file.read_bytes()).decode("ascii")


def _html_block(b: Block, anchor: str | None = None) -> str:
    e = html.escape
    if isinstance(b, Heading):
        return f'<h{b.level} id="{anchor}">{_inline(b.text)}</h{b.level}>'
    if isinstance(b, Paragraph):
        return f"<p>{_inline(b.text)}</p>"
    if isinstance(b, Bullets):
        return "<ul>\n" + "\n".join(f"<li>{_inline(i)}</li>" for i in b.items) + "\n</ul>"
    if isinstance(b, Toc):
        items = "\n".join(f"<li>{_inline(i)}</li>" for i in b.items)
        return f'<nav class="toc"><strong>Contents</strong>\n<ul>\n{items}\n</ul></nav>'
    if isinstance(b, Table):
        head = "".join(f"<th>{_inline(h)}</th>" for h in b.header)
        body = "\n".join(
            "<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in b.rows
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
            f"<figcaption>{_inline(b.title)}</figcaption></figure>"
        )
    if isinstance(b, Gallery):
        cols = f' style="grid-template-columns: repeat({b.per_row}, minmax(0, 1fr))"'
        return (
            f'<div class="gallery"{cols if b.per_row else ""}>\n'
            + "\n".join(map(_html_block, b.images))
            + "\n</div>"
        )
    raise TypeError(f"unknown block {type(b).__name__}")


def to_html(blocks: list[Block], title: str) -> str:
    """Render blocks as one standalone HTML page with images inlined as data URIs."""
    ids = anchors(blocks)
    body = "\n".join(_html_block(b, ids.get(i)) for i, b in enumerate(blocks))
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>\n{CSS}\n</style>\n</head>\n"
        f"<body>\n{body}\n<script>\n{ZOOM_JS}\n</script>\n</body>\n</html>\n"
    )
