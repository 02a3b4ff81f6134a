"""The CUB classifier behind the inception score and FID: MobileNetV2 fine-tuned on CUB classes.

The paper scores images with Inception-v3 fine-tuned on CUB; this project uses the lighter
MobileNetV2 of `keras.applications`. Its life cycle:

- `choose_weights`: ImageNet weights from Keras' cache or `ClassifierConfig.weights_path`, never
  downloaded: when neither is there the classifier trains from scratch and the choice carries a
  warning that the trainer logs and records.
- `build_classifier`: `image f32[N,S,S,3] in [-1,1]` (any S, resized inside to
  `ClassifierConfig.image_size`) -> `logits f32[N,K]`, `features f32[N,D]` (pooled).
- `fine_tune`: from ImageNet, two phases (the new head on a frozen backbone, then the upper
  blocks), early stopping on the held-out images, each phase restoring its best weights. From
  scratch, one phase on a cosine schedule, set up to learn in the few hundred steps a CPU run
  affords: residual branches start at zero, BatchNorm statistics are re-estimated before
  scoring, and Adam and training-mode BatchNorm run as TF's fused ops.
- `export_classifier` / `load_classifier`: the SavedModel of the classifier contract in
  docs/ARCHITECTURE.md (signature `serving_default`), with a description of the classes and
  the held-out accuracy in `assets.extra/classifier.json`.

It trains and scores in float32 whatever `train.precision` says: MobileNetV2's depthwise and
narrow 1x1 convolutions do not gain from bf16 on CPU. Measured on the 2-core AMX Xeon (shared,
interleaved, best step; bf16 with fused bf16 BatchNorm): demo size (48 px, alpha 0.35, batch
32) training 92 -> 117 ms/step and inference 1493 -> 1114 img/s; 224 px, alpha 1.0: training
3.84 -> 3.98 s/step, inference 37 -> 25 img/s. Float32 also keeps the inception score and FID
comparable across machines.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from stackgan.config import ClassifierConfig
from stackgan.models.batch_norm import fused_batch_statistics, recalibrate_batch_norm
from stackgan.saved_models import export_archive, load_saved_model, resolve_saved_model_dir
from stackgan.training.fused_adam import FusedAdam

if TYPE_CHECKING:
    from stackgan.training.epoch_backup import EpochBackup

SIGNATURE = "serving_default"
INFO_FILE = os.path.join("assets.extra", "classifier.json")
# input sizes and widths for which keras.applications publishes ImageNet MobileNetV2 weights
IMAGENET_SIZES = (96, 128, 160, 192, 224)
IMAGENET_ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)


@dataclasses.dataclass(frozen=True)
class WeightsChoice:
    path: str | None  # the weights file to load; None = random initialisation
    source: str  # "keras-cache", "weights_path" or "none"
    warning: str  # why the classifier starts from scratch; "" when it starts from ImageNet

    @property
    def pretrained(self) -> bool:
        return self.path is not None


@dataclasses.dataclass
class ClassifierModels:
    """Three views of one set of layers."""

    classifier: keras.Model  # image -> {"logits", "features"}: what is exported
    trainable: keras.Model  # image -> logits: what `fit` trains
    backbone: keras.Model  # MobileNetV2 without its top, frozen or not per phase
    pretrained: bool


def _keras_home() -> Path:
    # Keras' own rule (keras/src/backend/config.py), read at call time so that KERAS_HOME set
    # after `import keras` still counts.
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"])
    home = os.path.expanduser("~")
    return Path(home if os.access(home, os.W_OK) else "/tmp") / ".keras"


def imagenet_weights_file(cfg: ClassifierConfig) -> Path:
    """Where `keras.applications.MobileNetV2(weights="imagenet", include_top=False)` caches
    the weights it would download for this width and input size."""
    # Keras loads the 224 weights for sizes it has no weights for (the convolutions do not
    # depend on the input size), so the 32-pixel tiny profile shares them.
    rows = cfg.image_size if cfg.image_size in IMAGENET_SIZES else 224
    name = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(cfg.alpha)}_{rows}_no_top.h5"
    return _keras_home() / "models" / name


def choose_weights(cfg: ClassifierConfig) -> WeightsChoice:
    """The weights to start from, looked up on disk only (nothing is downloaded at run time)."""
    if cfg.weights == "none":
        return WeightsChoice(
            None, "none", "ClassifierConfig.weights='none': the classifier trains from scratch"
        )
    if cfg.weights != "imagenet":
        raise ValueError(
            f"ClassifierConfig.weights must be 'imagenet' or 'none', got {cfg.weights!r}"
        )
    if cfg.alpha not in IMAGENET_ALPHAS:
        raise ValueError(
            f"ClassifierConfig.alpha={cfg.alpha} has no ImageNet weights (published for"
            f" {IMAGENET_ALPHAS}); choose one of those or set ClassifierConfig.weights='none'"
        )
    if cfg.weights_path:
        if not Path(cfg.weights_path).is_file():
            raise FileNotFoundError(
                f"ClassifierConfig.weights_path={cfg.weights_path!r}: no such file"
            )
        return WeightsChoice(cfg.weights_path, "weights_path", "")
    cached = imagenet_weights_file(cfg)
    if cached.is_file():
        return WeightsChoice(str(cached), "keras-cache", "")
    return WeightsChoice(
        None,
        "none",
        f"NO IMAGENET WEIGHTS: {cached} is absent and ClassifierConfig.weights_path is empty,"
        " so the MobileNetV2 classifier trains FROM SCRATCH on the CUB images alone. Its"
        " inception scores and FIDs are much weaker than those of a fine-tuned classifier."
        f" Copy {cached.name} into {cached.parent} (or set weights_path) and retrain.",
    )


class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` whose training-mode call is TF's `FusedBatchNormV3`.

    Same outputs, gradients and moving statistics as Keras' layer, which composes
    training-mode BatchNorm (and so its gradient) from many small ops: with MobileNetV2's 52
    BatchNorm layers the first training step took 10.7 s instead of 7.7 s on 2 CPU cores (3.3 s
    with `FusedAdam` as well). Inference, and any case the fused op does not cover (masks,
    renorm, no scale or offset, not channels-last 4-D float32), use Keras' code.
    """

    def call(self, inputs, training=None, mask=None):
        fusable = (
            training
            and self.trainable
            and mask is None
            and not self.renorm
            and self.scale
            and self.center
            and len(inputs.shape) == 4
            and self.axis in (-1, 3)
            and inputs.dtype == tf.float32
        )
        if not fusable:
            return super().call(inputs, training=training, mask=mask)
        return fused_batch_statistics(self, inputs, update=True)


