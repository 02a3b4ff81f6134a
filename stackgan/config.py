"""Configuration objects and named profiles.

One frozen dataclass per concern, gathered in `Config`. Profiles are functions returning a
`Config` (big_vision style): `tiny` for tests (seconds on a CPU), `demo` for the Quickstart
(minutes on 2 CPU cores), `paper` for the sizes and schedule of Zhang et al. 2017 (birds).

Configs travel between TFX components as JSON (`Config.to_json` / `Config.from_json`), so an
executor never reads a module global. Where the authors' TensorFlow code ("TF") and PyTorch port
("PT") disagree, the field is named and defaults to the TF/paper value (see
../shared/REFERENCE.md).
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from typing import Any, Literal

from stackgan import config_checks
from stackgan.config_checks import ConfigError


@dataclasses.dataclass(frozen=True)
class SynthConfig:
    """The procedural CUB-format dataset (`stackgan synth`)."""

    classes: int = 8
    images_per_class: int = 12
    seed: int = 0
    # CUB images are ~500x375; the synthetic ones vary around that.
    min_side: int = 240
    max_side: int = 500
    # fraction of classes that go to the test split (StackGAN's split is class-disjoint, 50/200)
    test_class_fraction: float = 0.25
    # "scenes": sky, grass, branches, foliage or water behind the bird, as in CUB's photographs;
    # "plain": a sky-coloured gradient only, so a short training run spends its steps on the
    # bird (the demo: docs/EXPERIMENTS.md, "What limits Stage-I").
    backgrounds: Literal["scenes", "plain"] = "scenes"
    # which way the birds face: "both" at random, as CUB's photographs do, or all "right"
    facing: Literal["both", "right"] = "both"


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """What the preprocessing writes and what the input pipeline feeds the trainers."""

    split: Literal["stackgan", "official"] = "stackgan"
    strict: bool = False  # fail on files named by the split lists but absent on disk
    low_res_stored: int = 76  # stored size; training crops low_res
    low_res: int = 64
    high_res_stored: int = 304
    high_res: int = 256
    image_encoding: Literal["png", "jpeg", "raw"] = "jpeg"  # why: bench/bench_image_encoding.py
    embedding_dim: int = 1024
    captions_per_image: int = 10
    # TF averages 4 random embeddings of the 10 per step; PT picks 1.
    embeddings_per_sample: int = 4
    max_skipped_fraction: float = 0.01
    num_shards: int = 0  # 0 = derived from the split size
    shuffle_buffer: int = 2048
    # the paper mirrors every training image at random (both official codes)
    train_flip: bool = True
    # The training input pipelines (the GANs' and the classifier's) hand out their elements in
    # order, so that a run repeats bit for bit with the same seeds (the augmentation is
    # stateless, keyed by the seed and the element). False lets their parallel stages hand out
    # whichever element is ready first: the same data, in an order that changes from run to
    # run, for when reading is the bottleneck (slow storage).
    ordered: bool = True
    # The training images are kept decoded in memory when they fit in this many MiB (two
    # decoded copies of every image plus its embeddings; tfrecords/input_pipeline.py); 0 streams
    # them from the files every epoch. CUB's 8,855 training images fit for Stage-I (~0.7 GiB),
    # not for Stage-II (~5.3 GiB), which streams.
    cache_decoded_mb: int = 2048


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Network sizes. Paper names in comments."""

    embedding_dim: int = 1024
    ca_dim: int = 128  # Ng
    z_dim: int = 100  # Nz
    gf_dim: int = 128  # Stage-I G: fc to 4x4x(8*gf_dim)
    df_dim: int = 64  # Stage-I D: 64 -> 128 -> 256 -> 512
    text_dim_d: int = 128  # Nd, compressed text in D
    d_spatial: int = 4  # Md
    stage2_gf_dim: int = 128  # Stage-II G encoder 128 -> 256 -> 512
    stage2_df_dim: int = 64  # Stage-II D: 64 ... 2048
    stage2_residual_blocks: int = 4
    # TF: fc + LeakyReLU(0.2); PT: fc + ReLU
    ca_activation: Literal["leaky_relu", "relu"] = "leaky_relu"
    # TF Stage-I G has two residual bottlenecks (at 4x4 and 8x8); PT has none.
    stage1_residual_bottlenecks: bool = True
    # PT's Stage-II D adds an unconditional logit; TF has none.
    stage2_unconditional_logit: bool = False
    # How the discriminators' logit depends on the text. "concat" (paper): the compressed text
    # tiled and joined to the Md x Md image code, then a 1x1 conv and an Md x Md conv.
    # "projection" (later work: Miyato & Koyama 2018): an unconditional logit of the image code
    # plus the inner product of the summed image code with a linear map of the compressed
    # text, so D scores how well the image matches the caption in one direction per caption.
    d_conditioning: Literal["concat", "projection"] = "concat"
    # Keras `trainable=False` puts BatchNorm in inference mode; the official codes keep batch
    # statistics in the frozen Stage-I G. "batch" follows them, "moving" uses moving averages.
    frozen_stage1_batchnorm: Literal["batch", "moving"] = "batch"
    # Later work, not the paper: "image" (paper) paints the Stage-II image from its 16x16 code;
    # "residual" adds a learned correction to the upsampled Stage-I image
    # (stackgan/models/refinement.py), so Stage-II starts from Stage-I's picture;
    # "lowres_residual" computes that correction at Stage-I's size and draws it at full size
    # from interpolated features (stackgan/models/stage2.py), which learns to sharpen fast.
    stage2_output: Literal["image", "residual", "lowres_residual"] = "image"
    # channels of the "lowres_residual" path (its three 3x3 convs at Stage-I's size)
    stage2_lowres_residual_dim: int = 64
    # How both generators' stride-1 3x3 convolutions pad: "zeros" (both official codes) or
    # "replicate" (copies of the border; stackgan/models/edge_padding.py), so the border pixels
    # see what the interior sees and no frame is drawn around the image. Stage-II's stride-2
    # encoder convs keep zeros.
    generator_padding: Literal["zeros", "replicate"] = "zeros"
    # How both generators' up-blocks (and Stage-I's last x2 step) enlarge their features before
    # each 3x3 conv: "nearest" (both official codes) or "bilinear". In a few CPU minutes on
    # photographs, nearest upsampling drew a grid of streaks that bilinear does not (the real
    # CUB sample; docs/EXPERIMENTS.md, "Bilinear upsampling on photographs").
    generator_upsampling: Literal["nearest", "bilinear"] = "nearest"
    # Where Stage-I's G reads the text: "input" (the paper: the CA's sample with the noise,
    # before the first layer) or also "affine" in every up-block, as a per-channel scale and
    # shift of the normalised features computed from the caption's code (conditional
    # BatchNorm, DF-GAN's deep fusion; stackgan/models/text_affine.py). Measured better on the
    # real CUB sample's photographs, worse on the demo's synthetic birds (docs/EXPERIMENTS.md,
    # "Text in every up-block").
    generator_text_fusion: Literal["input", "affine"] = "input"
    # How the generators' up-sampling (nearest x2, then a 3x3 conv) is computed, not what:
    # up to this many output channels as one conv at the input's resolution
    # (stackgan/models/nearest_up_conv.py: the same function and kernel, up to 4x faster on a
    # CPU; measured by bench/bench_nearest_up_conv.py), above it as the two layers. 0 = always
    # the two layers.
    upsample_conv_max_filters: int = 64
    # Sampling, not training (later work: the truncation trick of Karras et al. 2019 and
    # Brock et al. 2019): the exported model's seeded and fresh-noise signatures (so TF Serving,
    # `stackgan generate` and the Evaluator) and the training sample sheets draw the noise z and
    # the Conditioning Augmentation's eps from N(0, truncation^2), which pulls z and c = mu +
    # sigma eps towards their means: images more typical of their caption, less varied.
    # 1 = the paper's sampling. Training always draws N(0, 1); `generate_with_noise` takes the
    # caller's noise as it is.
    truncation: float = 1.0


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    batch_size: int = 64
    stage1_epochs: int = 600
    stage2_epochs: int = 600
    # 0 = run the epochs; >0 caps the number of steps (tests, demo)
    max_steps: int = 0
    # Stage-II's own cap when >0 (Stage-II only sharpens what Stage-I drew, so a short demo
    # gives Stage-I most of its time); 0 = max_steps
    stage2_max_steps: int = 0
    # Stage-II's own batch size when >0 (a 256 px step costs ~7x a 64 px one); 0 = batch_size
    stage2_batch_size: int = 0
    learning_rate: float = 2e-4
    # Later work, not the paper (0 = learning_rate): the discriminator's own learning rate, the
    # two time-scale update rule (TTUR, Heusel et al. 2017); it decays on the same schedule.
    d_learning_rate: float = 0.0
    # Stage-II's generator's own starting rate when >0 (0 = learning_rate): a Stage-II that
    # learns to sharpen from `stage2_reconstruction_weight` in a few hundred steps needs more
    # than the paper's 2e-4 (docs/EXPERIMENTS.md, "A Stage-II that sharpens").
    stage2_learning_rate: float = 0.0
    beta_1: float = 0.5
    lr_decay_epochs: int = 50  # TF halves every 50 epochs; the paper says 100
    lr_decay_factor: float = 0.5
    kl_weight: float = 2.0  # paper: 1; both codes: 2
    # Later work, not the paper (0 = off): a Stage-II generator term that keeps its image
    # consistent with its Stage-I input. "color_moments" is StackGAN++'s colour-consistency
    # regulariser; "downscaled_l1" compares the box-downscaled Stage-II image with Stage-I's.
    stage2_consistency: Literal["downscaled_l1", "color_moments"] = "downscaled_l1"
    stage2_consistency_weight: float = 0.0
    # Gaussian blur (sigma, in low_res pixels) on both images before they are compared (0 =
    # none). Unblurred, the term holds Stage-II to Stage-I's blur; blurred, it still holds the
    # colours and layout but lets Stage-II sharpen edges that Stage-I smeared over a few pixels.
    stage2_consistency_blur: float = 0.0
    # Later work, not the paper (0 = off): super-resolution on real pairs (SRGAN / pix2pix
    # style). Each step Stage-II also refines the box-downscaled REAL image and the generator
    # adds this weight x its mean L1 distance to that real image (stage2_gan.py).
    stage2_reconstruction_weight: float = 0.0
    # Gaussian blur (sigma, in low_res pixels) on that downscaled real image first (0 = none;
    # degradation-aware super-resolution, as in BSRGAN / Real-ESRGAN): Stage-I's images are
    # blurred birds, so what Stage-II must learn on real pairs is to sharpen a blur.
    stage2_reconstruction_blur: float = 0.0
    # Later work, not the paper (0 = off): R1 gradient penalty on D's real/right pairs.
    r1_gamma: float = 0.0
    r1_every: int = 1  # lazy R1 (StyleGAN2): every N D steps, weighted N times
    # Later work, not the paper: "hinge" (SAGAN, BigGAN) instead of the paper's sigmoid
    # cross-entropy for the matching-aware D (real/right, wrong, fake) and -logit for G.
    gan_loss: Literal["cross_entropy", "hinge"] = "cross_entropy"
    # Later work, not the paper: DiffAugment (Zhao et al. 2020) on every image D sees, in D's
    # and G's updates alike; geometric only, colour is the condition (training/augment.py).
    d_augment: Literal["none", "translation_cutout"] = "none"
    # Later work, not the paper (0 = off): the generator that is sampled, exported and served
    # is an exponential moving average of the trained one's weights with this momentum (Karras
    # et al. 2018; Yazici et al. 2019), kept by Keras' Adam (`use_ema`) with TF's warm-up
    # (momentum min(this, (1 + t) / (10 + t)) at step t, fused_adam.py), so a short stage does
    # not keep its first weights; its BatchNorm statistics are re-estimated under the averaged
    # weights (precise_bn_batches).
    generator_ema: float = 0.0
    # Batches over which the trained generator's BatchNorm statistics are re-estimated before
    # each sample sheet and the export (0 = keep the moving averages); see precise_bn.py.
    precise_bn_batches: int = 20
    checkpoint_every_steps: int = 500
    sample_every_steps: int = 500
    log_every_steps: int = 50
    # What the networks compute in (stackgan/training/precision.py): "auto" = bfloat16 where
    # the hardware has native bf16 (AMX / AVX512_BF16 CPUs, NVIDIA GPUs >= 8.0), float16 with
    # loss scaling on older GPUs, else float32; float16 on a CPU is refused at training start.
    precision: Literal["float32", "bfloat16", "float16", "auto"] = "auto"
    xla: bool = False
    # Every trainer's initial weights, noise, data order and augmentation (with `data.ordered`,
    # a run repeats bit for bit on the same kind of machine with the same thread count).
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
    """MobileNetV2 fine-tuned on CUB, for inception score and FID."""

    image_size: int = 224
    alpha: float = 1.0
    classes: Literal["test", "all"] = "test"
    weights: Literal["imagenet", "none"] = "imagenet"  # "imagenet": Keras' cache or weights_path
    weights_path: str = ""
    head_epochs: int = 10
    finetune_epochs: int = 20
    finetune_from_block: int = 100  # layers below this index stay frozen in phase 2
    batch_size: int = 32
    learning_rate_head: float = 1e-3
    learning_rate_finetune: float = 1e-4
    holdout_fraction: float = 0.2
    early_stopping_patience: int = 3
    # keep the decoded training images in memory, shrunk to image_size (classifier_data)
    cache_images: bool = False
    # from scratch only: linear warm-up of the learning rate before its cosine decay
    warmup_epochs: int = 2
    # The classifier's own seed (initial weights, hold-out, order, augmentation), apart from
    # `train.seed`: it is the measuring instrument, so GANs trained with other seeds are scored
    # by the same classifier (and `--set train.seed=N` leaves it cached).
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    # Whose captions are drawn and whose real images are the ceiling: "test", the unseen
    # classes (the paper's protocol), or "train", the classes the GANs learnt from.
    captions_split: Literal["test", "train"] = "test"
    # 0 = one image per caption of that split (2,933 x 10 on CUB's test split)
    num_samples: int = 0
    is_splits: int = 10
    batch_size: int = 64
    seed: int = 0
    # The push gate (stackgan.evaluation.evaluator.judge). Class accuracy = the classifier's
    # top-1 on generated images against the class of the caption each was generated from; the
    # real test images' top-1 is its ceiling. Blessed only when the generated class accuracy
    # lies at least this fraction of the way from chance (the largest class share among the
    # captions) to the real images' top-1, and above chance (0 turns both off) ...
    min_class_accuracy_ratio: float = 0.5
    # ... and, when an earlier run blessed a model, at least that model's class accuracy
    # (re-scored now, with this classifier, captions and seeds) minus this.
    baseline_tolerance: float = 0.02
    # When positive, also: the generated images' colour agreement gain (the colours their
    # captions name found in the bird, against other images' captions) at least this fraction
    # of the real images' gain, and no lower than the last blessed model's minus the tolerance.
    # It judges what a caption states; class top-1 cannot once captions name too few traits to
    # single out one of many species. Off by default: on real CUB, whose birds are mostly black,
    # grey, white and brown, even real images gain little (stackgan/evaluation/colour_agreement.py).
    min_colour_gain_ratio: float = 0.0


