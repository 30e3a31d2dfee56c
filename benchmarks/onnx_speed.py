"""Maps per second of a generator's ONNX export in onnxruntime against the same generator in PyTorch eager.

    python benchmarks/onnx_speed.py [MODEL] [--batch 64] [--rounds 5] [--threads 1]

MODEL is anything `semgan export` reads (default ``pretrained:shapes``). Both run on the CPU with the same thread
count, in alternating rounds so that a change in the machine's load hits both alike; the ratio is the result.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model", nargs="?", default="pretrained:shapes")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--maps", type=int, default=512, help="maps per round")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()

    import onnxruntime as ort

    from semgan.export import export_model
    from semgan.model_files import load_generator

    torch.set_num_threads(args.threads)
    gen = load_generator(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        out = export_model(args.model, Path(tmp) / "onnx", format="onnx")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = args.threads, 1
        session = ort.InferenceSession(str(out / "model.onnx"), opts, providers=["CPUExecutionProvider"])
    z = torch.randn(args.batch, gen.G.cfg.ld, generator=torch.Generator().manual_seed(0))
    batches = max(1, args.maps // args.batch)

    def eager() -> None:
        with torch.no_grad():
            for _ in range(batches):
                gen.G(z).argmax(1)

    def onnx() -> None:
        for _ in range(batches):
            session.run(None, {"z": z.numpy()})

    times: dict[str, list[float]] = {"pytorch eager": [], "onnxruntime": []}
    for fn in (eager, onnx):
        fn()  # warm-up
    for _ in range(args.rounds):
        for name, fn in (("pytorch eager", eager), ("onnxruntime", onnx)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    cap = torch.backends.cpu.get_cpu_capability()
    print(f"{args.model}: {gen.resolution}x{gen.resolution}, K={len(gen.class_names)}; batch {args.batch}, "
          f"{batches * args.batch} maps a round, {args.rounds} rounds, {args.threads} thread(s); CPU {cap}, "
          f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; torch {torch.__version__}, onnxruntime "
          f"{ort.__version__}")
    base = statistics.median(times["pytorch eager"])
    print("| runtime | maps/s (median) | ratio |\n|---|---:|---:|")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"| {name} | {batches * args.batch / med:,.0f} | {base / med:.2f} |")


if __name__ == "__main__":
    main()
