"""Exports the trained generator(s) as a TF Serving SavedModel (docs/ARCHITECTURE.md, "Serving").

Signatures (each input declared with an explicit `tf.TensorSpec`; `stackgan.serving.signatures`
lists them for clients):

- `serving_default`: `embedding` f32[N,E] -> `image_64` uint8[N,s,s,3] and, when Stage-II is
  exported, `image_256` uint8[N,S,S,3]. The noise is drawn fresh for every request, so a request
  that carries only its conditioning input works.
- `seeded`: `embedding`, `seed` int64[] -> the same outputs. The noise z and the Conditioning
  Augmentation eps are drawn inside with `tf.random.stateless_normal` from `seed` (and scaled by
  `ModelConfig.truncation`), so the same request always returns the same images.
- `generate_with_noise`: `embedding`, `noise` f32[N,z_dim], `ca_noise` f32[N,ca_dim] (and
  `ca_noise_2` f32[N,ca_dim] for Stage-II) -> the same outputs, for callers that own the noise
  (interpolation, evaluation with fixed noise).
- `text` and `text_seeded` (only with a text encoder): `caption` string[N] (and `seed`) -> the
  same outputs plus the `embedding` the encoder produced.

`serving_default` draws one seed per request and then runs `seeded`'s graph, so its images are
those `seeded` gives for some seed. The output names stay `image_64` / `image_256` in every
profile (the tiny profile's are 16 and 64 px) so clients and the evaluator never depend on the
profile. Batch sizes that disagree between inputs, an `embedding` whose width differs from the
model's, and a `seed` that is negative or not a scalar fail inside the graph with a message
naming the input, so TF Serving clients, which bypass the Python signature checks, get the same
clear error. A wrong dtype never reaches the graph: TF Serving refuses it first (README, "Serving
with TF Serving", says with which messages), and `stackgan.serving.client` refuses it before
sending.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import keras
import tensorflow as tf

from stackgan.config import ModelConfig
from stackgan.models.chain import generate_chain
from stackgan.saved_models import export_archive, load_saved_model
from stackgan.serving import signatures, warmup
from stackgan.tfrecords.pixels import to_uint8

# stream ids for tf.random.stateless_normal: one independent draw per random input
NOISE_STREAM, CA_STREAM, CA2_STREAM = 0, 1, 2

# Maps caption strings string[N] -> f32[N, E]. It must be trackable (a Keras layer/model or a
# tf.Module such as `SavedTextEncoder`) so the export carries its variables and tables.
TextEncoder = Callable[[tf.Tensor], tf.Tensor]


class SavedTextEncoder(tf.Module):
    """A text-encoder SavedModel (`serving_default`: `caption` string[N] -> `embedding` f32[N,E],
    as `stackgan.text.export` writes it), wrapped to be composed into the generator's export."""

    def __init__(self, path: str):
        super().__init__(name="text_encoder")
        _, self.loaded = load_saved_model(path, "text encoder", ["serving_default"])
        signature = self.loaded.signatures["serving_default"]
        if "embedding" not in signature.structured_outputs:
            raise ValueError(f"{path}: expected serving_default: caption -> embedding")
        self._embed = signature
        self.embedding_dim = int(signature.structured_outputs["embedding"].shape[-1])

    def __call__(self, caption):
        return self._embed(caption=caption)["embedding"]