@dataclasses.dataclass(frozen=True)
class TextEncoderConfig:
    """char-CNN-RNN of Reed et al. 2016, trained with the DS-SJE loss."""

    source: Literal["auto", "pickle", "train"] = "auto"
    embedding_dim: int = 1024
    max_chars: int = 201  # Reed et al. use 201 characters
    conv_filters: tuple[int, ...] = (384, 512, 256)
    rnn_units: int = 512
    # Reed et al.'s char-CNN-RNN uses a plain RNN; "gru"/"lstm" are offered for comparison.
    rnn_cell: Literal["simple", "gru", "lstm"] = "simple"
    epochs: int = 200
    batch_size: int = 40
    learning_rate: float = 4e-4
    # With the dataset's embeddings pickle the GANs condition on those embeddings, and nothing
    # else could embed a new sentence; this encoder is then trained to reproduce them from the
    # captions instead (stackgan/text/distill.py), so the pushed generator also takes text.
    distill_pickle: bool = True
    distill_epochs: int = 30
    # the regression learns several times faster than DS-SJE's rate allows: on the demo's
    # captions 4e-4 reached cosine 0.46 on unseen captions in 30 epochs, 3e-3 0.70
    # (docs/EXPERIMENTS.md)
    distill_learning_rate: float = 3e-3
    # The encoder's own seed (initial weights, caption order), apart from `train.seed`: with
    # the dataset's embeddings the GANs never see this encoder, so `--set train.seed=N` trains
    # other GANs and leaves it cached; with trained embeddings, this seed decides them.
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class Config:
    profile: str = "paper"
    synth: SynthConfig = SynthConfig()
    data: DataConfig = DataConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    classifier: ClassifierConfig = ClassifierConfig()
    eval: EvalConfig = EvalConfig()
    text: TextEncoderConfig = TextEncoderConfig()

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Config:
        return _from_dict(cls, json.loads(text))

    def replace(self, **sections: dict[str, Any]) -> Config:
        """`cfg.replace(train={"max_steps": 10})`: a copy with some fields of some sections changed."""
        changed = {}
        for section, fields in sections.items():
            if section == "profile":
                changed["profile"] = fields
                continue
            changed[section] = dataclasses.replace(getattr(self, section), **fields)
        return dataclasses.replace(self, **changed)

    def validate(self) -> Config:
        """Raises ConfigError naming every field that cannot work (a choice that does not
        exist, sizes that do not fit, a negative count, a NaN); returns self when all is well.
        `with_overrides` calls it, so every config built from a profile and `--set` is checked
        before anything runs."""
        config_checks.validate(self)
        return self

    def with_overrides(self, assignments: list[str]) -> Config:
        """Applies `section.field=value` strings (the CLI's `--set`), parsing value by the
        field's type: `["train.max_steps=100", "model.ca_activation=relu"]`; then validates."""
        cfg = self
        for assignment in assignments:
            key, sep, raw = assignment.partition("=")
            section, dot, name = key.strip().partition(".")
            if not sep or not dot:
                raise ConfigError(f"--set expects SECTION.FIELD=VALUE, got {assignment!r}")
            sections = [f.name for f in dataclasses.fields(cfg) if f.name != "profile"]
            if section not in sections:
                raise ConfigError(
                    f"--set {assignment}: unknown config section {section!r};"
                    f" the sections are {', '.join(sections)}"
                )
            fields = [f.name for f in dataclasses.fields(getattr(cfg, section))]
            if name not in fields:
                close = difflib.get_close_matches(name, fields, n=1)
                hint = f"did you mean {section}.{close[0]}?" if close else "its fields are"
                raise ConfigError(
                    f"--set {assignment}: unknown config field {section}.{name}; "
                    + (hint if close else f"{hint} {', '.join(fields)}")
                )
            current = getattr(getattr(cfg, section), name)
            cfg = cfg.replace(**{section: {name: _parse_like(current, raw.strip(), assignment)}})
        return cfg.validate()


