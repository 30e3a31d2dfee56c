"""The ``semgan`` command: a thin layer over the Python API.

User errors (:class:`semgan.errors.SemGANError`) are printed as one line without a traceback, exit code 2;
an interrupted training run exits with 130 after saving its checkpoint.
"""

from __future__ import annotations

import argparse
import errno
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from semgan import __version__
from semgan.cli import compare, completion, data, encoder, evaluate, export, sample, segmenter, train
from semgan.cli.common import SubParsers
from semgan.errors import SemGANError

EXAMPLES = """examples:
  semgan train --preset shapes-cpu --out runs/shapes               # ~12 min on 2 CPU cores
  semgan train --out runs/shapes --resume --steps 6000             # continue it
  semgan sample --pretrained shapes --seeds 0-15 --out samples     # the model shipped with semgan
  semgan sample runs/shapes --seeds 0-15 --out samples             # one map per seed: seed0000.png, ...
  semgan evaluate runs/shapes --metrics swd,ms_ssim,structure
  semgan compare --preset facades-cpu --data-root data/cmp_facade_base --seeds 3 --out runs/cmp
  semgan report runs/cmp                                           # report.html with tables, grids and plots
  semgan pix2pix train --preset pix2pix-facades-cpu --data-root data/cmp_facade_base --out runs/p2p
  semgan dream --generator runs/shapes --translator runs/p2p --n 16 --out dreams
  torchrun --nproc-per-node 4 -m semgan train --preset shapes --out runs/big
  eval "$(semgan completion bash)"                                 # TAB completion (bash; zsh: completion zsh)

`semgan COMMAND --help` shows each command's options and defaults; `semgan presets` lists every preset."""


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Each option's default after its help (not for flags, required options or options without a default);
    descriptions and examples printed as written."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        if (action.default is None or action.default is False or action.default == argparse.SUPPRESS
                or action.required or not action.option_strings or "%(default)" in help_text):
            return action.help
        return f"{help_text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """Every (sub)command's parser shows defaults (argparse gives subparsers the parser's own class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    """The ``semgan`` parser: every command, in the order ``semgan --help`` lists them."""
    parser = _Parser(prog="semgan", description=__doc__.splitlines()[0] if __doc__ else None, epilog=EXAMPLES)
    parser.add_argument("--version", action="version", version=f"semgan {__version__}")
    sub: SubParsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")  # type: ignore[assignment]
    train.add_train(sub)
    train.add_pix2pix(sub)
    sample.add_dream(sub)
    sample.add_sample(sub)
    encoder.add_encoder(sub)
    encoder.add_encode(sub)
    encoder.add_interpolate(sub)
    segmenter.add_segmenter(sub)
    evaluate.add_metrics(sub)
    evaluate.add_evaluate(sub)
    data.add_data(sub)
    export.add_export(sub)
    compare.add_compare(sub)
    compare.add_report(sub)
    train.add_presets(sub)
    completion.add_completion(sub, parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except SemGANError as exc:
        print(f"semgan: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `semgan presets | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside training (which saves and exits 130 itself)
        print("semgan: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:  # a file system refusal no check foresaw: one line, not a traceback
        print(f"semgan: error: {describe_os_error(exc)}", file=sys.stderr)
        return 2


def describe_os_error(exc: OSError) -> str:
    """One sentence naming the path and why the file system refused it, for the refusals users meet."""
    if not exc.filename:
        return str(exc.strerror or exc)
    path = Path(str(exc.filename))
    if exc.errno == errno.ENOTDIR:
        blocker = next((p for p in path.parents if p.is_file()), None)
        if blocker is not None:
            return f"cannot use {path}: {blocker} is a file, not a folder; choose another path"
    reasons = {
        errno.EROFS: "it is on a read-only file system; choose a writable folder",
        errno.EACCES: "permission denied; choose a folder you may write to (or read)",
        errno.EPERM: "the operation is not permitted there",
        errno.EISDIR: "it is a folder, where a file was expected",
    }
    return f"cannot use {path}: {reasons.get(exc.errno or -1, exc.strerror or str(exc))}"


if __name__ == "__main__":
    sys.exit(main())