def _prepare_for_scratch(backbone: keras.Model) -> keras.Model:
    """The from-scratch backbone: fused training-mode BatchNorm, residual branches at zero.

    Each residual block's last BatchNorm starts with scale 0 (Goyal et al. 2017, "zero-gamma"),
    so the block starts as the identity and the randomly initialised network is as shallow as
    its non-residual blocks. On the demo's 16 synthetic species (48 px, batch 16, 285 Adam
    steps, seed 0) it raised held-out top-1 from 0.50 to 0.86: at the step counts a 2-core CPU
    affords, the difference between a judge and noise.
    """

    def clone(layer):
        cls = FusedBatchNormalization if type(layer) is keras.layers.BatchNormalization else None
        return (cls or layer.__class__).from_config(layer.get_config())

    backbone = keras.models.clone_model(backbone, clone_function=clone)
    names = {layer.name for layer in backbone.layers}
    zeroed = 0
    for layer in backbone.layers:
        # keras.applications.MobileNetV2 names a residual block's parts block_<i>_<part>
        if isinstance(layer, keras.layers.Add) and layer.name.endswith("_add"):
            project_bn = layer.name.removesuffix("_add") + "_project_BN"
            if project_bn in names:
                gamma = backbone.get_layer(project_bn).gamma
                gamma.assign(tf.zeros_like(gamma))
                zeroed += 1
    if zeroed == 0:
        raise ValueError(f"{backbone.name}: no residual block_<i>_project_BN layers found")
    return backbone


