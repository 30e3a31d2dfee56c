"""What the commands share: argument types argparse checks (so a bad value fails before any work), the one
spelling of shared options (``--data-root``, ``--device``), completion hints, and result printing."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeAlias

from semgan.errors import SemGANError

SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"  # what add_subparsers() returns
DEVICE_HELP = "auto (CUDA when there is one), cpu, cuda or cuda:N"
DEVICES = ("auto", "cpu", "cuda")
# An attribute set on an argparse action: the words shell completion offers for its value (where it has no
# `choices`, e.g. --preset, whose unknown names get semgan's own error naming the valid ones).
COMPLETE_ATTR = "semgan_complete"


def count(minimum: int, maximum: int | None = None, why: str = "") -> Callable[[str], int]:
    """An argparse ``type``: an integer in ``minimum..maximum``; argparse names the option when it fails.

    ``why`` says, in the message, what the maximum is for.
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"expected at most {maximum}{f' ({why})' if why else ''}, got {value}")
        return value

    parse.__name__ = "count"  # what argparse prints for an unparseable value
    return parse


POSITIVE = count(1)
NON_NEGATIVE = count(0)
MAX_SEED = 2**63 - 1  # torch's generators take a signed 64-bit seed


def seed(text: str) -> int:
    """An argparse ``type``: a seed, an integer in 0..2**63-1."""
    value = count(0)(text)
    if value > MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected a seed in 0..{MAX_SEED} (2**63 - 1), got {value}")
    return value


SEED = seed


def complete_with(action: argparse.Action, words: Iterable[str]) -> argparse.Action:
    """Have shell completion offer ``words`` for the value of ``action``."""
    setattr(action, COMPLETE_ATTR, tuple(words))
    return action


class _DeprecatedAlias(argparse.Action):
    """An old spelling of an option, hidden from help: stores into the new option's ``dest`` and warns."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        new = "--" + self.dest.replace("_", "-")
        print(f"semgan: warning: {option_string} is deprecated; use {new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_data_root(p: argparse.ArgumentParser, help: str, *, deprecated: Sequence[str] = ()) -> None:
    """``--data-root DIR``, the one spelling of the dataset folder in every command (old spellings: hidden)."""
    p.add_argument("--data-root", type=Path, metavar="DIR", help=help)
    for old in deprecated:
        p.add_argument(old, dest="data_root", type=Path, action=_DeprecatedAlias, help=argparse.SUPPRESS)


def add_device(p: argparse.ArgumentParser) -> None:
    """``--device``, ``auto`` by default in every command."""
    complete_with(p.add_argument("--device", default="auto", help=DEVICE_HELP), DEVICES)


def out_path(text: str) -> Path:
    """An argparse ``type`` for an output path (file or folder): refused at once, before any work, when a part of
    it is a file or the place it would be made in is read-only or not writable."""
    path = Path(text)
    existing = next((p for p in (path, *path.parents) if p.exists()), Path("."))
    if existing != path and not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{path}: {existing} is a file, not a folder; choose another path")
    folder = existing if existing.is_dir() else existing.parent
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):  # no statvfs (Windows): the write itself will say
        read_only = False
    if read_only:
        raise argparse.ArgumentTypeError(f"{path}: {folder} is on a read-only file system; choose a writable folder")
    if not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"{path}: {folder} is not writable by you; choose another folder")
    return path


OUT = out_path


def writable_file(path: Path) -> None:
    """Fail before the work, not after it, when ``path`` cannot be written."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise SemGANError(f"--out {path} is a folder; expected a file path for the JSON result")
    if not parent.is_dir():
        raise SemGANError(f"--out {path}: the folder {parent} does not exist")
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise SemGANError(f"--out {path} is not writable")


def metric_names(text: str) -> list[str]:
    """The names of a comma-separated ``--metrics`` value; a typo fails here, naming the valid metrics."""
    from semgan.metrics import check_metric_names

    names = check_metric_names(m.strip() for m in text.split(",") if m.strip())
    if not names:
        raise SemGANError(f"--metrics {text!r} names no metric; give one or more, e.g. --metrics swd,semantic")
    return names


def metrics_help() -> str:
    """``--metrics`` help: the registered names."""
    from semgan.metrics import METRICS

    return f"comma-separated, from: {', '.join(METRICS.names())}"


def metrics_description() -> str:
    """Every registered metric with its headline number, better direction and one-line description."""
    from semgan.metrics import METRICS

    lines = []
    for name in METRICS.names():
        spec = METRICS.get(name)
        better = "higher" if spec.higher_is_better else "lower"
        lines.append(f"  {name:10s} {'.'.join(spec.headline)} ({better} is better): {spec.description}")
    return "metrics, each judged by one number:\n" + "\n".join(lines)


def print_metrics(result: dict[str, object], as_json: bool) -> None:
    """A result dict as one JSON object, or one line per metric."""
    if as_json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        if isinstance(value, dict):
            inner = "  ".join(f"{k}={_fmt(v)}" for k, v in value.items())
            print(f"{key:14s} {inner}")
        else:
            print(f"{key:14s} {_fmt(value)}")


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return str(value)
