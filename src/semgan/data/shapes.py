"""Colored Shapes (SemGAN paper, section 5.0.1; after CoordConv's Not-so-Clevr, Liu et al. 2018).

2916 label maps of 64x64 with four classes: 0 background (black), 1 circle (blue), 2 rectangle (green),
3 square (red). The paper fixes the count, the 10x10 square at 54^2 positions and the radius-10 circle;
the rest is our choice (the circle's centre range follows CoordConv's Sort-of-Clevr generator,
``data/sort_of_clevr_generator.py`` in uber-research/CoordConv, which draws radius-10 circles centred at
``randint(10, 54)`` per axis):

- square: 10x10 px, top-left (y, x) = divmod(i, 54) for image i, so every position in range(54)^2 once;
- circle: filled disk (y - cy)^2 + (x - cx)^2 <= 10^2, centre uniform integer in [10, 54) per axis;
- rectangle: width and height uniform integers in [8, 24], top-left uniform so that it lies fully inside;
- drawn in the order rectangle, square, circle, so the circle can cover the square.
"""

from __future__ import annotations

import torch

from semgan.config import DataConfig
from semgan.data.dataset import LabelDataset
from semgan.data.registry import DATASETS, GENERATED_PAIRS
from semgan.errors import SemGANError

SIZE = 64
SQUARE = 10
POSITIONS = 54  # the paper's 54^2 = 2916 square positions
RADIUS = 10
RECT_MIN, RECT_MAX = 8, 24

CLASS_NAMES = ("background", "circle", "rectangle", "square")
PALETTE = ((0, 0, 0), (0, 0, 255), (0, 255, 0), (255, 0, 0))
BACKGROUND, CIRCLE, RECTANGLE, SQUARE_CLASS = range(4)


def make_shapes(seed: int = 0) -> LabelDataset:
    """Generate the 2916 Colored Shapes maps deterministically from ``seed`` (vectorised, ~0.1 s)."""
    g = torch.Generator().manual_seed(seed)
    N = POSITIONS * POSITIONS
    ii = torch.arange(SIZE).view(1, SIZE, 1)  # row index, broadcast over (N, H, W)
    jj = torch.arange(SIZE).view(1, 1, SIZE)  # column index

    def col(t: torch.Tensor) -> torch.Tensor:
        return t.view(N, 1, 1)

    # Rectangle: size first, then a position that keeps it inside the canvas.
    rh = torch.randint(RECT_MIN, RECT_MAX + 1, (N,), generator=g)
    rw = torch.randint(RECT_MIN, RECT_MAX + 1, (N,), generator=g)
    ry = (torch.rand(N, generator=g) * (SIZE - rh + 1)).floor().long()  # uniform in [0, SIZE - h]
    rx = (torch.rand(N, generator=g) * (SIZE - rw + 1)).floor().long()
    # Square: every top-left position exactly once, in row-major order.
    sy, sx = torch.arange(N) // POSITIONS, torch.arange(N) % POSITIONS
    # Circle: centre uniform in [RADIUS, SIZE - RADIUS).
    cy = torch.randint(RADIUS, SIZE - RADIUS, (N,), generator=g)
    cx = torch.randint(RADIUS, SIZE - RADIUS, (N,), generator=g)

    rect = (ii >= col(ry)) & (ii < col(ry + rh)) & (jj >= col(rx)) & (jj < col(rx + rw))  # (N, H, W)
    square = (ii >= col(sy)) & (ii < col(sy) + SQUARE) & (jj >= col(sx)) & (jj < col(sx) + SQUARE)
    circle = (ii - col(cy)) ** 2 + (jj - col(cx)) ** 2 <= RADIUS**2

    labels = torch.zeros(N, SIZE, SIZE, dtype=torch.uint8)
    labels[rect] = RECTANGLE
    labels[square] = SQUARE_CLASS
    labels[circle] = CIRCLE
    return LabelDataset(
        name="shapes",
        labels=labels,
        class_names=CLASS_NAMES,
        palette=torch.tensor(PALETTE, dtype=torch.uint8),
        meta={"source": "generated", "seed": seed, "count": N, "size": SIZE},
    )


# What the "photos" of Colored Shapes paint each class with: colours unlike the palette's, so that a translator
# learns a mapping rather than a copy, and a texture per class (none, horizontal, vertical and checked stripes).
PHOTO_COLORS = ((70, 60, 50), (90, 160, 230), (60, 150, 70), (220, 80, 60))


def render_photos(labels: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A synthetic photo of each map: its classes in ``PHOTO_COLORS`` with a stripe texture per class, lit from
    above (rows darken downwards) and with seeded pixel noise. (N, H, W) uint8 labels -> (N, 3, H, W) uint8.

    Paired data that needs no download: pix2pix can be trained and tested on Colored Shapes, and a segmenter
    separates its classes by colour and texture alike.
    """
    N, H, W = labels.shape
    g = torch.Generator().manual_seed(seed + 7)
    base = torch.tensor(PHOTO_COLORS, dtype=torch.float32)[labels.long()].permute(0, 3, 1, 2)  # (N, 3, H, W)
    ii, jj = torch.arange(H).view(H, 1), torch.arange(W).view(1, W)
    textures = torch.stack([torch.zeros(H, W), (ii % 4 < 2).float().expand(H, W),
                            (jj % 4 < 2).float().expand(H, W), ((ii // 3 + jj // 3) % 2).float()])  # (4, H, W)
    texture = textures[labels.long(), ii, jj]  # (N, H, W): each pixel its class's texture
    light = 1.1 - 0.3 * (ii.float() / max(H - 1, 1))  # (H, 1)
    photo = base * light * (0.85 + 0.15 * texture[:, None]) + 12 * torch.randn(N, 3, H, W, generator=g)
    return photo.round().clamp(0, 255).to(torch.uint8)


def make_shape_pairs(seed: int = 0) -> LabelDataset:
    """Colored Shapes with a synthetic photo of every map (:func:`render_photos`), for pix2pix."""
    maps = make_shapes(seed)
    return LabelDataset(name=maps.name, labels=maps.labels, class_names=maps.class_names, palette=maps.palette,
                        meta={**maps.meta, "photos": "rendered"}, photos=render_photos(maps.labels, seed))


@DATASETS.register("shapes")
def _load_shapes(cfg: DataConfig) -> LabelDataset:
    """Colored Shapes from ``cfg.seed`` (``root``, ``classes``, ``split`` and ``skip_bad`` do not apply)."""
    if cfg.size not in (0, SIZE):
        raise SemGANError(f"Colored Shapes is defined at {SIZE}x{SIZE}; got data.size={cfg.size}")
    return make_shapes(cfg.seed)


@GENERATED_PAIRS.register("shapes")
def _load_shape_pairs(cfg: DataConfig) -> LabelDataset:
    """Colored Shapes with their rendered photos (``data.seed`` seeds both)."""
    _load_shapes(cfg)  # the same checks
    return make_shape_pairs(cfg.seed)
