"""The ``encoder`` family: a semantic encoder E (label map -> latent) for a frozen SemGAN generator G.

One step::

    z ~ N(0, 1);  m_s = argmax G(z)                 G's own samples (no gradient)
    m_r                                             real maps of the training split
    z_s, z_r = E(onehot(m_s)), E(onehot(m_r))       one E pass over both halves
    loss = latent_weight * |z_s - z|^2              latent recovery on G's samples
         + sample_weight * CE(G(z_s), m_s)          reconstruction through the frozen G ...
         + real_weight   * CE(G(z_r), m_r)          ... of samples and of real maps

G stays in eval mode with its weights frozen; only E and its Adam state train. A seeded share of the real maps
(``model.holdout``, by name) is never trained on: the evaluation reconstructs those (``miou``, ``pixel_acc``)
and, as ``*_samples``, G's own samples from the evaluation seed. The generator's weights, config and
fingerprint are kept in every checkpoint, so an encoder is used, exported and resumed without its generator's
run folder; a resume whose generator has changed since is refused.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from semgan.config import EncoderModelConfig, EvalConfig, RunConfig, SemGANModelConfig, from_dict, to_dict
from semgan.data import LabelDataset, dataset_from_config, holdout_split
from semgan.data.sampler import EpochSampler
from semgan.encoder import Encoder, reconstruction_loss, weights_fingerprint
from semgan.errors import SemGANError
from semgan.generator import LabelMapGenerator
from semgan.labels import colorize, make_grid, one_hot
from semgan.metrics import compute_metrics
from semgan.models import Generator
from semgan.models.encoder import MapEncoder
from semgan.sample import latents
from semgan.tasks.base import load_parts_state, parts_state, register_family

if TYPE_CHECKING:
    from semgan.model_files import TrainedModel

GRID_MAPS = 8  # held-out maps in the sample grid


def _generator_of(meta: dict[str, Any]) -> tuple[RunConfig, SemGANModelConfig]:
    cfg = from_dict(meta["generator"]["config"])
    return cfg, cfg.model_as(SemGANModelConfig, "the encoder's generator")


@register_family(EncoderModelConfig)
class EncoderTask:
    """E, its optimizer, the frozen G, the real maps (training split and held out) and the RNG state.

    Args:
        cfg: the run's configuration (``model.family == "encoder"``).
        dataset: label maps of the generator's class set and resolution.
        engine: the loop's :class:`~semgan.train.engine.Engine`.
    """

    @staticmethod
    def load_data(cfg: RunConfig) -> LabelDataset:
        return dataset_from_config(cfg.data)

    # ----------------------------------------------------------------------------- a trained model for use

    @staticmethod
    def use_weights(ckpt: dict[str, Any]) -> dict[str, Any]:
        return {"E": ckpt.get("E"), "G": ckpt.get("G")}

    @staticmethod
    def use_networks(cfg: RunConfig, data: dict[str, Any], meta: dict[str, Any]) -> dict[str, torch.nn.Module]:
        _, g = _generator_of(meta)
        K, R = len(data["class_names"]), int(data["resolution"])
        return {"E": MapEncoder(cfg.model_as(EncoderModelConfig), K, R, g.ld), "G": Generator(g, K, R)}

    @staticmethod
    def for_use(model: TrainedModel, networks: dict[str, torch.nn.Module]) -> Encoder:
        E, G = networks["E"], networks["G"]
        assert isinstance(E, MapEncoder) and isinstance(G, Generator)
        about = model.meta["generator"]
        gen = LabelMapGenerator(G, model.class_names, model.palette, int(about["step"]),
                                cfg=from_dict(about["config"]), source=model.source)
        return Encoder(E, gen, str(about["fingerprint"]), model.step, cfg=model.cfg, source=model.source)

    @staticmethod
    def describe(cfg: RunConfig) -> tuple[str, str]:
        use = """```bash
semgan encode THIS_FOLDER --maps MAPS_DIR --out latents.npz --refine 100
semgan interpolate THIS_FOLDER --from a.png --to b.png --steps 8 --out walk
```

