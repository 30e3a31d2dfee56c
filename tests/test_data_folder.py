"""The ``folder`` loader: index PNGs or colour PNGs plus a JSON/YAML classes file."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from semgan.data import load_dataset
from semgan.data.folder import parse_classes, read_classes_file
from semgan.errors import SemGANError

COLORS = [[0, 0, 0], [70, 130, 180], [70, 70, 70], [107, 142, 35]]
CLASSES = {"names": ["void", "sky", "building", "tree"], "colors": COLORS}


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMGAN_CACHE", str(tmp_path / "cache"))


def blocks(seed: int, values: list[int], h: int = 16, w: int = 24) -> np.ndarray:
    grid = np.random.default_rng(seed).choice(values, size=(h // 4, w // 4))
    return np.kron(grid, np.ones((4, 4), dtype=np.int64)).astype(np.uint8)


def write_classes(root: Path, spec: dict, name: str = "classes.json") -> Path:
    path = root / name
    path.write_text(json.dumps(spec))
    return path


@pytest.fixture
def index_root(tmp_path) -> Path:
    """img2.png (mode L), img10.png (mode P), sub/a.png (mode L), values 0..3."""
    root = tmp_path / "mine"
    (root / "sub").mkdir(parents=True)
    Image.fromarray(blocks(0, [0, 1, 2, 3])).save(root / "img2.png")
    p = Image.fromarray(blocks(1, [0, 1, 2, 3])).convert("L")
    p = Image.frombytes("P", p.size, p.tobytes())
    p.putpalette([c for rgb in COLORS for c in rgb])
    p.save(root / "img10.png")
    Image.fromarray(blocks(2, [0, 1, 2, 3])).save(root / "sub" / "a.png")
    write_classes(root, CLASSES)
    return root


def test_index_pngs_in_natural_order(index_root):
    ds = load_dataset("folder", root=str(index_root))
    assert ds.meta["files"] == ["img2.png", "img10.png", "sub/a.png"]
    assert ds.labels.shape == (3, 16, 24)  # native size by default
    assert np.array_equal(ds.labels[1].numpy(), blocks(1, [0, 1, 2, 3]))
    assert ds.class_names == ("void", "sky", "building", "tree") and ds.palette.tolist() == COLORS
    resized = load_dataset("folder", root=str(index_root), size=8)
    expected = np.asarray(Image.fromarray(blocks(0, [0, 1, 2, 3])).resize((8, 8), Image.Resampling.NEAREST))
    assert np.array_equal(resized.labels[0].numpy(), expected)
    assert len(load_dataset("folder", root=str(index_root), split="sub")) == 1


def test_values_merge_and_ignore(tmp_path):
    root = tmp_path / "v"
    root.mkdir()
    Image.fromarray(blocks(0, [10, 20, 21, 255])).save(root / "m.png")
    spec = {
        "names": ["void", "a", "b"],
        "colors": COLORS[:3],
        "values": [0, 10, 20],
        "merge": {"b": [21]},
        "ignore": [255],
    }
    write_classes(root, spec)
    ds = load_dataset("folder", root=str(root))
    src = blocks(0, [10, 20, 21, 255])
    expected = np.select([src == 10, (src == 20) | (src == 21)], [1, 2], 0)
    assert np.array_equal(ds.labels[0].numpy(), expected)


def test_values_not_in_classes_file_name_files_and_values(index_root, caplog):
    Image.fromarray(blocks(3, [0, 1, 7, 9])).save(index_root / "img3.png")
    Image.fromarray(blocks(4, [0, 250])).save(index_root / "sub" / "b.png")
    with pytest.raises(SemGANError) as info:
        load_dataset("folder", root=str(index_root))
    msg = str(info.value)
    assert "2 of 5 label maps are bad" in msg
    assert "img3.png: values 7, 9 out of range; expected the values listed in classes.json (accepted: 0..3)" in msg
    assert "sub/b.png: values 250 out of range" in msg
    with caplog.at_level(logging.WARNING, logger="semgan.data"):
        ds = load_dataset("folder", root=str(index_root), skip_bad=True)
    assert len(ds) == 3 and ds.meta["num_skipped"] == 2 and "skipped 2 of 5" in caplog.text


def test_rgb_png_in_index_mode_points_at_colour_encoding(index_root):
    Image.new("RGB", (24, 16)).save(index_root / "rgb.png")
    with pytest.raises(SemGANError, match=r'rgb.png: mode-RGB image.*"encoding": "color" in classes.json'):
        load_dataset("folder", root=str(index_root))


def test_colour_pngs(tmp_path):
    root = tmp_path / "c"
    root.mkdir()
    idx = blocks(5, [0, 1, 2, 3])
    rgb = np.array(COLORS, dtype=np.uint8)[idx]
    rgb[0, 0] = np.clip(np.array(COLORS[idx[0, 0]]) + [3, -2, 4], 0, 255)  # a near colour: within tolerance
    Image.fromarray(rgb).save(root / "a.png")
    Image.fromarray(np.dstack([rgb, np.full(idx.shape, 255, np.uint8)])).save(root / "b.png")  # RGBA
    write_classes(root, {**CLASSES, "encoding": "color"})
    ds = load_dataset("folder", root=str(root))
    assert np.array_equal(ds.labels[0].numpy(), idx) and np.array_equal(ds.labels[1].numpy(), idx)


def test_colour_not_in_classes_file(tmp_path):
    root = tmp_path / "c"
    root.mkdir()
    rgb = np.array(COLORS, dtype=np.uint8)[blocks(6, [0, 1, 2, 3])]
    rgb[:4, :4] = [255, 0, 255]  # a fifth class the file does not list
    Image.fromarray(rgb).save(root / "a.png")
    write_classes(root, {**CLASSES, "encoding": "color"})
    with pytest.raises(SemGANError, match=r"a.png: 16 pixels in 1 colours \(\(255, 0, 255\)\) lie farther than 10"):
        load_dataset("folder", root=str(root))
    write_classes(root, {**CLASSES, "encoding": "color", "color_tolerance": None})
    assert len(load_dataset("folder", root=str(root))) == 1  # no tolerance: nearest colour wins


def test_classes_file_errors(tmp_path):
    with pytest.raises(SemGANError, match="colour count mismatch: 4 names but 3 colours"):
        parse_classes({"names": CLASSES["names"], "colors": COLORS[:3]})
    with pytest.raises(SemGANError, match=r"unknown keys \['colours'\]"):
        parse_classes({"names": ["a"], "colors": [[0, 0, 0]], "colours": []})
    with pytest.raises(SemGANError, match="source value 1 .* already maps to 'b'"):
        parse_classes({"names": ["a", "b"], "colors": COLORS[:2], "merge": {"a": [1]}})
    with pytest.raises(SemGANError, match="void class 'void', which is not in names"):
        parse_classes({"names": ["a", "b"], "colors": COLORS[:2], "ignore": [255]})
    with pytest.raises(SemGANError, match="apply to encoding 'index' only"):
        parse_classes({**CLASSES, "encoding": "color", "values": [0, 1, 2, 3]})
    with pytest.raises(SemGANError, match="shared by several classes"):
        parse_classes({"names": ["a", "b"], "colors": [[1, 2, 3], [1, 2, 3]], "encoding": "color"})
    with pytest.raises(SemGANError, match="a palette must be K RGB triples"):
        parse_classes({"names": ["a"], "colors": [[0, 0, 300]]})
    bad = tmp_path / "broken.json"
    bad.write_text("{names: ")
    with pytest.raises(SemGANError, match="cannot parse the classes file"):
        read_classes_file(bad)


def test_yaml_classes_file(tmp_path, monkeypatch):
    yaml = pytest.importorskip("yaml")
    root = tmp_path / "y"
    root.mkdir()
    Image.fromarray(blocks(0, [0, 1])).save(root / "a.png")
    (root / "classes.yaml").write_text(yaml.safe_dump({"names": ["bg", "fg"], "colors": COLORS[:2]}))
    assert load_dataset("folder", root=str(root)).class_names == ("bg", "fg")
    monkeypatch.setitem(sys.modules, "yaml", None)  # as if PyYAML were not installed
    with pytest.raises(SemGANError, match="needs PyYAML: pip install pyyaml"):
        read_classes_file(root / "classes.yaml")


def test_missing_empty_and_unreadable(tmp_path, index_root):
    with pytest.raises(SemGANError, match="does not exist"):
        load_dataset("folder", root=str(tmp_path / "nope"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SemGANError, match="no classes file given.*classes.json"):
        load_dataset("folder", root=str(empty))
    write_classes(empty, CLASSES)
    with pytest.raises(SemGANError, match=r"no files matching \*\*/\*.png under"):
        load_dataset("folder", root=str(empty))
    with pytest.raises(SemGANError, match="classes file other.json not found"):
        load_dataset("folder", root=str(index_root), classes="other.json")
    (index_root / "sub" / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(SemGANError, match=r"sub/a.png: cannot read image"):
        load_dataset("folder", root=str(index_root))


def test_native_size_needs_equal_sizes(index_root):
    Image.fromarray(blocks(9, [0, 1], h=8, w=8)).save(index_root / "small.png")
    with pytest.raises(SemGANError, match=r"2 different sizes: 3 of .*; 1 of 8x8 \(e.g. small.png\); pass a size"):
        load_dataset("folder", root=str(index_root))
    assert load_dataset("folder", root=str(index_root), size=8).labels.shape == (4, 8, 8)


def test_classes_file_given_by_path(tmp_path, index_root):
    other = write_classes(tmp_path, {**CLASSES, "names": ["n0", "n1", "n2", "n3"]}, "elsewhere.json")
    assert load_dataset("folder", root=str(index_root), classes=str(other)).class_names[0] == "n0"


def test_a_classes_file_with_a_colour_name_or_a_key_twice_is_one_clear_error(tmp_path):
    from semgan.data.folder import read_classes_file

    bad = tmp_path / "names.json"
    bad.write_text('{"names": ["a", "b"], "colors": ["red", [0, 0, 0]]}')
    with pytest.raises(SemGANError, match="not a colour name"):
        read_classes_file(bad)
    twice = tmp_path / "twice.json"
    twice.write_text('{"names": ["a", "b"], "colors": [[0, 0, 0], [1, 1, 1]], "names": ["x", "y"]}')
    with pytest.raises(SemGANError, match="gives 'names' more than once"):
        read_classes_file(twice)