def _parse_like(current: Any, raw: str, assignment: str) -> Any:
    try:
        if isinstance(current, bool):
            if raw.lower() not in ("true", "false", "1", "0"):
                raise ValueError("expected true or false")
            return raw.lower() in ("true", "1")
        if isinstance(current, tuple):
            return tuple(type(current[0])(v) for v in raw.split(",")) if current else ()
        return type(current)(raw)
    except ValueError as e:
        kind = {bool: "true/false", int: "an integer", float: "a number"}.get(
            type(current), f"a {type(current).__name__}"
        )
        raise ConfigError(f"--set {assignment}: {raw!r} is not {kind} ({e})") from None


def _from_dict(cls, values: dict[str, Any]):
    kwargs = {}
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in values.items():
        if key not in fields:
            raise ValueError(f"unknown config field {cls.__name__}.{key}")
        default = getattr(cls(), key)
        if dataclasses.is_dataclass(default):
            value = _from_dict(type(default), value)
        elif isinstance(default, tuple):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def paper() -> Config:
    """The paper's birds setting: 64x64 then 256x256, 600 + 600 epochs at batch 64."""
    return Config(profile="paper")


def demo() -> Config:
    """The Quickstart: the whole DAG in minutes on 2 CPU cores, on the synthetic birds."""
    return Config(
        profile="demo",
        # 36 train / 12 test species of 8 images: unseen species are new combinations of the
        # part colours seen in training, and a generator learns to compose them only from many
        # combinations. The same 384 images as 16 species of 24 gave unseen-species colour
        # gain +0.01 (12 training species are learnt whole); 48 of 8 gave +0.09, 32 of 12
        # +0.08 (docs/EXPERIMENTS.md, "Unseen species"). Plain skies behind them: in a few CPU
        # minutes a GAN spends its steps on CUB-like scenes and paints colour blobs where the bird
        # is (docs/EXPERIMENTS.md, "What limits Stage-I").
        # Every bird faces right and no training image is mirrored: no caption says which way a bird
        # faces, so G must pick it from the noise, and in 2,400 steps it drew the average of both
        # ways, a symmetric wedge rising at both ends. One way round it draws a bird: a tail, a body
        # and a head. Stage-I alone, 2,400 steps, seeds 0-2 on one Quickstart's data
        # (bench_stage1_variants.py, Zen 4): top-1 0.385 / 0.425 / 0.380 against 0.325 / 0.280 /
        # 0.300 mirrored at random, FID 32.6 / 29.5 / 39.3 against 48.9 / 54.6 / 41.8
        # (docs/EXPERIMENTS.md, "Which way the birds face"). The paper profile keeps the paper's
        # random flip; real CUB's birds face both ways.
        synth=SynthConfig(classes=48, images_per_class=8, backgrounds="plain", facing="right"),
        data=DataConfig(shuffle_buffer=256, train_flip=False),
        model=ModelConfig(
            ca_dim=32,
            z_dim=32,
            # Stage-I's G at half the width it had (16): its step took 0.077 s at batch 16
            # instead of 0.110 on the 2-core AMD EPYC (bench_train_step.py), which brought the
            # Quickstart from 10:08 to under the 10-minute budget there (8:47; 7:55 since the
            # up-sampling at the input's resolution, d8d5b8e). Stage-I alone, 2,400
            # steps, seeds 0-2 (bench_stage1_variants.py, AMD): training captions' colour gain
            # +0.082 / +0.126 / +0.171 against +0.162 / +0.177 / +0.152, FID 66 / 57 / 67 against
            # 108 / 49 / 101, unseen species' gain +0.068 / +0.082 / +0.102 against +0.102 /
            # +0.114 / +0.083 (docs/EXPERIMENTS.md, "The Quickstart run").
            gf_dim=8,
            df_dim=8,
            text_dim_d=32,
            stage2_gf_dim=8,
            stage2_df_dim=4,
            stage2_residual_blocks=2,
            # Both discriminators read the caption through the projection discriminator's inner
            # product (later work): Stage-I alone, 2,400 steps, seeds 0-2 on one Quickstart's
            # data (bench_stage1_variants.py, AMD): training captions' top-1 0.230 / 0.240 /
            # 0.240 against 0.175 / 0.170 / 0.140, colour gain +0.245 / +0.253 / +0.261 against
            # +0.173 / +0.186 / +0.136, unseen species' gain +0.147-0.161 against +0.105-0.129
            # (docs/EXPERIMENTS.md, "The projection discriminator").
            d_conditioning="projection",
            # Later work (docs/EXPERIMENTS.md, "Stage-II: what failed and what fixed it"): with the
            # paper's Stage-II, a few hundred CPU steps give grey stripes unrelated to Stage-I's
            # image; a residual refines it, and computed at Stage-I's size it learns to sharpen
            # within the demo's steps (docs/EXPERIMENTS.md, "A Stage-II that sharpens").
            stage2_output="lowres_residual",
            stage2_lowres_residual_dim=32,
            # Noise at half its scale when sampling (docs/EXPERIMENTS.md, "Sampling with less
            # noise"): on four Quickstart runs' Stage-I generators (bench_truncation.py), colour
            # gain up on all four on both splits (training species' captions +0.131-0.151 ->
            # +0.153-0.194, unseen species' +0.095-0.112 -> +0.106-0.137), class top-1 up on all
            # four; at 0 every image of a caption would be the same.
            truncation=0.5,
            # Stage-II trains on the Stage-I images it is served (measured 13-18 levels apart
            # with batch statistics)
            frozen_stage1_batchnorm="moving",
            # Zero padding drew a light frame around every Stage-I image and the Stage-II image
            # kept it. Padded with the border's own pixels (later work): Stage-I alone, 2,400
            # steps, seeds 0-2 on one Quickstart's data (bench_stage1_variants.py, Zen 4), frame
            # contrast 1.49-1.56x the real images' against 6.6-7.5x, top-1 0.520-0.540 against
            # 0.475-0.530, colour gain +0.271-0.303 against +0.267-0.276 (docs/EXPERIMENTS.md,
            # "Padding with the border, not zeros").
            generator_padding="replicate",
        ),
        train=TrainConfig(
            batch_size=16,
            # Stage-I draws the bird; Stage-II only refines it, so Stage-I gets most steps.
            # Measured class top-1 of the whole DAG's 256 px images (train captions, chance
            # 0.085; AMX Xeon, one run each): 0.24-0.25 (FID 57-66) with 1,500 + 200 steps,
            # 0.405 (FID 29) with 2,400 + 100 in about the same AMD-estimated time: Stage-II
            # steps cost ~7x Stage-I's and in 100-200 of them it adds little
            # (docs/EXPERIMENTS.md).
            max_steps=2400,
            # Sharpening is learnt per step more than per image: 300 steps of 4 cost about
            # what 100 of 16 did and narrow the edges where those did not (docs/EXPERIMENTS.md).
            stage2_max_steps=300,
            stage2_batch_size=4,
            lr_decay_epochs=100,
            # D at twice G's rate (TTUR, later work): Stage-I's class top-1 on the training
            # species' captions rose from 0.295-0.440 (seeds 0-2) to 0.455-0.490 at 2,400 steps
            # on the same data (bench_stage1_variants.py; docs/EXPERIMENTS.md, "What limits
            # Stage-I"). Both at 5x that, sampled and exported from the generator's average (later
            # work, as StyleGAN trains: fast steps, the average smooths their noise): Stage-I alone,
            # 2,400 steps, seeds 0-2, top-1 0.475 / 0.500 / 0.500 against 0.385 / 0.320 / 0.330, FID
            # 17-20 against 18-21; at 5x without the average 0.340 / 0.390 (docs/EXPERIMENTS.md,
            # "Faster steps, averaged").
            learning_rate=1e-3,
            d_learning_rate=2e-3,
            generator_ema=0.995,
            # Stage-II learns to sharpen from real pairs (super-resolution of the real images,
            # box-downscaled and lightly blurred as Stage-I's are), at 5x the paper's rate. The
            # downscaled-L1 consistency term at weight 30 held it to Stage-I's blur even blurred
            # (edge sharpness gain 1.07 against 1.68 without it; 1.59 at weight 5), and without
            # it the 256 px images still keep Stage-I's colours (3.0 levels).
            # Weight 200, not 50: over seeds 0-2 on one Stage-I, 50 once lost Stage-I's colours
            # (19.5 levels) where 200 kept them (2.6-4.9) and sharpened more (1.6-2.1).
            stage2_reconstruction_weight=200.0,
            # Blurred by 1 Stage-I pixel, not 0.5: Stage-I's birds are blurrier than a real one
            # blurred by 0.5 (edges vs real 0.3-0.5; 0.5 leaves 0.60, 1 leaves 0.24), and
            # taught on the heavier blur Stage-II sharpens more: on one Stage-I, seeds 0-2,
            # edge sharpness gain 2.72 / 2.46 / 2.55 against 1.77 / 1.69 / 1.71, keeping
            # Stage-I's colours (2.5-2.8 levels against 1.5-1.6), FID 16.6-17.2 against
            # 15.8-16.3, with this D rate and average (docs/EXPERIMENTS.md, "Faster steps,
            # averaged").
            stage2_reconstruction_blur=1.0,
            stage2_learning_rate=1e-3,
            r1_gamma=1.0,
            r1_every=4,
            checkpoint_every_steps=200,
            sample_every_steps=100,
            log_every_steps=10,
            # Networks this narrow gain little from bf16 and Stage-II loses: bench_train_step
            # --profile demo on the 2-core AMX Xeon, batch 16, best of 20 steps: Stage-I 0.05 ->
            # 0.04 s, Stage-II 0.26 -> 0.53 s (bf16 elementwise work outweighs its matmuls).
            precision="float32",
        ),
        # From scratch (no ImageNet weights offline; stackgan.evaluation.classifier.fine_tune):
        # 48 px keeps the part colours that tell the species apart. 50 epochs (one phase of
        # 25 + 25, warm-up then cosine): with 48 species of 8 images, held-out top-1 over runs
        # on the same images was 0.90-0.94 in 26 epochs and 0.79-0.97 in 36, training
        # accuracy ending at 0.84-0.89 (underfit); in 50, 0.98 and 0.99, training accuracy
        # 0.98. (16 species of 24: 1.00 in 26 epochs.)
        classifier=ClassifierConfig(
            image_size=48,
            alpha=0.35,
            classes="all",
            weights="none",
            head_epochs=25,
            finetune_epochs=25,
            finetune_from_block=0,
            batch_size=32,
            learning_rate_head=1e-2,
            cache_images=True,
        ),
        # The gate judges captions of the training species. A caption names about three of a
        # bird's eight parts, too few to single out one of 36 species, so generated top-1 is
        # well below the real images' (0.320-0.425 against 0.99, chance 0.03, in the Quickstart
        # runs since 6fb89ed: 0.30-0.41 of the way from chance to real): the class check asks
        # for 0.2 of the way. On the real CUB sample's 5 species (chance 0.2) the demo's
        # muted colour fields scored 0.285 against real 0.80, 0.14 of the way, and are refused
        # (docs/EXPERIMENTS.md, "The real CUB sample"). The colour check asks for 0.3 of the real
        # images' colour gain (generated +0.27-0.29 of real +0.274; a generator that ignores the
        # caption gains 0). Unseen species' captions: --set eval.captions_split=test.
        eval=EvalConfig(
            captions_split="train",
            num_samples=200,
            is_splits=2,
            batch_size=32,
            min_class_accuracy_ratio=0.2,
            min_colour_gain_ratio=0.3,
        ),
        text=TextEncoderConfig(
            embedding_dim=1024,
            conv_filters=(64, 64, 64),
            rnn_units=64,
            epochs=5,
            batch_size=32,
            # 22.5 s in the Quickstart's DAG (Xeon). New sentences of the training species through
            # its pushed model (bench_text_input.py): top-1 0.383 / 0.417 through this encoder,
            # 0.417 / 0.467 through the dataset's embeddings (noise seeds 0 / 1), 0.025 / 0.067
            # through one embedding for all (README, "Sentences in")
            distill_epochs=20,
        ),
    )


