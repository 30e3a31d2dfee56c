"""The ``segmenter`` family: photo -> K-class logits, a small U-Net trained from scratch with cross-entropy.

One step::

    photo, map = jitter(photo, map)              resize up by model.jitter, the same random crop and flip
    loss = CE(U(photo), map)                     per pixel, averaged

The training pairs are the data's (``model.train_share`` of them, by name) plus, with ``model.extra_maps``, a
further paired folder (a dreamed set), sampled evenly with the rest or, with ``model.extra_share``, as that
share of every batch. The test pairs are ``model.test_*`` (e.g. the ``val`` split of the same dataset) or a
held-out share of the data; evaluation predicts them and scores ``miou`` and ``pixel_acc`` (with the per-class
IoU). So one real test split scores segmenters trained on real, dreamed or mixed pairs alike.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from semgan.augment import jittered_pairs
from semgan.config import DataConfig, EvalConfig, RunConfig, SegmenterModelConfig
from semgan.data import LabelDataset, holdout_split, pairs_from_config, share_by_name
from semgan.data.sampler import EpochSampler, MixedSampler
from semgan.errors import SemGANError
from semgan.labels import colorize, make_grid
from semgan.metrics import compute_metrics
from semgan.models.pix2pix import UnetGenerator, init_weights, unet_depth
from semgan.segment import Segmenter, predict_logits
from semgan.tasks.base import load_parts_state, parts_state, register_family

if TYPE_CHECKING:
    from semgan.model_files import TrainedModel

GRID_PAIRS = 6  # test photos in the sample grid


def build_segmenter(m: SegmenterModelConfig, num_classes: int, size: int) -> UnetGenerator:
    """pix2pix's U-Net from an RGB photo to ``num_classes`` logits (no tanh, no dropout), reference init."""
    return init_weights(UnetGenerator(3, num_classes, num_downs=unet_depth(size), ngf=m.channels, dropout=False,
                                      tanh=False))


def test_config(cfg: RunConfig) -> DataConfig | None:
    """The data section of the test set, or None for a held-out share of the training data."""
    m = cfg.model_as(SegmenterModelConfig)
    if not (m.test_name or m.test_root or m.test_split or m.test_photos):
        return None
    return dataclasses.replace(cfg.data, name=m.test_name or cfg.data.name, root=m.test_root or cfg.data.root,
                               split=m.test_split or cfg.data.split, photos=m.test_photos or cfg.data.photos)


def _same_classes(a: LabelDataset, b: LabelDataset, what: str) -> None:
    if tuple(a.class_names) != tuple(b.class_names) or a.resolution != b.resolution:
        raise SemGANError(f"{what} has {b.resolution[0]}x{b.resolution[1]} maps of {b.num_classes} classes "
                          f"({', '.join(b.class_names)}); the training data has {a.resolution[0]}x{a.resolution[1]} "
                          f"maps of {a.num_classes} ({', '.join(a.class_names)})")