```python
import semgan
enc = semgan.load("THIS_FOLDER")
out = enc.encode(labels, refine=100)   # (N, H, W) class indices -> out.latents (N, ld), out.labels
```"""
        return "a semantic encoder: label maps to the latents of the SemGAN generator stored with it", use

    # ------------------------------------------------------------------------------------------- building

    def __init__(self, cfg: RunConfig, dataset: LabelDataset, engine: Any) -> None:
        from semgan.model_files import load_generator  # model_files reads the registry this module fills

        self.cfg, self.dataset, self.engine = cfg, dataset, engine
        self.model_cfg = m = cfg.model_as(EncoderModelConfig)
        t, device = cfg.train, engine.device
        if not m.generator:
            raise SemGANError("model.generator is empty; name the trained SemGAN generator to encode for "
                              "(--generator G: a run folder, checkpoint file, export or pretrained:NAME)")
        gen = load_generator(m.generator, m.generator_checkpoint, device)
        g = gen.G.cfg
        if g.mode != "semgan":
            raise SemGANError(f"model.generator {m.generator} is an RGB baseline (model.mode=gan); an encoder "
                              "inverts a SemGAN generator, whose softmax it reconstructs maps through")
        if tuple(dataset.class_names) != gen.class_names or dataset.resolution != (gen.resolution,) * 2:
            raise SemGANError(
                f"the generator {m.generator} draws {gen.resolution}x{gen.resolution} maps of "
                f"{len(gen.class_names)} classes ({', '.join(gen.class_names)}); the data {dataset.name!r} has "
                f"{dataset.resolution[0]}x{dataset.resolution[1]} maps of {dataset.num_classes} classes "
                f"({', '.join(dataset.class_names)}); train the encoder on the generator's data")
        self.G = gen.G.eval().requires_grad_(False)  # frozen: only the encoder learns
        self.generator = {"config": to_dict(gen.cfg), "step": gen.step, "source": str(gen.source),
                          "fingerprint": weights_fingerprint(self.G)}
        torch.manual_seed(t.seed)  # E's init, the same on every rank
        self.E = MapEncoder(m, dataset.num_classes, gen.resolution, g.ld)
        self.networks: dict[str, torch.nn.Module] = {"E": self.E}
        self.E_fwd = engine.prepare(self.E)
        self.G.to(device)
        self.opt_E = engine.adam(self.E.parameters(), lr=t.lr, betas=(t.beta1, t.beta2), eps=t.eps)
        train_idx, held_idx = holdout_split(dataset, m.holdout, cfg.data.seed)
        if not train_idx:
            raise SemGANError(f"model.holdout={m.holdout} leaves no real map of {len(dataset)} to train on")
        self.labels = dataset.labels[train_idx].to(device)  # (N, H, W) uint8
        self.held_labels = dataset.labels[held_idx]  # on the CPU
        self.sampler = EpochSampler(len(self.labels), t.batch, torch.Generator().manual_seed(t.seed + 1))
        self.latent_gen = torch.Generator().manual_seed(t.seed + 2)
        grid = (held_idx + train_idx)[:GRID_MAPS]  # maps E never saw first
        self.grid_labels = dataset.labels[grid]

    # -------------------------------------------------------------------------------------------- the step

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        """One E update on a batch of G's samples and a batch of real maps; returns detached scalars."""
        t, m, engine = self.cfg.train, self.model_cfg, self.engine
        K, sync = self.dataset.num_classes, engine.sync
        z = sync.shard(latents(t.batch, self.G.cfg.ld, generator=self.latent_gen)).to(engine.device)
        with torch.no_grad():
            fake = self.G(z, activate=False).argmax(1)  # (b, H, W): G's own maps
        idx = sync.shard(self.sampler.next()).to(engine.device)
        real = self.labels.index_select(0, idx).long()  # (b, H, W)
        b = len(z)
        with engine.autocast():
            z_hat = self.E_fwd(engine.input(one_hot(torch.cat([fake, real]), K))).float()  # (2b, ld)
            loss_z = F.mse_loss(z_hat[:b], z)
            loss_rec = reconstruction_loss(self.G, z_hat, torch.cat([fake, real]))  # (2b,)
            loss_s, loss_r = loss_rec[:b].mean(), loss_rec[b:].mean()
            loss = m.latent_weight * loss_z + m.sample_weight * loss_s + m.real_weight * loss_r
        engine.step(loss, self.opt_E)
        return {"loss": loss.detach(), "loss_latent": loss_z.detach(), "loss_samples": loss_s.detach(),
                "loss_real": loss_r.detach()}

    # ------------------------------------------------------------------------------------- grids, scores

    @torch.no_grad()
    def reconstruct(self, labels: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """(N, H, W) maps -> G(E(map)) maps (N, H, W) int64, E in eval mode (its training mode restored)."""
        was_training = self.E.training
        self.E.eval()
        try:
            device, K = self.engine.device, self.dataset.num_classes
            out = [self.G(self.E(one_hot(labels[lo:lo + batch_size].long().to(device), K)), activate=False)
                   .argmax(1).cpu() for lo in range(0, len(labels), batch_size)]
        finally:
            self.E.train(was_training)
        return torch.cat(out) if out else labels.long().clone()

    def sample_grid(self) -> torch.Tensor:
        """Two rows: held-out maps, then their reconstructions."""
        pal = self.dataset.palette
        maps = colorize(self.grid_labels.long(), pal)
        return make_grid(torch.cat([maps, colorize(self.reconstruct(self.grid_labels), pal)]), nrow=len(maps))

    def evaluate(self, cfg: EvalConfig, *, progress: bool = False) -> dict[str, Any] | None:
        """Reconstruct the held-out real maps (rank 0; the others wait) and G's own samples of ``cfg.seed``."""
        if len(self.held_labels) == 0:
            raise SemGANError("the encoder's evaluation reconstructs held-out maps, but model.holdout=0 holds none "
                              "out; set model.holdout (e.g. 0.1) or eval.metrics=")
        if not self.engine.env.is_main:
            return None
        n = len(self.held_labels) if cfg.n <= 0 else min(cfg.n, len(self.held_labels))
        pal = self.dataset.palette
        names = list(cfg.metrics)

        def scores(maps: torch.Tensor, seed: int) -> dict[str, Any]:
            rec = self.reconstruct(maps)
            return compute_metrics(colorize(maps.long(), pal), colorize(rec, pal), names, real_labels=maps.long(),
                                   fake_labels=rec, palette=pal, generator=torch.Generator().manual_seed(seed),
                                   progress=progress)

        result = scores(self.held_labels[:n], cfg.seed + 2)
        z = latents(n, self.G.cfg.ld, generator=torch.Generator().manual_seed(cfg.seed))
        with torch.no_grad():
            own = self.G(z.to(self.engine.device), activate=False).argmax(1).cpu()
        samples = scores(own, cfg.seed + 3)
        for name in names:  # logged beside each metric: the same score on G's own samples
            for key, value in samples.items():
                if key == name or key.startswith(f"{name}_"):
                    result[f"{name}_samples" if key == name else f"{key}_samples"] = value
        return {"held_out": n, **result}

    def health(self, result: dict[str, Any]) -> str | None:
        return None  # no class to lose: E reconstructs what it is given

    def reseed(self, seed: int) -> None:
        self.sampler.generator.manual_seed(seed + 1)
        self.latent_gen.manual_seed(seed + 2)

    # --------------------------------------------------------------------------------------------- state

    @property
    def parts(self) -> dict[str, Any]:
        return {**self.networks, "opt_E": self.opt_E}

    def state_dict(self) -> dict[str, Any]:
        return {**parts_state(self.parts), "G": self.G.state_dict(), "meta": {"generator": self.generator},
                "rng": {"latent": self.latent_gen.get_state(), "sampler": self.sampler.state_dict()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state.get("meta", {}).get("generator", {}).get("fingerprint")
        if saved != self.generator["fingerprint"]:
            raise SemGANError(f"the generator {self.model_cfg.generator} has changed since this encoder started "
                              f"training (its weights' fingerprint was {saved}, now "
                              f"{self.generator['fingerprint']}); train a new encoder for it")
        load_parts_state(self.parts, state)
        self.latent_gen.set_state(state["rng"]["latent"])
        self.sampler.load_state_dict(state["rng"]["sampler"])
