"""The run configuration: frozen, typed dataclasses that validate themselves when they are built.

A value that is not allowed cannot exist in a :class:`RunConfig`: every section checks its fields in
``__post_init__`` (a ``Literal`` field against its choices, numbers against their ranges, floats for
finiteness) and :class:`RunConfig` checks what spans sections. Errors name the dotted key, the bad value and
what was expected.

The model section depends on the model family (``model.family``): each family registers its own dataclass in
:data:`MODEL_FAMILIES`, and :func:`semgan.config.from_dict` picks it by that key. SemGAN and its RGB baseline
are the family ``semgan`` (``model.mode`` chooses the head).
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Literal, TypeVar

from semgan.errors import SemGANError
from semgan.registry import Registry

Mode = Literal["semgan", "gan"]
GLoss = Literal["fm", "fm_all", "fm_l1", "ns", "hinge"]
DLoss = Literal["bce", "hinge"]
FakeInput = Literal["softmax", "st-gumbel", "st-argmax", "sharpen"]
Augment = Literal["flip", "translation", "cutout"]
DNorm = Literal["none", "spectral"]
Precision = Literal["fp32", "bf16", "fp16"]
DropoutRNG = Literal["torch", "hash"]
Pix2PixInput = Literal["color", "onehot"]

MODES: tuple[Mode, ...] = typing.get_args(Mode)
M = TypeVar("M", bound="ModelSection")
G_LOSSES: tuple[str, ...] = typing.get_args(GLoss)
PRECISIONS: tuple[str, ...] = typing.get_args(Precision)


def expected_choices(choices: tuple[Any, ...]) -> str:
    """``'a' or 'b'`` for two choices, ``one of a, b, c`` for more."""
    if len(choices) == 2:
        return f"{choices[0]!r} or {choices[1]!r}"
    return "one of " + ", ".join(map(str, choices))


class Section:
    """Field checks shared by every config section; ``SECTION`` is its name in dotted keys."""

    SECTION: ClassVar[str] = ""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in fields(self):  # type: ignore[arg-type]
            value, typ = getattr(self, f.name), hints[f.name]
            if typing.get_origin(typ) is Literal and value not in typing.get_args(typ):
                raise SemGANError(f"{self.key(f.name)}={value!r}; expected {expected_choices(typing.get_args(typ))}")
            if typing.get_origin(typ) is tuple:
                (inner, *_rest) = typing.get_args(typ)
                if typing.get_origin(inner) is Literal:
                    for item in value:
                        if item not in typing.get_args(inner):
                            raise SemGANError(f"{self.key(f.name)} holds {item!r}; expected items from "
                                              f"{', '.join(typing.get_args(inner))}")
            if isinstance(value, float) and not math.isfinite(value):
                raise SemGANError(f"{self.key(f.name)}={value}; expected a finite number")
        self.check()

    def key(self, name: str) -> str:
        return f"{self.SECTION}.{name}"

    def check(self) -> None:
        """Range checks beyond the types; overridden per section."""

    def positive(self, *names: str) -> None:
        for name in names:
            if getattr(self, name) < 1:
                raise SemGANError(f"{self.key(name)}={getattr(self, name)}; expected a positive integer")

    def non_negative(self, *names: str) -> None:
        for name in names:
            if getattr(self, name) < 0:
                raise SemGANError(f"{self.key(name)}={getattr(self, name)}; expected >= 0")


@dataclass(frozen=True)
class DataConfig(Section):
    SECTION: ClassVar[str] = "data"

    name: str = "shapes"  # a registered dataset (see `semgan.data.DATASETS`)
    root: str = ""  # dataset folder; unused by generated data
    size: int = 0  # resolution H = W; 0 = the dataset's own
    classes: str = ""  # class set, for datasets that have several; "" = the dataset's default
    split: str = ""  # "" = the dataset's default
    seed: int = 0  # generation seed (Colored Shapes) or split seed
    skip_bad: bool = False  # skip unreadable / invalid files instead of stopping (reported)
    hflip: bool = False  # also train on every map mirrored left-right (evaluation keeps the originals)
    photos: str = ""  # pix2pix on a "folder" dataset: the folder of photos named like the maps (same relative path)

    def check(self) -> None:
        self.non_negative("size")


class ModelSection(Section):
    """The model section of a family: ``model.family`` names the family, every other key is the family's own
    (its networks and its recipe). A family's section registers with :func:`model_section`."""

    SECTION: ClassVar[str] = "model"
    KIND: ClassVar[str] = "a model"  # for errors: "a pix2pix model"
    #: the metrics whose results the family reads for its health (the collapse guard needs them evaluated)
    HEALTH_METRICS: ClassVar[tuple[str, ...]] = ()

    family: str

    def check_run(self, cfg: RunConfig) -> None:
        """Checks that span sections (the run's batch, its evaluation); overridden per family."""

    @property
    def label(self) -> str:
        """What the progress bar and logs call the model."""
        return self.family

    def steps_schedule(self) -> str | None:
        """When a schedule of the recipe is spread over ``train.steps`` (so that a resume may not change it): what
        it is and how to fix it in one phrase; else None."""
        return None


