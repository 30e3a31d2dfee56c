"""The ``semgan`` command line: all of its argument parsing, one module per group of commands.

:mod:`~semgan.cli.app` assembles the parser (``build_parser``) and runs it (``main``, the console script and
``python -m semgan``); :mod:`~semgan.cli.common` holds what the commands share (argument types, the one
``--data-root`` and ``--device``); :mod:`~semgan.cli.completion` turns the parser into bash and zsh completion.
The library modules know nothing of argparse.
"""

from __future__ import annotations

from semgan.cli.app import build_parser, main

__all__ = ["build_parser", "main"]
