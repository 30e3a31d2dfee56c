"""pix2pix's networks against the reference: parameter counts, output shapes, the skip, the initialisation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from semgan.models.pix2pix import UNET_DOWNS, PatchDiscriminator, UnetGenerator, init_weights


def _count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize(("name", "params"), [("unet_128", 41_828_995), ("unet_256", 54_413_955)])
def test_unet_parameter_counts_equal_the_reference(name, params):
    with torch.device("meta"):  # counted without allocating 200 MB
        assert _count(UnetGenerator(3, 3, UNET_DOWNS[name], ngf=64)) == params


def test_patchgan_parameter_count_equals_the_reference():
    with torch.device("meta"):
        assert _count(PatchDiscriminator(6, ndf=64)) == 2_768_705  # colour label + photo, 2.77 M


@pytest.mark.parametrize(("downs", "size", "patches"), [(7, 128, 14), (8, 256, 30)])
def test_shapes(downs, size, patches):
    torch.manual_seed(0)
    G, D = UnetGenerator(12, 3, downs, ngf=4), PatchDiscriminator(12 + 3, ndf=4)
    x = torch.randn(2, 12, size, size)  # a one-hot-sized input
    photo = G(x)
    assert photo.shape == (2, 3, size, size) and photo.abs().max() <= 1
    assert D(torch.cat([x, photo], 1)).shape == (2, 1, patches, patches)


def test_reference_structure_dropout_and_bias():
    G = UnetGenerator(3, 3, 8, ngf=4)
    assert sum(isinstance(m, nn.Dropout) for m in G.modules()) == 3  # num_downs - 5 middle levels
    assert sum(isinstance(m, nn.Dropout) for m in UnetGenerator(3, 3, 7, ngf=4).modules()) == 2
    convs = [m for m in G.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)]
    assert [m.bias is not None for m in convs].count(True) == 1, "only the final transposed conv has a bias"


def test_init_is_the_references_normal():
    torch.manual_seed(0)
    D = init_weights(PatchDiscriminator(6, ndf=32))
    conv = [m for m in D.modules() if isinstance(m, nn.Conv2d)][1].requires_grad_(False)
    bn = [m for m in D.modules() if isinstance(m, nn.BatchNorm2d)][0].requires_grad_(False)
    assert abs(float(conv.weight.std()) - 0.02) < 0.002 and abs(float(conv.weight.mean())) < 0.002
    assert abs(float(bn.weight.mean()) - 1.0) < 0.01 and float(bn.bias.abs().max()) == 0.0


def test_skip_carries_the_activated_input_as_the_reference():
    torch.manual_seed(0)
    G = UnetGenerator(3, 3, 5, ngf=2).eval()
    inner = G.model.model[1]  # the level below the outermost
    x = torch.randn(1, 2, 16, 16)
    out = inner(x.clone())
    assert torch.equal(out[:, :2], torch.nn.functional.leaky_relu(x, 0.2))
