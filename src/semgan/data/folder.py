"""Your own label maps: a folder of PNGs plus a classes file.

The ``folder`` dataset reads every ``*.png`` under ``root`` (or ``root/<split>`` when ``split`` is given),
recursively, in natural order of relative path, skipping hidden folders. ``classes`` names the classes file
(default: ``classes.json``, ``classes.yaml`` or ``classes.yml`` in ``root``); JSON always works, YAML needs
PyYAML. ``size`` resizes every map to size x size with PIL NEAREST; ``None`` keeps the native size (then all
maps must share one size). A classes file looks like::

    {
      "names":  ["void", "sky", "building", "tree"],              # K class names, index = class
      "colors": [[0, 0, 0], [70, 130, 180], [70, 70, 70], [107, 142, 35]],
      "encoding": "index",       # "index" (default): mode L/P PNGs whose pixel values are source values
                                 # "color": colour PNGs, decoded by nearest class colour (RGB)
      "values": [0, 1, 2, 3],    # index only, optional: source value of each class (default 0..K-1)
      "merge":  {"tree": [4]},   # index only, optional: further source values folded into a class
      "ignore": [255],           # index only, optional: source values folded into the void class
      "void":   "void",          # optional: the class that "ignore" values go to (default "void")
      "color_tolerance": 10      # color only: largest RGB distance to the nearest class colour (null: any)
    }

Any value (index) or colour (beyond the tolerance) that the file does not account for is an error naming the
files and what was found, so the classes file cannot silently contradict the data.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from semgan.config import DataConfig
from semgan.data.cache import DataSource
from semgan.data.classes import ClassSet
from semgan.data.dataset import LabelDataset
from semgan.data.decode import (
    BadFileError,
    decode_to_dataset,
    map_values,
    nearest_color,
    read_index_values,
    read_photo,
    resize_labels,
)
from semgan.data.files import list_files, out_size, require_dir, require_root
from semgan.data.registry import register_source
from semgan.errors import SemGANError
from semgan.labels import open_image, palette_array

CLASSES_FILE_NAMES = ("classes.json", "classes.yaml", "classes.yml")
ENCODINGS = ("index", "color")
DEFAULT_COLOR_TOLERANCE = 10.0
_KEYS = ("names", "colors", "encoding", "values", "merge", "ignore", "void", "color_tolerance")
_INDEX_ONLY = ("values", "merge", "ignore")
_EXAMPLE = '{"names": ["background", "object"], "colors": [[0, 0, 0], [255, 0, 0]]}'


@dataclass(frozen=True, eq=False)
class FolderClasses:
    """A parsed classes file.

    Attributes:
        class_set: names, palette and the source value -> class map (identity for colour encoding).
        encoding: ``"index"`` or ``"color"``.
        color_tolerance: colour encoding: the largest RGB distance accepted to the nearest class colour
            (``None``: any colour decodes to its nearest class).
        path: the file it was read from.
        sha256: of the file's bytes (part of the cache key, so editing the file invalidates the cache).
    """

    class_set: ClassSet
    encoding: str
    color_tolerance: float | None
    path: Path
    sha256: str


def _int_list(value: object, key: str, origin: str) -> list[int]:
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise SemGANError(f"{origin}: {key!r} must be a list of integers, got {value!r}")
    bad = [v for v in value if not 0 <= v <= 255]
    if bad:
        raise SemGANError(f"{origin}: {key!r} holds {bad}; source values must lie in 0..255")
    return list(value)


def _unique_keys(path: Path, pairs: list[tuple[str, object]]) -> dict[str, object]:
    """A JSON object, refusing a key given twice (json keeps the last one silently)."""
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise SemGANError(f"the classes file {path} gives {', '.join(map(repr, twice))} more than once; JSON keeps "
                          "only the last, so say each once")
    return dict(pairs)


def parse_classes(spec: object, *, origin: str = "classes file") -> tuple[ClassSet, str, float | None]:
    """Validate a classes mapping (the parsed JSON/YAML) into a class set, an encoding and a tolerance.

    Raises:
        SemGANError: unknown keys, a name/colour count mismatch, duplicate names or values, bad colours, ...
    """
    if not isinstance(spec, Mapping):
        raise SemGANError(f"{origin}: expected a mapping with 'names' and 'colors', e.g. {_EXAMPLE}")
    unknown = sorted(set(spec) - set(_KEYS))
    if unknown:
        raise SemGANError(f"{origin}: unknown keys {unknown}; expected some of: {', '.join(_KEYS)}")
    names = spec.get("names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        raise SemGANError(f"{origin}: 'names' must be a non-empty list of class names, got {names!r}")
    if len(set(names)) != len(names):
        raise SemGANError(f"{origin}: class names must be unique, got {names}")
    if len(names) > 256:
        raise SemGANError(f"{origin}: {len(names)} classes; at most 256 fit in uint8 label maps")
    colors = spec.get("colors")
    if not isinstance(colors, list):
        raise SemGANError(f"{origin}: 'colors' must be a list of [r, g, b] triples, one per class, got {colors!r}")
    if len(colors) != len(names):
        raise SemGANError(f"{origin}: colour count mismatch: {len(names)} names but {len(colors)} colours")
    palette = palette_array(colors)
    encoding = spec.get("encoding", "index")
    if encoding not in ENCODINGS:
        raise SemGANError(f"{origin}: encoding must be one of {ENCODINGS}, got {encoding!r}")
    K = len(names)
    name = f"folder:{origin}"

    if encoding == "color":
        given = [k for k in _INDEX_ONLY if k in spec]
        if given:
            raise SemGANError(f"{origin}: {given} apply to encoding 'index' only (colours are decoded to classes)")
        dup = {tuple(c) for c in palette.tolist() if palette.tolist().count(c) > 1}
        if dup:
            raise SemGANError(
                f"{origin}: colours {sorted(dup)} are shared by several classes; colour decoding needs "
                "one colour per class"
            )
        tol = spec.get("color_tolerance", DEFAULT_COLOR_TOLERANCE)
        if tol is not None and (isinstance(tol, bool) or not isinstance(tol, int | float) or tol < 0):
            raise SemGANError(f"{origin}: color_tolerance must be a number >= 0 or null, got {tol!r}")
        class_set = ClassSet(
            name,
            tuple(names),
            tuple(map(tuple, palette.tolist())),
            {k: k for k in range(K)},
            f"the colours listed in {origin}",
        )
        return class_set, encoding, None if tol is None else float(tol)

    if "color_tolerance" in spec:
        raise SemGANError(f"{origin}: color_tolerance applies to encoding 'color' only")
    values = _int_list(spec["values"], "values", origin) if "values" in spec else list(range(K))
    if len(values) != K:
        raise SemGANError(f"{origin}: {K} names but {len(values)} values; give one source value per class")
    value_map: dict[int, int] = {}

    def add(value: int, index: int, why: str) -> None:
        if value in value_map and value_map[value] != index:
            raise SemGANError(f"{origin}: source value {value} ({why}) already maps to {names[value_map[value]]!r}")
        value_map[value] = index

    for index, value in enumerate(values):
        add(value, index, f"value of {names[index]!r}")
    merge = spec.get("merge", {})
    if not isinstance(merge, Mapping):
        raise SemGANError(f"{origin}: 'merge' must map class names to lists of source values, got {merge!r}")
    for target, extra in merge.items():
        if target not in names:
            raise SemGANError(f"{origin}: 'merge' names class {target!r}, which is not in names {names}")
        for value in _int_list(extra, f"merge.{target}", origin):
            add(value, names.index(target), f"merged into {target!r}")
    if "ignore" in spec:
        void = spec.get("void", "void")
        if void not in names:
            raise SemGANError(
                f"{origin}: 'ignore' folds values into the void class {void!r}, which is not in names "
                f"{names}; add it or set 'void' to one of them"
            )
        for value in _int_list(spec["ignore"], "ignore", origin):
            add(value, names.index(void), f"ignored into {void!r}")
    elif "void" in spec:
        raise SemGANError(f"{origin}: 'void' only applies together with 'ignore'")
    class_set = ClassSet(
        name, tuple(names), tuple(map(tuple, palette.tolist())), value_map, f"the values listed in {origin}"
    )
    return class_set, "index", None


def read_classes_file(path: str | os.PathLike[str]) -> FolderClasses:
    """Read and validate a JSON or YAML classes file (format in the module docstring)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SemGANError(f"cannot read the classes file {path}: {exc}") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            try:
                import yaml  # lazily: PyYAML is optional
            except ImportError:
                raise SemGANError(
                    f"reading {path} needs PyYAML: pip install pyyaml (or write the classes file as JSON)"
                ) from None
            spec = yaml.safe_load(data)
        else:
            spec = json.loads(data, object_pairs_hook=partial(_unique_keys, path))
    except SemGANError:
        raise
    except Exception as exc:  # JSON and YAML parsers raise their own error types
        raise SemGANError(f"cannot parse the classes file {path}: {exc}") from None
    class_set, encoding, tol = parse_classes(spec, origin=path.name)
    return FolderClasses(class_set, encoding, tol, path.resolve(), hashlib.sha256(data).hexdigest())


