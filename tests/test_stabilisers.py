"""The stabilisers: augmentation of D's inputs, ADA, R1, hinge loss, D-input variants; each trains and resumes."""

from __future__ import annotations

import math

import pytest
import torch
from helpers import assert_same_state, straight_and_resumed

from semgan.augment import AdaptiveP, augment, blur
from semgan.config import apply_overrides
from semgan.data import load_dataset
from semgan.errors import SemGANError
from semgan.labels import one_hot
from semgan.losses import d_hinge, feature_matching_all, g_hinge, g_nonsaturating, r1_penalty
from semgan.tasks.semgan import SemGANTask
from semgan.train.engine import Engine

ALL_AUGMENTS = ("flip", "translation", "cutout")


@pytest.mark.parametrize("op", ALL_AUGMENTS)
def test_augmentation_treats_onehot_and_softmax_maps_alike(op):
    labels = load_dataset("shapes").labels[:16].long()  # (16, 64, 64)
    onehot = one_hot(labels, 4)
    probs = torch.softmax(torch.randn(16, 4, 64, 64, generator=torch.Generator().manual_seed(0)), dim=1)
    torch.manual_seed(1)
    a = augment(onehot, (op,), 1.0)
    torch.manual_seed(1)
    b = augment(probs, (op,), 1.0)
    assert not torch.equal(a, onehot), "the transform did something"
    moved = a.sum(1) > 0  # pixels that are not cut out
    assert torch.equal(a.sum(1)[moved], torch.ones_like(a.sum(1)[moved])), "a one-hot map stays one-hot"
    # the same random transform moves the same pixel vectors, whatever they hold
    torch.testing.assert_close(b.sum(1)[moved], torch.ones_like(b.sum(1)[moved]))
    hard = torch.zeros_like(b).scatter_(1, b.argmax(1, keepdim=True), 1.0) * moved.unsqueeze(1)
    torch.manual_seed(1)
    assert torch.equal(hard, augment(torch.zeros_like(probs).scatter_(1, probs.argmax(1, keepdim=True), 1.0),
                                     (op,), 1.0)), "argmax commutes with the transform"


def test_flip_is_its_own_inverse_and_p_zero_is_identity():
    x = torch.randn(8, 4, 16, 16)
    assert torch.equal(augment(augment(x, ("flip",), 1.0), ("flip",), 1.0), x)
    state = torch.get_rng_state()
    assert augment(x, ALL_AUGMENTS, 0.0) is x and torch.equal(torch.get_rng_state(), state), "no draw at p = 0"
    half = augment(x, ("flip",), 0.5)
    flipped = (half == x.flip(-1)).flatten(1).all(1)
    assert 0 < int(flipped.sum()) < 8, "each sample is chosen with probability p"


def test_blur_keeps_label_maps_distributions_and_matches_a_hand_kernel():
    labels = load_dataset("shapes").labels[:4].long()  # (4, 64, 64)
    onehot = one_hot(labels, 4)
    assert blur(onehot, 0.0) is onehot
    soft = blur(onehot, 1.0)
    torch.testing.assert_close(soft.sum(1), torch.ones(4, 64, 64))  # every pixel stays a distribution
    assert soft.min() >= 0 and not torch.equal(soft, onehot)
    flat = torch.zeros(1, 4, 9, 9)
    flat[:, 2] = 1
    torch.testing.assert_close(blur(flat, 1.0), flat)  # a flat map is left as it is (border replicated)
    # one pixel in the middle: the output is the outer product of the normalised 5-tap Gaussian (r = 2 sigma)
    dot = torch.zeros(1, 1, 9, 9)
    dot[0, 0, 4, 4] = 1
    g = torch.tensor([math.exp(-0.5 * i * i) for i in range(-2, 3)])
    g = g / g.sum()
    torch.testing.assert_close(blur(dot, 1.0)[0, 0, 2:7, 2:7], torch.outer(g, g))
    # a 1-px fragment, as D sees it, keeps 16 % of its class
    assert abs(float(blur(dot, 1.0)[0, 0, 4, 4]) - 0.16) < 0.005


def test_translation_shifts_with_a_reflected_border():
    x = torch.arange(16.0).view(1, 1, 4, 4).repeat(64, 1, 1, 1)
    torch.manual_seed(0)
    y = augment(x, ("translation",), 1.0)
    for out in y:
        # every output is the 4x4 window of the reflect-padded map at some offset
        padded = torch.nn.functional.pad(x[:1], (1, 1, 1, 1), mode="reflect")[0, 0]
        assert any(torch.equal(out[0], padded[i : i + 4, j : j + 4]) for i in range(3) for j in range(3))


