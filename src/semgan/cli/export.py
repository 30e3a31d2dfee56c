"""``semgan export``: a trained model's networks for use as a safe model folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from semgan.cli.common import OUT, SubParsers
from semgan.run_dir import RunDir


def _cmd_export(args: argparse.Namespace) -> int:
    from semgan.export import CARD, CONFIG, WEIGHTS, export_model

    out = export_model(args.run, args.out, which=args.checkpoint, format=args.format)
    main_file = "model.onnx" if args.format == "onnx" else WEIGHTS
    print(f"exported {args.run} ({args.checkpoint}) -> {out}/{main_file}, {out}/{CONFIG}, {out}/{CARD}")
    return 0


def add_export(subparsers: SubParsers) -> None:
    """Add the ``export`` command."""
    p = subparsers.add_parser(
        "export", help="write a trained model as a safe model folder (safetensors, config, model card)",
        description="Export a trained model (a generator: its moving average when the run kept one; a pix2pix "
        "translator) as DIR/model.safetensors, DIR/config.json and a model card DIR/README.md. `semgan sample`, "
        "`semgan evaluate`, `semgan dream` and semgan.load take the folder.",
    )
    p.add_argument("run", type=Path, help="a run folder, a checkpoint file, an exported folder or pretrained:NAME")
    p.add_argument("--out", type=OUT, required=True, help="a new or empty folder")
    p.add_argument("--checkpoint", default=RunDir.LATEST, help="latest, or best-<metric>")
    p.add_argument("--format", choices=("safetensors", "onnx"), default="safetensors",
                   help="safetensors (the weights, for semgan and PyTorch), or onnx: the generator (latents -> "
                   "labels, probs) or translator (labels -> photos) as a graph with a dynamic batch axis, for "
                   "onnxruntime and other runtimes (needs the extra semgan[onnx])")
    p.set_defaults(func=_cmd_export)
