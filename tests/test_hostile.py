"""Property-based hostile input: every case ends in a clear SemGANError or a correct result, never a traceback.

Random bytes as PNG, random sizes, modes and bit depths, random label values, truncated files, random JSON for
the classes file and the checkpoint loader, random command lines. Bounded by ``max_examples`` and a deadline
so that the whole file stays within a few tens of seconds on the 2-core CI machine.
"""

from __future__ import annotations

import io
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from semgan.checkpoint import load_checkpoint
from semgan.cli import main
from semgan.data.decode import read_index_values
from semgan.data.folder import parse_classes, read_classes_file
from semgan.errors import SemGANError
from semgan.labels import read_label_png

# No deadline and no "too slow" check: the CI machine is slow and may be busy; max_examples bounds the time
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
MODES = ["1", "L", "P", "RGB", "RGBA", "I;16", "I", "F", "LA", "CMYK"]


def _png(arr: np.ndarray, mode: str) -> bytes:
    buf = io.BytesIO()
    img = Image.fromarray(arr.astype(np.uint8)).convert(mode) if mode not in ("I;16", "I", "F") else \
        Image.fromarray(arr.astype({"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode]))
    img.save(buf, format="TIFF" if mode in ("I", "F", "CMYK") else "PNG")  # what PNG cannot hold
    return buf.getvalue()


@st.composite
def image_bytes(draw: st.DrawFn) -> bytes:
    h, w = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    arr = draw(st.integers(0, 2**31 - 1).map(lambda s: np.random.default_rng(s).integers(0, 256, (h, w))))
    data = _png(arr, draw(st.sampled_from(MODES)))
    cut = draw(st.one_of(st.none(), st.integers(0, len(data))))
    return data if cut is None else data[:cut]


@SETTINGS
@given(data=st.one_of(image_bytes(), st.binary(max_size=400)))
def test_label_loaders_on_any_bytes(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "x.png"
    path.write_bytes(data)
    for load in (read_label_png, lambda p: read_index_values(p, hint="decode colours instead")):
        outcome = _outcome(load, path)
        assert isinstance(outcome, str) or (outcome.ndim == 2 and outcome.size > 0)


def _outcome(fn, *args):  # noqa: ANN001, ANN202
    """fn's result, or the message of the SemGANError it raised (any other exception fails the test)."""
    try:
        return fn(*args)
    except SemGANError as exc:  # BadFileError included
        message = str(exc)
        assert message.strip(), "an empty message"
        return message


SCALARS = st.none() | st.booleans() | st.integers(-300, 300) | st.floats(allow_nan=True) | st.text(max_size=8)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner,
                                                                                         max_size=5), max_leaves=20)
CLASS_KEYS = st.sampled_from(["names", "colors", "values", "ignore", "encoding", "tolerance", "x"])


@SETTINGS
@given(spec=st.one_of(JSON, st.dictionaries(CLASS_KEYS, JSON, max_size=6)))
def test_classes_parser_on_any_json(spec: object) -> None:
    outcome = _outcome(parse_classes, spec)
    if not isinstance(outcome, str):
        class_set, encoding, _ = outcome
        assert encoding in ("index", "color") and len(class_set.names) >= 1


@SETTINGS
@given(text=st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_classes_file_on_any_text(tmp_path: Path, text: str) -> None:
    path = tmp_path / "classes.json"
    path.write_text(text, encoding="latin-1", errors="replace")
    with pytest.raises(SemGANError):
        read_classes_file(path)


@SETTINGS
@given(payload=JSON, cut=st.one_of(st.none(), st.integers(0, 2000)))
def test_checkpoint_loader_on_any_content(tmp_path: Path, payload: object, cut: int | None) -> None:
    path = tmp_path / "c.pt"
    buf = io.BytesIO()
    torch.save(payload, buf)
    data = buf.getvalue()
    path.write_bytes(data if cut is None else data[:cut])
    with pytest.raises(SemGANError):
        load_checkpoint(path)


def test_checkpoint_loader_never_runs_code(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):  # noqa: ANN204
            return (Path.touch, (tmp_path / "pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"format": 2, "version": "x", "step": 0, "config": {}, "G": Evil()}, path)
    with pytest.raises(SemGANError):
        load_checkpoint(path)
    assert not (tmp_path / "pwned").exists()


WORDS = st.sampled_from(["train", "sample", "evaluate", "metrics", "compare", "export", "data", "info", "prepare",
                         "--n", "--steps", "--seeds", "--out", "--preset", "--set", "--device", "--resume", "tiny",
                         "-1", "0", "3", "nan", "x=y", "train.lr=nan", "train.batch=0", "model.ks=-2", "cuda:7",
                         "mps", "folder", "--root", "/nonexistent", "--size", "--json", "--checkpoint", "best-x"])


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(words=st.lists(WORDS, min_size=1, max_size=7))
def test_cli_on_random_command_lines(tmp_path: Path, capsys: pytest.CaptureFixture[str], words: list[str]) -> None:
    argv = [str(tmp_path / "o") if w == "--out" else w for w in words]
    if "--out" in words:
        argv = [a for w in words for a in ((w, str(tmp_path / "o")) if w == "--out" else (w,))]
    if "train" in argv and "--preset" in argv and "--steps" not in argv:
        argv += ["--steps", "0"]  # never a long training run: the parsing and checks are under test
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code if isinstance(exc.code, int) else 2
    err = capsys.readouterr().err
    assert "Traceback" not in err, shlex.join(argv)
    assert code in (0, 2), (shlex.join(argv), code, err[-500:])
    if code == 2 and err:
        assert err.strip().splitlines()[-1].startswith(("semgan: error:", "usage:", "semgan")), err