def find_classes_file(root: Path, classes: str | os.PathLike[str] | None) -> Path:
    """The classes file: ``classes`` as given (or relative to ``root``), else ``root/classes.{json,yaml}``."""
    if classes is not None:
        path = Path(classes).expanduser()
        for candidate in (path, root / path):
            if candidate.is_file():
                return candidate
        raise SemGANError(f"classes file {classes} not found (also looked in {root})")
    for file_name in CLASSES_FILE_NAMES:
        if (root / file_name).is_file():
            return root / file_name
    raise SemGANError(
        f"folder: no classes file given and none of {', '.join(CLASSES_FILE_NAMES)} in {root}; write one, "
        "e.g. "
        f"{root / 'classes.json'} containing {_EXAMPLE}"
    )


def _decode_index(path: Path, fc: FolderClasses, size: int | None) -> np.ndarray:
    hint = f'set "encoding": "color" in {fc.path.name} to decode colour PNGs by nearest class colour'
    raw = read_index_values(path, hint=hint)
    return map_values(raw, fc.class_set, size)


def _decode_color(path: Path, fc: FolderClasses, size: int | None) -> np.ndarray:
    try:
        img = open_image(path)
    except SemGANError as exc:
        raise BadFileError(str(exc)) from None
    rgb = np.asarray(img.convert("RGB"), dtype=np.uint8)
    nearest, dist = nearest_color(rgb, fc.class_set.palette_array(), space="rgb")
    if fc.color_tolerance is not None:
        far = dist > fc.color_tolerance
        if far.any():
            colors = np.unique(rgb[far].reshape(-1, 3), axis=0)
            shown = ", ".join(str(tuple(c)) for c in colors[:5].tolist())
            more = f" and {len(colors) - 5} more" if len(colors) > 5 else ""
            raise BadFileError(
                f"{int(far.sum())} pixels in {len(colors)} colours ({shown}{more}) lie farther than "
                f"{fc.color_tolerance:g} from all {fc.class_set.num_classes} colours in {fc.path.name}; "
                "add the missing classes or raise color_tolerance"
            )
    return resize_labels(nearest.astype(np.uint8), size)


