"""``semgan segmenter train|predict``: photos to label maps, the score of dreamed pairs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from semgan.cli.common import OUT, SubParsers, add_device
from semgan.devices import resolve_device
from semgan.errors import SemGANError

PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg")


def _cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from PIL import Image

    from semgan.dream import read_label_folder, staged
    from semgan.labels import colorize, make_grid, open_image, write_label_png, write_rgb_png
    from semgan.metrics.segmentation import segmentation_scores
    from semgan.model_files import load_model
    from semgan.segment import Segmenter

    seg: Segmenter = load_model(args.run, args.checkpoint, resolve_device(args.device, key="--device"),
                                family="segmenter", purpose="`semgan segmenter predict`")
    root: Path = args.photos
    if not root.is_dir():
        raise SemGANError(f"--photos {root}: not a folder; expected a folder of photos (PNG or JPEG)")
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES)
    if not files:
        raise SemGANError(f"--photos {root} holds no .png or .jpg photos")
    truth = None
    if args.truth is not None:  # score against true maps of the same names, after checking their class set
        classes = args.truth / "classes.json"
        if classes.is_file():
            seg.check_classes(json.loads(classes.read_text()).get("names", []), f"--truth {args.truth}")
        truth, names = read_label_folder(args.truth, len(seg.class_names), what="--truth", owner="segmenter")
        if [Path(n).stem for n in names] != [f.stem for f in files]:
            raise SemGANError(f"--truth {args.truth} and --photos {root} do not hold the same names; expected one "
                              "map per photo")
    R = seg.resolution
    photos = []
    for f in files:
        img = open_image(f).convert("RGB")  # the pixel budget is checked before decoding
        if img.size != (R, R):
            img = img.resize((R, R), Image.Resampling.BICUBIC)  # the segmenter's resolution, as the training data was
        photos.append(torch.from_numpy(np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).copy()))
    batch = torch.stack(photos)
    labels = seg(batch)
    with staged(args.out) as tmp:
        (tmp / "labels").mkdir()
        for f, lab in zip(files, labels, strict=True):
            write_label_png(tmp / "labels" / f"{f.stem}.png", lab, seg.palette)
        (tmp / "labels" / "classes.json").write_text(json.dumps({"names": list(seg.class_names),
                                                                 "colors": seg.palette.tolist()}))
        rows = torch.stack([batch[:16], colorize(labels[:16], seg.palette)], 1).flatten(0, 1)
        write_rgb_png(tmp / "grid.png", make_grid(rows, nrow=8))
    score = ""
    if truth is not None:
        if tuple(truth.shape[1:]) != (R, R):
            raise SemGANError(f"--truth {args.truth}: maps of {tuple(truth.shape[1:])}; the segmenter predicts {R}x{R}")
        s = segmentation_scores(truth, labels, len(seg.class_names))
        score = f"; against --truth: mIoU {s['miou']:.4f}, pixel accuracy {s['pixel_acc']:.4f}"
    print(f"{len(files)} photos of {root} -> {args.out}/labels (index PNGs), {args.out}/grid.png (photo | map){score}")
    return 0


def add_segmenter(sub: SubParsers) -> None:
    """``semgan segmenter train|predict``."""
    from semgan.cli.train import add_family_group

    seg_sub, _ = add_family_group(sub, "segmenter", "train a segmenter (photo -> label map); predict folders of photos",
                                  "train a segmenter on paired maps and photos (a real split scores it)")
    p = seg_sub.add_parser("predict", help="label a folder of photos with a trained segmenter")
    p.add_argument("run", type=Path, help="segmenter run folder, checkpoint file or export")
    p.add_argument("--photos", type=Path, required=True, help="folder of photos (PNG or JPEG)")
    p.add_argument("--out", type=OUT, required=True, help="new folder: OUT/labels/<name>.png and OUT/grid.png")
    p.add_argument("--truth", type=Path, help="folder of the true index PNGs (same names): print mIoU against them")
    p.add_argument("--checkpoint", default="latest", help="checkpoint name in RUN/checkpoints")
    add_device(p)
    p.set_defaults(func=_cmd_predict)
