"""The ``pix2pix`` family (Isola et al. 2017): label map -> photo, on paired data, through the shared loop.

One step, as in the reference (junyanz/pytorch-CycleGAN-and-pix2pix)::

    x, y = jitter(map, photo)                    resize up by model.jitter, the same random crop and flip
    fake = G(x)                                  (b, 3, H, W) in [-1, 1]
    D step: 0.5 [BCE(D(x, y), 1) + BCE(D(x, fake), 0)]      one logit per 70x70 patch
    G step: BCE(D(x, fake), 1) + l1_weight |fake - y|

``x`` is the label map as the reference feeds it, rendered in the palette's colours in [-1, 1], or one-hot
(``model.input``). A seeded share of the pairs (``model.holdout``, chosen by name) is held out: evaluation
translates those maps and scores the result against their photos (``l1``, ``fid``). Translation runs the
generator as the paper does at test time: batch statistics of the one image, dropout on
(:func:`semgan.translate.translate`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from semgan import ema
from semgan.augment import jittered_pairs
from semgan.config import EvalConfig, Pix2PixModelConfig, RunConfig
from semgan.data import LabelDataset, holdout_split, pairs_from_config
from semgan.data.sampler import EpochSampler
from semgan.ema import EMA
from semgan.errors import SemGANError
from semgan.labels import colorize, make_grid, rgb_to_uint8
from semgan.metrics import METRICS, compute_metrics
from semgan.models.pix2pix import UnetGenerator, build_networks
from semgan.tasks.base import load_parts_state, parts_state, register_family

if TYPE_CHECKING:
    from semgan.model_files import TrainedModel
from semgan.translate import Translator, encode_labels, translate

GRID_PAIRS = 6  # maps in the sample grid (held-out ones first)


@register_family(Pix2PixModelConfig)
class Pix2PixTask:
    """Networks, optimizers, paired data and RNG state of a pix2pix run, and its step.

    Args:
        cfg: the run's configuration (``model.family == "pix2pix"``).
        dataset: label maps with ``photos``.
        engine: the loop's :class:`~semgan.train.engine.Engine`.
    """

    @staticmethod
    def load_data(cfg: RunConfig) -> LabelDataset:
        return pairs_from_config(cfg.data)

    # ----------------------------------------------------------------------------- a trained model for use

    @staticmethod
    def use_weights(ckpt: dict[str, Any]) -> dict[str, Any]:
        return {"G": ema.for_use(ckpt, "G")}

    @staticmethod
    def use_networks(cfg: RunConfig, data: dict[str, Any], meta: dict[str, Any]) -> dict[str, torch.nn.Module]:
        m = cfg.model_as(Pix2PixModelConfig)
        return {"G": build_networks(m, len(data["class_names"]), int(data["resolution"]))[0]}

    @staticmethod
    def for_use(model: TrainedModel, networks: dict[str, torch.nn.Module]) -> Translator:
        G = networks["G"]
        assert isinstance(G, UnetGenerator)
        return Translator(G=G, cfg=model.cfg, step=model.step, class_names=model.class_names,
                          palette=model.palette.to(next(G.parameters()).device), source=model.source)

    @staticmethod
    def describe(cfg: RunConfig) -> tuple[str, str]:
        m = cfg.model_as(Pix2PixModelConfig)
        use = """```bash
semgan pix2pix translate THIS_FOLDER --labels MAPS_DIR --out photos
semgan dream --generator GENERATOR --translator THIS_FOLDER --n 16 --out dreams
```

