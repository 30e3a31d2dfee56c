"""Named configurations: the paper's (appendix A and B, Tables 3 and 4) and CPU-sized ones.

Why the CPU presets differ from the paper is documented with the experiments in docs/results.md.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from semgan.config.schema import (
    DataConfig,
    EncoderModelConfig,
    EvalConfig,
    Pix2PixModelConfig,
    RunConfig,
    SegmenterModelConfig,
    SemGANModelConfig,
    TrainConfig,
)
from semgan.registry import Registry

PRESETS: Registry[RunConfig] = Registry("preset")
PRESET_HELP: dict[str, str] = {}


def add_preset(name: str, cfg: RunConfig, help: str) -> None:  # noqa: A002
    PRESETS.add(name, cfg)
    PRESET_HELP[name] = help


def get_preset(name: str) -> RunConfig:
    return PRESETS.get(name)


# The paper's Colored Shapes configuration (appendix B): batch 32, lr 1e-4, ks 11, ld 100, 5e4 steps.
# Widths follow ashpy's Decoder/Encoder pattern (the paper does not give them): G 512 -> 32, D 64 -> 512.
add_preset(
    "shapes",
    RunConfig(
        data=DataConfig(name="shapes"),
        model=SemGANModelConfig(ld=100, ks=11),
        train=TrainConfig(steps=50_000, batch=32, lr=1e-4, sample_every=1000, ckpt_every=5000),
        eval=EvalConfig(every=2500, metrics=("swd", "ms_ssim", "semantic")),
    ),
    "Colored Shapes 64x64, the paper's configuration (lr 1e-4, ks 11, ld 100, batch 32, 50k steps)",
)

# What the CPU presets add to the paper's recipe, each measured in docs/results.md ("The recipe ablation",
# "Robust training"): an EMA of G's weights, ADA-style augmentation of both D inputs (sets of a few hundred
# maps), an instance-noise floor (D never tells a softmax from a one-hot by value alone), and the collapse guard
# (back to the last evaluation that drew every class, with fresh random streams, at most 3 times), and a
# learning-rate decay over the last 30 % of the steps, so that a run ends on a settled model rather than
# wherever the last steps took it. channels_last and the hash dropout masks are speed only (docs/benchmarks.md).
CPU_RECIPE: dict[str, Any] = {"augment": ("flip", "translation", "cutout"), "ada_target": 0.6, "ada_images": 50_000,
                              "d_noise_floor": 0.1}
CPU_TRAIN: dict[str, Any] = {"ema_half_life": 5000.0, "channels_last": True, "guard_rollbacks": 3, "lr_decay": 0.3}

# Small enough for a 2-core CPU. Kernel 4, not 11: a conv costs ks^2, and a stride-2 transposed conv whose
# kernel the stride divides has no checkerboard artefacts, which narrow networks on a short budget cannot
# learn away. Feature matching on every D layer ("fm_all"): the first layers' means pin the class mix. The
# class prior keeps every class drawn on any seed and thread count (docs/results.md "Robust training").
add_preset(
    "shapes-cpu",
    RunConfig(
        data=DataConfig(name="shapes"),
        model=SemGANModelConfig(ld=100, ks=4, g_channels=128, g_min_channels=16, d_channels=16, d_max_channels=128,
                                d_dropout_rng="hash", g_loss="fm_all", class_prior=0.01, **CPU_RECIPE),
        train=TrainConfig(steps=3000, batch=32, lr=2e-4, log_every=25, sample_every=250, ckpt_every=500,
                          **CPU_TRAIN),
        eval=EvalConfig(every=500, n=1024, metrics=("swd", "ms_ssim", "semantic", "structure")),
    ),
    "Colored Shapes 64x64 on a CPU: narrow widths, ks 4, fm_all, lr 2e-4, EMA + ADA + noise floor, class prior + "
    "collapse guard, lr decay over the last 30 %, 3000 steps (~8 min on 2 AVX-512 cores)",
)

# A seconds-long configuration for tests and smoke runs.
add_preset(
    "tiny",
    RunConfig(
        data=DataConfig(name="shapes"),
        model=SemGANModelConfig(ld=16, ks=3, g_channels=16, g_min_channels=4, d_channels=4, d_max_channels=16),
        train=TrainConfig(steps=20, batch=8, lr=2e-4, log_every=5, sample_every=10, ckpt_every=10),
        eval=EvalConfig(n=64),  # when evaluated (compare, --set eval.metrics=...): 64 maps, a second or two each
    ),
    "a few-second smoke configuration (tests, CI); learns nothing useful",
)
# Every family has a <family>-tiny preset that trains in seconds without data files: the family conformance
# tests (tests/test_families.py) run each through the same contract.
add_preset("semgan-tiny", replace(get_preset("tiny"), eval=EvalConfig(metrics=("swd", "structure"), n=32)),
           "the tiny preset, scored with SWD and the structure metrics at the end (the family conformance tests)")


def _paper_preset(dataset: str, classes: str, lr: float, ld: int, ks: int) -> RunConfig:
    """A row of the paper's Tables 3 and 4 (appendix A): 128x128, batch 32, 5e4 steps, kernel ks in G and D."""
    return RunConfig(
        data=DataConfig(name=dataset, size=128, classes=classes),
        model=SemGANModelConfig(ld=ld, ks=ks),
        train=TrainConfig(steps=50_000, batch=32, lr=lr, sample_every=1000, ckpt_every=5000),
        eval=EvalConfig(every=2500, metrics=("swd", "ms_ssim", "semantic")),
    )


