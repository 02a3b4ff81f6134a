"""Trains one StackGAN stage from a file pattern of Examples: the loop the trainer components and
`stackgan` commands share.

Schedule: `TrainConfig.max_steps` (for Stage-II `stage2_max_steps` if set) when set, else `stageN_epochs * steps_per_epoch`, where an
epoch is one pass over the images (batches drop the remainder). The learning rate follows the
optimizers' own step-decay schedule (`lr_schedule.py`), so it resumes with their iteration
counters.

Each step runs Keras' compiled train function (`make_train_function`, the same one `fit` uses,
so tf.distribute replication and XLA apply unchanged). Around it, on the chief task:
- every `log_every_steps`: TensorBoard scalars (d_loss, g_loss, kl, D accuracies, lr) in
  `<run_dir>/logs` and a progress line; the Mean trackers are reset, so each value is the mean
  over the steps since the last report;
- every `sample_every_steps` and at the end: the generator's BatchNorm statistics re-estimated
  (precise_bn.py), then a PNG sample sheet of fixed captions and noise in `<run_dir>/samples`
  and the same images in TensorBoard, and for Stage-II the refinement scores of those samples
  (consistency with their Stage-I images, detail and edge sharpness gains;
  stackgan/evaluation/refinement.py);
- every `checkpoint_every_steps` and at the end: a checkpoint (see checkpointing.py).

Resume: a run that finds checkpoints in `checkpoint_dir` continues from the latest one with the
same step counter, optimizer state, learning rate and noise-generator state. The input pipeline's
position is not checkpointed (its shuffle buffer would make checkpoints as large as the
buffer); the resumed run seeds its shuffle with `seed + resumed step`, so it does not replay the
batches the first run started with.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import TextIO

import keras
import tensorflow as tf

from stackgan import models
from stackgan.config import Config
from stackgan.stages import get_stage
from stackgan.tfrecords import input_pipeline
from stackgan.training import distribute, generator_average, precise_bn, samples, summaries
from stackgan.training import precision as precision_lib
from stackgan.training.checkpointing import TrainingCheckpoint
from stackgan.training.conditional_gan import ConditionalGAN
from stackgan.training.lr_schedule import make_optimizers
from stackgan.training.progress import ProgressLine
from stackgan.training.stage1_gan import StageIGAN
from stackgan.training.stage2_gan import StageIIGAN

# called after every step (and its checkpoint, if one was due) with (step, last reported logs,
# the GAN); an exception raised there ends the run as a crash would: no final checkpoint
StepHook = Callable[[int, Mapping[str, float], ConditionalGAN], None]


@dataclasses.dataclass
class StageRun:
    """What `train_stage` did. `gan.generator` is the trained generator (the averaged one
    with `train.generator_ema`), its BatchNorm statistics re-estimated."""

    stage: int
    gan: ConditionalGAN
    total_steps: int
    steps_per_epoch: int
    resumed_from_step: int
    last_logs: dict[str, float]
    checkpoint: str | None
    final_sample_sheet: str | None
    precision: precision_lib.Precision


def count_examples(file_pattern: str) -> int:
    """Number of records (images) in the gzipped TFRecord files matching `file_pattern`."""
    return input_pipeline.count_records(file_pattern)


def plan_steps(config: Config, stage: int, num_examples: int) -> tuple[int, int]:
    """(steps_per_epoch, total_steps) for `stage` over `num_examples` images."""
    spec = get_stage(stage)
    batch_size = spec.batch_size(config.train)
    if num_examples < batch_size:
        raise ValueError(
            f"{num_examples} training images are fewer than one batch "
            f"({spec.name}'s batch size {batch_size})"
        )
    steps_per_epoch = num_examples // batch_size
    total = spec.step_cap(config.train) or spec.epochs(config.train) * steps_per_epoch
    return steps_per_epoch, total


def build_gan(
    config: Config,
    stage: int,
    steps_per_epoch: int,
    stage1_model_path: str | None,
    policy: str = "float32",
):
    """The compiled StageIGAN / StageIIGAN (call inside the strategy's scope); its networks
    compute in the Keras dtype `policy` (`precision.Precision.policy`)."""
    model_cfg, data_cfg = config.model, config.data
    if not get_stage(stage).refines_stage1:
        gan = StageIGAN(
            models.build_stage1_generator(model_cfg, data_cfg.low_res, dtype_policy=policy),
            models.build_stage1_discriminator(model_cfg, data_cfg.low_res, dtype_policy=policy),
            config,
        )
    else:
        if not stage1_model_path:
            raise ValueError("Stage-II training needs the trained Stage-I generator (.keras)")
        stage1 = keras.saving.load_model(stage1_model_path, compile=False)
        gan = StageIIGAN(
            stage1,
            models.build_stage2_generator(model_cfg, data_cfg.low_res, dtype_policy=policy),
            models.build_stage2_discriminator(model_cfg, data_cfg.high_res, dtype_policy=policy),
            config,
        )
    gan.compile(*make_optimizers(config.train, steps_per_epoch, stage))
    return gan


def train_stage(
    config: Config,
    stage: int,
    train_pattern: str,
    run_dir: str,
    *,
    checkpoint_dir: str | None = None,
    sample_pattern: str | None = None,
    stage1_model_path: str | None = None,
    num_examples: int | None = None,
    strategy: tf.distribute.Strategy | None = None,
    on_step: StepHook | None = None,
    stream: TextIO | None = None,
) -> StageRun:
    """Trains (or resumes) `stage` on the Examples in `train_pattern`.

    `checkpoint_dir` defaults to `<run_dir>/checkpoints`; `sample_pattern` (captions for the
    sample sheets, normally the test split) defaults to `train_pattern`. `num_examples` (the
    number of training images, for the epoch length) is counted from the files when not given.
    """
    train = config.train
    # the hardware is known here: `auto` is decided, and float16 on a CPU refused, before
    # anything is built
    chosen = precision_lib.resolve(train.precision)
    strategy = strategy or distribute.choose_strategy()
    chief = distribute.is_chief(strategy)
    checkpoint_dir = checkpoint_dir or os.path.join(run_dir, "checkpoints")
    if not chief:  # every worker takes part in saving; only the chief's copy is kept
        task_id = strategy.cluster_resolver.task_id
        checkpoint_dir = os.path.join(checkpoint_dir, f".worker_{task_id}")
    if num_examples is None:
        num_examples = count_examples(train_pattern)
    steps_per_epoch, total_steps = plan_steps(config, stage, num_examples)
    batch_size = get_stage(stage).batch_size(train)

    # The networks' initial weights and the noise stream come from `train.seed`: with the
    # ordered input pipeline (`data.ordered`) a run repeats bit for bit on the same machine.
    keras.utils.set_random_seed(train.seed)
    with strategy.scope():
        gan = build_gan(config, stage, steps_per_epoch, stage1_model_path, chosen.policy)
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    state = TrainingCheckpoint(checkpoint_dir, gan, step, stage=stage, config=config)
    start = state.restore()

    dataset = input_pipeline.make_train_dataset(
        train_pattern,
        config,
        stage,
        batch_size,
        seed=train.seed + start,
        repeat=True,
        num_examples=num_examples,
    )
    iterator = iter(strategy.experimental_distribute_dataset(dataset))
    gan.make_train_function()

    summary_writer = tf.summary.create_file_writer(os.path.join(run_dir, "logs")) if chief else None
    if summary_writer is not None:
        with summary_writer.as_default():
            summaries.text("precision", chosen.describe(), start)
    recalibration = precise_bn.BatchNormRecalibration(
        precise_bn.embedding_batches(
            input_pipeline.training_conditions(
                train_pattern,
                config,
                batch_size * train.precise_bn_batches,
                seed=train.seed,
                num_examples=num_examples,
            ),
            batch_size,
        ),
        config,
    )
    sample_writer = None
    if chief:
        # a bounded read: CUB's test split lists ~60 images (600 captions) per class
        sample_batches = input_pipeline.make_eval_dataset(
            sample_pattern or train_pattern, config, 64
        ).take(100)
        sample_writer = samples.SampleWriter(
            run_dir, samples.fixed_samples(sample_batches, config), summary_writer
        )
    progress = ProgressLine(
        total_steps, batch_size, start, prefix=f"{get_stage(stage).name} ", stream=stream
    )
    stage1 = getattr(gan, "stage1_generator", None)

    def write_samples(name: str | None = None, final: bool = False) -> str | None:
        # the averaged generator, if the config keeps one; the final one stays for the export
        with generator_average.averaged_weights(gan, keep=final) as generator:
            recalibration(generator, stage1)  # on every task: the statistics are exported
            if sample_writer is None:
                return None
            images, stage1_images = samples.generate_pair(sample_writer.samples, generator, stage1)
            return sample_writer.write(images, current, name, stage1_images=stage1_images)

    last_logs: dict[str, float] = {}
    saved = state.latest if start else None
    current = start
    while current < total_steps:
        logs = gan.train_function(iterator)
        current += 1
        step.assign(current)  # a Python counter mirrors it: reading it back would sync each step
        if current % train.log_every_steps == 0 or current == total_steps:
            last_logs = {name: float(value) for name, value in logs.items()}
            last_logs["lr"] = float(keras.ops.convert_to_numpy(gan.g_optimizer.learning_rate))
            gan.reset_metrics()
            if summary_writer is not None:
                with summary_writer.as_default():
                    for name, value in last_logs.items():
                        summaries.scalar(name, value, current)
            if chief:
                progress.report(current, last_logs)
        if current % train.sample_every_steps == 0 and current != total_steps:
            write_samples()
        if current % train.checkpoint_every_steps == 0:
            saved = state.save()
        if on_step is not None:
            on_step(current, last_logs, gan)

    if saved is None or current % train.checkpoint_every_steps:
        saved = state.save()
    final_sheet = write_samples("final.png", final=True)
    if summary_writer is not None:
        summary_writer.flush()
    return StageRun(
        stage=stage,
        gan=gan,
        total_steps=total_steps,
        steps_per_epoch=steps_per_epoch,
        resumed_from_step=start,
        last_logs=last_logs,
        checkpoint=saved if chief else None,
        final_sample_sheet=final_sheet,
        precision=chosen,
    )
