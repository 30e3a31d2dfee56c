"""Files that are never torn: one atomic writer, and JSON-lines logs that survive a torn last line.

Everything semgan writes that a later command reads (checkpoints, configs, caches, reports, compare files)
goes through :func:`atomic_write`: the bytes go to a temporary file in the same folder, are flushed (and
fsynced where it matters), and the file is renamed over the target. A crash at any moment leaves the old file
or the new one, never half of one. Logs are appended a line at a time; a crash in the middle of a write can
leave a partial last line, which :func:`read_jsonl` drops instead of refusing the whole log.
:func:`cache_root` says where the on-disk caches (decoded datasets, FID statistics) live, or that they are off.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from semgan.errors import SemGANError

TMP_SUFFIX = ".tmp"  # temporaries are ".<name>.<random>.tmp" beside their target


def atomic_write(path: str | Path, write: Callable[[BinaryIO], object], *, durable: bool = False) -> None:
    """Write ``path`` through ``write(file)`` atomically: temporary file in the same folder, then rename.

    Args:
        path: the target; its folder is created if needed.
        write: called with the open binary temporary file.
        durable: also fsync the file and its folder, so that the new file survives a power loss (checkpoints).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as exc:  # a folder under a file, a read-only mount: say which path, not only why
        raise OSError(exc.errno, exc.strerror or str(exc), str(exc.filename or path.parent)) from exc
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        if exc.filename is None:  # a full disk names no file: the target is the subject
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if durable:  # make the rename itself durable (best effort: not every platform can fsync a folder)
        try:
            dir_fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError:
            pass


def write_text(path: str | Path, text: str) -> None:
    """Atomically write UTF-8 text."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def write_json(path: str | Path, doc: Any) -> None:
    """Atomically write ``doc`` as indented JSON with a final newline."""
    write_text(path, json.dumps(doc, indent=2, default=str) + "\n")


def append_jsonl(path: str | Path, record: dict[str, Any]) -> None:
    """Append one JSON line (opened per call: logs are written every few dozen steps, not in a hot loop)."""
    with Path(path).open("a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file, in file order; [] if it does not exist.

    A last line that does not parse is the trace of a write cut short (a crash, a full disk) and is dropped;
    a bad line anywhere else means the file is not ours, and is an error naming the line.
    """
    path = Path(path)
    if not path.is_file():
        return []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise SemGANError(f"cannot read {path}: {exc}") from exc
    records: list[dict[str, Any]] = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            if i == len(lines) - 1:
                break  # a torn last line
            raise SemGANError(f"{path}, line {i + 1}, is not a JSON-lines record: {exc}") from exc
        records.append(record)
    return records


def rewrite_jsonl(path: str | Path, records: list[dict[str, Any]]) -> None:
    """Atomically replace a JSON-lines file with ``records``."""
    write_text(path, "".join(json.dumps(r) + "\n" for r in records))


#: ``SEMGAN_CACHE`` values that turn every on-disk cache off.
CACHE_OFF = ("off", "0", "none", "false", "no")


def cache_root(cache_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """The folder every semgan cache lives under, or ``None`` when caching is off.

    ``cache_dir`` if given, else ``$SEMGAN_CACHE``, else ``$XDG_CACHE_HOME/semgan`` or ``~/.cache/semgan``;
    ``None`` when ``SEMGAN_CACHE`` is ``off`` (or ``0``, ``none``, ``false``, ``no``). Decoded datasets go to
    ``<root>/data/``, FID real-set statistics to ``<root>/fid/``; with ``None`` neither is read or written.
    A user cache rather than a folder beside the data, because dataset folders are often read-only or shared.
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("SEMGAN_CACHE", "").strip()
    if env.lower() in CACHE_OFF:
        return None
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(xdg) if xdg else Path.home() / ".cache") / "semgan"


def read_json_file(path: str | Path) -> dict[str, Any]:
    """A JSON object from ``path``; a file that is not one is an error naming it."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SemGANError(f"cannot read {path}: {exc}") from exc
    if not isinstance(doc, dict):
        raise SemGANError(f"{path} holds a JSON {type(doc).__name__}, not an object")
    return doc