def _add_paper_presets() -> None:
    # (dataset, class set, table, rows (lr, ld, ks), the best SemGAN row of Tables 1 and 2)
    tables = [
        ("cityscapes", "cityscapes22", "Table 3", [(2e-4, 128, 7), (2e-4, 300, 11), (2e-4, 300, 7)], (2e-4, 128, 7)),
        ("facades", "", "Table 4", [(1e-4, 300, 7), (2e-4, 128, 7), (2e-3, 300, 7), (2e-4, 300, 7)], (2e-4, 300, 7)),
    ]
    for dataset, classes, table, rows, (best_lr, best_ld, best_ks) in tables:
        for lr, ld, ks in rows:
            add_preset(
                f"{dataset}-lr{lr:.0e}-ld{ld}-ks{ks}".replace("e-0", "e-"),
                _paper_preset(dataset, classes, lr, ld, ks),
                f"{dataset.capitalize()} 128x128, {table} row lr {lr:g}, ld {ld}, ks {ks}; 50k steps",
            )
        add_preset(
            dataset,
            _paper_preset(dataset, classes, best_lr, best_ld, best_ks),
            f"{dataset.capitalize()} 128x128, the paper's best SemGAN (lr {best_lr:g}, ld {best_ld}, ks {best_ks}); "
            "50k steps",
        )


_add_paper_presets()


# CPU-sized real-data presets: the shapes-cpu recipe at 128x128 without the class prior, plus instance noise
# (sigma 1, annealed to the floor: without it D wins within ~100 steps on a few hundred maps), straight-through
# fakes (D sees a fake's argmax one-hot, like a real, so it cannot tell fakes by their values) and lazy R1 (with
# st alone D found the argmax/softmax gap on Colored Shapes). A user's maps may be sparse like shapes or dense
# like facades; this is the recipe that held on both (docs/results.md, "The recipe ablation" and "Robust
# training").
def _cpu_preset(dataset: str, classes: str, steps: int, size: int = 128) -> RunConfig:
    return RunConfig(
        data=DataConfig(name=dataset, size=size, classes=classes),
        model=SemGANModelConfig(ld=128, ks=4, g_channels=128, g_min_channels=16, d_channels=16, d_max_channels=128,
                                d_dropout_rng="hash", fake_input="st-argmax", g_loss="fm_all", d_noise=1.0,
                                r1_gamma=1.0, r1_every=4, **CPU_RECIPE),
        train=TrainConfig(steps=steps, batch=32, lr=2e-4, log_every=25, sample_every=250, ckpt_every=500,
                          **CPU_TRAIN),
        # 1024 maps per evaluation: the whole set of a few hundred maps, a bounded share of a larger one
        eval=EvalConfig(every=500, n=1024, metrics=("swd", "ms_ssim", "semantic", "structure")),
    )


add_preset("facades-cpu", _cpu_preset("facades", "", 1500),
           "CMP Facades 128x128 on a CPU: shapes-cpu recipe (without the class prior) + instance noise, "
           "straight-through fakes and lazy R1, ld 128, 1500 steps (~40 min, 2 cores)")
add_preset("cityscapes-cpu", _cpu_preset("cityscapes", "cityscapes22", 1500),
           "Cityscapes 128x128 (cityscapes22) on a CPU: the facades-cpu recipe, 1500 steps")
add_preset("folder-cpu", _cpu_preset("folder", "", 1500, size=0),
           "your own folder of label maps (--data-root DIR) on a CPU: the facades-cpu recipe at the maps' own square "
           "resolution (--set data.size=64 or 128 to resize larger maps), 1500 steps")


