"""pix2pix as a model family of the shared loop, translation, dreaming and latent walks, on tiny synthetic pairs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import PAIR_COLORS, PAIR_COUNT, PAIR_SIZE, assert_same_state, straight_and_resumed
from PIL import Image

from semgan.api import load
from semgan.checkpoint import load_checkpoint
from semgan.cli import main
from semgan.config import RunConfig, apply_overrides, get_preset
from semgan.dream import dream, interpolate, read_label_folder, walk
from semgan.errors import SemGANError
from semgan.model_files import load_translator
from semgan.models.pix2pix import UnetGenerator, unet_depth
from semgan.train import train
from semgan.translate import translate

COLORS, SIZE, N = PAIR_COLORS, PAIR_SIZE, PAIR_COUNT


def test_smoke_training_through_the_shared_loop(tmp_path, pix_cfg):
    run = train(apply_overrides(pix_cfg, {"train.steps": 6}), tmp_path / "run", progress=False)
    ckpt = load_checkpoint(run / "checkpoints" / "latest.pt")
    assert ckpt["family"] == "pix2pix" and ckpt["step"] == 6
    assert {"G", "D", "opt_G", "opt_D"} <= set(ckpt)
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert all(np.isfinite(s["loss_L1"]) and np.isfinite(s["loss_D"]) for s in stats)
    (line,) = [json.loads(x) for x in (run / "metric-l1.jsonl").read_text().splitlines()]
    assert line["step"] == 6 and line["n"] == 2 and 0 < line["l1"] < 1  # 20% of 10 held out
    grid = np.asarray(Image.open(run / "grid.png"))
    assert grid.shape[1] == 3 * SIZE + 4 * 2  # map | translation | photo, padded


@pytest.mark.parametrize("ema", [0.0, 50.0])
def test_resume_10_plus_10_equals_20_bit_for_bit(tmp_path, pix_cfg, ema):
    cfg = apply_overrides(pix_cfg, {"train.ema_half_life": ema})
    a, b, run = straight_and_resumed(cfg, tmp_path)  # dropout, jitter, data order, Adam and the EMA all continue
    assert_same_state(a, b)
    assert ("G_ema" in a) == (ema > 0)
    if ema:  # the average is what translates: the translator loads it
        assert not torch.equal(a["G_ema"]["model.model.0.weight"], a["G"]["model.model.0.weight"])
        assert torch.equal(load_translator(run).G.state_dict()["model.model.0.weight"],
                           b["G_ema"]["model.model.0.weight"])


def test_onehot_input_and_gan_only_keys_refused(tmp_path, pix_cfg):
    run = train(apply_overrides(pix_cfg, {"model.input": "onehot", "train.steps": 2, "eval.metrics": ""}),
                tmp_path / "run", progress=False)
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["G"]["model.model.0.weight"].shape[1] == 3  # K = 3
    with pytest.raises(SemGANError, match=r"model.r1_gamma is a key of the semgan family, not of pix2pix"):
        apply_overrides(pix_cfg, {"model.r1_gamma": 1.0})
    with pytest.raises(SemGANError, match="power of two"):
        unet_depth(48)


def test_translation_is_seeded_and_leaves_training_state_alone(tmp_path, pix_cfg):
    run = train(apply_overrides(pix_cfg, {"train.steps": 4, "eval.metrics": ""}), tmp_path / "run", progress=False)
    tr = load_translator(run)
    labels, _ = read_label_folder(pix_cfg.data.root, 3)
    before = {k: v.clone() for k, v in tr.G.state_dict().items()}
    rng = torch.get_rng_state()
    first, again = tr(labels[:3]), tr(labels[:3])
    assert torch.equal(first, again) and first.dtype == torch.uint8 and first.shape == (3, 3, SIZE, SIZE)
    assert all(torch.equal(v, before[k]) for k, v in tr.G.state_dict().items()), "running statistics untouched"
    assert torch.equal(torch.get_rng_state(), rng), "torch's global RNG untouched"
    # 32 px has no dropout level (num_downs - 5 = 0); at 64 px one: the seed drives it, image by image
    torch.manual_seed(0)
    G = UnetGenerator(3, 3, num_downs=6, ngf=4)
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    out = translate(G, x, seed=0)
    assert torch.equal(out, translate(G, x, seed=0)) and not torch.equal(out, translate(G, x, seed=5))
    assert torch.equal(translate(G, x[1:], seed=1), out[1:]), "image i takes seed + i"


def _two_runs(tmp_path: Path, pix_cfg: RunConfig) -> tuple[Path, Path]:
    gen_cfg = apply_overrides(get_preset("tiny"), {"data.name": "folder", "data.root": pix_cfg.data.root,
                                                   "train.device": "cpu", "train.steps": 2})
    return (train(gen_cfg, tmp_path / "gen", progress=False),
            train(apply_overrides(pix_cfg, {"train.steps": 2, "eval.metrics": ""}), tmp_path / "p2p", progress=False))


def test_translate_and_dream_end_to_end(tmp_path, pix_cfg, capsys):
    gen, p2p = _two_runs(tmp_path, pix_cfg)
    assert main(["dream", "--generator", str(gen), "--translator", str(p2p), "--n", "5", "--out",
                 str(tmp_path / "dream"), "--device", "cpu"]) == 0
    for sub in ("labels", "maps", "photos"):
        assert len(list((tmp_path / "dream" / sub).glob("*.png"))) == 5
    assert Image.open(tmp_path / "dream" / "grid.png").size == (8 * SIZE + 9 * 2, 2 * SIZE + 3 * 2)  # 4 pairs a row
    assert main(["pix2pix", "translate", str(p2p), "--labels", str(tmp_path / "dream" / "labels"), "--out",
                 str(tmp_path / "tr"), "--device", "cpu"]) == 0
    for i in range(5):  # the same map at the same place with the same seed: the same photo
        a = np.asarray(Image.open(tmp_path / "tr" / "photos" / f"{i:04d}.png"))
        assert np.array_equal(a, np.asarray(Image.open(tmp_path / "dream" / "photos" / f"{i:04d}.png")))
    d = dream(load(gen, device="cpu"), load_translator(p2p), 5, seed=0)
    assert np.array_equal(d.photos[0].permute(1, 2, 0).numpy(),
                          np.asarray(Image.open(tmp_path / "dream" / "photos" / "0000.png")))

    assert main(["dream", "--generator", str(gen), "--translator", str(p2p), "--n", "3", "--interpolate",
                 "--frames", "4", "--out", str(tmp_path / "walk"), "--device", "cpu"]) == 0
    gif = Image.open(tmp_path / "walk" / "walk.gif")
    durations = []
    for k in range(gif.n_frames):  # PIL merges equal neighbouring frames, adding up their durations
        gif.seek(k)
        durations.append(gif.info["duration"])
    assert sum(durations) == 7 * 120 and gif.size == (2 * SIZE, SIZE)  # 2 legs x (4 - 1) + 1 frames, map | photo
    assert Image.open(tmp_path / "walk" / "strip.png").size == (7 * SIZE + 8, 2 * SIZE + 3)
    capsys.readouterr()


def test_interpolation_frames_start_and_end_exactly_at_the_latents():
    keys = torch.randn(3, 16, generator=torch.Generator().manual_seed(0))
    path = walk(keys, frames=6)
    assert path.shape == (11, 16)
    assert torch.equal(path[0], keys[0]) and torch.equal(path[5], keys[1]) and torch.equal(path[10], keys[2])
    mid = path[1:5].norm(dim=1)
    assert (mid > 0.8 * keys[:2].norm(dim=1).min()).all(), "a great circle, not a chord through the origin"


def test_interpolate_uses_the_seeded_latents(tmp_path, pix_cfg):
    gen, p2p = _two_runs(tmp_path, pix_cfg)
    g, tr = load(gen, device="cpu"), load_translator(p2p)
    w = interpolate(g, tr, seed=3, keys=2, frames=5)
    keys = dream(g, tr, 2, seed=3).latents
    assert torch.equal(w.latents[0], keys[0]) and torch.equal(w.latents[-1], keys[1])
    assert torch.equal(w.labels[0], dream(g, tr, 2, seed=3).labels[0])


def test_bad_inputs_are_refused_naming_both_sides(tmp_path, pix_cfg, capsys):
    gen, p2p = _two_runs(tmp_path, pix_cfg)
    other = train(apply_overrides(get_preset("tiny"), {"train.device": "cpu", "train.steps": 1}), tmp_path / "shapes",
                  progress=False)
    assert main(["dream", "--generator", str(other), "--translator", str(p2p), "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "classes" in err and "c0, c1, c2" in err and "background" in err
    assert main(["dream", "--generator", str(p2p), "--translator", str(gen), "--out", str(tmp_path / "x")]) == 2
    assert "pix2pix" in capsys.readouterr().err

    bad = tmp_path / "bad"
    bad.mkdir()
    Image.fromarray(np.full((SIZE, SIZE), 7, np.uint8), mode="L").save(bad / "seven.png")
    Image.fromarray(np.zeros((SIZE, SIZE), np.uint8), mode="L").save(bad / "fine.png")
    assert main(["pix2pix", "translate", str(p2p), "--labels", str(bad), "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err
    assert "seven.png: 7" in err and "fine.png" not in err and not (tmp_path / "y").exists()

    (Path(pix_cfg.data.photos) / "m03.png").unlink()
    (Path(pix_cfg.data.photos) / "m07.png").unlink()
    missing = r"(?s)2 of 10 .*m03\.png: photo not found: .*m03\.\{jpg,jpeg,png\}.*m07\.png"
    with pytest.raises(SemGANError, match=missing):
        train(pix_cfg, tmp_path / "missing", progress=False)
    assert main(["pix2pix", "train", "--preset", "tiny", "--out", str(tmp_path / "z")]) == 2
    assert "pix2pix presets" in capsys.readouterr().err


def test_cmp_pairs_and_the_seeded_held_out_split(shared_data):
    from semgan.config import DataConfig
    from semgan.data import holdout_split, pairs_from_config

    ds = pairs_from_config(DataConfig(name="facades", root=str(shared_data / "cmp_facade_base"), size=32))
    assert ds.photos is not None and ds.photos.shape == (378, 3, 32, 32) and ds.num_classes == 12
    train_idx, held = holdout_split(ds, 0.1, seed=0)
    assert len(held) == 38 and not set(train_idx) & set(held) and len(train_idx) + len(held) == 378
    assert holdout_split(ds, 0.1, seed=0) == (train_idx, held) and holdout_split(ds, 0.1, seed=1)[1] != held
    shapes = pairs_from_config(DataConfig(name="shapes"))  # generated maps come with rendered photos
    assert shapes.photos is not None and shapes.photos.shape[1:] == (3, 64, 64)


def test_a_folder_without_photos_is_refused(pix_cfg):
    from semgan.data import pairs_from_config

    with pytest.raises(SemGANError, match="needs their photos: --set data.photos=DIR"):
        pairs_from_config(dataclasses.replace(pix_cfg.data, photos=""))


@pytest.mark.filterwarnings("ignore:train.precision=bf16")
def test_bf16_autocast_trains_finite(tmp_path, pix_cfg):
    run = train(apply_overrides(pix_cfg, {"train.steps": 4, "train.precision": "bf16", "eval.every": 4}),
                tmp_path / "run", progress=False)
    ckpt = load_checkpoint(run / "checkpoints" / "latest.pt")
    assert ckpt["step"] == 4 and ckpt["config"]["train"]["precision"] == "bf16"
    assert all(bool(v.isfinite().all()) for v in ckpt["G"].values() if v.is_floating_point())
    assert all(v.dtype == torch.float32 for v in ckpt["G"].values() if v.is_floating_point()), "fp32 master weights"
    stats = [json.loads(x) for x in (run / "stats.jsonl").read_text().splitlines()]
    assert stats and all(np.isfinite(s["loss_L1"]) for s in stats)


@pytest.mark.slow
def test_torchrun_two_ranks_train_and_resume_on_one(tmp_path, pix_cfg):
    from test_distributed import torchrun

    out = tmp_path / "run"
    sets = [f"--set={k}={v}" for k, v in (("data.name", "folder"), ("data.root", pix_cfg.data.root),
                                          ("data.photos", pix_cfg.data.photos), ("data.size", 0),
                                          ("model.holdout", 0.2), ("eval.metrics", "l1"), ("eval.every", 4),
                                          ("train.device", "cpu"), ("train.steps", 4))]
    res = torchrun(["-m", "semgan", "pix2pix", "train", "--preset", "pix2pix-tiny", "--out", str(out), *sets,
                    "--no-progress"])
    assert res.returncode == 0, res.stderr[-3000:]
    ckpt = load_checkpoint(out / "checkpoints" / "latest.pt")
    assert ckpt["step"] == 4 and ckpt["world_size"] == 2 and ckpt["family"] == "pix2pix"
    assert not torch.equal(ckpt["rng"]["ranks"][0]["torch"], ckpt["rng"]["ranks"][1]["torch"]), "dropout per rank"
    (line,) = [json.loads(x) for x in (out / "metric-l1.jsonl").read_text().splitlines()]
    assert line["n"] == 2 and 0 < line["l1"] < 1, "evaluated once, on rank 0"
    assert main(["pix2pix", "train", "--out", str(out), "--resume", "--steps", "6", "--no-progress"]) == 0
    assert load_checkpoint(out / "checkpoints" / "latest.pt")["world_size"] == 1


def test_a_dreamed_dataset_is_a_paired_folder_that_resumes_without_duplicates(tmp_path):
    from semgan.config import DataConfig
    from semgan.data import pairs_from_config
    from semgan.dream import write_dataset
    from semgan.model_files import load_generator

    cfg = apply_overrides(get_preset("pix2pix-tiny"), {"train.device": "cpu", "train.steps": 2, "eval.metrics": ""})
    tr = load_translator(train(cfg, tmp_path / "p2p", progress=False))
    gen = load_generator("pretrained:shapes")
    straight = write_dataset(gen, tr, 70, tmp_path / "straight", seed=5)  # two batches of 64 and 6
    pairs = pairs_from_config(DataConfig(name="folder", root=str(straight / "maps"),
                                         photos=str(straight / "photos")))
    assert len(pairs) == 70 and pairs.class_names == gen.class_names and pairs.photos is not None
    assert torch.equal(pairs.labels[3].long(), gen.sample_seeds([8]).labels[0]), "pair i is the map of seed + i"
    # interrupted in the second batch: its files partly written; the same call finishes it, bit for bit
    resumed = tmp_path / "resumed"
    write_dataset(gen, tr, 64, resumed, seed=5)
    for i in (64, 65):
        (resumed / "maps" / f"{i:06d}.png").write_bytes((straight / "maps" / f"{i:06d}.png").read_bytes())
    write_dataset(gen, tr, 70, resumed, seed=5)
    names = sorted(p.name for p in (straight / "maps").iterdir())
    assert names == sorted(p.name for p in (resumed / "maps").iterdir())
    for sub in ("maps", "photos"):
        for p in (straight / sub).glob("*.png"):
            assert p.read_bytes() == (resumed / sub / p.name).read_bytes(), f"{sub}/{p.name}"
    with pytest.raises(SemGANError, match="was dreamed with another seed"):
        write_dataset(gen, tr, 70, resumed, seed=6)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("mine")
    with pytest.raises(SemGANError, match="is not empty and holds no dream.json"):
        write_dataset(gen, tr, 4, tmp_path / "other")