@register_source("folder", paired=True)
def folder_source(cfg: DataConfig) -> DataSource:
    """Label PNGs under ``root`` (or ``root/<split>``) with a classes file (``seed`` is unused).

    Their photos (pix2pix) are in ``cfg.photos``: the photo of ``ROOT/a/b.png`` is ``PHOTOS/a/b.jpg`` (or
    ``.jpeg``, ``.png``), the same size as the map. Missing photos and size mismatches are bad pairs: one error
    listing them all, or skipped with ``skip_bad``.
    """
    size = out_size(cfg.size, "folder", None)
    base = require_root(cfg.root or None, "folder", "a folder of label PNGs with a classes file")
    split = cfg.split or None
    data_dir = base
    if split:
        if Path(split).is_absolute() or ".." in Path(split).parts:
            raise SemGANError(f"folder: split must be a subfolder name of {base}, got {split!r}")
        data_dir = require_dir(base / split, f"split {split!r} as a subfolder of {base}")
    fc = read_classes_file(find_classes_file(base, cfg.classes or None))
    what = "label PNGs (index maps of mode L or P)" if fc.encoding == "index" else "colour label PNGs"
    files = list_files(data_dir, ["**/*.png"], what=what)
    decode = _decode_index if fc.encoding == "index" else _decode_color
    fmt = f"folder of PNGs, encoding {fc.encoding}"
    meta = {"split": split, "size": size, "classes_file": str(fc.path)}

    def build() -> LabelDataset:
        return decode_to_dataset("folder", base, files, partial(decode, fc=fc, size=size), fc.class_set,
                                 what="label maps", skip_bad=cfg.skip_bad, meta={"format": fmt, **meta})

    def build_pairs() -> LabelDataset:
        if not cfg.photos:
            raise SemGANError("pix2pix on a folder of label maps needs their photos: --set data.photos=DIR, a folder "
                              "of photos named like the maps (a.png -> DIR/a.jpg)")
        photo_dir = require_dir(Path(cfg.photos).absolute(),
                                "data.photos, the folder of photos named like the label maps")
        pairs = [(f, _photo_of(f, base, photo_dir)) for f in files]
        return decode_to_dataset("folder", base, pairs, partial(_decode_folder_pair, fc=fc, size=size),
                                 fc.class_set, what="label map/photo pairs", skip_bad=cfg.skip_bad,
                                 meta={"photos": str(photo_dir), "format": f"{fmt}, with photos", **meta}, photos=True)

    config: dict[str, object] = {
        "size": size,
        "classes_file": str(fc.path),
        "classes_sha256": fc.sha256,
        "split": split,
        "skip_bad": cfg.skip_bad,
    }
    return DataSource("folder", base, tuple(files), config, build, build_pairs)


PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")


def _photo_of(label: Path, base: Path, photos: Path) -> Path:
    """The photo of a label map: the same relative path under ``photos``, any of :data:`PHOTO_SUFFIXES`."""
    stem = photos / label.relative_to(base).with_suffix("")
    found = next((p for s in PHOTO_SUFFIXES if (p := stem.with_suffix(s)).is_file()), None)
    return found or stem.with_name(stem.name + ".{" + ",".join(s[1:] for s in PHOTO_SUFFIXES) + "}")  # named as missing


def _decode_folder_pair(paths: tuple[Path, Path], fc: FolderClasses, size: int | None) -> tuple[np.ndarray, np.ndarray]:
    label, photo = paths
    native = (_decode_index if fc.encoding == "index" else _decode_color)(label, fc, None)
    return resize_labels(native, size), read_photo(photo, native.shape, size)