@register_family(SegmenterModelConfig)
class SegmenterTask:
    """The U-Net, its optimizer, the training and test pairs and the RNG state of a segmenter run.

    Args:
        cfg: the run's configuration (``model.family == "segmenter"``).
        dataset: label maps with ``photos``.
        engine: the loop's :class:`~semgan.train.engine.Engine`.
    """

    @staticmethod
    def load_data(cfg: RunConfig) -> LabelDataset:
        return pairs_from_config(cfg.data)

    # ----------------------------------------------------------------------------- a trained model for use

    @staticmethod
    def use_weights(ckpt: dict[str, Any]) -> dict[str, Any]:
        return {"U": ckpt.get("U")}

    @staticmethod
    def use_networks(cfg: RunConfig, data: dict[str, Any], meta: dict[str, Any]) -> dict[str, torch.nn.Module]:
        m = cfg.model_as(SegmenterModelConfig)
        return {"U": build_segmenter(m, len(data["class_names"]), int(data["resolution"]))}

    @staticmethod
    def for_use(model: TrainedModel, networks: dict[str, torch.nn.Module]) -> Segmenter:
        U = networks["U"]
        assert isinstance(U, UnetGenerator)
        return Segmenter(U=U, cfg=model.cfg, step=model.step, class_names=model.class_names, palette=model.palette,
                         source=model.source)

    @staticmethod
    def describe(cfg: RunConfig) -> tuple[str, str]:
        use = """```bash
semgan segmenter predict THIS_FOLDER --photos PHOTOS_DIR --out predictions
```

```python
import semgan
labels = semgan.load("THIS_FOLDER")(photos)   # (N, 3, H, W) uint8 -> (N, H, W) class indices
```"""
        return "a segmenter from photos to label maps (a U-Net trained with cross-entropy)", use

    # ------------------------------------------------------------------------------------------- building

    def __init__(self, cfg: RunConfig, dataset: LabelDataset, engine: Any) -> None:
        self.cfg, self.dataset, self.engine = cfg, dataset, engine
        self.model_cfg = m = cfg.model_as(SegmenterModelConfig)
        t, device = cfg.train, engine.device
        all_photos, H = dataset.square_pairs("a segmenter")
        torch.manual_seed(t.seed)
        self.U = build_segmenter(m, dataset.num_classes, H)
        self.networks: dict[str, torch.nn.Module] = {"U": self.U}
        self.U_fwd = engine.prepare(self.U)
        self.opt = engine.adam(self.U.parameters(), lr=t.lr, betas=(t.beta1, t.beta2), eps=t.eps)
        test_cfg = test_config(cfg)
        if test_cfg is None:  # a held-out share of the data, by name
            train_idx, test_idx = holdout_split(dataset, m.holdout, cfg.data.seed)
            test = dataset
        else:
            train_idx, test_idx = list(range(len(dataset))), []
            test = pairs_from_config(test_cfg)
            _same_classes(dataset, test, f"the test set ({test_cfg.name} {test_cfg.split or ''})".replace(" )", ")"))
            test_idx = list(range(len(test)))
        train_idx = share_by_name(dataset, train_idx, m.train_share, cfg.data.seed + 1)
        assert test.photos is not None
        labels, photos = dataset.labels[train_idx], all_photos[train_idx]
        n_extra = 0
        if m.extra_maps:
            extra = pairs_from_config(DataConfig(name="folder", root=m.extra_maps, photos=m.extra_photos,
                                                 size=H, skip_bad=cfg.data.skip_bad))
            _same_classes(dataset, extra, f"model.extra_maps {m.extra_maps}")
            assert extra.photos is not None
            n_extra = len(extra)
            labels, photos = torch.cat([labels, extra.labels]), torch.cat([photos, extra.photos])
        if len(labels) == 0:
            raise SemGANError("the segmenter has no training pairs (model.train_share=0 and no model.extra_maps)")
        self.train_count = len(labels)
        self.labels, self.photos = labels.to(device), photos.to(device)  # (N, H, W), (N, 3, H, W) uint8
        self.test_labels, self.test_photos = test.labels[test_idx], test.photos[test_idx]  # on the CPU
        self.palette = dataset.palette
        sampler_gen = torch.Generator().manual_seed(t.seed + 1)
        n_mixed = round(m.extra_share * t.batch)
        if m.extra_share > 0 and not 0 < n_mixed < t.batch:  # named here: the sampler knows no config keys
            raise SemGANError(f"model.extra_share={m.extra_share} of train.batch={t.batch} is {n_mixed} pairs a batch; "
                              f"expected 1 to {t.batch - 1}")
        self.sampler: EpochSampler | MixedSampler = (
            MixedSampler(len(self.labels) - n_extra, n_extra, t.batch, n_mixed, sampler_gen)
            if m.extra_share > 0 else EpochSampler(len(self.labels), t.batch, sampler_gen))
        self.jitter_gen = torch.Generator().manual_seed(t.seed + 2)

    # -------------------------------------------------------------------------------------------- the step

    def train_step(self, step: int) -> dict[str, torch.Tensor]:
        engine = self.engine
        labels, photos = jittered_pairs(self.labels, self.photos, self.sampler.next(), self.model_cfg.jitter,
                                        self.jitter_gen, engine.sync)  # (b, H, W) uint8, (b, 3, H, W)
        with engine.autocast():
            logits = self.U_fwd(engine.input(photos))  # (b, K, H, W)
            loss = F.cross_entropy(logits.float(), labels.long())
        engine.step(loss, self.opt)
        return {"loss": loss.detach()}

    # ------------------------------------------------------------------------------------- grids, scores

    def predict(self, photos: torch.Tensor) -> torch.Tensor:
        return predict_logits(self.U, photos).argmax(1)

    def sample_grid(self) -> torch.Tensor:
        """Rows of photo | true map | prediction, for the first test pairs."""
        photos, truth = self.test_photos[:GRID_PAIRS], self.test_labels[:GRID_PAIRS]
        if len(photos) == 0:
            photos, truth = self.photos[:GRID_PAIRS].cpu(), self.labels[:GRID_PAIRS].cpu()
        rows = torch.stack([photos, colorize(truth.long(), self.palette), colorize(self.predict(photos), self.palette)],
                           1).flatten(0, 1)
        return make_grid(rows, nrow=3)

    def evaluate(self, cfg: EvalConfig, *, progress: bool = False) -> dict[str, Any] | None:
        """Predict the test photos (rank 0; the others wait) and score the maps against the true ones."""
        if len(self.test_labels) == 0:
            raise SemGANError("the segmenter's evaluation scores test pairs, but there are none: set model.test_split "
                              "(e.g. val) or model.holdout (e.g. 0.2), or eval.metrics=")
        if not self.engine.env.is_main:
            return None
        n = len(self.test_labels) if cfg.n <= 0 else min(cfg.n, len(self.test_labels))
        truth, pred = self.test_labels[:n].long(), self.predict(self.test_photos[:n])
        result = compute_metrics(colorize(truth, self.palette), colorize(pred, self.palette), list(cfg.metrics),
                                 real_labels=truth, fake_labels=pred, palette=self.palette,
                                 generator=torch.Generator().manual_seed(cfg.seed + 2), progress=progress)
        return {"test_pairs": n, "train_pairs": self.train_count, **result}

    def health(self, result: dict[str, Any]) -> str | None:
        return None

    def reseed(self, seed: int) -> None:
        self.sampler.generator.manual_seed(seed + 1)
        self.jitter_gen.manual_seed(seed + 2)

    # --------------------------------------------------------------------------------------------- state

    @property
    def parts(self) -> dict[str, Any]:
        return {**self.networks, "opt_U": self.opt}

    def state_dict(self) -> dict[str, Any]:
        return {**parts_state(self.parts),
                "rng": {"jitter": self.jitter_gen.get_state(), "sampler": self.sampler.state_dict()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_parts_state(self.parts, state)
        self.jitter_gen.set_state(state["rng"]["jitter"])
        self.sampler.load_state_dict(state["rng"]["sampler"])
