"""The report as a document: a list of blocks that Markdown and HTML render alike, so the two never disagree."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MISSING = "—"


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    """Text with two inline marks: ``**bold**`` and ```code```."""

    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Cell:
    text: str
    bold: bool = False


@dataclass(frozen=True)
class Table:
    """``align``: one letter per column, ``l`` or ``r``; empty = the first column left, the others right."""

    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    caption: str = ""
    align: str = ""

    def alignment(self) -> str:
        return self.align or "l" + "r" * (len(self.header) - 1)


@dataclass(frozen=True)
class Image:
    """A PNG, ``path`` relative to the report folder."""

    path: str
    alt: str


@dataclass(frozen=True)
class Figure:
    image: Image
    caption: str


@dataclass(frozen=True)
class ImageTable:
    """Images side by side: one column per model, one row per kind of grid (``None`` = not available)."""

    header: tuple[str, ...]
    rows: tuple[tuple[str, tuple[Image | None, ...]], ...]
    caption: str = ""


@dataclass(frozen=True)
class Code:
    text: str
    summary: str


Block = Heading | Paragraph | Bullets | Table | Figure | ImageTable | Code


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|")


def render_markdown(blocks: Sequence[Block]) -> str:
    """The report as GitHub-flavoured Markdown; images are referenced by their relative paths."""
    parts: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):
            parts.append(f"{'#' * b.level} {b.text}")
        elif isinstance(b, Paragraph):
            parts.append(b.text)
        elif isinstance(b, Bullets):
            parts.append("\n".join(f"- {item}" for item in b.items))
        elif isinstance(b, Table):
            lines = ["| " + " | ".join(_md_cell(h) for h in b.header) + " |",
                     "|" + "|".join("---:" if a == "r" else "---" for a in b.alignment()) + "|"]
            for row in b.rows:
                lines.append("| " + " | ".join(f"**{_md_cell(c.text)}**" if c.bold else _md_cell(c.text)
                                               for c in row) + " |")
            parts.append("\n".join(lines) + (f"\n\n*{b.caption}*" if b.caption else ""))
        elif isinstance(b, Figure):
            parts.append(f"![{b.image.alt}]({b.image.path})\n\n*{b.caption}*")
        elif isinstance(b, ImageTable):
            lines = ["| | " + " | ".join(b.header) + " |", "|---|" + "---|" * len(b.header)]
            for label, images in b.rows:
                cells = [f"![{im.alt}]({im.path})" if im else MISSING for im in images]
                lines.append(f"| {_md_cell(label)} | " + " | ".join(cells) + " |")
            parts.append("\n".join(lines) + (f"\n\n*{b.caption}*" if b.caption else ""))
        elif isinstance(b, Code):
            parts.append(f"{b.summary}:\n\n```\n{b.text}\n```")
    return "\n\n".join(parts) + "\n"

