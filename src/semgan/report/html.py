"""HTML rendering of the comparison report: one self-contained file, images inlined as base64 data URIs.

The file opens anywhere (mail attachment, CI artefact, a browser on another machine) with no folder beside it
and no network: styles are inline, there is no script, and every PNG becomes a ``data:image/png;base64`` URI.
The blocks come from :func:`semgan.report.build.build_document`, the same ones ``report.md`` is rendered from.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Sequence
from pathlib import Path

from semgan.errors import SemGANError
from semgan.report.document import Block, Bullets, Code, Figure, Heading, Image, ImageTable, Paragraph, Table

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1200px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 1em 0 0.3em; font-variant-numeric: tabular-nums; }
th, td { padding: 0.3em 0.7em; border-bottom: 1px solid #ddd; text-align: right; }
th.l, td.l { text-align: left; }
thead th { border-bottom: 2px solid #444; }
caption { caption-side: bottom; text-align: left; font-style: italic; font-size: 0.9em; padding-top: 0.4em; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; }
figcaption { font-style: italic; font-size: 0.9em; }
table.grids td { text-align: center; vertical-align: top; }
table.grids th { text-align: left; max-width: 16em; font-weight: normal; }
table.grids img { width: 320px; max-width: 45vw; image-rendering: pixelated; }
code, pre { background: #f5f5f5; border-radius: 3px; }
pre { padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
"""


def _inline(text: str) -> str:
    """Escape ``text`` and turn its two inline marks, ``**bold**`` and ```code```, into tags."""
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)


def data_uri(path: Path) -> str:
    """A PNG file as a ``data:image/png;base64,...`` URI."""
    try:
        payload = base64.b64encode(path.read_bytes()).decode("ascii")
    except OSError as exc:
        raise SemGANError(f"cannot read the report image {path}: {exc}") from exc
    return f"data:image/png;base64,{payload}"


def _img(image: Image, root: Path) -> str:
    return f'<img src="{data_uri(root / image.path)}" alt="{html.escape(image.alt)}">'


def _table(table: Table) -> str:
    align = [' class="l"' if a == "l" else "" for a in table.alignment()]
    head = "".join(f"<th{a}>{html.escape(h)}</th>" for a, h in zip(align, table.header, strict=True))
    body = []
    for row in table.rows:
        cells = [f"<strong>{html.escape(c.text)}</strong>" if c.bold else html.escape(c.text) for c in row]
        body.append("<tr>" + "".join(f"<td{a}>{c}</td>" for a, c in zip(align, cells, strict=True)) + "</tr>")
    caption = f"<caption>{_inline(table.caption)}</caption>" if table.caption else ""
    return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _image_table(table: ImageTable, root: Path) -> str:
    head = "<th></th>" + "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
    body = []
    for label, images in table.rows:
        cells = "".join(f"<td>{_img(im, root) if im else '—'}</td>" for im in images)
        body.append(f"<tr><th>{html.escape(label)}</th>{cells}</tr>")
    caption = f"<caption>{_inline(table.caption)}</caption>" if table.caption else ""
    return f'<table class="grids">{caption}<thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def render_html(blocks: Sequence[Block], root: Path, *, title: str) -> str:
    """The report as one HTML page.

    Args:
        blocks: the report's blocks.
        root: the folder the blocks' image paths are relative to.
        title: the page title.

    Returns:
        The HTML text; every image is embedded, so the page needs no other file.
    """
    parts: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            parts.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Paragraph):
            parts.append(f"<p>{_inline(b.text)}</p>")
        elif isinstance(b, Bullets):
            parts.append("<ul>" + "".join(f"<li>{_inline(item)}</li>" for item in b.items) + "</ul>")
        elif isinstance(b, Table):
            parts.append(_table(b))
        elif isinstance(b, Figure):
            parts.append(f"<figure>{_img(b.image, root)}<figcaption>{_inline(b.caption)}</figcaption></figure>")
        elif isinstance(b, ImageTable):
            parts.append(_image_table(b, root))
        elif isinstance(b, Code):
            parts.append(f"<details><summary>{_inline(b.summary)}</summary><pre>{html.escape(b.text)}</pre></details>")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<title>{html.escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body>\n</html>\n"
    )
