"""Class tables: the embedded Cityscapes label table, its class sets, and the CMP Facade classes."""

from __future__ import annotations

import numpy as np
import pytest

from semgan.data.classes import (
    CITYSCAPES_CLASS_SETS,
    CITYSCAPES_LABELS,
    CMP_CLASS_NAMES,
    CMP_FACADES,
    CMP_PALETTE,
    INVALID,
    PIX2PIX_FACADES,
    PIX2PIX_FACADES_PALETTE,
    ClassSet,
    cityscapes_class_set,
    cityscapes_colors,
    describe_values,
)
from semgan.errors import SemGANError

BY_NAME = {lab.name: lab for lab in CITYSCAPES_LABELS}


def test_cityscapes_table_matches_the_official_one():
    assert len(CITYSCAPES_LABELS) == 35
    assert sorted(lab.id for lab in CITYSCAPES_LABELS) == [-1, *range(34)]
    train_ids = sorted(lab.train_id for lab in CITYSCAPES_LABELS if 0 <= lab.train_id < 255)
    assert train_ids == list(range(19))
    assert {lab.id for lab in CITYSCAPES_LABELS if lab.has_instances} == set(range(24, 34))
    # Spot checks against cityscapesscripts/helpers/labels.py.
    assert BY_NAME["road"][1:] == (7, 0, "flat", 1, False, False, (128, 64, 128))
    assert BY_NAME["polegroup"][1:] == (18, 255, "object", 3, False, True, (153, 153, 153))
    assert BY_NAME["bicycle"][1:] == (33, 18, "vehicle", 7, True, False, (119, 11, 32))
    assert BY_NAME["license plate"][1:] == (-1, -1, "vehicle", 7, False, True, (0, 0, 142))
    assert BY_NAME["ground"].color == (81, 0, 81) and BY_NAME["parking"].color == (250, 170, 160)
    # Colour space: ids 0-4 share black, pole = polegroup, plate = car -> 29 distinct colours.
    assert len({lab.color for lab in CITYSCAPES_LABELS}) == 29


@pytest.mark.parametrize(("name", "K"), [("cityscapes22", 22), ("full34", 34), ("train19", 20), ("categories8", 8)])
def test_class_set_sizes_and_domain(name, K):
    cs = CITYSCAPES_CLASS_SETS[name]
    assert cs.num_classes == K == len(cs.palette_array())
    assert cs.valid_values() == list(range(34))  # every labelId is accepted, 34..255 are not
    assert (cs.lut()[34:] == INVALID).all()


@pytest.mark.parametrize(
    ("label", "expected"),  # labelId -> (cityscapes22, full34, train19, categories8)
    [
        (0, (0, 0, 19, 0)),
        (4, (0, 4, 19, 0)),
        (5, (0, 5, 19, 0)),  # dynamic
        (6, (21, 6, 19, 0)),  # ground
        (7, (1, 7, 0, 1)),  # road
        (9, (20, 9, 19, 1)),  # parking
        (10, (0, 10, 19, 1)),  # rail track
        (17, (6, 17, 5, 3)),  # pole
        (18, (6, 18, 19, 3)),  # polegroup: pole in cityscapes22, void in train19 (trainId 255)
        (23, (11, 23, 10, 5)),  # sky
        (26, (14, 26, 13, 7)),  # car
        (29, (0, 29, 19, 7)),  # caravan
        (33, (19, 33, 18, 7)),  # bicycle
    ],
)
def test_class_set_mappings(label, expected):
    names = ("cityscapes22", "full34", "train19", "categories8")
    got = tuple(int(CITYSCAPES_CLASS_SETS[n].lut()[label]) for n in names)
    assert got == expected


def test_cityscapes22_one_distinct_colour_per_class():
    cs = cityscapes_class_set(None)
    assert cs.name == "cityscapes22"
    assert cs.class_names[0] == "void" and cs.palette[0] == (0, 0, 0)
    assert cs.class_names[20:] == ("parking", "ground")
    assert len(set(cs.palette)) == 22  # so colour-decoded and labelId-decoded maps agree
    for k in range(1, 22):  # each class's colour is the table colour of its labelIds
        ids = [i for i in range(34) if cs.lut()[i] == k]
        assert {BY_NAME[n].color for n in BY_NAME if BY_NAME[n].id in ids} == {cs.palette[k]}


def test_train19_indices_are_train_ids():
    cs = CITYSCAPES_CLASS_SETS["train19"]
    for lab in CITYSCAPES_LABELS:
        if 0 <= lab.train_id < 255:
            assert cs.class_names[lab.train_id] == lab.name
    assert cs.class_names[19] == "void"


def test_cityscapes_colors_decode_to_smallest_label_id():
    colors, ids = cityscapes_colors()
    assert colors.shape == (29, 3) and colors.dtype == np.uint8
    lookup = {tuple(c): int(i) for c, i in zip(colors.tolist(), ids, strict=True)}
    assert lookup[(0, 0, 0)] == 0 and lookup[(153, 153, 153)] == 17 and lookup[(0, 0, 142)] == 26


def test_unknown_class_set_names_the_choices():
    with pytest.raises(SemGANError, match="unknown Cityscapes class set 'city19'.*cityscapes22"):
        cityscapes_class_set("city19")


def test_cmp_tables():
    assert len(CMP_CLASS_NAMES) == 12 and CMP_CLASS_NAMES[0] == "background" and CMP_CLASS_NAMES[11] == "shop"
    assert CMP_FACADES.valid_values() == list(range(1, 13))
    assert CMP_FACADES.lut()[0] == INVALID and CMP_FACADES.lut()[13] == INVALID
    assert [int(CMP_FACADES.lut()[v]) for v in range(1, 13)] == list(range(12))
    assert CMP_PALETTE[1] == (0, 0, 255) and PIX2PIX_FACADES_PALETTE[1] == (0, 48, 255)
    assert len(set(PIX2PIX_FACADES_PALETTE)) == 12
    assert PIX2PIX_FACADES.class_names == CMP_CLASS_NAMES


def test_class_set_validation():
    with pytest.raises(SemGANError, match="2 class names but 1 colours"):
        ClassSet("x", ("a", "b"), ((0, 0, 0),), {0: 0, 1: 1}, "test")
    with pytest.raises(SemGANError, match=r"no source value maps to classes \[1\]"):
        ClassSet("x", ("a", "b"), ((0, 0, 0), (1, 1, 1)), {0: 0}, "test")
    with pytest.raises(SemGANError, match="not unique"):
        ClassSet("x", ("a", "a"), ((0, 0, 0), (1, 1, 1)), {0: 0, 1: 1}, "test")


def test_describe_values():
    assert describe_values([0, 1, 2, 5, 7, 8]) == "0..2, 5, 7..8"
    assert describe_values([]) == ""