def test_r1_penalty_against_autograd_by_hand():
    D = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.Tanh(), torch.nn.Flatten(),
                            torch.nn.Linear(4 * 8 * 8, 1))
    x = torch.randn(5, 3, 8, 8, requires_grad=True)
    logits = D(x).squeeze(1)
    penalty = r1_penalty(logits, x)
    by_hand = sum(torch.autograd.grad(D(x[i : i + 1]).sum(), x)[0].pow(2).sum() for i in range(5)) / 5
    torch.testing.assert_close(penalty, by_hand)
    penalty.backward()  # create_graph: the penalty trains D
    assert D[0].weight.grad is not None and D[3].weight.grad is not None  # the last bias has no say in grad x


def test_hinge_losses():
    assert d_hinge(torch.tensor([2.0, 0.0]), torch.tensor([-2.0, 0.5])).item() == pytest.approx(0.5 + 0.75)
    assert g_hinge(torch.tensor([1.0, 3.0])).item() == -2.0


def test_feature_matching_plus_a_weighted_nonsaturating_term(tiny_cfg):
    cfg = apply_overrides(tiny_cfg, {"model.g_loss": "fm_all", "model.g_ns_weight": 0.25})
    task = SemGANTask(cfg, load_dataset("shapes"), Engine(cfg.train, torch.device("cpu")))
    gen = torch.Generator().manual_seed(0)
    real_feats, fake_feats = [torch.randn(4, 3, 2, 2, generator=gen)], [torch.randn(4, 3, 2, 2, generator=gen)]
    logits = torch.tensor([-1.0, 0.0, 2.0, 0.5])
    expected = feature_matching_all(real_feats, fake_feats) + 0.25 * g_nonsaturating(logits)
    torch.testing.assert_close(task.g_loss(real_feats, fake_feats, logits), expected)
    with pytest.raises(SemGANError, match=r"model.g_ns_weight=0.25 .* model.g_loss='hinge'"):
        apply_overrides(tiny_cfg, {"model.g_loss": "hinge", "model.g_ns_weight": 0.25})


def test_adaptive_p_moves_towards_the_target():
    ada = AdaptiveP(target=0.6, speed_images=320, batch=8, interval=4)
    for _ in range(4):
        ada.observe(torch.ones(8))  # D is sure about every real: overfitting
    assert ada.due(3)
    ada.adjust(1.0)
    assert ada.p == pytest.approx(0.1) and ada.signs == []
    ada.adjust(0.0)
    assert ada.p == pytest.approx(0.0)
    ada.adjust(-1.0)
    assert ada.p == 0.0, "clamped at 0"


SWITCHES = {
    "augment": {"model.augment": "flip,translation,cutout", "model.augment_p": 0.5},
    "ada": {"model.augment": "flip,translation,cutout", "model.ada_target": 0.6, "model.ada_images": 400},
    "r1-lazy": {"model.r1_gamma": 1.0, "model.r1_every": 4},
    "hinge": {"model.d_loss": "hinge", "model.g_loss": "hinge"},
    "st-argmax": {"model.fake_input": "st-argmax"},
    "sharpen": {"model.fake_input": "sharpen", "model.fake_temperature": 0.5},
    "noise-floor": {"model.d_noise_floor": 0.1},
    "blur": {"model.d_blur": 1.0},
    "st-gumbel": {"model.fake_input": "st-gumbel"},
    "ema": {"train.ema_half_life": 100},
    "fm+ns": {"model.g_loss": "fm_all", "model.g_ns_weight": 0.003},
    "class-prior": {"model.class_prior": 1.0},
}


@pytest.mark.parametrize("name", sorted(SWITCHES))
@pytest.mark.parametrize("mode", ["semgan", "gan"])
def test_each_switch_trains_in_both_modes(tiny_cfg, name, mode):
    cfg = apply_overrides(tiny_cfg, {**SWITCHES[name], "model.mode": mode})
    task = SemGANTask(cfg, load_dataset("shapes"), Engine(cfg.train, torch.device("cpu")))
    before = task.G.to_out.weight.detach().clone()
    for step in range(4):
        stats = task.train_step(step)
    assert all(bool(torch.isfinite(v)) for v in stats.values()), stats
    assert not torch.equal(before, task.G.to_out.weight), "G trained"
    assert task.sample_grid().dtype == torch.uint8
    if name == "ada":
        assert task.ada is not None and task.ada.signs == [] and "augment_p" in stats, "adjusted after 4 steps"


def test_every_switch_at_once_resumes_bit_for_bit(tmp_path, tiny_cfg):
    every = {k: v for switch in ("ada", "r1-lazy", "hinge", "st-argmax", "noise-floor", "blur", "ema", "class-prior")
             for k, v in SWITCHES[switch].items()}
    cfg = apply_overrides(tiny_cfg, {**every, "train.ckpt_every": 1000, "model.d_mbstd": 4,
                                     "model.d_dropout_rng": "hash"})
    a, b, resumed = straight_and_resumed(cfg, tmp_path)
    assert_same_state(a, b)
    assert a["ada"] == b["ada"] and a["ada"]["p"] > 0
    assert all(torch.equal(a["G_ema"][k], b["G_ema"][k]) for k in a["G_ema"])
