"""The ``semgan`` family: SemGAN and its RGB baseline (paper, appendix B).

One step::

    z ~ N(0, 1)                                  latents drawn on the CPU from a seeded generator
    fake = G(z)                                  probs (B, K, H, W) or rgb (B, 3, H, W)
    D step: BCE(D(real), 1) + BCE(D(fake), 0)    real = onehot maps, or colorized maps in [-1, 1]
    G step: || E f(real) - E f(fake) ||^2        f = an intermediate D layer, D just updated

The whole dataset lives on the training device as uint8 and batches are gathered there. The data order and
the latents are drawn for the global batch on every rank, and each rank takes its share, so one process and
N processes train on the same samples; batch statistics are taken over the global batch
(:mod:`semgan.parallel`).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from semgan.config import EvalConfig, RunConfig
from semgan.data import LabelDataset
from semgan.data.sampler import EpochSampler
from semgan.errors import SemGANError
from semgan.evaluate import evaluate_generator
from semgan.labels import colorize, one_hot, uint8_to_rgb
from semgan.losses import d_bce, feature_matching, feature_matching_all, feature_matching_l1, g_nonsaturating
from semgan.models import build_models
from semgan.parallel import sync_batchnorm
from semgan.sample import grid_image, grid_latents, latents
from semgan.tasks.base import FAMILIES


@FAMILIES.register("semgan")
class SemGANTask:
    """Models, optimizers, data and RNG state of a SemGAN (or RGB baseline) run, and its step.

    Args:
        cfg: the run's configuration (``model.family == "semgan"``).
        dataset: the training label maps.
        engine: the loop's :class:`~semgan.train.engine.Engine` (device, precision, ranks).
    """

    def __init__(self, cfg: RunConfig, dataset: LabelDataset, engine: Any) -> None:
        self.cfg, self.dataset, self.engine = cfg, dataset, engine
        m, t = cfg.model, cfg.train
        H, W = dataset.resolution
        if H != W:
            raise SemGANError(f"dataset {dataset.name!r} has {H}x{W} maps; the networks need square maps")
        if m.sync_bn and not engine.env.active:
            raise SemGANError("model.sync_bn=true needs several processes (torchrun --nproc-per-node N); with one "
                              "process batch norm already sees the whole batch: set model.sync_bn=false")
        device = engine.device
        torch.manual_seed(t.seed)  # the weight init, the same on every rank
        G, D = build_models(m, dataset.num_classes, H)
        if m.sync_bn:
            sync_batchnorm(G, engine.sync)
        D.sync = engine.sync  # minibatch stddev over the global batch
        self.G, self.D = G, D
        self.networks = {"G": G, "D": D}
        self.G_fwd, self.D_fwd = engine.prepare(G), engine.prepare(D)  # what the step calls (maybe compiled)
        betas = (t.beta1, t.beta2)
        self.opt_G = engine.adam(G.parameters(), lr=t.lr, betas=betas, eps=t.eps)
        self.opt_D = engine.adam(D.parameters(), lr=t.lr, betas=betas, eps=t.eps)
        labels = dataset.labels  # (N, H, W) uint8
        if cfg.data.hflip:  # the mirrored copies follow the originals: (2N, H, W)
            labels = torch.cat([labels, labels.flip(-1)])
        self.labels = labels.to(device)  # the whole training set on the device
        self.palette = dataset.palette.to(device)
        self.sampler = EpochSampler(len(self.labels), t.batch, torch.Generator().manual_seed(t.seed + 1))
        self.latent_gen = torch.Generator().manual_seed(t.seed + 2)
        self.grid_z = grid_latents(cfg)

    # -------------------------------------------------------------------------------------------- the step

    def real_batch(self) -> torch.Tensor:
        """What D sees of this rank's real batch: onehot (b, K, H, W) for SemGAN, rgb (b, 3, H, W) otherwise."""
        idx = self.engine.sync.shard(self.sampler.next()).to(self.engine.device)
        labels = self.labels.index_select(0, idx).long()  # (b, H, W)
        if self.cfg.model.mode == "semgan":
            return self.engine.input(one_hot(labels, self.dataset.num_classes))
        return self.engine.input(uint8_to_rgb(colorize(labels, self.palette)))

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """What D sees of a fake batch: probs (or a straight-through Gumbel one-hot sample), or rgb."""
        if self.cfg.model.mode == "semgan" and self.cfg.model.fake_input == "st-gumbel":
            return F.gumbel_softmax(self.G_fwd(z, activate=False).float(), tau=1.0, hard=True, dim=1)
        return self.G_fwd(z)

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        """One D update then one G update; returns detached scalars (no host sync)."""
        t, engine = self.cfg.train, self.engine
        real = self.real_batch()
        z = engine.sync.shard(latents(t.batch, self.cfg.model.ld, generator=self.latent_gen)).to(engine.device)
        with engine.autocast():
            fake = self.generate(z)
            if t.d_noise > 0:  # instance noise (Sonderby et al. 2017), annealed linearly to 0
                # Drawn on the device from torch's global RNG (like dropout; its state is checkpointed): a CPU
                # draw of two (B, K, H, W) tensors would cost a GPU step more than the step itself.
                sigma = t.d_noise * max(0.0, 1.0 - step / (t.d_noise_steps or t.steps))
                real = real + sigma * torch.randn_like(real)
                fake = fake + sigma * torch.randn_like(fake)

            # Discriminator: real -> 1, fake -> 0.
            self.D.requires_grad_(True)
            real_logits = self.D_fwd(real)
            fake_logits = self.D_fwd(fake.detach())
            loss_D = d_bce(real_logits, fake_logits)
        engine.step(loss_D, self.opt_D)

        # Generator: match the just-updated D's features of real and fake batches.
        self.D.requires_grad_(False)  # no D gradients needed; saves the weight-gradient work
        with engine.autocast():
            with torch.no_grad():
                _, real_feats = self.D_fwd(real, return_features=True)
            fake_logits_G, fake_feats = self.D_fwd(fake, return_features=True)
            loss_G = self.g_loss(real_feats, fake_feats, fake_logits_G)
        engine.step(loss_G, self.opt_G)
        self.D.requires_grad_(True)
        return {
            "loss_D": loss_D.detach(),
            "loss_G": loss_G.detach(),
            "D_real": torch.sigmoid(real_logits.detach().float()).mean(),
            "D_fake": torch.sigmoid(fake_logits.detach().float()).mean(),
        }

    def g_loss(self, real_feats: list[torch.Tensor], fake_feats: list[torch.Tensor],
               fake_logits: torch.Tensor) -> torch.Tensor:
        t, sync = self.cfg.train, self.engine.sync
        if t.g_loss == "fm":
            return feature_matching(real_feats, fake_feats, t.fm_layer, sync)
        if t.g_loss == "fm_all":
            return feature_matching_all(real_feats, fake_feats, sync)
        if t.g_loss == "fm_l1":
            return feature_matching_l1(real_feats, fake_feats)
        return g_nonsaturating(fake_logits)

    # ------------------------------------------------------------------------------------- grids, scores

    def sample_grid(self) -> torch.Tensor:
        return grid_image(self.G, self.grid_z, self.palette)

    def evaluate(self, cfg: EvalConfig, *, progress: bool = False) -> dict[str, Any] | None:
        return evaluate_generator(self.G, self.dataset, cfg.metrics, n=cfg.n, seed=cfg.seed, progress=progress,
                                  env=self.engine.env)

    # --------------------------------------------------------------------------------------------- state

    def state_dict(self) -> dict[str, Any]:
        return {
            "G": self.G.state_dict(),
            "D": self.D.state_dict(),
            "opt_G": self.opt_G.state_dict(),
            "opt_D": self.opt_D.state_dict(),
            "rng": {"latent": self.latent_gen.get_state(), "sampler": self.sampler.state_dict()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.G.load_state_dict(state["G"])
        self.D.load_state_dict(state["D"])
        self.opt_G.load_state_dict(state["opt_G"])
        self.opt_D.load_state_dict(state["opt_D"])
        self.latent_gen.set_state(state["rng"]["latent"])
        self.sampler.load_state_dict(state["rng"]["sampler"])
