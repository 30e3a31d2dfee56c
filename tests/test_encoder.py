"""The semantic encoder: encoding, refinement, the generator's fingerprint, the commands and their bad inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from semgan.checkpoint import load_checkpoint
from semgan.cli import main
from semgan.config import apply_overrides, get_preset
from semgan.encoder import invert, reconstruction_loss, weights_fingerprint
from semgan.errors import SemGANError
from semgan.labels import write_label_png
from semgan.model_files import load_generator, load_model
from semgan.train import train


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = apply_overrides(get_preset("encoder-tiny"), {"train.device": "cpu", "train.steps": 12})
    return train(cfg, tmp_path_factory.mktemp("encoder") / "run", progress=False)


@pytest.fixture(scope="module")
def maps() -> torch.Tensor:
    return load_generator("pretrained:shapes").sample(6, seed=3).labels  # (6, 64, 64)


def test_an_encoder_keeps_its_generator_and_its_fingerprint(run):
    enc = load_model(run)
    ckpt = load_checkpoint(run / "checkpoints" / "latest.pt")
    shipped = load_generator("pretrained:shapes")
    assert enc.fingerprint == ckpt["meta"]["generator"]["fingerprint"] == weights_fingerprint(shipped.G)
    enc.check_generator(shipped)
    other = load_generator("pretrained:shapes")
    with torch.no_grad():
        other.G.stem.weight.add_(1e-3)
    with pytest.raises(SemGANError, match="is not the generator this encoder was trained for"):
        enc.check_generator(other)
    ckpt["G"]["stem.weight"] = ckpt["G"]["stem.weight"] + 1.0  # a damaged file: the stored G no longer fits
    torch.save(ckpt, run.parent / "damaged.pt")
    with pytest.raises(SemGANError, match="does not match the fingerprint"):
        load_model(run.parent / "damaged.pt")


def test_encode_refine_and_decode(run, maps):
    enc = load_model(run)
    plain, refined = enc.encode(maps), enc.encode(maps, refine=30)
    assert plain.latents.shape == (6, enc.ld) and plain.labels.shape == maps.shape
    assert refined.loss.mean() < plain.loss.mean(), "refinement lowers the reconstruction loss"
    assert torch.equal(enc.encode(maps, refine=30).latents, refined.latents), "deterministic"
    assert torch.equal(enc.decode(refined.latents).labels, refined.labels)
    # maps are refined independently: batching changes nothing
    G = enc.generator.G
    one_by_one = invert(G, maps, plain.latents, 10, batch_size=1)
    together = invert(G, maps, plain.latents, 10, batch_size=6)
    torch.testing.assert_close(one_by_one, together, rtol=0, atol=2e-3)  # float rounding of batched convs only
    losses = reconstruction_loss(G, together, maps)
    assert losses.shape == (6,) and bool(torch.isfinite(losses).all())


def test_maps_that_do_not_fit_are_refused(run, maps):
    enc = load_model(run)
    with pytest.raises(SemGANError, match="maps of shape \\(32, 32\\); the encoder .* takes 64x64"):
        enc.encode(maps[:, :32, :32])
    with pytest.raises(SemGANError, match="label values 0..7; the encoder has 4 classes"):
        enc.encode(maps.clamp(max=3) + (maps == 3).long() * 4)
    with pytest.raises(SemGANError, match="refine=-1"):
        enc.encode(maps, refine=-1)


def test_the_commands_write_everything_or_nothing(run, maps, tmp_path, capsys):
    folder = tmp_path / "maps"
    folder.mkdir()
    for i, m in enumerate(maps):
        write_label_png(folder / f"m{i}.png", m, load_model(run).palette)
    out = tmp_path / "lat.npz"
    assert main(["encode", str(run), "--maps", str(folder), "--out", str(out), "--refine", "3",
                 "--generator", "pretrained:shapes"]) == 0
    saved = np.load(out)
    assert saved["latents"].shape == (6, 100) and list(saved["names"]) == [f"m{i}.png" for i in range(6)]
    assert len(list((tmp_path / "lat-maps").glob("*.png"))) == 6 and (tmp_path / "lat-grid.png").is_file()
    assert main(["encode", str(run), "--maps", str(folder), "--out", str(out)]) == 2, "never over earlier results"
    walk = tmp_path / "walk"
    assert main(["interpolate", str(run), "--from", str(folder / "m0.png"), "--to", str(folder / "m1.png"),
                 "--steps", "4", "--out", str(walk)]) == 0
    assert len(list((walk / "labels").glob("*.png"))) == 4 and (walk / "walk.gif").is_file()
    capsys.readouterr()
    bad = [
        (["--from", str(folder / "m0.png"), "--to", str(folder / "m0.png")], "the same map"),
        (["--from", str(folder / "m0.png"), "--to", str(folder / "m1.png"), "--steps", "0"], "--steps 0"),
        (["--from", str(folder / "m0.png"), "--to", str(folder / "nothing.png")], "no such file"),
    ]
    for args, message in bad:
        target = tmp_path / "w-bad"
        assert main(["interpolate", str(run), *args, "--out", str(target)]) == 2
        assert message in capsys.readouterr().err and not target.exists()
    big = tmp_path / "big"
    big.mkdir()
    write_label_png(big / "x.png", torch.zeros(32, 32, dtype=torch.long), load_model(run).palette)
    assert main(["encode", str(run), "--maps", str(big), "--out", str(tmp_path / "b.npz")]) == 2
    assert "takes 64x64 maps" in capsys.readouterr().err and not (tmp_path / "b.npz").exists()
    assert main(["encode", "pretrained:shapes", "--maps", str(folder), "--out", str(tmp_path / "c.npz")]) == 2
    assert "holds a semgan model; `semgan encode` needs a semantic encoder" in capsys.readouterr().err


def test_a_resume_after_the_generator_changed_is_refused(tmp_path):
    gen_run = train(apply_overrides(get_preset("tiny"), {"train.device": "cpu", "train.steps": 2}), tmp_path / "g",
                    progress=False)
    cfg = apply_overrides(get_preset("encoder-tiny"), {"train.device": "cpu", "train.steps": 2,
                                                       "model.generator": str(gen_run)})
    enc_run = train(cfg, tmp_path / "e", progress=False)
    train(apply_overrides(get_preset("tiny"), {"train.device": "cpu", "train.steps": 4}), gen_run, resume=True,
          progress=False)  # the generator trains on: other weights
    with pytest.raises(SemGANError, match="has changed since this encoder started training"):
        train(apply_overrides(cfg, {"train.steps": 4}), enc_run, resume=True, progress=False)
    baseline = train(apply_overrides(get_preset("tiny"), {"train.device": "cpu", "train.steps": 1,
                                                          "model.mode": "gan"}), tmp_path / "rgb", progress=False)
    with pytest.raises(SemGANError, match="is an RGB baseline"):
        train(apply_overrides(cfg, {"model.generator": str(baseline)}), tmp_path / "e2", progress=False)
    with pytest.raises(SemGANError, match="model.generator is empty"):
        train(apply_overrides(cfg, {"model.generator": ""}), tmp_path / "e3", progress=False)
