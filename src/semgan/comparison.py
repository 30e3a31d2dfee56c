"""The compare folder's own file, ``compare.json``: its format, read and written atomically.

Read by :mod:`semgan.compare` (which runs the protocol) and :mod:`semgan.report` (which reports it), so
neither imports the other's internals.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from semgan import __version__
from semgan.config import MODES as _ALL_MODES
from semgan.config import Mode, from_dict
from semgan.errors import SemGANError
from semgan.io import write_json

COMPARE_FILE = "compare.json"
FORMAT = 1  # bump when the layout of compare.json changes
MODES: tuple[Mode, ...] = _ALL_MODES  # training order and the report's row order: SemGAN, then the baseline


def read_compare(out: str | Path) -> dict[str, Any]:
    """The parsed ``compare.json`` of a compare folder.

    Raises:
        SemGANError: if the folder holds no compare or the file is unreadable.
    """
    path = Path(out) / COMPARE_FILE
    if not path.is_file():
        raise SemGANError(f"{Path(out)} is not a compare folder (no {COMPARE_FILE}); create one with semgan compare")
    try:
        doc = json.loads(path.read_text())
        from_dict(doc["config"])  # validates the keys
        runs = doc["runs"]
        if not isinstance(runs, list) or not all({"name", "mode", "seed"} <= set(r) for r in runs):
            raise ValueError("runs must be a list of {name, mode, seed, ...}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SemGANError(f"{path} is unreadable or not a semgan compare file: {exc}") from exc
    if doc.get("format", FORMAT) > FORMAT:
        raise SemGANError(f"{path} has format {doc['format']}; this semgan ({__version__}) reads up to {FORMAT}")
    return dict(doc)


def write_compare(out: str | Path, doc: dict[str, Any]) -> None:
    """Write ``compare.json`` atomically: a compare can be interrupted at any moment, and a torn file would
    orphan its runs."""
    write_json(Path(out) / COMPARE_FILE, doc)