def build_classifier(
    cfg: ClassifierConfig, num_classes: int, weights: WeightsChoice
) -> ClassifierModels:
    """MobileNetV2 with a new `num_classes`-way head; see the module docstring for the I/O."""
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
    size = cfg.image_size
    image = keras.Input(shape=(None, None, 3), name="image")
    # MobileNetV2 expects pixels in [-1, 1], which is what the project's images already are.
    resized = keras.layers.Resizing(size, size, antialias=True, name="resize")(image)
    backbone = keras.applications.MobileNetV2(
        input_shape=(size, size, 3),
        alpha=cfg.alpha,
        include_top=False,
        weights=weights.path,  # a file or None: never the string "imagenet", which downloads
        pooling="avg",
    )
    if not weights.pretrained:
        backbone = _prepare_for_scratch(backbone)
    # Fine-tuning a pretrained network keeps its BatchNorm statistics (Keras' transfer-learning
    # recipe: call the backbone in inference mode); from scratch they must be learned.
    features = backbone(resized, training=False) if weights.pretrained else backbone(resized)
    dropped = keras.layers.Dropout(0.2, name="head_dropout")(features)
    logits = keras.layers.Dense(num_classes, name="logits")(dropped)
    classifier = keras.Model(image, {"logits": logits, "features": features}, name="cub_classifier")
    trainable = keras.Model(image, logits, name="cub_classifier_logits")
    return ClassifierModels(classifier, trainable, backbone, weights.pretrained)


def recalibrate_batchnorm(
    backbone: keras.Model, train_ds: tf.data.Dataset, max_batches: int
) -> None:
    """Sets the backbone's BatchNorm moving statistics from up to `max_batches` training batches.

    MobileNetV2's BatchNorm layers average their statistics with momentum 0.999, made for
    fine-tuning ImageNet statistics over many steps. From scratch on a few CUB images they stay
    near their initial values for thousands of steps, so in inference mode every image gets
    the same prediction (held-out loss stuck at log K). This recomputes them as the plain mean
    of the training batches' statistics under the current weights ("precise BN", Wu & Johnson
    2021), which is what inference should use.
    """
    batches = [images for images, _ in train_ds.take(max_batches)]
    feed = iter(batches)
    recalibrate_batch_norm(backbone, lambda: backbone(next(feed), training=True), len(batches))


def _compile(model: keras.Model, learning_rate) -> None:
    model.compile(
        optimizer=FusedAdam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        # XLA compilation of MobileNetV2 costs more than it saves on the small CPU runs
        jit_compile=False,
    )
    # Built here, eagerly: created inside the first step's graph, MobileNetV2's 316 slot
    # variables made that step ~3.5 s slower on 2 CPU cores.
    model.optimizer.build(model.trainable_variables)


def _fit(model, train_ds, holdout_ds, epochs, cfg, callbacks, backup) -> dict[str, list[float]]:
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_loss",
        patience=cfg.early_stopping_patience,
        restore_best_weights=True,
    )
    # the backup's callbacks after early stopping's: the backup keeps its state too
    backup_callbacks = backup.callbacks(early_stopping) if backup is not None else []
    history = model.fit(
        train_ds,
        validation_data=holdout_ds,
        epochs=epochs,
        callbacks=[early_stopping, *callbacks, *backup_callbacks],
        shuffle=False,  # the input pipeline shuffles; Keras cannot shuffle a tf.data.Dataset
        verbose=2,
    )
    return {k: [float(v) for v in vs] for k, vs in history.history.items()}


def _phase(name: str, model: keras.Model, backups, train) -> dict[str, list[float]]:
    """`train(backup)` (a fit with that `EpochBackup` or None, and what follows it) -> the
    phase's history. With `backups` (phase name -> `EpochBackup`), a finished phase is restored
    instead of run, and an unfinished one resumes from its last epoch."""
    if backups is None:
        return train(None)
    backup = backups(name)
    if backup.done:
        logging.info("classifier: phase %r finished before; its weights restored", name)
        backup.restore_done(model)
        return backup.history()
    if backup.resumed_from_epoch:
        logging.info("classifier: phase %r resumes after epoch %d", name, backup.resumed_from_epoch)
    train(backup)
    backup.mark_done(model)
    return backup.history()


