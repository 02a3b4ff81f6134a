"""Fixed-caption samples during training: PNG sample sheets in the run directory and image
grids in TensorBoard.

The captions (with their embeddings) and every noise input are fixed for the whole run, and
restored identically on resume (they derive from the data and `TrainConfig.seed`), so successive
sheets show how the same sentences render as training goes on.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable

import keras
import numpy as np
import tensorflow as tf

from stackgan.config import Config
from stackgan.evaluation import refinement
from stackgan.models.chain import generate_chain
from stackgan.tfrecords import batch_keys as keys
from stackgan.tfrecords.pixels import to_uint8  # the served conversion, so sheets match it
from stackgan.training import summaries
from stackgan.visualize.sample_sheet import render_sheet

SAMPLE_COUNT = 8
SAMPLE_COLUMNS = 4


@dataclasses.dataclass(frozen=True)
class FixedSamples:
    captions: list[str]
    embedding: np.ndarray  # f32[N, E]
    noise: np.ndarray  # f32[N, z_dim]
    ca_noise: np.ndarray  # f32[N, ca_dim], Stage-I CA
    ca_noise_2: np.ndarray  # f32[N, ca_dim], Stage-II CA


def fixed_samples(batches: Iterable[dict], config: Config) -> FixedSamples:
    """SAMPLE_COUNT (caption, embedding) pairs of different images, from as many different
    classes as the batches offer (one per class first, in reading order, then other images), and
    noise drawn from `config.train.seed`. `batches` come from `make_eval_dataset`, which lists
    an image's captions together and a split class by class, so reading stops as soon as
    SAMPLE_COUNT classes were seen."""
    first_of_image: dict[int, tuple[int, str, np.ndarray]] = {}
    labels: set[int] = set()
    for batch in batches:
        rows = zip(
            np.asarray(batch[keys.IMAGE_ID]),
            np.asarray(batch[keys.LABEL]),
            np.asarray(batch[keys.CAPTION]),
            np.asarray(batch[keys.EMBEDDING], np.float32),
        )
        for image_id, label, text, vector in rows:
            if int(image_id) not in first_of_image:
                caption = text.decode() if isinstance(text, bytes) else str(text)
                first_of_image[int(image_id)] = (int(label), caption, vector)
                labels.add(int(label))
        if len(labels) >= SAMPLE_COUNT:
            break
    if not first_of_image:
        raise ValueError("no captions to draw sample sheets from: the sample split is empty")
    candidates = list(first_of_image.values())
    chosen: list[int] = []
    seen_labels: set[int] = set()
    for index, (label, _, _) in enumerate(candidates):  # one image per class
        if label not in seen_labels:
            chosen.append(index)
            seen_labels.add(label)
    chosen = chosen[:SAMPLE_COUNT]
    for index in range(len(candidates)):  # then further images, in reading order
        if len(chosen) == SAMPLE_COUNT:
            break
        if index not in chosen:
            chosen.append(index)
    chosen = [candidates[index] for index in chosen]
    captions = [caption for _, caption, _ in chosen]
    embeddings = [vector for _, _, vector in chosen]
    n = len(captions)
    rng = np.random.default_rng(config.train.seed)
    model_cfg = config.model

    def draw(dim):  # the served model's sampling (ModelConfig.truncation)
        return model_cfg.truncation * rng.standard_normal((n, dim), np.float32)

    return FixedSamples(
        captions=captions,
        embedding=np.stack(embeddings),
        noise=draw(model_cfg.z_dim),
        ca_noise=draw(model_cfg.ca_dim),
        ca_noise_2=draw(model_cfg.ca_dim),
    )


def generate(
    samples: FixedSamples, generator: keras.Model, stage1_generator: keras.Model | None = None
) -> np.ndarray:
    """uint8 [N,H,W,3] images of the trained stage, BatchNorm in inference mode as served.
    Stage-II (with `stage1_generator`) refines Stage-I's image of the same noise."""
    return generate_pair(samples, generator, stage1_generator)[0]


def generate_pair(
    samples: FixedSamples, generator: keras.Model, stage1_generator: keras.Model | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """(images of the trained stage, the Stage-I images Stage-II refined or None), uint8."""
    embedding, noise = samples.embedding, samples.noise
    ca_noise, ca_noise_2 = samples.ca_noise, samples.ca_noise_2
    if stage1_generator is None:
        (image, _, _), _ = generate_chain(generator, None, embedding, noise, ca_noise)
        return np.asarray(to_uint8(image)), None
    (low, _, _), (image, _, _) = generate_chain(
        stage1_generator, generator, embedding, noise, ca_noise, ca_noise_2
    )
    return np.asarray(to_uint8(image)), np.asarray(to_uint8(low))


class SampleWriter:
    """Writes `<run_dir>/samples/step_<step>.png` and a TensorBoard image summary per call."""

    def __init__(self, run_dir: str, samples: FixedSamples, summary_writer=None):
        self.directory = os.path.join(run_dir, "samples")
        self.samples = samples
        self.summary_writer = summary_writer
        tf.io.gfile.makedirs(self.directory)
        if summary_writer is not None:
            with summary_writer.as_default():
                captions = "\n".join(f"{i}. {c}" for i, c in enumerate(samples.captions))
                summaries.text("sample_captions", captions, step=0)

    def write(
        self,
        images: np.ndarray,
        step: int,
        name: str | None = None,
        *,
        stage1_images: np.ndarray | None = None,
    ) -> str:
        """The sheet of `images`; with `stage1_images` (Stage-II) also the refinement scores."""
        path = os.path.join(self.directory, name or f"step_{step:07d}.png")
        sheet = render_sheet(images, self.samples.captions, SAMPLE_COLUMNS)
        # write then rename: an interrupted run never leaves a truncated PNG under the final name
        with tf.io.gfile.GFile(path + ".tmp", "wb") as f:
            sheet.save(f, format="PNG")
        tf.io.gfile.rename(path + ".tmp", path, overwrite=True)
        if self.summary_writer is not None:
            with self.summary_writer.as_default():
                summaries.images(
                    "samples", images, step, "fixed captions (see sample_captions), fixed noise"
                )
                if stage1_images is not None:
                    scores = {
                        "consistency_mad": refinement.consistency_mad(stage1_images, images),
                        "detail_gain": refinement.detail_gain(stage1_images, images),
                        "edge_sharpness_gain": refinement.edge_sharpness_gain(
                            stage1_images, images
                        ),
                    }
                    for score, value in scores.items():
                        summaries.scalar(f"refinement/{score}", value, step)
        return path