#: family name -> its model section's dataclass; ``model.family`` selects one (:func:`semgan.config.from_dict`)
MODEL_FAMILIES: Registry[type[ModelSection]] = Registry("model family")
S = TypeVar("S", bound=type[ModelSection])


def model_section(cls: S) -> S:
    """Register a family's model section under the default of its ``family`` field."""
    MODEL_FAMILIES.add(cls.__dataclass_fields__["family"].default, cls)  # type: ignore[attr-defined]
    return cls


@model_section
@dataclass(frozen=True)
class SemGANModelConfig(ModelSection):
    """The ``semgan`` family: SemGAN (softmax head) and its RGB baseline (tanh head), same networks otherwise;
    and the GAN recipe both train with (losses, instance noise, blur, R1, augmentation, the class prior)."""

    KIND: ClassVar[str] = "a SemGAN or RGB-baseline (GAN) model"
    HEALTH_METRICS: ClassVar[tuple[str, ...]] = ("structure",)  # the classes the samples draw

    family: Literal["semgan"] = "semgan"
    mode: Mode = "semgan"  # "semgan": K-way softmax head; "gan": the RGB (tanh) baseline
    ld: int = 100  # latent size
    ks: int = 11  # kernel size of every (transposed) convolution, G and D alike
    init_res: int = 4  # side of the grid the dense stem reshapes to
    g_channels: int = 512  # G channels at init_res, halved at each upsampling ...
    g_min_channels: int = 32  # ... but never below this
    d_channels: int = 64  # D channels after the first stride-2 conv, doubled at each downsampling ...
    d_max_channels: int = 512  # ... but never above this
    d_dropout: float = 0.3  # dropout after each D block (ashpy's Encoder default); 0 disables
    d_dropout_rng: DropoutRNG = "torch"  # dropout masks from torch's RNG, or a counter hash (much faster on CPUs)
    fake_input: FakeInput = "softmax"  # what D sees of a SemGAN fake: "softmax" (the paper); "st-gumbel" or
    #                                    "st-argmax" (one-hot forward, softmax gradient); "sharpen" (softmax of
    #                                    logits / fake_temperature)
    fake_temperature: float = 1.0  # the temperature of "sharpen" (< 1 sharpens)
    d_norm: DNorm = "none"  # D weight normalisation: "none" (the paper) or "spectral" (Miyato et al. 2018)
    d_mbstd: int = 0  # ProGAN minibatch-stddev group size before D's last conv block; 0 = off (the paper)
    sync_bn: bool = False  # with several processes (torchrun): G's batch norm over the global batch
    # The recipe.
    g_loss: GLoss = "fm"  # "fm": Salimans et al. 2016 on layer fm_layer; "fm_all": the same on every D layer;
    #                       "fm_l1": ashpy's per-example L1 on every D layer; "ns": non-saturating -log D(G(z));
    #                       "hinge": -D(G(z)) (Miyato et al. 2018)
    d_loss: DLoss = "bce"  # D's loss: "bce" (the paper) or "hinge"
    fm_layer: int = -1  # D block whose features "fm" matches (-1 = last conv block)
    g_ns_weight: float = 0.0  # adds this times the non-saturating loss to a feature-matching G loss (a per-map
    #                           term beside the batch means; docs/results.md "Per-map losses"); 0 = off
    class_prior: float = 0.0  # SemGAN only: weight of a floor on G's loss under each class's expected share
    #                           and presence rate in a batch (losses.class_prior): 0 while every class keeps
    #                           half the training maps' rate, a log barrier below, so that no class fades out
    #                           unopposed; the RGB baseline has no class probabilities and trains without it;
    #                           0 = off
    d_noise: float = 0.0  # std of Gaussian instance noise on D's inputs, real and fake (Sonderby et al. 2017) ...
    d_noise_steps: int = 0  # ... decayed linearly to 0 over this many steps; 0 = over train.steps ...
    d_noise_floor: float = 0.0  # ... but never below this std (a fixed amount when d_noise is 0)
    d_blur: float = 0.0  # std in px of a fixed Gaussian blur of D's inputs, real and fake (never anneals); 0 = off
    r1_gamma: float = 0.0  # R1 penalty on reals, gamma / 2 * E|grad D(x)|^2 (Mescheder et al. 2018); 0 = off
    r1_every: int = 1  # lazy R1: every this many steps, scaled by it (StyleGAN2: 16)
    augment: tuple[Augment, ...] = ()  # transforms of D's inputs, reals and fakes alike: flip, translation, cutout
    augment_p: float = 0.0  # probability of each transform per sample (with ADA: its start)
    ada_target: float = 0.0  # ADA: adapt the probability so that E[sign D(real)] stays at this (0.6); 0 = fixed
    ada_images: int = 100_000  # ADA: images for the probability to go from 0 to 1 at the fastest (ADA: 500k)

    def check(self) -> None:
        self.positive("ld", "ks", "init_res", "g_channels", "g_min_channels", "d_channels", "d_max_channels")
        if not 0.0 <= self.d_dropout < 1.0:
            raise SemGANError(f"model.d_dropout={self.d_dropout}; expected a value in [0, 1)")
        self.non_negative("d_mbstd")
        if self.fake_temperature <= 0:
            raise SemGANError(f"model.fake_temperature={self.fake_temperature}; expected > 0")
        self.non_negative("d_noise", "d_noise_steps", "d_noise_floor", "d_blur", "r1_gamma", "g_ns_weight",
                          "class_prior")
        self.positive("r1_every", "ada_images")
        if self.g_ns_weight > 0 and not self.g_loss.startswith("fm"):
            raise SemGANError(f"model.g_ns_weight={self.g_ns_weight} adds a non-saturating term to feature "
                              f"matching, but model.g_loss={self.g_loss!r}; use fm, fm_all or fm_l1, or set "
                              "model.g_ns_weight=0")
        for name in ("augment_p", "ada_target"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise SemGANError(f"model.{name}={getattr(self, name)}; expected a value in [0, 1]")
        if self.ada_target > 0 and not self.augment:
            raise SemGANError(f"model.ada_target={self.ada_target} adapts the augmentation, but model.augment is "
                              "empty; set e.g. model.augment=flip,translation,cutout")

    def check_run(self, cfg: RunConfig) -> None:
        batch = cfg.train.batch
        if self.d_mbstd and batch % min(self.d_mbstd, batch):
            raise SemGANError(f"model.d_mbstd={self.d_mbstd}; expected 0 (off) or a group size dividing "
                              f"train.batch={batch}")

    @property
    def label(self) -> str:
        return self.mode

    def steps_schedule(self) -> str | None:
        if self.d_noise > 0 and self.d_noise_steps == 0:
            return ("the instance noise anneals over train.steps, so set model.d_noise_steps to the saved "
                    "train.steps to keep its schedule")
        return None


@model_section
@dataclass(frozen=True)
class Pix2PixModelConfig(ModelSection):
    """The ``pix2pix`` family (Isola et al. 2017): label map -> photo with a U-Net and a 70x70 PatchGAN.

    The U-Net has log2(H) levels (``unet_128`` at 128 px, ``unet_256`` at 256 px), so maps must be square with a
    power-of-two side of at least 32. Trained on paired data: a dataset whose maps have photos.
    """

    KIND: ClassVar[str] = "a pix2pix model"

    family: Literal["pix2pix"] = "pix2pix"
    input: Pix2PixInput = "color"  # the label map as G and D see it: "color" (rendered, the reference) or "onehot"
    ngf: int = 64  # U-Net channels after its first conv (reference 64)
    ndf: int = 64  # PatchGAN channels after its first conv (reference 64)
    d_layers: int = 3  # PatchGAN strided layers (3: 70x70 patches)
    dropout: bool = True  # dropout 0.5 in the U-Net's middle levels, also when translating (as the paper does)
    l1_weight: float = 100.0  # G loss = BCE(D(x, G(x)), 1) + l1_weight * |G(x) - y|
    jitter: float = 286 / 256  # random jitter: upscale by this, random crop back, random flip; 1 = flips only
    holdout: float = 0.1  # share of pairs held out for evaluation, chosen by name with data.seed

    def check(self) -> None:
        self.positive("ngf", "ndf", "d_layers")
        self.non_negative("l1_weight")
        if self.jitter < 1.0:
            raise SemGANError(f"model.jitter={self.jitter}; expected >= 1 (1 = no resize-and-crop jitter)")
        if not 0.0 <= self.holdout < 1.0:
            raise SemGANError(f"model.holdout={self.holdout}; expected a share in [0, 1)")


@model_section
@dataclass(frozen=True)
class EncoderModelConfig(ModelSection):
    """The ``encoder`` family: a semantic encoder E, label map -> latent, for a trained and frozen SemGAN generator
    (the paper's future work). E learns to recover the latents of G's own samples and to reconstruct maps through
    G: real maps of the training split and G's samples."""

    KIND: ClassVar[str] = "a semantic encoder"

    family: Literal["encoder"] = "encoder"
    generator: str = ""  # the trained SemGAN generator E inverts: a run folder, checkpoint file, export or
    #                      pretrained:NAME (frozen; its weights are kept in E's checkpoints)
    generator_checkpoint: str = "latest"  # which checkpoint of a generator run folder
    channels: int = 32  # E's channels after its first stride-2 conv, doubled at each downsampling ...
    max_channels: int = 256  # ... but never above this
    ks: int = 4  # kernel size of E's convolutions
    latent_weight: float = 1.0  # mean squared error of E(G(z)) against z, on G's samples
    sample_weight: float = 1.0  # cross-entropy of G(E(m))'s softmax against m, on G's samples m = argmax G(z)
    real_weight: float = 1.0  # the same on real maps of the training split
    holdout: float = 0.1  # share of the real maps held out for evaluation (chosen by name with data.seed)

    def check(self) -> None:
        self.positive("channels", "max_channels", "ks")
        self.non_negative("latent_weight", "sample_weight", "real_weight")
        if self.latent_weight + self.sample_weight + self.real_weight <= 0:
            raise SemGANError("model.latent_weight, model.sample_weight and model.real_weight are all 0; E would "
                              "learn nothing")
        if not 0.0 <= self.holdout < 1.0:
            raise SemGANError(f"model.holdout={self.holdout}; expected a share in [0, 1)")


@model_section
@dataclass(frozen=True)
class SegmenterModelConfig(ModelSection):
    """The ``segmenter`` family: photo -> K-class logits with a small U-Net (pix2pix's, without its tanh), trained
    from scratch with cross-entropy on paired data; what dreamed pairs are measured by (docs/results.md).

    The test set is ``test_*`` (e.g. ``test_split=val`` of the same dataset), else a held-out share of the data.
    ``extra_maps`` / ``extra_photos`` add a paired folder (a dreamed set) to the training pairs; ``extra_share``
    fixes its share of every batch."""

    KIND: ClassVar[str] = "a segmenter"

    family: Literal["segmenter"] = "segmenter"
    channels: int = 32  # U-Net channels after its first conv (doubled down to 8x)
    jitter: float = 1.125  # random jitter: upscale by this, random crop back, random flip; 1 = flips only
    holdout: float = 0.2  # share of the data held out for testing when no test_* set is given (by name)
    train_share: float = 1.0  # share of the (not held-out) data pairs trained on, chosen by name with data.seed
    extra_maps: str = ""  # a folder of further training maps (index PNGs + classes.json), e.g. dream --dataset's
    extra_photos: str = ""  # ... and its photos, named like the maps
    extra_share: float = 0.0  # share of every batch taken from the extra pairs (0 = the union sampled evenly)
    test_name: str = ""  # the test set's dataset ("" = data.name) ...
    test_root: str = ""  # ... folder ("" = data.root) ...
    test_split: str = ""  # ... split ("" = a held-out share of the data, model.holdout) ...
    test_photos: str = ""  # ... and photo folder, for a folder dataset

    def check(self) -> None:
        self.positive("channels")
        if self.jitter < 1.0:
            raise SemGANError(f"model.jitter={self.jitter}; expected >= 1 (1 = no resize-and-crop jitter)")
        for name in ("holdout",):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise SemGANError(f"model.{name}={getattr(self, name)}; expected a share in [0, 1)")
        if not 0.0 <= self.train_share <= 1.0:
            raise SemGANError(f"model.train_share={self.train_share}; expected a share in [0, 1]")
        if bool(self.extra_maps) != bool(self.extra_photos):
            raise SemGANError("model.extra_maps and model.extra_photos go together: the maps and their photos")
        if not 0.0 <= self.extra_share < 1.0:
            raise SemGANError(f"model.extra_share={self.extra_share}; expected a share in [0, 1)")
        if self.extra_share > 0 and not (self.extra_maps and self.train_share > 0):
            raise SemGANError(f"model.extra_share={self.extra_share} mixes the data's pairs with model.extra_maps "
                              "in every batch: it needs both (model.extra_maps set, model.train_share > 0)")


#: The model section of a run: any registered family's.
ModelConfig = ModelSection


@dataclass(frozen=True)
class TrainConfig(Section):
    SECTION: ClassVar[str] = "train"

    steps: int = 50_000  # total G (and D) updates of the run
    batch: int = 32  # the global batch: with N processes each takes batch / N
    lr: float = 1e-4  # same for G and D (paper, appendix B)
    beta1: float = 0.5
    beta2: float = 0.999
    eps: float = 1e-8
    lr_decay: float = 0.0  # share of the run's last steps over which every learning rate falls linearly towards 0
    #                        (pix2pix's reference: the last half), so that the run ends on a settled model; 0 = off
    guard_rollbacks: int = 0  # collapse guard: when an evaluation finds a class the samples no longer draw, go
    #                           back to the last healthy checkpoint with fresh random streams, at most this many
    #                           times in a run (then stop); needs eval.every and the "structure" metric; 0 = off
    ema_half_life: float = 0.0  # half-life in images of the exponential moving average of G's weights, which then
    #                             samples, evaluates and picks the best checkpoint (StyleGAN2: 10,000); 0 = off
    ema_rampup: float = 0.05  # ... but at most this share of the images seen so far (StyleGAN2-ADA); 0 = none
    seed: int = 0
    device: str = "auto"  # "auto" = cuda if available, else cpu; with torchrun each rank takes cuda:LOCAL_RANK
    precision: Precision = "fp32"  # autocast dtype of the forward passes: fp32 (off), bf16, or fp16 (CUDA only)
    compile: bool = False  # torch.compile the networks (needs a working compiler; the first steps compile)
    channels_last: bool = False  # NHWC memory format for the networks and their inputs
    log_every: int = 50  # steps between scalar logs
    sample_every: int = 500  # steps between fixed-latent sample grids
    ckpt_every: int = 1000  # steps between checkpoints (one is always written at the end)
    keep_checkpoints: int = 3  # the newest checkpoints kept (a resume falls back to an older one); 0 = all

    def check(self) -> None:
        self.non_negative("steps", "keep_checkpoints", "guard_rollbacks", "ema_half_life", "ema_rampup")
        self.positive("batch", "log_every", "sample_every", "ckpt_every")
        if self.lr <= 0:
            raise SemGANError(f"train.lr={self.lr}; expected > 0")
        for name in ("beta1", "beta2"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise SemGANError(f"train.{name}={getattr(self, name)}; expected a value in [0, 1)")
        if self.eps <= 0:
            raise SemGANError(f"train.eps={self.eps}; expected > 0")
        if not 0.0 <= self.lr_decay <= 1.0:
            raise SemGANError(f"train.lr_decay={self.lr_decay}; expected a share of the steps in [0, 1]")

    def lr_factor(self, step: int) -> float:
        """The learning rates' share of ``train.lr`` at step ``step`` (0-based): 1, then linearly down over the
        last ``lr_decay`` of the run (the last step still takes ``1 / decay steps`` of it)."""
        decay = round(self.lr_decay * self.steps)
        return 1.0 if decay <= 0 else min(1.0, (self.steps - step) / decay)

    def steps_schedule(self) -> str | None:
        """Like :meth:`ModelSection.steps_schedule`, for the learning-rate decay."""
        if self.lr_decay > 0:
            return ("the learning rate decays over the last train.lr_decay of train.steps; a resume keeps "
                    "train.steps (start a new run for a longer one)")
        return None


@dataclass(frozen=True)
class EvalConfig(Section):
    SECTION: ClassVar[str] = "eval"

    every: int = 0  # steps between evaluations during training; 0 = only at the end (if metrics is set)
    metrics: tuple[str, ...] = ()  # metric names, e.g. ("swd", "semantic")
    n: int = 0  # images per set; 0 = the whole training set (the paper's protocol)
    seed: int = 0

    def check(self) -> None:
        self.non_negative("every", "n")


@dataclass(frozen=True)
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelSection = field(default_factory=SemGANModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)

    def model_as(self, section: type[M], what: str = "the run") -> M:
        """The model section, checked to be of the family of ``section``; a clear error for another family's."""
        if not isinstance(self.model, section):
            raise SemGANError(f"{what} is a {self.model.family} model; expected {section.KIND}")
        return self.model

    def __post_init__(self) -> None:
        # What spans sections (the sections checked themselves when they were built).
        self.model.check_run(self)
        t, e = self.train, self.eval
        if t.guard_rollbacks > 0:
            needs = self.model.HEALTH_METRICS
            if not needs:
                raise SemGANError(f"train.guard_rollbacks={t.guard_rollbacks}, but {self.model.KIND} reports no "
                                  "health signal for the collapse guard to watch; set train.guard_rollbacks=0")
            missing = [name for name in needs if name not in e.metrics]
            if e.every <= 0 or missing:
                raise SemGANError(
                    f"train.guard_rollbacks={t.guard_rollbacks} watches the evaluations for a lost class, but "
                    f"eval.every={e.every} and eval.metrics={','.join(e.metrics)!r}; set eval.every > 0 and add "
                    f"{','.join(needs)} to eval.metrics, or train.guard_rollbacks=0 (no guard)")
