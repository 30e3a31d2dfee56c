"""Pinned outputs (diffusers style): seeded tiny networks and training steps against stored slices.

Written before the training engine was redesigned and kept unchanged since: at fp32 the networks, the losses,
the data order, the latents and the dropout stream must give these numbers, so no refactor changes what a
step computes without this file saying so. The tolerances absorb CPU kernel differences between machines
(oneDNN picks different convolution algorithms), not behaviour changes: a different dropout mask, batch or
loss moves these values by far more.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from semgan.config import SemGANModelConfig, apply_overrides, get_preset
from semgan.data import load_dataset
from semgan.models import build_models
from semgan.tasks.semgan import SemGANTask
from semgan.train.engine import Engine

TINY = SemGANModelConfig(ld=8, ks=3, g_channels=16, g_min_channels=4, d_channels=4, d_max_channels=16, d_dropout=0.0)

# mode -> (G output probs/rgb [0, :, 5, 3:7], D logits, D first-block features [1, 0, 2, :4])
NETWORKS = {
    "semgan": (
        [0.149187, 0.50095, 0.202801, 0.208328, 0.147764, 0.220245, 0.15597, 0.301717, 0.474692, 0.174605,
         0.508121, 0.238081, 0.228357, 0.1042, 0.133108, 0.251874],
        [0.002234, 0.017538],
        [0.046833, -0.017753, -0.030534, -0.024644],
    ),
    "gan": (
        [-0.56461, -0.078835, -0.386874, -0.786646, -0.378841, -0.571882, -0.397125, -0.415089, 0.590925,
         -0.749488, 0.586013, -0.645693],
        [-0.005487, 0.071694],
        [-0.030335, -0.01298, -0.032044, 0.01162],
    ),
}

# name -> (overrides of the tiny preset, stats of step 1, stats of step 2 (loss_D, loss_G, D_real, D_fake),
#          Adam exp_avg of G.to_out.weight[:6] and of D.fc.weight[:6] after two steps)
STEPS = {
    "semgan": ({},
        [1.38213, 0.000109632, 0.511477, 0.50916],
        [1.394, 0.000108159, 0.507827, 0.51144],
        [-8.11067e-06, -4.10849e-06, -7.64192e-06, -3.43749e-06, -1.71421e-06, -3.74772e-06],
        [0.00061163, 0.000481343, -0.000604676, -0.00201551, 3.04685e-05, -0.000496823]),
    "gan": ({'model.mode': 'gan'},
        [1.38859, 0.000341594, 0.487916, 0.488742],
        [1.38034, 0.000388822, 0.491324, 0.488113],
        [3.87025e-05, 1.69171e-05, 1.97321e-05, 6.01544e-05, 5.91568e-05, 0.000104144],
        [-0.00414735, -0.0018151, -0.00808291, -0.0136072, 0.00705645, 0.0016458]),
    "stabilised": ({'model.d_noise': 1.0, 'model.d_mbstd': 4, 'model.d_norm': 'spectral', 'model.g_loss': 'ns',
                    'data.hflip': True},
        [1.41084, 0.793541, 0.427174, 0.425099],
        [1.47105, 0.749284, 0.433516, 0.463641],
        [-0.0015457, -0.000418997, 0.000177349, 0.00326367, 0.000103889, 0.00253332],
        [0.00738045, 0.0258817, -0.0200594, 0.0359781, 0.00464709, -0.00255193]),
    "fm_all": ({'model.g_loss': 'fm_all'},
        [1.38213, 0.00380556, 0.511477, 0.50916],
        [1.39399, 0.00401347, 0.507827, 0.511435],
        [-0.000781121, -0.000598203, -0.000794693, -0.000503104, -0.000722168, -0.00036593],
        [0.000616985, 0.000476773, -0.000609129, -0.00201268, 2.98053e-05, -0.000499755]),
    "class_prior": ({'model.class_prior': 0.01},  # at the start every shape is under half its presence rate
        [1.38213, 0.028155, 0.511477, 0.50916],
        [1.39398, 0.0279895, 0.507827, 0.511431],
        [-0.000196374, -0.000712791, -0.00073143, -0.000446137, -0.000883384, -0.000799791],
        [0.000608267, 0.000475258, -0.000615543, -0.00201603, 2.49729e-05, -0.000504296]),
    "fm_l1": ({'model.g_loss': 'fm_l1', 'model.mode': 'gan'},
        [1.38859, 0.126542, 0.487916, 0.488742],
        [1.38035, 0.124838, 0.491324, 0.488119],
        [0.00801637, 0.00590395, 0.00694479, 0.0118865, 0.0101922, 0.0117541],
        [-0.004162, -0.00180082, -0.00808151, -0.0136157, 0.00703275, 0.00162901]),
}


def _close(actual: torch.Tensor | list[float], expected: list[float], rtol: float = 1e-3) -> None:
    exp = torch.tensor(expected, dtype=torch.float64)
    act = torch.as_tensor(actual, dtype=torch.float64).flatten()
    torch.testing.assert_close(act, exp, rtol=rtol, atol=rtol * float(exp.abs().max()))


@pytest.mark.parametrize("mode", sorted(NETWORKS))
def test_pinned_networks(mode: str) -> None:
    torch.manual_seed(0)
    G, D = build_models(replace(TINY, mode=mode), 4, 16)
    z = torch.randn(2, 8, generator=torch.Generator().manual_seed(1))
    out = G(z)  # (2, K or 3, 16, 16)
    logit, feats = D(out, return_features=True)
    g_slice, d_logits, d_feats = NETWORKS[mode]
    _close(out[0, :, 5, 3:7], g_slice)
    _close(logit, d_logits)
    _close(feats[0][1, 0, 2, :4], d_feats)


def _adam_avg(opt: torch.optim.Optimizer, module: torch.nn.Module, names: tuple[str, ...]) -> torch.Tensor:
    params = dict(module.named_parameters())
    param = next(params[n] for n in names if n in params)
    return opt.state[param]["exp_avg"].flatten()[:6]


@pytest.mark.parametrize("name", sorted(STEPS))
def test_pinned_train_steps(name: str) -> None:
    overrides, stats1, stats2, g_avg, d_avg = STEPS[name]
    cfg = apply_overrides(get_preset("tiny"), {"train.device": "cpu", **overrides})
    task = SemGANTask(cfg, load_dataset("shapes"), Engine(cfg.train, torch.device("cpu")))
    keys = ("loss_D", "loss_G", "D_real", "D_fake")
    for step, expected in enumerate((stats1, stats2)):
        stats = task.train_step(step)
        _close([float(stats[k]) for k in keys], expected)
    _close(_adam_avg(task.opt_G, task.G, ("to_out.weight",)), g_avg)
    _close(_adam_avg(task.opt_D, task.D, ("fc.weight", "fc.parametrizations.weight.original")), d_avg)
