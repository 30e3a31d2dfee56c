"""Class tables as data: the Cityscapes label table, its class sets, and the CMP Facade classes and palettes.

Everything here is a plain table, so that a class set can be swapped without touching a loader. Sources:

- Cityscapes: ``cityscapesscripts/helpers/labels.py`` (mcordts/cityscapesScripts, same in PyPI 2.3.0),
  embedded verbatim rather than depending on ``cityscapesscripts``. Class sets: the 34 labelIds, the 19
  benchmark trainIds, the 8 categories (all from that table), and our ``cityscapes22`` (see
  ``docs/datasets.md``; no public source defines the paper's "22 main classes").
- CMP Facade Database: label PNG values 1..12 (checked on the real base set), MATLAB ``jet(12)`` palette.
- pix2pix ``facades`` AB jpgs: the label colours *measured* on real files (they are not the CMP palette).

A :class:`ClassSet` maps *source pixel values* (labelIds 0..33, CMP values 1..12, ...) to class indices
0..K-1; a value it does not list is an error (or a skipped file with ``skip_bad``), never silently a class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from semgan.errors import SemGANError

RGB = tuple[int, int, int]

#: Marks a source value that a class set does not accept, in :meth:`ClassSet.lut`.
INVALID = -1


@dataclass(frozen=True, eq=False)
class ClassSet:
    """A named mapping from source pixel values to class indices, with names and colours.

    Attributes:
        name: the class-set name, e.g. ``"cityscapes22"``.
        class_names: K names, index = class.
        palette: K RGB triples, the render colour of each class.
        value_map: source pixel value (0..255) -> class index in [0, K); values absent are invalid.
        source: what the source values are, for error messages (e.g. ``"Cityscapes labelIds 0..33"``).
    """

    name: str
    class_names: tuple[str, ...]
    palette: tuple[RGB, ...]
    value_map: Mapping[int, int]
    source: str
    _lut: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        K = len(self.class_names)
        if len(self.palette) != K:
            raise SemGANError(f"class set {self.name!r}: {K} class names but {len(self.palette)} colours")
        if len(set(self.class_names)) != K:
            raise SemGANError(f"class set {self.name!r}: class names are not unique: {list(self.class_names)}")
        lut = np.full(256, INVALID, dtype=np.int16)
        for value, index in self.value_map.items():
            if not 0 <= value <= 255 or not 0 <= index < K:
                raise SemGANError(f"class set {self.name!r}: mapping {value} -> {index} outside 0..255 -> 0..{K - 1}")
            lut[value] = index
        missing = sorted(set(range(K)) - set(self.value_map.values()))
        if missing:
            raise SemGANError(f"class set {self.name!r}: no source value maps to classes {missing}")
        object.__setattr__(self, "_lut", lut)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def lut(self) -> np.ndarray:
        """(256,) int16 lookup table: source value -> class index, or ``INVALID`` (-1)."""
        return self._lut

    def palette_array(self) -> np.ndarray:
        """(K, 3) uint8 palette."""
        return np.asarray(self.palette, dtype=np.uint8).reshape(-1, 3)

    def valid_values(self) -> list[int]:
        """Sorted source values this set accepts."""
        return sorted(self.value_map)


def describe_values(values: list[int]) -> str:
    """Compact text for a sorted list of ints: ``[0, 1, 2, 5]`` -> ``"0..2, 5"``."""
    parts: list[str] = []
    i = 0
    while i < len(values):
        j = i
        while j + 1 < len(values) and values[j + 1] == values[j] + 1:
            j += 1
        parts.append(str(values[i]) if i == j else f"{values[i]}..{values[j]}")
        i = j + 1
    return ", ".join(parts)


# --------------------------------------------------------------------------------------------- Cityscapes


class CityscapesLabel(NamedTuple):
    """One row of the Cityscapes label table (field names as torchvision's ``CityscapesClass``)."""

    name: str
    id: int
    train_id: int
    category: str
    category_id: int
    has_instances: bool
    ignore_in_eval: bool
    color: RGB


# fmt: off
#: The official table (cityscapesscripts/helpers/labels.py). Forks with lane-line classes differ: not those.
CITYSCAPES_LABELS: tuple[CityscapesLabel, ...] = (
    #               name                    id  trainId category       catId  inst   ignore  color
    CityscapesLabel("unlabeled",             0, 255, "void",         0, False, True,  (0, 0, 0)),
    CityscapesLabel("ego vehicle",           1, 255, "void",         0, False, True,  (0, 0, 0)),
    CityscapesLabel("rectification border",  2, 255, "void",         0, False, True,  (0, 0, 0)),
    CityscapesLabel("out of roi",            3, 255, "void",         0, False, True,  (0, 0, 0)),
    CityscapesLabel("static",                4, 255, "void",         0, False, True,  (0, 0, 0)),
    CityscapesLabel("dynamic",               5, 255, "void",         0, False, True,  (111, 74, 0)),
    CityscapesLabel("ground",                6, 255, "void",         0, False, True,  (81, 0, 81)),
    CityscapesLabel("road",                  7,   0, "flat",         1, False, False, (128, 64, 128)),
    CityscapesLabel("sidewalk",              8,   1, "flat",         1, False, False, (244, 35, 232)),
    CityscapesLabel("parking",               9, 255, "flat",         1, False, True,  (250, 170, 160)),
    CityscapesLabel("rail track",           10, 255, "flat",         1, False, True,  (230, 150, 140)),
    CityscapesLabel("building",             11,   2, "construction", 2, False, False, (70, 70, 70)),
    CityscapesLabel("wall",                 12,   3, "construction", 2, False, False, (102, 102, 156)),
    CityscapesLabel("fence",                13,   4, "construction", 2, False, False, (190, 153, 153)),
    CityscapesLabel("guard rail",           14, 255, "construction", 2, False, True,  (180, 165, 180)),
    CityscapesLabel("bridge",               15, 255, "construction", 2, False, True,  (150, 100, 100)),
    CityscapesLabel("tunnel",               16, 255, "construction", 2, False, True,  (150, 120, 90)),
    CityscapesLabel("pole",                 17,   5, "object",       3, False, False, (153, 153, 153)),
    CityscapesLabel("polegroup",            18, 255, "object",       3, False, True,  (153, 153, 153)),
    CityscapesLabel("traffic light",        19,   6, "object",       3, False, False, (250, 170, 30)),
    CityscapesLabel("traffic sign",         20,   7, "object",       3, False, False, (220, 220, 0)),
    CityscapesLabel("vegetation",           21,   8, "nature",       4, False, False, (107, 142, 35)),
    CityscapesLabel("terrain",              22,   9, "nature",       4, False, False, (152, 251, 152)),
    CityscapesLabel("sky",                  23,  10, "sky",          5, False, False, (70, 130, 180)),
    CityscapesLabel("person",               24,  11, "human",        6, True,  False, (220, 20, 60)),
    CityscapesLabel("rider",                25,  12, "human",        6, True,  False, (255, 0, 0)),
    CityscapesLabel("car",                  26,  13, "vehicle",      7, True,  False, (0, 0, 142)),
    CityscapesLabel("truck",                27,  14, "vehicle",      7, True,  False, (0, 0, 70)),
    CityscapesLabel("bus",                  28,  15, "vehicle",      7, True,  False, (0, 60, 100)),
    CityscapesLabel("caravan",              29, 255, "vehicle",      7, True,  True,  (0, 0, 90)),
    CityscapesLabel("trailer",              30, 255, "vehicle",      7, True,  True,  (0, 0, 110)),
    CityscapesLabel("train",                31,  16, "vehicle",      7, True,  False, (0, 80, 100)),
    CityscapesLabel("motorcycle",           32,  17, "vehicle",      7, True,  False, (0, 0, 230)),
    CityscapesLabel("bicycle",              33,  18, "vehicle",      7, True,  False, (119, 11, 32)),
    CityscapesLabel("license plate",        -1,  -1, "vehicle",      7, False, True,  (0, 0, 142)),
)
# fmt: on

#: labelIds that can appear in a ``*_gtFine_labelIds.png`` (license plate, id -1, is never drawn).
CITYSCAPES_LABEL_IDS = tuple(range(34))
_BY_ID = {lab.id: lab for lab in CITYSCAPES_LABELS if lab.id >= 0}
_LABEL_SOURCE = "Cityscapes labelIds 0..33"

# Our choice (no public source defines 22 Cityscapes classes): the 19 benchmark classes (+1 so that void is
# 0), polegroup merged into pole, plus the two most frequent large non-benchmark surfaces; rare classes (dynamic,
# rail track, guard rail, bridge, tunnel, caravan, trailer) and ids 0-4 go to void.
_C22_NAMES = (
    "void", "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
    "bicycle", "parking", "ground",
)  # fmt: skip
_C22_IDS = {  # class index -> labelIds
    1: (7,), 2: (8,), 3: (11,), 4: (12,), 5: (13,), 6: (17, 18), 7: (19,), 8: (20,), 9: (21,), 10: (22,),
    11: (23,), 12: (24,), 13: (25,), 14: (26,), 15: (27,), 16: (28,), 17: (31,), 18: (32,), 19: (33,),
    20: (9,), 21: (6,),
}  # fmt: skip


def _cityscapes22() -> ClassSet:
    value_map = dict.fromkeys(CITYSCAPES_LABEL_IDS, 0)
    for index, ids in _C22_IDS.items():
        for i in ids:
            value_map[i] = index
    palette = [(0, 0, 0)] + [_BY_ID[_C22_IDS[k][0]].color for k in range(1, 22)]
    return ClassSet("cityscapes22", _C22_NAMES, tuple(palette), value_map, _LABEL_SOURCE)


def _full34() -> ClassSet:
    labels = [_BY_ID[i] for i in CITYSCAPES_LABEL_IDS]
    return ClassSet(
        "full34",
        tuple(lab.name for lab in labels),
        tuple(lab.color for lab in labels),
        {i: i for i in CITYSCAPES_LABEL_IDS},
        _LABEL_SOURCE,
    )


def _train19() -> ClassSet:
    # Void goes last (index 19) so that indices 0..18 equal the benchmark trainIds; note that polegroup has
    # trainId 255 in the official table, so here (unlike cityscapes22) it is void.
    by_train = {lab.train_id: lab for lab in CITYSCAPES_LABELS if 0 <= lab.train_id < 255}
    names = tuple(by_train[t].name for t in range(19)) + ("void",)
    palette = tuple(by_train[t].color for t in range(19)) + ((0, 0, 0),)
    value_map = {i: (_BY_ID[i].train_id if _BY_ID[i].train_id != 255 else 19) for i in CITYSCAPES_LABEL_IDS}
    return ClassSet("train19", names, palette, value_map, _LABEL_SOURCE)


# The table has no category colours; ours take the colour of each category's most frequent member.
_CATEGORY_COLORS: dict[str, RGB] = {
    "void": (0, 0, 0),
    "flat": (128, 64, 128),  # road
    "construction": (70, 70, 70),  # building
    "object": (153, 153, 153),  # pole
    "nature": (107, 142, 35),  # vegetation
    "sky": (70, 130, 180),
    "human": (220, 20, 60),  # person
    "vehicle": (0, 0, 142),  # car
}


def _categories8() -> ClassSet:
    names = tuple(_CATEGORY_COLORS)
    return ClassSet(
        "categories8",
        names,
        tuple(_CATEGORY_COLORS[n] for n in names),
        {i: _BY_ID[i].category_id for i in CITYSCAPES_LABEL_IDS},
        _LABEL_SOURCE,
    )


#: Cityscapes class sets by name; ``cityscapes22`` is the default (our reading of the paper's "22 main
#: classes").
CITYSCAPES_CLASS_SETS: dict[str, ClassSet] = {
    cs.name: cs for cs in (_cityscapes22(), _full34(), _train19(), _categories8())
}
DEFAULT_CITYSCAPES_CLASSES = "cityscapes22"


def cityscapes_class_set(name: str | None) -> ClassSet:
    """The Cityscapes class set called ``name`` (``None`` -> ``cityscapes22``)."""
    key = name or DEFAULT_CITYSCAPES_CLASSES
    try:
        return CITYSCAPES_CLASS_SETS[key]
    except KeyError:
        raise SemGANError(
            f"unknown Cityscapes class set {key!r}; expected one of: {', '.join(CITYSCAPES_CLASS_SETS)}"
        ) from None


def cityscapes_colors() -> tuple[np.ndarray, np.ndarray]:
    """The distinct ``gtFine_color`` colours and the labelId each decodes to.

    Ids 0-4 share black, pole = polegroup and license plate = car, so 29 colours remain; a shared colour
    decodes to the smallest labelId that has it (black -> 0 unlabeled, grey -> 17 pole, dark blue -> 26 car),
    which every class set then maps like any labelId.

    Returns:
        colors: (29, 3) uint8.
        label_ids: (29,) int64 labelIds in 0..33.
    """
    first: dict[RGB, int] = {}
    for lab in sorted((lab for lab in CITYSCAPES_LABELS if lab.id >= 0), key=lambda lab: lab.id):
        first.setdefault(lab.color, lab.id)
    colors = np.asarray(list(first), dtype=np.uint8)
    return colors, np.asarray(list(first.values()), dtype=np.int64)


# ------------------------------------------------------------------------------------------ CMP Facades

CMP_CLASS_NAMES = (
    "background", "facade", "window", "door", "cornice", "sill",
    "balcony", "blind", "deco", "molding", "pillar", "shop",
)  # fmt: skip
#: The palette stored in the CMP label PNGs: MATLAB jet(12), for PNG values 1..12.
CMP_PALETTE: tuple[RGB, ...] = (
    (0, 0, 170), (0, 0, 255), (0, 85, 255), (0, 170, 255), (0, 255, 255), (85, 255, 170),
    (170, 255, 85), (255, 255, 0), (255, 170, 0), (255, 85, 0), (255, 0, 0), (170, 0, 0),
)  # fmt: skip
#: Label colours of the pix2pix ``facades`` jpgs, CMP class order, measured on flat regions of real files (two
#: independent measurements agree within 2 per channel; they are MATLAB jet samples at about k/12).
#: Not the CMP palette: decoding with that one turns the whole facade (0, 48, 255) into "window".
PIX2PIX_FACADES_PALETTE: tuple[RGB, ...] = (
    (0, 0, 222), (0, 48, 255), (0, 128, 255), (1, 207, 255), (32, 255, 224), (112, 254, 142),
    (192, 255, 63), (255, 240, 1), (255, 159, 0), (255, 80, 0), (253, 0, 2), (174, 0, 1),
)  # fmt: skip

#: CMP label PNGs: value v in 1..12 is class v - 1; 0 (unused in the real files) and 13..255 are invalid.
CMP_FACADES = ClassSet(
    "cmp12", CMP_CLASS_NAMES, CMP_PALETTE, {v: v - 1 for v in range(1, 13)}, "CMP label PNG values 1..12"
)
#: The same 12 classes rendered in the measured pix2pix colours; values are class indices (decoded colours).
PIX2PIX_FACADES = ClassSet(
    "cmp12-pix2pix", CMP_CLASS_NAMES, PIX2PIX_FACADES_PALETTE, {k: k for k in range(12)},
    "pix2pix facades label colours decoded to classes 0..11",
)  # fmt: skip