def export_generator(
    export_dir: str,
    model_cfg: ModelConfig,
    stage1_generator: keras.Model,
    stage2_generator: keras.Model | None = None,
    *,
    text_encoder: TextEncoder | None = None,
    warmup_batch_size: int = 2,
) -> str:
    """Writes the SavedModel (with warm-up requests) to `export_dir` and returns it.

    `export_dir` must not exist yet or be empty. The SavedModel and its warm-up records are
    written to a sibling staging directory first and renamed into place when complete, so a
    crash never leaves a half-written export where a Pusher or TF Serving would pick it up.
    """
    if tf.io.gfile.exists(export_dir) and tf.io.gfile.listdir(export_dir):
        raise FileExistsError(f"export directory {export_dir} is not empty")
    generator = _TextToImage(model_cfg, stage1_generator, stage2_generator)
    archive = export_archive()

    seed_spec = tf.TensorSpec([], tf.int64, name="seed")
    embedding_spec = tf.TensorSpec([None, model_cfg.embedding_dim], tf.float32, name="embedding")
    endpoints = {
        signatures.DEFAULT: (generator.fresh, [embedding_spec]),
        signatures.SEEDED: (generator.from_seed, [embedding_spec, seed_spec]),
    }
    noise_specs = [
        embedding_spec,
        tf.TensorSpec([None, model_cfg.z_dim], tf.float32, name="noise"),
        tf.TensorSpec([None, model_cfg.ca_dim], tf.float32, name="ca_noise"),
    ]
    if stage2_generator is not None:
        noise_specs.append(tf.TensorSpec([None, model_cfg.ca_dim], tf.float32, name="ca_noise_2"))
        endpoints[signatures.NOISE] = (generator.from_noise_2, noise_specs)
    else:
        endpoints[signatures.NOISE] = (generator.from_noise, noise_specs)
    if text_encoder is not None:
        encoder_dim = getattr(text_encoder, "embedding_dim", model_cfg.embedding_dim)
        if encoder_dim != model_cfg.embedding_dim:
            raise ValueError(
                f"the text encoder embeds to {encoder_dim} dimensions, the generator expects "
                f"{model_cfg.embedding_dim} (ModelConfig.embedding_dim)"
            )
        archive.track(text_encoder)

        def from_text(caption):
            embedding = tf.cast(text_encoder(caption), tf.float32)
            return {"embedding": embedding, **generator.fresh(embedding)}

        def from_text_seeded(caption, seed):
            embedding = tf.cast(text_encoder(caption), tf.float32)
            return {"embedding": embedding, **generator.from_seed(embedding, seed)}

        caption_spec = tf.TensorSpec([None], tf.string, name="caption")
        endpoints[signatures.TEXT] = (from_text, [caption_spec])
        endpoints[signatures.TEXT_SEEDED] = (from_text_seeded, [caption_spec, seed_spec])
    for name, (function, input_signature) in endpoints.items():
        archive.add_endpoint(name, function, input_signature)

    staging = export_dir.rstrip("/") + ".staging"
    if tf.io.gfile.exists(staging):  # left by an attempt that crashed before its rename
        tf.io.gfile.rmtree(staging)
    archive.write_out(staging, verbose=False)
    _write_sampling(staging, model_cfg)
    warmup.write_warmup_requests(
        staging, {name: specs for name, (_, specs) in endpoints.items()}, warmup_batch_size
    )
    if tf.io.gfile.exists(export_dir):  # the empty directory checked above
        tf.io.gfile.rmtree(export_dir)
    tf.io.gfile.rename(staging, export_dir)
    return export_dir


