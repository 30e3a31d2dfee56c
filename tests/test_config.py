"""Config: presets, dotted overrides with types, round trips, clear errors."""

from __future__ import annotations

import pytest

from semgan.config import (
    PRESETS,
    Pix2PixModelConfig,
    RunConfig,
    apply_overrides,
    diff,
    from_dict,
    get_preset,
    to_dict,
)
from semgan.errors import SemGANError


def test_paper_shapes_preset():
    cfg = get_preset("shapes")
    assert (cfg.train.lr, cfg.model.ks, cfg.model.ld, cfg.train.batch, cfg.train.steps) == (1e-4, 11, 100, 32, 50_000)
    assert (cfg.train.beta1, cfg.train.beta2, cfg.train.eps) == (0.5, 0.999, 1e-8)


def test_paper_table_presets():
    # Tables 3 and 4 of the paper: (lr, ld, ks) per row, 128x128, batch 32, 5e4 steps.
    rows = {"cityscapes-lr2e-4-ld128-ks7": (2e-4, 128, 7), "cityscapes-lr2e-4-ld300-ks11": (2e-4, 300, 11),
            "cityscapes-lr2e-4-ld300-ks7": (2e-4, 300, 7), "facades-lr1e-4-ld300-ks7": (1e-4, 300, 7),
            "facades-lr2e-4-ld128-ks7": (2e-4, 128, 7), "facades-lr2e-3-ld300-ks7": (2e-3, 300, 7),
            "facades-lr2e-4-ld300-ks7": (2e-4, 300, 7)}
    for name, (lr, ld, ks) in rows.items():
        cfg = get_preset(name)
        assert (cfg.train.lr, cfg.model.ld, cfg.model.ks) == (lr, ld, ks), name
        assert (cfg.data.size, cfg.train.batch, cfg.train.steps) == (128, 32, 50_000)
    assert get_preset("cityscapes").data.classes == "cityscapes22"


@pytest.mark.parametrize("name", PRESETS.names())
def test_presets_round_trip(name):
    cfg = get_preset(name)
    assert from_dict(to_dict(cfg)) == cfg


def test_overrides_are_typed():
    cfg = apply_overrides(RunConfig(), ["model.ks=7", "train.lr=2e-4", "eval.metrics=swd,fid", "data.skip_bad=true",
                                        "train.steps=5e3"])
    assert cfg.model.ks == 7 and cfg.train.lr == 2e-4 and cfg.eval.metrics == ("swd", "fid")
    assert cfg.data.skip_bad is True and cfg.train.steps == 5000
    assert set(diff(cfg, RunConfig())) == {"model.ks", "train.lr", "eval.metrics", "data.skip_bad", "train.steps"}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.kz=3", "unknown config key 'model.kz'; valid keys: .*model.ks"),
        ("model.ks=seven", "model.ks='seven' is not a valid int"),
        ("model.ks=7.5", "not a valid int"),
        ("train.lr=fast", "not a valid float"),
        ("data.skip_bad=maybe", "not a valid bool"),
        ("model.ks", "must look like section.key=value"),
    ],
)
def test_bad_overrides(override, message):
    with pytest.raises(SemGANError, match=message):
        apply_overrides(RunConfig(), [override])


def test_validate():
    with pytest.raises(SemGANError, match="model.mode='rgb'"):
        apply_overrides(RunConfig(), ["model.mode=rgb"])
    with pytest.raises(SemGANError, match="unknown preset 'nope'; expected one of"):
        get_preset("nope")
    with pytest.raises(SemGANError, match="unknown config keys model.bogus"):
        from_dict({"model": {"bogus": 1}})


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.d_norm=batch", "model.d_norm='batch'; expected 'none' or 'spectral'"),
        ("model.d_mbstd=5", r"model.d_mbstd=5; expected 0 \(off\) or a group size dividing train.batch=32"),
        ("model.d_mbstd=-1", "model.d_mbstd=-1"),
        ("model.d_noise=-0.5", "model.d_noise=-0.5; expected >= 0"),
        ("model.g_loss=wgan", "model.g_loss='wgan'; expected one of fm, fm_all, fm_l1, ns"),
    ],
)
def test_validate_stabilisers(override, message):
    with pytest.raises(SemGANError, match=message):
        apply_overrides(RunConfig(), [override])


