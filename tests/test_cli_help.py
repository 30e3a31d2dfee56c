"""Help that shows defaults and examples, for the command and every subcommand."""

from __future__ import annotations

import subprocess
import sys

import pytest

from semgan.cli import build_parser

PARSER = build_parser()  # one for the module: building it imports every command's module


def _subcommands() -> list[list[str]]:
    parser = PARSER
    out: list[list[str]] = []
    for action in parser._subparsers._group_actions:  # type: ignore[union-attr]
        for name, sub in action.choices.items():
            out.append([name])
            for nested in getattr(sub, "_subparsers", None)._group_actions if sub._subparsers else []:
                out += [[name, n] for n in nested.choices]
    return out


def test_python_m_semgan_help_shows_examples():
    done = subprocess.run([sys.executable, "-m", "semgan", "--help"], capture_output=True, text=True, check=True)
    assert "examples:" in done.stdout and "semgan sample runs/shapes --seeds 0-15" in done.stdout


@pytest.mark.parametrize("argv", _subcommands(), ids=" ".join)
def test_every_subcommand_help_shows_its_defaults(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        PARSER.parse_args([*argv, "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "(default: None)" not in text and "(default: False)" not in text
    if argv in (["sample"], ["dream"], ["evaluate"]):
        assert "(default: auto)" in text and "(default: 0)" in text
