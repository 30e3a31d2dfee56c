"""User errors at the command line: one clear line and exit code 2, never a traceback, nothing lost."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from semgan.cli import main
from semgan.config import apply_overrides
from semgan.run_dir import RunDir
from semgan.train import train


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from semgan.config import get_preset

    cfg = apply_overrides(get_preset("tiny"), {"train.device": "cpu", "train.steps": 4})
    return train(cfg, tmp_path_factory.mktemp("cli") / "run", progress=False)


@pytest.mark.parametrize("argv", [
    ["sample", "RUN", "--n", "-1", "--out", "OUT"],
    ["sample", "RUN", "--n", "0", "--out", "OUT"],
    ["sample", "RUN", "--n", "many", "--out", "OUT"],
    ["evaluate", "RUN", "--n", "-1"],
    ["train", "--preset", "tiny", "--steps", "-5", "--out", "OUT"],
    ["compare", "--preset", "tiny", "--seeds", "0", "--out", "OUT"],
    ["metrics", "RUN", "RUN", "--n", "0"],
])  # fmt: skip
def test_bad_counts_are_refused_before_any_work(argv, tiny_run, tmp_path, capsys):
    argv = [str(tiny_run) if a == "RUN" else str(tmp_path / "out") if a == "OUT" else a for a in argv]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "expected an integer" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_evaluate_checks_out_first_and_keeps_the_scores(tiny_run, tmp_path, capsys, monkeypatch):
    assert main(["evaluate", str(tiny_run), "--metrics", "semantic", "--n", "8",
                 "--out", str(tmp_path / "missing" / "m.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    # a write that fails after the work: the scores are printed first
    import semgan.io

    def refuse(path, doc):
        raise OSError(28, os.strerror(28), str(path))

    monkeypatch.setattr(semgan.io, "write_json", refuse)
    assert main(["evaluate", str(tiny_run), "--metrics", "semantic", "--n", "8", "--json",
                 "--out", str(tmp_path / "m.json")]) == 2
    out, err = capsys.readouterr()
    assert "semantic" in json.loads(out) and "No space left on device" in err and "printed above" in err


def test_non_finite_weights_are_refused(tiny_run, tmp_path, capsys):
    run = RunDir(tiny_run)
    ckpt = run.load_checkpoint()
    ckpt["G"] = {k: v.fill_(float("nan")) if v.is_floating_point() else v for k, v in ckpt["G"].items()}
    torch.save(ckpt, tmp_path / "nan.pt")
    assert main(["sample", str(tmp_path / "nan.pt"), "--n", "2", "--out", str(tmp_path / "s")]) == 2
    assert "non-finite generator weights" in capsys.readouterr().err and not (tmp_path / "s").exists()


def test_sample_never_mixes_old_and_new_files(tiny_run, tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["sample", str(tiny_run), "--n", "3", "--out", str(out), "--no-progress"]) == 0
    assert main(["sample", str(tiny_run), "--n", "2", "--out", str(out), "--no-progress"]) == 2
    assert "already holds samples" in capsys.readouterr().err
    assert len(list((out / "labels").glob("*.png"))) == 3


def test_os_errors_are_one_line(tmp_path, capsys, monkeypatch):
    import semgan.cli.train

    def boom(args):
        raise PermissionError(13, "Permission denied", "/some/where")

    monkeypatch.setattr(semgan.cli.train, "_cmd_presets", boom)
    assert main(["presets"]) == 2
    assert capsys.readouterr().err.strip() == ("semgan: error: cannot use /some/where: permission denied; choose a "
                                               "folder you may write to (or read)")


def _folder_with(tmp_path: Path, extra: dict[bytes, bytes]) -> Path:
    import numpy as np
    from PIL import Image

    root = tmp_path / "maps"
    root.mkdir()
    (root / "classes.json").write_text('{"names": ["a", "b"], "colors": [[0, 0, 0], [255, 0, 0]]}')
    for i in range(3):
        Image.fromarray(np.eye(8, dtype=np.uint8)).save(root / f"{i}.png")
    for name, data in extra.items():
        with open(os.path.join(os.fsencode(root), name), "wb") as f:
            f.write(data)
    return root


def _png_header(w: int, h: int) -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("w", "h"), [(30000, 30000), (8000, 8000)])  # over PIL's own limit, and over ours only
def test_images_over_the_pixel_budget_are_refused_before_decoding(w, h, tmp_path, capsys):
    root = _folder_with(tmp_path, {b"bomb.png": _png_header(w, h)})
    argv = ["data", "info", "folder", "--data-root", str(root)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "bomb.png" in err and "pixels" in err and "Traceback" not in err
    assert main([*argv, "--skip-bad"]) == 0
    assert "3 maps" in capsys.readouterr().out


def test_file_names_of_any_bytes(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    root = _folder_with(tmp_path, {})
    Image.fromarray(np.eye(8, dtype=np.uint8)).save(os.path.join(os.fsencode(root), b"\xff\xfe.png"))
    assert main(["data", "info", "folder", "--data-root", str(root)]) == 0
    assert "4 maps" in capsys.readouterr().out


def test_a_full_disk_names_the_file_it_could_not_write(tmp_path, monkeypatch, capsys):
    import errno as errno_

    import semgan.io

    def full(src, dst):  # noqa: ARG001
        raise OSError(errno_.ENOSPC, "No space left on device")

    monkeypatch.setattr(semgan.io.os, "replace", full)
    assert main(["sample", "--pretrained", "shapes", "--n", "2", "--out", str(tmp_path / "s"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("semgan: error: ") and err.endswith(": No space left on device")
    assert str(tmp_path / "s") in err and "error::" not in err


def test_a_seed_too_large_and_an_empty_metric_list_are_one_line(capsys):
    with pytest.raises(SystemExit):
        main(["sample", "--pretrained", "shapes", "--seed", "18446744073709551616", "--out", "x"])
    assert "expected a seed in 0..9223372036854775807" in capsys.readouterr().err
    assert main(["evaluate", "pretrained:shapes", "--metrics", "", "--n", "4"]) == 2
    assert "names no metric" in capsys.readouterr().err


def _folder(path: Path, n: int, size: int = 32) -> Path:
    from PIL import Image

    path.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 3, (size, size), dtype=np.uint8) * 100).convert("RGB").save(path / f"{i}.png")
    return path


def test_jpeg_data_named_png_is_no_label_map(tmp_path):
    from PIL import Image

    from semgan.data.decode import read_index_values
    from semgan.errors import SemGANError
    from semgan.labels import read_label_png

    path = tmp_path / "map.png"
    Image.fromarray(np.full((16, 16), 2, dtype=np.uint8)).save(path, format="JPEG")  # a grey JPEG, named .png
    for read in (read_label_png, lambda p: read_index_values(p, hint="")):
        with pytest.raises(SemGANError, match=r"map.png holds JPEG data .* must be a lossless PNG"):
            read(path)


def test_metrics_refuse_a_16_bit_image_and_skip_bad_leaves_it_out(tmp_path, capsys):
    from PIL import Image

    real, fake = _folder(tmp_path / "real", 4), _folder(tmp_path / "fake", 4)
    Image.fromarray(np.full((32, 32), 60000, dtype=np.uint16)).save(fake / "9.png")  # mode I;16
    assert main(["metrics", str(real), str(fake), "--metrics", "swd"]) == 2
    err = capsys.readouterr().err
    assert "9.png is a mode-I;16 image" in err and "--skip-bad" in err
    assert "Traceback" not in err
    assert main(["metrics", str(real), str(fake), "--metrics", "swd", "--skip-bad", "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["n_fake"] == 4 and "skipped 1 of 5 images" in err and "9.png" in err


@pytest.mark.parametrize("argv", [
    ["sample", "--pretrained", "shapes", "--n", "4", "--out", "OUT"],
    ["train", "--preset", "tiny", "--steps", "2", "--out", "OUT"],
    ["export", "pretrained:shapes", "--out", "OUT"],
    ["evaluate", "pretrained:shapes", "--n", "4", "--out", "OUT"],
])  # fmt: skip
def test_an_out_under_a_file_or_on_a_read_only_mount_is_refused_before_any_work(argv, tmp_path, capsys, monkeypatch):
    (tmp_path / "afile").write_text("x")
    with pytest.raises(SystemExit) as exc:
        main([str(tmp_path / "afile" / "out") if a == "OUT" else a for a in argv])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "afile is a file, not a folder" in err and "sampling" not in err

    class ReadOnly:
        f_flag = os.ST_RDONLY

    monkeypatch.setattr(os, "statvfs", lambda path: ReadOnly())
    with pytest.raises(SystemExit):
        main([str(tmp_path / "new") if a == "OUT" else a for a in argv])
    assert "is on a read-only file system" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["data", "prepare", "shapes"], "shapes is generated, not read from files, so there is nothing to prepare"),
    (["data", "prepare", "folder", "--data-root", "ROOT", "--size", "100000"],
     "size 100000 is over the maximum of 4096"),
    (["compare", "--preset", "pix2pix-tiny", "--out", "OUT"], "compare trains SemGAN against its RGB baseline"),
    (["compare", "--preset", "tiny", "--seeds", "100000", "--out", "OUT"], "--seeds: expected at most 100"),
    (["pix2pix", "train", "--resume", "--out", "RUN"],
     "is a semgan run, not a pix2pix one; resume it with `semgan train"),
])  # fmt: skip
def test_messages_point_the_right_way(argv, message, tiny_run, tmp_path, capsys):
    argv = [{"RUN": str(tiny_run), "OUT": str(tmp_path / "out"), "ROOT": str(tmp_path)}.get(a, a) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_mixed_sizes_name_the_odd_file(tmp_path):
    from PIL import Image

    from semgan.data import load_dataset
    from semgan.errors import SemGANError

    (tmp_path / "classes.json").write_text('{"names": ["a", "b"], "colors": [[0, 0, 0], [255, 0, 0]]}')
    for i in range(3):
        Image.fromarray(np.eye(8, dtype=np.uint8)).save(tmp_path / f"{i}.png")
    Image.fromarray(np.eye(16, dtype=np.uint8)).save(tmp_path / "odd.png")
    with pytest.raises(SemGANError, match=r"3 of 8x8 \(e.g. 0.png\); 1 of 16x16 \(e.g. odd.png\)"):
        load_dataset("folder", root=str(tmp_path))
