"""Label-map utilities, in one place: one-hot, argmax, colorize, palette snapping, PNG I/O, grids.

Names and shapes used throughout the package:

- ``labels``  (B, H, W) integer class indices in [0, K)
- ``onehot``  (B, K, H, W) float, exactly one 1 per pixel
- ``probs``   (B, K, H, W) float, sums to 1 over K (the SemGAN generator's output)
- ``rgb``     (B, 3, H, W) float in [-1, 1] (the baseline generator's output)
- ``images``  (B, 3, H, W) uint8 in [0, 255] (what metrics and PNG files see)
- ``palette`` (K, 3) uint8, the colour of each class
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from semgan.errors import SemGANError
from semgan.io import atomic_write


def one_hot(labels: torch.Tensor, num_classes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """(B, H, W) integer labels -> (B, K, H, W) one-hot maps.

    >>> one_hot(torch.tensor([[[0, 2]]]), 3)[0, :, 0, 1].tolist()
    [0.0, 0.0, 1.0]
    """
    if labels.dim() != 3:
        raise ValueError(f"labels must be (B, H, W), got shape {tuple(labels.shape)}")
    B, H, W = labels.shape
    onehot = torch.zeros(B, num_classes, H, W, dtype=dtype, device=labels.device)
    # scatter_ is ~3x faster than F.one_hot(...).permute(...) and yields a contiguous NCHW tensor.
    onehot.scatter_(1, labels.long().unsqueeze(1), 1.0)
    return onehot


def argmax(probs: torch.Tensor) -> torch.Tensor:
    """(B, K, H, W) class scores -> (B, H, W) int64 labels (the paper's collapse of a prediction)."""
    return probs.argmax(dim=1)


def colorize(labels: torch.Tensor, palette: torch.Tensor | np.ndarray) -> torch.Tensor:
    """(..., H, W) labels -> (..., 3, H, W) uint8 colour images.

    >>> colorize(torch.tensor([[1]]), torch.tensor([[0, 0, 0], [255, 0, 0]], dtype=torch.uint8))[:, 0, 0].tolist()
    [255, 0, 0]
    """
    pal = torch.as_tensor(palette, dtype=torch.uint8, device=labels.device)
    idx = labels.long()
    if int(idx.max()) >= pal.shape[0] or int(idx.min()) < 0:
        raise ValueError(f"label value {int(idx.max())} outside the palette of {pal.shape[0]} classes")
    images = pal[idx]  # (..., H, W, 3)
    return images.movedim(-1, -3).contiguous()  # (..., 3, H, W)


def palette_distances(images: torch.Tensor, palette: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Squared RGB distance of every pixel to every palette colour: (B, 3, H, W) -> (B, K, H, W) float32."""
    pal = torch.as_tensor(palette, device=images.device).float()  # (K, 3)
    x = images.float()  # (B, 3, H, W)
    # |x - p|^2 = |x|^2 - 2 x.p + |p|^2, computed without a (B, K, 3, H, W) temporary.
    xp = torch.einsum("bchw,kc->bkhw", x, pal)
    return (x * x).sum(1, keepdim=True) - 2 * xp + (pal * pal).sum(1).view(1, -1, 1, 1)


def snap_to_palette(images: torch.Tensor, palette: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Nearest-palette-colour decoding: (B, 3, H, W) uint8 images -> (B, H, W) int64 labels."""
    return palette_distances(images, palette).argmin(dim=1)


def rgb_to_uint8(rgb: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) float in [-1, 1] -> uint8 in [0, 255] (round to nearest, as PIL would store it)."""
    return ((rgb.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def uint8_to_rgb(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) uint8 -> float in [-1, 1]; the inverse of :func:`rgb_to_uint8` up to rounding."""
    return images.float() / 127.5 - 1.0


def make_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 2, pad_value: int = 128) -> torch.Tensor:
    """Tile (B, 3, H, W) uint8 images into one (3, H', W') uint8 image, ``nrow`` images per row."""
    B, C, H, W = images.shape
    nrow = nrow or max(1, int(np.ceil(np.sqrt(B))))
    ncol = int(np.ceil(B / nrow))
    grid = torch.full((C, ncol * (H + pad) + pad, nrow * (W + pad) + pad), pad_value, dtype=images.dtype)
    for i in range(B):
        r, c = divmod(i, nrow)
        y, x = pad + r * (H + pad), pad + c * (W + pad)
        grid[:, y : y + H, x : x + W] = images[i].cpu()
    return grid


# ----------------------------------------------------------------------------------------------- PNG I/O


MAX_PIXELS_ENV = "SEMGAN_MAX_PIXELS"
DEFAULT_MAX_PIXELS = 50_000_000  # 7071 x 7071; a 2048 x 1024 Cityscapes map is 2.1 M


def max_pixels() -> int:
    """The pixel budget of one image: ``$SEMGAN_MAX_PIXELS`` or :data:`DEFAULT_MAX_PIXELS`."""
    text = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS
    if not text.isdigit() or int(text) < 1:
        raise SemGANError(f"{MAX_PIXELS_ENV}={text!r}; expected a positive number of pixels")
    return int(text)


def check_pixels(img: Image.Image, path: Path) -> None:
    """Refuse an image whose header declares more pixels than the budget, before anything is decoded (a
    69-byte PNG can declare 30000 x 30000 pixels, gigabytes once decoded)."""
    w, h = img.size
    if w * h > (limit := max_pixels()):
        raise SemGANError(f"{path} declares {w}x{h} = {w * h:,} pixels, over the limit of {limit:,}; "
                          f"set {MAX_PIXELS_ENV} to allow larger images")


def open_image(path: str | Path) -> Image.Image:
    """Open and fully decode an image, turning every decoder failure into a message naming the file.

    The header is checked against the pixel budget (:func:`max_pixels`) before decoding.
    """
    path = Path(path)
    if not path.is_file():
        raise SemGANError(f"image not found: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own budget decides
            img = Image.open(path)
        check_pixels(img, path)
        img.load()  # decode now, so that truncated files fail here and not later
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError) as exc:
        raise SemGANError(f"cannot read image {path}: {exc}") from exc
    return img


LOSSY_FORMATS = ("JPEG", "MPO", "WEBP")  # WEBP may be lossless, but PIL cannot tell; its maps must come as PNG


def check_lossless(img: Image.Image, path: str | Path) -> None:
    """Refuse lossy image data where pixel values are class indices: compression noise would become labels."""
    if img.format in LOSSY_FORMATS:
        raise SemGANError(f"{path} holds {img.format} data (whatever its name says); lossy compression turns edges "
                          "into stray class indices, so a label map must be a lossless PNG")


def read_label_png(path: str | Path) -> np.ndarray:
    """Read an index PNG (mode L or P) and return its raw pixel values as (H, W) uint8.

    The palette of a mode-P file is ignored: the pixel value *is* the class index. RGB files are refused,
    since their pixel values are colours, not indices (decode those with :func:`snap_to_palette`).
    """
    img = open_image(path)
    check_lossless(img, path)
    if img.mode not in ("L", "P"):
        raise SemGANError(
            f"{path} is a mode-{img.mode} image; expected an index PNG (mode L or P) whose pixel values are "
            "class indices. Colour label maps must be decoded by nearest palette colour instead."
        )
    return np.asarray(img, dtype=np.uint8).copy()


def write_label_png(path: str | Path, labels: torch.Tensor | np.ndarray, palette: torch.Tensor | np.ndarray) -> None:
    """Write (H, W) labels as a palette PNG: mode P, pixel value = class index, palette = class colours."""
    arr = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if arr.ndim != 2:
        raise ValueError(f"labels must be (H, W), got shape {arr.shape}")
    pal = np.asarray(palette.cpu() if isinstance(palette, torch.Tensor) else palette, dtype=np.uint8)
    if arr.size and int(arr.max()) >= len(pal):
        raise ValueError(f"label value {int(arr.max())} outside the palette of {len(pal)} classes")
    img = Image.fromarray(arr.astype(np.uint8), mode="P")
    flat = np.zeros((256, 3), dtype=np.uint8)
    flat[: len(pal)] = pal
    img.putpalette(flat.reshape(-1).tolist())
    atomic_write(path, lambda f: img.save(f, format="PNG"))


def write_rgb_png(path: str | Path, image: torch.Tensor | np.ndarray) -> None:
    """Write a (3, H, W) uint8 image as an RGB PNG."""
    arr = np.asarray(image.cpu() if isinstance(image, torch.Tensor) else image, dtype=np.uint8)
    img = Image.fromarray(np.ascontiguousarray(arr.transpose(1, 2, 0)), mode="RGB")
    atomic_write(path, lambda f: img.save(f, format="PNG"))


def read_rgb_png(path: str | Path) -> np.ndarray:
    """Read any 8-bit image as (3, H, W) uint8 RGB; grey and palette images are expanded to three channels.

    16-bit and float images are refused: converting them to 8 bits clips every value over 255.
    """
    img = open_image(path)
    if img.mode.startswith(("I", "F")):
        raise SemGANError(f"{path} is a mode-{img.mode} image (16/32-bit or float); expected an 8-bit RGB, grey or "
                          "palette image: converting it would clip every value over 255")
    return np.asarray(img.convert("RGB"), dtype=np.uint8).transpose(2, 0, 1).copy()


def palette_array(colors: Sequence[Sequence[int]]) -> np.ndarray:
    """A (K, 3) uint8 palette from a list of RGB triples, checking the types and the range."""
    bad = [c for c in colors if not isinstance(c, list | tuple | np.ndarray)
           or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in c)]
    if bad:
        raise SemGANError(f"a palette must be K RGB triples of integers in 0..255 (e.g. [255, 0, 0], not a colour "
                          f"name), got {bad[0]!r}")
    pal = np.asarray(colors, dtype=np.int64)
    if pal.ndim != 2 or pal.shape[1] != 3 or pal.min() < 0 or pal.max() > 255:
        raise SemGANError(f"a palette must be K RGB triples in 0..255, got {colors!r}")
    return pal.astype(np.uint8)
