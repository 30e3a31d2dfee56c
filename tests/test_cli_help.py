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


def test_the_dataset_folder_has_one_spelling():
    from semgan.cli.completion import command_tree

    options = {cmd.key: {n for o in cmd.options if not o.hidden for n in o.names} for cmd in command_tree(PARSER)}
    for key in ("train", "pix2pix train", "evaluate", "compare", "data prepare", "data info", "data preview"):
        assert "--data-root" in options[key], key
    assert not any({"--root", "--data", "--data-dir"} & names for names in options.values())
    # --dataset is an input folder nowhere; dream's writes one (issue 25's spelling)
    assert [key for key, names in options.items() if "--dataset" in names] == ["dream"]


def test_metrics_help_lists_each_metric_with_its_better_direction(capsys):
    with pytest.raises(SystemExit):
        PARSER.parse_args(["metrics", "--help"])
    text = capsys.readouterr().out
    assert "ms_ssim_gap (lower is better)" in text and "swd.avg (lower is better)" in text