```python
from semgan.model_files import load_translator
photos = load_translator("THIS_FOLDER")(labels)   # (N, H, W) class indices -> (N, 3, H, W) uint8
```"""
        return f"a pix2pix translator from label maps ({m.input} input) to photos", use

    def __init__(self, cfg: RunConfig, dataset: LabelDataset, engine: Any) -> None:
        self.cfg, self.dataset, self.engine = cfg, dataset, engine
        self.model_cfg = m = cfg.model_as(Pix2PixModelConfig)
        t = cfg.train
        photos, H = dataset.square_pairs("pix2pix")
        device = engine.device
        torch.manual_seed(t.seed)  # the weight init, the same on every rank
        self.G, self.D = build_networks(m, dataset.num_classes, H)
        self.networks: dict[str, torch.nn.Module] = {"G": self.G, "D": self.D}
        # The moving average of G's weights, when switched on: what translates, is scored and is exported.
        self.ema = EMA(self.G, t.ema_half_life, t.ema_rampup, t.batch) if t.ema_half_life > 0 else None
        if self.ema is not None:
            self.networks["G_ema"] = self.ema.module
        self.G_fwd, self.D_fwd = engine.prepare(self.G), engine.prepare(self.D)
        betas = (t.beta1, t.beta2)
        self.opt_G = engine.adam(self.G.parameters(), lr=t.lr, betas=betas, eps=t.eps)
        self.opt_D = engine.adam(self.D.parameters(), lr=t.lr, betas=betas, eps=t.eps)

        train_idx, held_idx = holdout_split(dataset, m.holdout, cfg.data.seed)
        self.labels = dataset.labels[train_idx].to(device)  # (N, H, W) uint8
        self.photos = photos[train_idx].to(device)  # (N, 3, H, W) uint8
        self.held_labels, self.held_photos = dataset.labels[held_idx], photos[held_idx]  # on the CPU
        self.palette = dataset.palette.to(device)
        self.sampler = EpochSampler(len(self.labels), t.batch, torch.Generator().manual_seed(t.seed + 1))
        self.jitter_gen = torch.Generator().manual_seed(t.seed + 2)  # crops and flips
        # The grid: held-out maps first (what the model never saw), then training ones.
        grid = (held_idx + train_idx)[:GRID_PAIRS]
        self.grid_labels, self.grid_photos = dataset.labels[grid], photos[grid]

    # -------------------------------------------------------------------------------------------- the step

    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's (x, y): encoded maps (b, C, H, W) and photos (b, 3, H, W) in [-1, 1], jittered alike."""
        engine = self.engine
        labels, photos = jittered_pairs(self.labels, self.photos, self.sampler.next(), self.model_cfg.jitter,
                                        self.jitter_gen, engine.sync)  # (b, H, W) uint8, (b, 3, H, W)
        x = encode_labels(labels.long(), self.model_cfg.input, self.palette)
        return engine.input(x), engine.input(photos)

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        """One D update then one G update (the reference's order); returns detached scalars."""
        engine = self.engine
        x, y = self.batch()
        with engine.autocast():
            fake = self.G_fwd(x)
            self.D.requires_grad_(True)
            real_logits = self.D_fwd(torch.cat([x, y], 1))
            fake_logits = self.D_fwd(torch.cat([x, fake.detach()], 1))
            loss_D = 0.5 * (_bce(real_logits, 1.0) + _bce(fake_logits, 0.0))
        engine.step(loss_D, self.opt_D)
        self.D.requires_grad_(False)
        with engine.autocast():
            g_logits = self.D_fwd(torch.cat([x, fake], 1))
            loss_G_gan = _bce(g_logits, 1.0)
            loss_L1 = (fake.float() - y.float()).abs().mean()
            loss_G = loss_G_gan + self.model_cfg.l1_weight * loss_L1
        engine.step(loss_G, self.opt_G)
        self.D.requires_grad_(True)
        if self.ema is not None:
            self.ema.update(self.G, step)
        return {
            "loss_D": loss_D.detach(),
            "loss_G": loss_G.detach(),
            "loss_G_gan": loss_G_gan.detach(),
            "loss_L1": loss_L1.detach(),
            "D_real": torch.sigmoid(real_logits.detach().float()).mean(),
            "D_fake": torch.sigmoid(fake_logits.detach().float()).mean(),
        }

    # ------------------------------------------------------------------------------------- grids, scores

    def translate(self, labels: torch.Tensor) -> torch.Tensor:
        """(N, H, W) maps -> (N, 3, H, W) uint8 photos, the paper's way (seeded dropout)."""
        x = encode_labels(labels.long().to(self.engine.device), self.model_cfg.input, self.palette)
        G = self.ema.module if self.ema is not None else self.G
        return rgb_to_uint8(translate(G, x, seed=self.cfg.eval.seed)).cpu()

    def sample_grid(self) -> torch.Tensor:
        """Rows of map | translation | photo (held-out maps first)."""
        maps = colorize(self.grid_labels, self.dataset.palette)  # (n, 3, H, W) uint8
        fakes = self.translate(self.grid_labels)
        rows = torch.stack([maps, fakes, self.grid_photos], 1).flatten(0, 1)  # map, fake, photo per row
        return make_grid(rows, nrow=3)

    def evaluate(self, cfg: EvalConfig, *, progress: bool = False) -> dict[str, Any] | None:
        """Translate the held-out maps (rank 0; the others wait) and score them against their photos."""
        if len(self.held_labels) == 0:
            raise SemGANError("pix2pix evaluation scores held-out pairs, but model.holdout=0 holds none out; set "
                              "model.holdout (e.g. 0.1) or eval.metrics=")
        if not self.engine.env.is_main:
            return None
        for name in cfg.metrics:
            METRICS.get(name)
        n = len(self.held_labels) if cfg.n <= 0 else min(cfg.n, len(self.held_labels))
        fakes = self.translate(self.held_labels[:n])
        result = compute_metrics(self.held_photos[:n], fakes, list(cfg.metrics),
                                 generator=torch.Generator().manual_seed(cfg.seed + 2), progress=progress)
        return {"held_out": n, **result}

    def health(self, result: dict[str, Any]) -> str | None:
        return None  # photos, not label maps: no class to lose

    def reseed(self, seed: int) -> None:
        self.sampler.generator.manual_seed(seed + 1)
        self.jitter_gen.manual_seed(seed + 2)

    # --------------------------------------------------------------------------------------------- state

    @property
    def parts(self) -> dict[str, Any]:
        """The networks (G, D and G_ema when kept) and optimizers, by their checkpoint names."""
        return {**self.networks, "opt_G": self.opt_G, "opt_D": self.opt_D}

    def state_dict(self) -> dict[str, Any]:
        return {**parts_state(self.parts),
                "rng": {"jitter": self.jitter_gen.get_state(), "sampler": self.sampler.state_dict()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_parts_state(self.parts, state)
        self.jitter_gen.set_state(state["rng"]["jitter"])
        self.sampler.load_state_dict(state["rng"]["sampler"])


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    logits = logits.float()
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))