def tiny() -> Config:
    """For tests: every network a few thousand parameters, every loop a few steps."""
    return Config(
        profile="tiny",
        synth=SynthConfig(classes=4, images_per_class=4, min_side=96, max_side=160),
        # Stage-II upsamples 4x, as in the paper (64 -> 256): here 16 -> 64
        data=DataConfig(
            low_res_stored=19, low_res=16, high_res_stored=76, high_res=64, shuffle_buffer=32
        ),
        model=ModelConfig(
            ca_dim=8,
            z_dim=8,
            gf_dim=4,
            df_dim=4,
            text_dim_d=8,
            stage2_gf_dim=4,
            stage2_df_dim=2,
            stage2_residual_blocks=1,
        ),
        train=TrainConfig(
            batch_size=4,
            max_steps=4,
            checkpoint_every_steps=2,
            sample_every_steps=2,
            log_every_steps=1,
            lr_decay_epochs=1,
            # the same arithmetic on every machine (auto would follow the CPU's bf16 units)
            precision="float32",
        ),
        classifier=ClassifierConfig(
            image_size=32,
            alpha=0.35,
            classes="all",
            weights="none",
            head_epochs=1,
            finetune_epochs=1,
            finetune_from_block=0,
            batch_size=8,
        ),
        # a 2-epoch classifier cannot judge 4-step generators and the tests check the plumbing
        # (blessing, push, the next run's baseline), so the tiny profile must be able to bless:
        # ratio 0 turns the class-accuracy checks off; the baseline check still holds when the
        # baseline is this same model (a cached re-run) or a no better one
        eval=EvalConfig(num_samples=16, is_splits=2, batch_size=8, min_class_accuracy_ratio=0.0),
        text=TextEncoderConfig(
            embedding_dim=1024,
            max_chars=64,
            conv_filters=(16, 16, 16),
            rnn_units=16,
            epochs=1,
            batch_size=8,
            distill_epochs=1,
        ),
    )


PROFILES = {"tiny": tiny, "demo": demo, "paper": paper}


def get_profile(name: str) -> Config:
    try:
        return PROFILES[name]()
    except KeyError:
        raise ConfigError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}") from None
