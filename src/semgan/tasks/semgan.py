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

import sys
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from semgan import ema
from semgan.augment import AdaptiveP, augment, blur
from semgan.config import EvalConfig, RunConfig, SemGANModelConfig
from semgan.data import LabelDataset, dataset_from_config
from semgan.data.sampler import EpochSampler
from semgan.ema import EMA
from semgan.errors import SemGANError
from semgan.evaluate import evaluate_generator
from semgan.generator import LabelMapGenerator
from semgan.labels import colorize, one_hot, uint8_to_rgb
from semgan.losses import (
    class_prior,
    d_bce,
    d_hinge,
    feature_matching,
    feature_matching_all,
    feature_matching_l1,
    g_hinge,
    g_nonsaturating,
    r1_penalty,
)
from semgan.metrics.structure import lost_classes
from semgan.models import Generator, build_models
from semgan.parallel import sync_batchnorm
from semgan.sample import grid_image, grid_latents, latents
from semgan.tasks.base import load_parts_state, parts_state, register_family

if TYPE_CHECKING:
    from semgan.model_files import TrainedModel


@register_family(SemGANModelConfig)
class SemGANTask:
    """Models, optimizers, data and RNG state of a SemGAN (or RGB baseline) run, and its step.

    Args:
        cfg: the run's configuration (``model.family == "semgan"``).
        dataset: the training label maps.
        engine: the loop's :class:`~semgan.train.engine.Engine` (device, precision, ranks).
    """

    @staticmethod
    def load_data(cfg: RunConfig) -> LabelDataset:
        return dataset_from_config(cfg.data)

    # ----------------------------------------------------------------------------- a trained model for use

    @staticmethod
    def use_weights(ckpt: dict[str, Any]) -> dict[str, Any]:
        return {"G": ema.for_use(ckpt, "G")}

    @staticmethod
    def use_networks(cfg: RunConfig, data: dict[str, Any], meta: dict[str, Any]) -> dict[str, torch.nn.Module]:
        return {"G": Generator(cfg.model_as(SemGANModelConfig), len(data["class_names"]), int(data["resolution"]))}

    @staticmethod
    def for_use(model: TrainedModel, networks: dict[str, torch.nn.Module]) -> LabelMapGenerator:
        G = networks["G"]
        assert isinstance(G, Generator)
        return LabelMapGenerator(G, model.class_names, model.palette, model.step, cfg=model.cfg, source=model.source)

    @staticmethod
    def describe(cfg: RunConfig) -> tuple[str, str]:
        kind = ("SemGAN (per-pixel softmax over the classes)" if cfg.model_as(SemGANModelConfig).mode == "semgan" else
                "the RGB baseline (tanh head; maps are its output snapped to the palette)")
        use = """```bash
semgan sample THIS_FOLDER --n 16 --seed 0 --out samples
```

```python
import semgan
maps = semgan.load("THIS_FOLDER").sample(16, seed=0)   # maps.labels (16, H, W), maps.images, maps.probs
```"""
        return f"an unconditional generator of semantic label maps: {kind}", use

    def __init__(self, cfg: RunConfig, dataset: LabelDataset, engine: Any) -> None:
        self.cfg, self.dataset, self.engine = cfg, dataset, engine
        self.model_cfg = m = cfg.model_as(SemGANModelConfig)
        t = cfg.train
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
        self.networks: dict[str, torch.nn.Module] = {"G": G, "D": D}
        # The moving average of G's weights (StyleGAN, BigGAN): what samples and is scored, when switched on.
        self.ema = EMA(G, t.ema_half_life, t.ema_rampup, t.batch) if t.ema_half_life > 0 else None
        self.G_ema: Generator | None = None
        if self.ema is not None:
            self.G_ema = self.networks["G_ema"] = self.ema.module
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
        self.ada = AdaptiveP(m.ada_target, m.ada_images, t.batch, p=m.augment_p) if m.ada_target > 0 else None
        # The class prior's targets: the training maps' pixel shares and presence rates (K,).
        self.prior: tuple[torch.Tensor, torch.Tensor] | None = None
        self.prior_acted = False  # whether the prior was above 0 on the last step (then its floor check is skipped)
        if m.class_prior > 0 and m.mode == "semgan":
            shares, presence = dataset.class_shares(), dataset.class_presence()
            self.prior = (torch.from_numpy(shares).float().to(device), torch.from_numpy(presence).float().to(device))
            absent = [name for name, share in zip(dataset.class_names, shares, strict=True) if share == 0]
            if absent and engine.env.is_main:
                print(f"semgan: class{'es' * (len(absent) > 1)} {', '.join(map(repr, absent))} never occur"
                      f"{'s' * (len(absent) == 1)} in the {len(dataset)} training maps; the class prior puts no "
                      "floor under it (D alone judges it)", file=sys.stderr)
        elif m.class_prior > 0 and engine.env.is_main:
            print(f"semgan: model.class_prior={m.class_prior} has no effect on the RGB baseline (model.mode=gan): "
                  "it has no class probabilities; it trains as configured otherwise", file=sys.stderr)

    # -------------------------------------------------------------------------------------------- the step

    def real_batch(self) -> torch.Tensor:
        """What D sees of this rank's real batch: onehot (b, K, H, W) for SemGAN, rgb (b, 3, H, W) otherwise."""
        idx = self.engine.sync.shard(self.sampler.next()).to(self.engine.device)
        labels = self.labels.index_select(0, idx).long()  # (b, H, W)
        if self.model_cfg.mode == "semgan":
            return self.engine.input(one_hot(labels, self.dataset.num_classes))
        return self.engine.input(uint8_to_rgb(colorize(labels, self.palette)))

    def generate(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """What D sees of a fake batch; and G's logits (b, K, H, W) when the class prior needs them.

        D sees the probs, or (``model.fake_input``) a one-hot map with the softmax's gradient (straight-through
        Gumbel sample or argmax), or a sharpened softmax; rgb (b, 3, H, W) for the baseline."""
        m = self.model_cfg
        if m.mode != "semgan":
            return self.G_fwd(z), None
        if m.fake_input == "softmax" and self.prior is None:
            return self.G_fwd(z), None
        logits = self.G_fwd(z, activate=False).float()  # (b, K, H, W)
        if m.fake_input == "softmax":
            return logits.softmax(dim=1), logits
        if m.fake_input == "st-gumbel":
            return F.gumbel_softmax(logits, tau=1.0, hard=True, dim=1), logits
        if m.fake_input == "sharpen":
            return (logits / m.fake_temperature).softmax(dim=1), logits
        probs = logits.softmax(dim=1)  # st-argmax: the one-hot of the argmax forward, the softmax's gradient
        hard = torch.zeros_like(probs).scatter_(1, probs.argmax(dim=1, keepdim=True), 1.0)
        return hard + probs - probs.detach(), logits

    def d_inputs(self, real: torch.Tensor, fake: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Reals and fakes as D sees them, both alike: a fixed blur, instance noise, then the augmentation."""
        m = self.model_cfg
        real, fake = blur(real, m.d_blur), blur(fake, m.d_blur)  # before the noise, which stays white
        sigma = max(m.d_noise_floor, m.d_noise * max(0.0, 1.0 - step / (m.d_noise_steps or self.cfg.train.steps)))
        if sigma > 0:  # instance noise (Sonderby et al. 2017), annealed linearly to d_noise_floor
            # Drawn on the device from torch's global RNG (like dropout; its state is checkpointed): a CPU
            # draw of two (B, K, H, W) tensors would cost a GPU step more than the step itself.
            real = real + sigma * torch.randn_like(real)
            fake = fake + sigma * torch.randn_like(fake)
        p = self.ada.p if self.ada is not None else m.augment_p
        return augment(real, m.augment, p), augment(fake, m.augment, p)

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        """One D update then one G update; returns detached scalars (no host sync)."""
        t, m, engine = self.cfg.train, self.model_cfg, self.engine
        real = self.real_batch()
        z = engine.sync.shard(latents(t.batch, m.ld, generator=self.latent_gen)).to(engine.device)
        r1 = m.r1_gamma > 0 and step % m.r1_every == 0
        with engine.autocast():
            fake, logits = self.generate(z)
            real, fake = self.d_inputs(real, fake, step)

            # Discriminator: real -> 1, fake -> 0.
            self.D.requires_grad_(True)
            if r1:
                real = real.detach().requires_grad_(True)
            real_logits = self.D_fwd(real)
            fake_logits = self.D_fwd(fake.detach())
            loss_D = d_hinge(real_logits, fake_logits) if m.d_loss == "hinge" else d_bce(real_logits, fake_logits)
            if r1:  # lazy regularisation: every r1_every steps, weighted by it
                loss_D = loss_D + m.r1_gamma / 2 * m.r1_every * r1_penalty(real_logits, real)
        engine.step(loss_D, self.opt_D)
        real = real.detach()
        if self.ada is not None:
            self.ada.observe(real_logits)
            if self.ada.due(step):
                self.ada.adjust(engine.env.mean({"sign": torch.stack(self.ada.signs).mean()})["sign"])

        # Generator: match the just-updated D's features of real and fake batches.
        self.D.requires_grad_(False)  # no D gradients needed; saves the weight-gradient work
        with engine.autocast():
            with torch.no_grad():
                _, real_feats = self.D_fwd(real, return_features=True)
            fake_logits_G, fake_feats = self.D_fwd(fake, return_features=True)
            loss_G = self.g_loss(real_feats, fake_feats, fake_logits_G)
            loss_prior: torch.Tensor | None = None
            if self.prior is not None and logits is not None:
                loss_prior = class_prior(logits, *self.prior, sync=engine.sync, check=not self.prior_acted)
                loss_G = loss_G + m.class_prior * loss_prior
                # A prior that acts tends to act for a run of steps: skip the next step's check then. The
                # constant 0 of a passed check needs no read (no device sync); a global value, the same on every rank.
                self.prior_acted = loss_prior.requires_grad and bool(loss_prior.detach() > 0)
        engine.step(loss_G, self.opt_G)
        self.D.requires_grad_(True)
        if self.ema is not None:
            self.ema.update(self.G, step)
        stats = {
            "loss_D": loss_D.detach(),
            "loss_G": loss_G.detach(),
            "D_real": torch.sigmoid(real_logits.detach().float()).mean(),
            "D_fake": torch.sigmoid(fake_logits.detach().float()).mean(),
        }
        if self.ada is not None:
            stats["augment_p"] = torch.tensor(self.ada.p)
        if loss_prior is not None:
            stats["loss_prior"] = loss_prior.detach()
        return stats

    @property
    def G_eval(self) -> Generator:
        """The generator that samples and is scored: the moving average when there is one."""
        return self.G_ema if self.G_ema is not None else self.G

    def g_loss(self, real_feats: list[torch.Tensor], fake_feats: list[torch.Tensor],
               fake_logits: torch.Tensor) -> torch.Tensor:
        m, sync = self.model_cfg, self.engine.sync
        if m.g_loss == "hinge":
            return g_hinge(fake_logits)
        if m.g_loss == "ns":
            return g_nonsaturating(fake_logits)
        if m.g_loss == "fm":
            loss = feature_matching(real_feats, fake_feats, m.fm_layer, sync)
        elif m.g_loss == "fm_all":
            loss = feature_matching_all(real_feats, fake_feats, sync)
        else:
            loss = feature_matching_l1(real_feats, fake_feats)
        if m.g_ns_weight > 0:  # a per-map term beside the batch means
            loss = loss + m.g_ns_weight * g_nonsaturating(fake_logits)
        return loss

    # ------------------------------------------------------------------------------------- grids, scores

    def sample_grid(self) -> torch.Tensor:
        return grid_image(self.G_eval, self.grid_z, self.palette)

    def evaluate(self, cfg: EvalConfig, *, progress: bool = False) -> dict[str, Any] | None:
        return evaluate_generator(self.G_eval, self.dataset, cfg.metrics, n=cfg.n, seed=cfg.seed, progress=progress,
                                  env=self.engine.env)

    def health(self, result: dict[str, Any]) -> str | None:
        """The classes the samples no longer draw (``structure`` presence against the reals'), or None."""
        s = result.get("structure")
        if not isinstance(s, dict):
            return None
        names = self.dataset.class_names
        lost = lost_classes(s["presence"], s["presence_real"])
        return "; ".join(f"class {k} ({names[k]}) drawn in {100 * s['presence'][k]:.1f}% of {result['n_fake']} "
                         f"samples, in {100 * s['presence_real'][k]:.0f}% of the reals" for k in lost) or None

    def reseed(self, seed: int) -> None:
        self.sampler.generator.manual_seed(seed + 1)
        self.latent_gen.manual_seed(seed + 2)

    # --------------------------------------------------------------------------------------------- state

    @property
    def parts(self) -> dict[str, Any]:
        """The networks (G, D and G_ema when kept) and optimizers, by their checkpoint names."""
        return {**self.networks, "opt_G": self.opt_G, "opt_D": self.opt_D}

    def state_dict(self) -> dict[str, Any]:
        return {
            **parts_state(self.parts),
            "rng": {"latent": self.latent_gen.get_state(), "sampler": self.sampler.state_dict()},
            **({"ada": self.ada.state_dict()} if self.ada is not None else {}),
            "prior_acted": self.prior_acted,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_parts_state(self.parts, state)
        if self.ada is not None:
            self.ada.load_state_dict(state["ada"])
        self.latent_gen.set_state(state["rng"]["latent"])
        self.sampler.load_state_dict(state["rng"]["sampler"])
        self.prior_acted = bool(state.get("prior_acted", False))  # absent from older checkpoints: check first