def scratch_schedule(
    cfg: ClassifierConfig, steps_per_epoch: int
) -> keras.optimizers.schedules.LearningRateSchedule:
    """From-scratch learning rate: linear warm-up to `learning_rate_head` over `warmup_epochs`
    (at most half the run), then a cosine decay to 0 at the end of `head_epochs +
    finetune_epochs`.

    The warm-up is for the first steps of a random network, whose large gradients at the full
    rate derailed one seed in five of the demo's 30-epoch runs (held-out top-1 0.75 against
    0.94-0.99); with 2 epochs of it that seed reached 1.00.
    """
    total = (cfg.head_epochs + cfg.finetune_epochs) * steps_per_epoch
    warmup = min(cfg.warmup_epochs * steps_per_epoch, total // 2)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else cfg.learning_rate_head,
        decay_steps=total - warmup,
        warmup_target=cfg.learning_rate_head if warmup else None,
        warmup_steps=warmup,
    )


def fine_tune(
    models: ClassifierModels,
    train_ds: tf.data.Dataset,
    holdout_ds: tf.data.Dataset,
    cfg: ClassifierConfig,
    callbacks: list[keras.callbacks.Callback] | None = None,
    precise_bn_batches: int = 16,
    backups: Callable[[str], EpochBackup] | None = None,
) -> list[dict[str, Any]]:
    """Trains `models` on `(image, label)` batches; returns one record per phase.

    Pretrained: phase "head" trains the new head on the frozen backbone for `head_epochs` at
    `learning_rate_head`, then phase "finetune" also trains the backbone's layers from index
    `finetune_from_block` up for `finetune_epochs` at `learning_rate_finetune`, each with early
    stopping on the held-out images. From scratch a frozen random backbone teaches the head
    nothing, so one phase "scratch" trains every layer for `head_epochs + finetune_epochs` on
    `scratch_schedule` (warm-up to `learning_rate_head`, cosine decay to 0), and then
    `recalibrate_batchnorm` re-estimates the BatchNorm statistics (from up to `precise_bn_batches`
    training batches). That phase does not look at `holdout_ds`: the end of the decay is the
    point of the schedule, each look would cost a re-estimation plus an evaluation (seconds of
    a budget of ~35), and the held-out accuracy the caller then measures stays an estimate
    rather than the best of several looks.

    `backups` (phase name -> its `stackgan.training.epoch_backup.EpochBackup`) makes a killed
    run resumable: finished phases are restored, the unfinished one resumes from its last epoch.
    """
    callbacks = list(callbacks or [])
    model, backbone = models.trainable, models.backbone
    if not models.pretrained:
        backbone.trainable = True
        epochs = cfg.head_epochs + cfg.finetune_epochs
        steps = int(train_ds.cardinality())
        if steps < 1:
            raise ValueError(f"fine_tune needs a finite training dataset, cardinality {steps}")
        _compile(model, scratch_schedule(cfg, steps))

        def train_scratch(backup):
            extra = backup.callbacks() if backup is not None else []
            history = model.fit(
                train_ds, epochs=epochs, callbacks=[*callbacks, *extra], shuffle=False, verbose=2
            ).history
            recalibrate_batchnorm(backbone, train_ds, precise_bn_batches)
            return {k: [float(v) for v in vs] for k, vs in history.items()}

        history = _phase("scratch", model, backups, train_scratch)
        return [
            {
                "phase": "scratch",
                "learning_rate": cfg.learning_rate_head,
                "schedule": "cosine",
                "history": history,
            }
        ]

    phases = []
    backbone.trainable = False
    _compile(model, cfg.learning_rate_head)
    history = _phase(
        "head",
        model,
        backups,
        lambda backup: _fit(model, train_ds, holdout_ds, cfg.head_epochs, cfg, callbacks, backup),
    )
    phases.append({"phase": "head", "learning_rate": cfg.learning_rate_head, "history": history})
    if cfg.finetune_epochs > 0:
        backbone.trainable = True
        for layer in backbone.layers[: cfg.finetune_from_block]:
            layer.trainable = False
        # recompiling is what makes the new trainable flags take effect
        _compile(model, cfg.learning_rate_finetune)
        history = _phase(
            "finetune",
            model,
            backups,
            lambda backup: _fit(
                model, train_ds, holdout_ds, cfg.finetune_epochs, cfg, callbacks, backup
            ),
        )
        phases.append(
            {"phase": "finetune", "learning_rate": cfg.learning_rate_finetune, "history": history}
        )
    return phases