# pix2pix (Isola et al. 2017) as in the reference code: batch 1, Adam 2e-4 (0.5, 0.999), L1 weight 100,
# 286/256 jitter and flips, U-Net and 70x70 PatchGAN at ngf = ndf = 64; at 128 px the U-Net is unet_128. Its
# 200 epochs of 340 training pairs are ~68k steps (the reference decays the rate over the last 100 epochs; we
# keep it constant). 10% of the pairs are held out and scored (L1 against their photos, FID).
def _pix2pix_preset(dataset: str, steps: int, width: int, every: int) -> RunConfig:
    return RunConfig(
        data=DataConfig(name=dataset, size=128),
        model=Pix2PixModelConfig(ngf=width, ndf=width),
        train=TrainConfig(steps=steps, batch=1, lr=2e-4, beta1=0.5, log_every=50, sample_every=every // 2,
                          ckpt_every=every),
        eval=EvalConfig(every=every, metrics=("l1", "fid")),
    )


add_preset("pix2pix-facades", _pix2pix_preset("facades", 68_000, 64, 5000),
           "pix2pix on CMP Facades 128x128 (photos beside the label PNGs), the reference recipe: unet_128, "
           "PatchGAN 70x70, batch 1, ~200 epochs; 10% held out")
# Half width: ~4x the steps per second (docs/results.md, "Dreaming facades"), more epochs in an hour.
add_preset("pix2pix-facades-cpu", _pix2pix_preset("facades", 7000, 32, 3500),
           "pix2pix on CMP Facades 128x128 on a CPU: half width (ngf = ndf = 32), 7000 steps (~20 epochs; ~30 min "
           "on one core); 10% held out")
add_preset(
    "pix2pix-tiny",
    RunConfig(data=DataConfig(name="shapes"), model=Pix2PixModelConfig(ngf=4, ndf=4),
              train=TrainConfig(steps=20, batch=2, lr=2e-4, log_every=5, sample_every=10, ckpt_every=10),
              eval=EvalConfig(metrics=("l1",), n=8)),
    "a seconds-long pix2pix smoke configuration on Colored Shapes and their rendered photos (tests; no data "
    "needed); learns nothing useful",
)


# The semantic encoder (the paper's future work): E inverts a frozen SemGAN generator. Its data are the
# generator's (`semgan encoder train --generator G` takes G's data section); pretrained:shapes by default.
# Adam at 1e-3 with beta1 0.9: E regresses latents, no adversary to keep in step with.
def _encoder_preset(steps: int, channels: int, batch: int, every: int) -> RunConfig:
    return RunConfig(
        data=DataConfig(name="shapes"),
        model=EncoderModelConfig(generator="pretrained:shapes", channels=channels, max_channels=8 * channels),
        train=TrainConfig(steps=steps, batch=batch, lr=1e-3, beta1=0.9, log_every=25, sample_every=every // 2,
                          ckpt_every=every, channels_last=True),
        eval=EvalConfig(every=every, n=256, metrics=("miou", "pixel_acc")),
    )


add_preset("encoder-cpu", _encoder_preset(3000, 32, 32, 500),
           "a semantic encoder for a SemGAN generator on a CPU (--generator G; pretrained:shapes by default), on the "
           "generator's data, 3000 steps")
add_preset("encoder-tiny", replace(_encoder_preset(20, 4, 8, 10), eval=EvalConfig(n=16, metrics=("miou", "pixel_acc"))),
           "a seconds-long encoder smoke configuration for pretrained:shapes (tests); learns nothing useful")


# The segmenter: what dreamed (map, photo) pairs are measured by (benchmarks/downstream.py). A small U-Net from
# scratch, Adam 2e-4 (0.5, 0.999) as pix2pix's, flips and crops; scored on the real val split.
add_preset(
    "segmenter-cpu",
    RunConfig(data=DataConfig(name="facades", size=64, split="train"),
              model=SegmenterModelConfig(channels=32, test_split="val"),
              train=TrainConfig(steps=2000, batch=16, lr=2e-4, log_every=25, sample_every=500, ckpt_every=500,
                                channels_last=True),
              eval=EvalConfig(every=500, metrics=("miou", "pixel_acc"))),
    "a segmenter on CMP facades at 64 px on a CPU: train split, scored on the val split (--data-root DIR)",
)
add_preset(
    "segmenter-tiny",
    RunConfig(data=DataConfig(name="shapes"), model=SegmenterModelConfig(channels=4, holdout=0.1),
              train=TrainConfig(steps=20, batch=4, lr=2e-3, log_every=5, sample_every=10, ckpt_every=10),
              eval=EvalConfig(n=16, metrics=("miou", "pixel_acc"))),
    "a seconds-long segmenter smoke configuration on Colored Shapes and their rendered photos (tests)",
)
