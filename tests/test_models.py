"""Networks: output shapes for several K and resolutions, heads, gradients everywhere."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from semgan.config import SemGANModelConfig as ModelConfig
from semgan.errors import SemGANError
from semgan.losses import d_bce, feature_matching, feature_matching_all, feature_matching_l1, g_nonsaturating
from semgan.models import build_models
from semgan.models.networks import minibatch_stddev

TINY = ModelConfig(ld=8, ks=3, g_channels=16, g_min_channels=4, d_channels=4, d_max_channels=16, d_dropout=0.0)


@pytest.mark.parametrize("K", [2, 4, 12, 22])
@pytest.mark.parametrize("res", [16, 64, 128])
def test_semgan_shapes_and_probs(K, res):
    G, D = build_models(TINY, K, res)
    z = torch.randn(3, TINY.ld)
    probs = G(z)
    assert probs.shape == (3, K, res, res)
    assert torch.allclose(probs.sum(1), torch.ones(3, res, res), atol=1e-5)
    assert (probs >= 0).all()
    logit, feats = D(probs, return_features=True)
    assert logit.shape == (3,)
    assert feats[-1].shape[-1] == TINY.init_res
    assert D.in_channels == K


@pytest.mark.parametrize("ks", [3, 4, 5, 11])
def test_gan_head_and_kernel_sizes(ks):
    G, D = build_models(replace(TINY, mode="gan", ks=ks), 5, 32)
    rgb = G(torch.randn(2, TINY.ld))
    assert rgb.shape == (2, 3, 32, 32)
    assert rgb.abs().max() <= 1
    assert D.in_channels == 3
    assert D(rgb).shape == (2,)


@pytest.mark.parametrize("mode", ["semgan", "gan"])
def test_gradients_reach_every_parameter(mode):
    cfg = replace(TINY, mode=mode, d_dropout=0.3)
    G, D = build_models(cfg, 4, 32)
    real = torch.randn(4, G.out_channels, 32, 32)
    fake = G(torch.randn(4, cfg.ld))
    d_bce(D(real), D(fake.detach())).backward()
    for name, p in D.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"D.{name} got no gradient"
    _, real_feats = D(real, return_features=True)
    _, fake_feats = D(fake, return_features=True)
    losses = [feature_matching(real_feats, fake_feats), feature_matching_all(real_feats, fake_feats),
              feature_matching_l1(real_feats, fake_feats), g_nonsaturating(D(fake))]
    torch.stack(losses).sum().backward()
    for name, p in G.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"G.{name} got no gradient"


def test_feature_matching_zero_on_same_batch_mean():
    a = [torch.randn(8, 4, 2, 2)]
    b = [a[0].flip(0)]  # same batch mean, different examples
    assert feature_matching(a, b).item() == pytest.approx(0.0, abs=1e-7)
    assert feature_matching_all(a, b).item() == pytest.approx(0.0, abs=1e-7)
    assert feature_matching_l1(a, b).item() > 0
    c = [torch.zeros(2, 3), torch.ones(2, 3)]
    d = [torch.ones(2, 3), torch.ones(2, 3)]
    assert feature_matching(c, d, 0).item() == 1.0 and feature_matching(c, d).item() == 0.0
    assert feature_matching_all(c, d).item() == 0.5


def test_bad_resolution():
    with pytest.raises(SemGANError, match="power of two"):
        build_models(TINY, 4, 48)


def test_minibatch_stddev_sees_a_collapsed_group():
    x = torch.randn(8, 3, 4, 4)
    x[0::2] = x[0]  # with group 2, sample i pairs with i + 4: groups {0,4} and {2,6} are collapsed
    y = minibatch_stddev(x, 2)
    assert y.shape == (8, 4, 4, 4) and torch.equal(y[:, :3], x)
    std = y[:, 3, 0, 0]
    assert std[0] == std[4] and std[0].item() == pytest.approx(1e-4, rel=1e-3)  # sqrt(0 + 1e-8)
    assert (std[1] > 0.1) and (y[:, 3] == std.view(8, 1, 1)).all(), "one constant channel per group"
    with pytest.raises(SemGANError, match="multiple"):
        minibatch_stddev(torch.randn(6, 3, 4, 4), 4)


@pytest.mark.parametrize("opts", [{"d_mbstd": 4}, {"d_norm": "spectral"}, {"d_mbstd": 2, "d_norm": "spectral"}])
def test_discriminator_options_keep_shapes_and_gradients(opts):
    cfg = replace(TINY, **opts)
    G, D = build_models(cfg, 4, 32)
    logit, feats = D(G(torch.randn(8, cfg.ld)), return_features=True)
    assert logit.shape == (8,) and len(feats) == 3
    g_nonsaturating(logit).backward()
    assert all(p.grad is not None for p in G.parameters())
    if "d_norm" in opts:  # spectral norm: the largest singular value of each conv's weight is ~1 after a few calls
        for _ in range(20):
            D(torch.randn(8, 4, 32, 32))
        w = D.convs[0].weight.flatten(1)
        assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, rel=0.05)


def test_hash_dropout_masks():
    from semgan.models.networks import HashDropout
    from semgan.parallel import BatchSync

    torch.manual_seed(0)
    drop = HashDropout(0.3).train()
    x = torch.ones(64, 8, 16, 16)
    a, b = drop(x), drop(x)
    keep_a, keep_b = a > 0, b > 0
    assert abs(keep_a.float().mean().item() - 0.7) < 0.01 and a.max().item() == pytest.approx(1 / 0.7, rel=1e-6)
    assert abs((keep_a & keep_b).float().mean().item() - 0.49) < 0.01, "each call draws a fresh mask"
    assert int(drop.calls) == 2 and drop.state_dict()["calls"] == 2, "the counter is state (exact resume)"
    again = HashDropout(0.3).train()
    again.load_state_dict({"seed": drop.seed, "calls": torch.tensor(0)})
    assert torch.equal(again(x), a), "a mask is a function of seed, call and element"
    assert torch.equal(drop.eval()(x), x), "identity at evaluation"
    # rank r of N holds rows r*b.. of the global batch: its masks are those rows of the one-process mask
    one = HashDropout(0.3).train()
    one.load_state_dict({"seed": drop.seed, "calls": torch.tensor(0)})
    rank1 = HashDropout(0.3).train()
    rank1.load_state_dict({"seed": drop.seed, "calls": torch.tensor(0)})
    assert torch.equal(rank1(x[:32], BatchSync(world=2, rank=1)), one(x)[32:])
    x.requires_grad_(True)
    y = HashDropout(0.3).train()(x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, (y > 0).float() / 0.7, msg="the gradient goes through the kept elements")


def test_hash_dropout_in_the_discriminator():
    cfg = replace(TINY, d_dropout=0.3, d_dropout_rng="hash")
    _, D = build_models(cfg, 4, 32)
    x = torch.randn(8, 4, 32, 32)
    assert not torch.equal(D(x), D(x)), "training mode drops"
    D.eval()
    assert torch.equal(D(x), D(x))
    assert int(D.dropout.calls) == 2 * 3, "one call per block and pass"
