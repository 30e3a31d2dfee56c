"""``semgan completion bash|zsh``: scripts generated from the parser, driven as the shells drive them."""

from __future__ import annotations

import shlex
import shutil
import subprocess

import pytest

from semgan.cli import build_parser, main
from semgan.cli.completion import bash_script, zsh_script

PARSER = build_parser()
BASH = shutil.which("bash")


@pytest.fixture(scope="module")
def bash() -> str:
    return bash_script(PARSER)


def complete(script: str, line: str) -> list[str]:
    """What the bash completion function offers for the last word of ``line`` ("" after a trailing space)."""
    words = shlex.split(line) + ([""] if line.endswith(" ") else [])
    if words[-1].startswith("--") and "=" in words[-1]:  # as COMP_WORDBREAKS splits --opt=value
        opt, value = words.pop().split("=", 1)
        words += [opt, "=", value]
    driver = (f"{script}\nCOMP_WORDS=({' '.join(shlex.quote(w) for w in words)}); COMP_CWORD={len(words) - 1}\n"
              '_semgan\nprintf "%s\\n" "${COMPREPLY[@]}"\n')
    done = subprocess.run([BASH or "bash", "--norc", "-c", driver], capture_output=True, text=True, check=True)
    return [w for w in done.stdout.splitlines() if w]


def test_the_command_prints_the_scripts(capsys):
    assert main(["completion", "bash"]) == 0
    assert capsys.readouterr().out == bash_script(PARSER)
    assert main(["completion", "zsh"]) == 0
    assert capsys.readouterr().out.startswith("#compdef semgan")


@pytest.mark.skipif(BASH is None, reason="bash is not installed")
class TestBash:
    def test_the_script_parses(self, bash, tmp_path):
        (tmp_path / "semgan.bash").write_text(bash)
        subprocess.run([BASH or "bash", "-n", str(tmp_path / "semgan.bash")], check=True)

    def test_it_registers_for_semgan(self, bash):
        done = subprocess.run([BASH or "bash", "--norc", "-c", f"{bash}\ncomplete -p semgan"], capture_output=True,
                              text=True, check=True)
        assert "-F _semgan" in done.stdout

    def test_commands(self, bash):
        assert complete(bash, "semgan tr") == ["train"]
        assert "completion" in complete(bash, "semgan ")

    def test_nested_commands(self, bash):
        assert complete(bash, "semgan pix2pix t") == ["train", "translate"]
        assert complete(bash, "semgan data p") == ["prepare", "preview"]

    def test_options(self, bash):
        assert complete(bash, "semgan train --pre") == ["--preset"]
        assert "--data-root" in complete(bash, "semgan data info facades --")
        assert "--root" not in complete(bash, "semgan data info facades --"), "deprecated spellings stay hidden"

    def test_preset_names(self, bash):
        assert complete(bash, "semgan train --preset ti") == ["tiny"]
        assert complete(bash, "semgan train --preset=ti") == ["tiny"]
        assert complete(bash, "semgan pix2pix train --preset pix2pix-t") == ["pix2pix-tiny"]
        assert complete(bash, "semgan compare --out x --preset shapes") == ["shapes", "shapes-cpu"]

    def test_choices(self, bash):
        assert complete(bash, "semgan train --mode ") == ["semgan", "gan"]
        assert complete(bash, "semgan sample run --device c") == ["cpu", "cuda"]
        assert complete(bash, "semgan completion ") == ["bash", "zsh"]
        assert complete(bash, "semgan data info sh") == ["shapes"]

    def test_option_values_are_not_taken_for_commands_or_positionals(self, bash):
        assert complete(bash, "semgan train --set model.ks=7 --pre") == ["--preset"]
        assert complete(bash, "semgan data info --size 8 sh") == ["shapes"]
        assert complete(bash, "semgan data info --root x sh") == ["shapes"], "a hidden option still takes a value"
        assert complete(bash, "semgan data info shapes ") == [], "NAME given: file names (the shell's default)"

    def test_file_values_fall_back_to_the_shell(self, bash):
        assert complete(bash, "semgan train --out ") == []  # `complete -o default`: file names
        assert complete(bash, "semgan sample ") == []


def test_zsh_script_has_every_command():
    script = zsh_script(PARSER)
    for name in ("train", "pix2pix", "translate", "sample", "evaluate", "compare", "report", "completion", "prepare"):
        assert f"'{name}:" in script, name
    assert "--preset" in script and "tiny" in script and "compdef _semgan semgan" in script


# Outside a completion widget `words` and `CURRENT` are plain variables, so the function runs with the builtins
# it calls replaced by stubs that print what they would offer (zsh filters by the typed prefix itself).
ZSH_DRIVER = r"""
compdef() { :; }
source "$1"
compadd() { [[ $1 == -a ]] && print -l -- "${(P@)2}" }
_describe() { print -l -- "${(P@)4}" | sed 's/:.*//' }
_files() { print -- "<files>" }
compset() { :; }
words=(${(z)2}); [[ $2 == *" " ]] && words+=("")
CURRENT=${#words}
_semgan
"""


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed; only the script's content is checked")
def test_zsh_script_parses_and_completes(tmp_path):
    (tmp_path / "_semgan").write_text(zsh_script(PARSER))
    subprocess.run(["zsh", "-n", str(tmp_path / "_semgan")], check=True)
    (tmp_path / "driver.zsh").write_text(ZSH_DRIVER)

    def offered(line: str) -> list[str]:
        done = subprocess.run(["zsh", "-f", str(tmp_path / "driver.zsh"), str(tmp_path / "_semgan"), line],
                              capture_output=True, text=True, check=True)
        return done.stdout.split()

    assert "train" in offered("semgan tr") and "completion" in offered("semgan ")
    assert offered("semgan pix2pix t") == ["train", "translate"]
    assert "--preset" in offered("semgan train --pre")
    assert "tiny" in offered("semgan train --preset ti") and "tiny" in offered("semgan train --preset=ti")
    assert offered("semgan train --mode ") == ["semgan", "gan"]
    assert "shapes" in offered("semgan data info ")
    assert offered("semgan train --out ") == ["<files>"]