def top1_accuracy(models: ClassifierModels, dataset: tf.data.Dataset) -> float:
    """Fraction of `(image, label)` examples whose arg-max logit is the label."""
    correct = total = 0
    for images, labels in dataset:
        logits = models.trainable(images, training=False)
        predicted = tf.argmax(logits, axis=-1, output_type=labels.dtype)
        correct += int(tf.reduce_sum(tf.cast(predicted == labels, tf.int64)))
        total += int(tf.size(labels))
    if total == 0:
        raise ValueError("top1_accuracy: the dataset is empty")
    return correct / total


def export_classifier(models: ClassifierModels, export_dir: str | os.PathLike, info: dict) -> None:
    """Writes the SavedModel of the classifier contract and `info` into `export_dir`.

    `info` describes the classifier for its users (class ids in logit order, held-out accuracy,
    the weights it started from); it lands in `assets.extra/classifier.json`, where SavedModel
    tools expect extra files, and `load_classifier` returns it as `.info`.
    """
    export_dir = str(export_dir)
    model = models.classifier
    archive = export_archive()
    archive.add_endpoint(
        name=SIGNATURE,
        fn=lambda image: model(image, training=False),
        input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="image")],
    )
    archive.write_out(export_dir, verbose=False)
    # tf.io.gfile, like the SavedModel writer, so a gs:// or s3:// artifact URI works too
    info_path = os.path.join(export_dir, INFO_FILE)
    tf.io.gfile.makedirs(os.path.dirname(info_path))
    with tf.io.gfile.GFile(info_path, "w") as f:
        f.write(json.dumps(info, indent=2, sort_keys=True))


class LoadedClassifier:
    """A loaded classifier SavedModel: call it on images in [-1, 1]."""

    def __init__(self, path: str | os.PathLike):
        self.path = resolve_saved_model_dir(path)
        info_path = os.path.join(self.path, INFO_FILE)
        if not tf.io.gfile.exists(info_path):
            raise FileNotFoundError(
                f"{info_path}: missing; {self.path} is not a classifier exported by"
                " stackgan.evaluation.classifier.export_classifier"
            )
        with tf.io.gfile.GFile(info_path) as f:
            self.info: dict[str, Any] = json.loads(f.read())
        # the loaded object is kept: it keeps the variables alive
        _, self._saved_model = load_saved_model(self.path, "CUB classifier", [SIGNATURE])
        self._signature = self._saved_model.signatures[SIGNATURE]

    @property
    def num_classes(self) -> int:
        return len(self.info["class_ids"])

    def __call__(self, images) -> dict[str, tf.Tensor]:
        """`images` f32[N,S,S,3] in [-1, 1] -> {"logits": f32[N,K], "features": f32[N,D]}."""
        return self._signature(image=tf.convert_to_tensor(images, tf.float32))

    def predict(self, images: np.ndarray, batch_size: int = 64) -> dict[str, np.ndarray]:
        """`__call__` over a large NumPy array, `batch_size` images at a time."""
        if len(images) == 0:
            raise ValueError("predict: no images")
        outputs = [self(images[i : i + batch_size]) for i in range(0, len(images), batch_size)]
        return {k: np.concatenate([o[k].numpy() for o in outputs]) for k in outputs[0]}


def load_classifier(path: str | os.PathLike) -> LoadedClassifier:
    """The classifier exported at `path` (a Model artifact's `Format-Serving` folder)."""
    return LoadedClassifier(path)