class _TextToImage:
    """The graph behind the signatures: validation, seeded noise, Stage-I then Stage-II."""

    def __init__(self, model_cfg: ModelConfig, stage1: keras.Model, stage2: keras.Model | None):
        self.cfg = model_cfg
        self.stage1 = stage1
        self.stage2 = stage2
        specs = [
            tf.TensorSpec([None, model_cfg.embedding_dim], tf.float32),
            tf.TensorSpec([None, model_cfg.z_dim], tf.float32),
            tf.TensorSpec([None, model_cfg.ca_dim], tf.float32),
        ]
        if stage2 is not None:
            specs.append(tf.TensorSpec([None, model_cfg.ca_dim], tf.float32))
        # The networks, traced once and called by every signature: traced inside each of them
        # instead, the demo's Stage-II export took 1.5x as long (bench/bench_export.py, AMD EPYC)
        # and wrote a SavedModel 1.12x as large.
        self._images = tf.function(self._images_of, input_signature=specs, autograph=False)

    def _images_of(self, embedding, noise, ca_noise, ca_noise_2=None):
        low, high = generate_chain(self.stage1, self.stage2, embedding, noise, ca_noise, ca_noise_2)
        outputs = {"image_64": to_uint8(low[0])}
        if high is not None:
            outputs["image_256"] = to_uint8(high[0])
        return outputs

    def fresh(self, embedding):
        """Images from noise drawn for this call: `from_seed` with a seed drawn per request."""
        return self.from_seed(embedding, _fresh_seed())

    def from_seed(self, embedding, seed):
        seed = tf.ensure_shape(seed, [], name="check_seed_shape")
        seed_check = tf.debugging.assert_non_negative(seed, message="input seed must be >= 0")
        n = tf.shape(embedding)[0]
        # ModelConfig.truncation: N(0, truncation^2) noise, the model's sampling
        scale = self.cfg.truncation
        noise = scale * _seeded_normal(seed, NOISE_STREAM, n, self.cfg.z_dim)
        ca_noise = scale * _seeded_normal(seed, CA_STREAM, n, self.cfg.ca_dim)
        ca_noise_2 = scale * _seeded_normal(seed, CA2_STREAM, n, self.cfg.ca_dim)
        return self._generate(embedding, noise, ca_noise, ca_noise_2, [seed_check])

    def from_noise(self, embedding, noise, ca_noise):
        return self._generate(embedding, noise, ca_noise, None)

    def from_noise_2(self, embedding, noise, ca_noise, ca_noise_2):
        return self._generate(embedding, noise, ca_noise, ca_noise_2)

    def _generate(self, embedding, noise, ca_noise, ca_noise_2, checks=()):
        embedding = _checked_matrix(embedding, "embedding", self.cfg.embedding_dim)
        noise = _checked_matrix(noise, "noise", self.cfg.z_dim)
        ca_noise = _checked_matrix(ca_noise, "ca_noise", self.cfg.ca_dim)
        others = {"noise": noise, "ca_noise": ca_noise}
        if self.stage2 is not None:
            ca_noise_2 = _checked_matrix(ca_noise_2, "ca_noise_2", self.cfg.ca_dim)
            others["ca_noise_2"] = ca_noise_2
        checks = [
            *checks,
            *(
                tf.debugging.assert_equal(
                    tf.shape(tensor)[0],
                    tf.shape(embedding)[0],
                    message=f"input {name} must have as many rows as input embedding",
                )
                for name, tensor in others.items()
            ),
        ]
        with tf.control_dependencies(checks):
            embedding = tf.identity(embedding)
        if self.stage2 is None:
            return self._images(embedding, noise, ca_noise)
        return self._images(embedding, noise, ca_noise, ca_noise_2)


def _write_sampling(export_dir: str, model_cfg: ModelConfig) -> None:
    """`assets.extra/generator.json`: how the signatures that draw their own noise sample, so a
    score of this model (the Evaluator's, a user's) can say what it was measured at."""
    path = os.path.join(export_dir, signatures.SAMPLING_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.gfile.GFile(path, "w") as f:
        f.write(json.dumps({"truncation": model_cfg.truncation}, indent=2))


def _checked_matrix(tensor, name: str, width: int):
    """`tensor`, checked at run time to be [N, width] of finite numbers. The signature declares
    the shape, but signature calls and TF Serving feed tensors into the graph without checking
    it, and a wrong width would otherwise surface as a matmul error deep inside the generator.
    EnsureShape's error names the input ("Shape of tensor embedding [2,7] is not compatible
    with ..."). A NaN or Inf would pass through the generator and come out as plausible-looking
    pixels (to_uint8 casts NaN), so it is refused too, naming the input."""
    tensor = tf.ensure_shape(tensor, [None, width], name=f"check_{name}_shape")
    return tf.debugging.check_numerics(tensor, f"input {name} holds NaN or Inf")


def _fresh_seed():
    """A non-negative int64 scalar, different on every call and in every process. The raw op with
    seed=seed2=0 is seeded by the kernel from the OS; `tf.random.uniform` would instead take op
    seeds from a global seed set while exporting (the trainers set one), and every fresh TF
    Serving process would then replay the same sequence of images."""
    return tf.raw_ops.RandomUniformInt(
        shape=tf.constant([], tf.int32),
        minval=tf.constant(0, tf.int64),
        maxval=tf.constant(tf.int64.max, tf.int64),
        seed=0,
        seed2=0,
    )


def _seeded_normal(seed, stream: int, n, dim: int):
    return tf.random.stateless_normal(
        tf.stack([n, dim]), seed=tf.stack([seed, tf.constant(stream, tf.int64)])
    )


def default_export_dir(model_uri: str) -> str:
    """Where TFX's Pusher looks for a SavedModel inside a Model artifact."""
    return os.path.join(model_uri, "Format-Serving")