def test_cpu_real_data_presets_take_the_ablation_recipe():
    # instance noise (without it D wins within ~100 steps on the 378 facades), st + lazy R1 on real maps
    # (docs/results.md, issue 10); shapes-cpu keeps the softmax input, its best row, and the paper's presets
    # keep the paper's
    assert get_preset("facades").model.d_noise == 0.0 and get_preset("shapes-cpu").model.d_noise == 0.0
    for name in ("facades-cpu", "cityscapes-cpu", "folder-cpu"):
        cfg = get_preset(name)
        assert cfg.model.d_noise == 1.0
        assert cfg.model.fake_input == "st-argmax"
        assert (cfg.model.r1_gamma, cfg.model.r1_every) == (1.0, 4)
        assert cfg.train.ema_half_life > 0 and cfg.model.augment and cfg.model.d_noise_floor > 0
    for name in ("shapes-cpu", "facades", "shapes"):
        assert get_preset(name).model.fake_input == "softmax" and get_preset(name).model.r1_gamma == 0.0


def test_cpu_presets_keep_every_class_and_the_papers_do_not_change():
    # the collapse guard everywhere, the class prior on shapes only (docs/results.md, issue 23); the paper's recipe
    # stays the paper's
    for name in ("shapes-cpu", "facades-cpu", "cityscapes-cpu", "folder-cpu"):
        cfg = get_preset(name)
        assert (cfg.model.class_prior, cfg.train.guard_rollbacks) == (0.01 if name == "shapes-cpu" else 0.0, 3)
        assert cfg.train.lr_decay == 0.3, "the CPU presets end on a settled model (docs/results.md)"
        assert cfg.eval.every > 0 and "structure" in cfg.eval.metrics, "the guard reads the structure evaluations"
    for name in ("shapes", "facades", "cityscapes", "tiny"):
        assert (get_preset(name).model.class_prior, get_preset(name).train.guard_rollbacks) == (0.0, 0)
        assert get_preset(name).train.lr_decay == 0.0
    with pytest.raises(SemGANError, match=r"or train.guard_rollbacks=0 \(no guard\)"):
        apply_overrides(get_preset("shapes-cpu"), ["eval.metrics=swd"])


def test_a_config_saved_before_the_gan_keys_moved_still_loads():
    # runs trained before the GAN recipe moved from train.* to the semgan family's model section
    old = to_dict(get_preset("facades-cpu"))
    for name in ("g_loss", "d_noise", "r1_gamma", "r1_every", "augment", "ada_target"):
        old["train"][name] = old["model"].pop(name)
    assert from_dict(old) == get_preset("facades-cpu")
    old_p2p = to_dict(get_preset("pix2pix-tiny"))
    old_p2p["train"].update({"g_loss": "fm", "r1_gamma": 0.0, "augment": [], "ada_images": 100_000})  # old defaults
    assert from_dict(old_p2p) == get_preset("pix2pix-tiny")
    old_p2p["train"]["r1_gamma"] = 1.0
    with pytest.raises(SemGANError, match=r"train.r1_gamma=1.0 has no effect on pix2pix"):
        from_dict(old_p2p)


def test_the_old_spelling_of_a_moved_key_is_taken_and_named(capsys):
    cfg = apply_overrides(get_preset("tiny"), ["train.r1_gamma=2", "train.augment=flip"])
    assert (cfg.model.r1_gamma, cfg.model.augment) == (2.0, ("flip",))
    assert "train.r1_gamma is now model.r1_gamma" in capsys.readouterr().err
    with pytest.raises(SemGANError, match=r"model.r1_gamma is a key of the semgan family, not of pix2pix"):
        apply_overrides(get_preset("pix2pix-tiny"), ["train.r1_gamma=1"])


def test_each_family_checks_what_spans_sections():
    with pytest.raises(SemGANError, match=r"model.d_mbstd=3; expected 0 \(off\) or a group size dividing train.batch"):
        apply_overrides(get_preset("tiny"), {"model.d_mbstd": 3})
    with pytest.raises(SemGANError, match=r"a pix2pix model reports no health signal .* train.guard_rollbacks=0"):
        apply_overrides(get_preset("pix2pix-tiny"), {"train.guard_rollbacks": 1})
    with pytest.raises(SemGANError, match=r"expected a pix2pix model"):
        get_preset("tiny").model_as(Pix2PixModelConfig)
