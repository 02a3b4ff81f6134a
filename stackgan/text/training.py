"""Training the char-CNN-RNN against frozen image features with the DS-SJE loss.

The image side is theta(v) = W standardise(v): a learned linear map (no bias) of the frozen
classifier's pooled features to the embedding size, as in Reed et al., whose image encoder is
fixed and whose compatibility is a plain dot product. Only W and the text encoder are trained.

Unlike Reed et al. the features are first standardised per dimension (mean and variance of the
training images, a Keras `Normalization` layer exported with the model): pooled ReLU features
share a large positive mean that a dot product would otherwise spend its margin on, and their
scale depends on the classifier (ImageNet-initialised or from scratch), which would otherwise
change the effective learning rate of W.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from stackgan.config import TextEncoderConfig
from stackgan.text import tokenizer
from stackgan.text.char_cnn_rnn import build_char_cnn_rnn
from stackgan.text.pairs import CaptionedFeatures, pair_dataset
from stackgan.text.retrieval import RetrievalResult, zero_shot_top1
from stackgan.text.sje_loss import ds_sje_loss


class JointEmbedding(keras.Model):
    """Text encoder + image projection; `train_step` takes a `pair_dataset` batch."""

    def __init__(self, text_encoder: keras.Model, feature_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.text_encoder = text_encoder
        embedding_dim = text_encoder.output_shape[-1]
        # adapted to the training features by `train_joint_embedding` before fitting
        self.feature_normalization = keras.layers.Normalization(axis=-1, name="feature_norm")
        self.feature_normalization.build((None, feature_dim))
        self.image_projection = keras.layers.Dense(
            embedding_dim, use_bias=False, name="image_projection"
        )
        self.image_projection.build((None, feature_dim))
        self.feature_dim = feature_dim
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.image_to_text_tracker = keras.metrics.Mean(name="image_to_text")
        self.text_to_image_tracker = keras.metrics.Mean(name="text_to_image")
        # every weight exists now (the encoder is functional, the rest built above); Keras'
        # BackupAndRestore restores only into a built model
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker, self.image_to_text_tracker, self.text_to_image_tracker]

    def call(self, inputs, training=False):
        return (
            self.embed_image_features(inputs["features"]),
            self.text_encoder(inputs["char_ids"], training=training),
        )

    def _sje_losses(self, batch, training):
        image_embeddings, text_embeddings = self(batch, training=training)
        return ds_sje_loss(image_embeddings, text_embeddings, batch["label"])

    def _track(self, image_to_text, text_to_image):
        self.loss_tracker.update_state(image_to_text + text_to_image)
        self.image_to_text_tracker.update_state(image_to_text)
        self.text_to_image_tracker.update_state(text_to_image)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, batch):
        with tf.GradientTape() as tape:
            image_to_text, text_to_image = self._sje_losses(batch, training=True)
            loss = image_to_text + text_to_image
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return self._track(image_to_text, text_to_image)

    def test_step(self, batch):
        return self._track(*self._sje_losses(batch, training=False))

    def embed_image_features(self, features):
        """theta(v): f32[N, D] classifier features -> f32[N, E] (a tensor, traceable)."""
        return self.image_projection(self.feature_normalization(features))

    def embed_captions(self, captions, batch_size: int = 256) -> np.ndarray:
        """f32[M, E] embeddings of M raw caption strings."""
        max_chars = self.text_encoder.input_shape[-1]
        out = []
        for start in range(0, len(captions), batch_size):
            ids = tokenizer.tokenize(tf.constant(captions[start : start + batch_size]), max_chars)
            out.append(self.text_encoder(ids, training=False).numpy())
        return np.concatenate(out) if out else np.zeros((0, self.text_encoder.output_shape[-1]))

    def embed_images(self, features) -> np.ndarray:
        """f32[N, E] image-side embeddings of f32[N, D] classifier features."""
        return self.embed_image_features(np.asarray(features, dtype=np.float32)).numpy()


def build_joint_embedding(
    cfg: TextEncoderConfig, feature_dim: int, *, dtype_policy: str | None = None
) -> JointEmbedding:
    """The text encoder computes in `dtype_policy` (char_cnn_rnn.py); the image projection and
    the loss stay float32."""
    encoder = build_char_cnn_rnn(cfg, dtype_policy=dtype_policy)
    model = JointEmbedding(encoder, feature_dim, name="joint_embedding")
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate))
    return model


def train_joint_embedding(
    train: CaptionedFeatures,
    cfg: TextEncoderConfig,
    *,
    validation: CaptionedFeatures | None = None,
    seed: int = 0,
    callbacks: list[keras.callbacks.Callback] | None = None,
    verbose: int = 0,
    dtype_policy: str | None = None,
) -> tuple[JointEmbedding, dict[str, list[float]]]:
    """Trains for `cfg.epochs` passes over every (image, caption) pair of `train`; the text
    encoder computes in `dtype_policy` (`stackgan.training.precision.Precision.policy`).

    Returns the model and the Keras history (loss, image_to_text, text_to_image per epoch, with
    val_ prefixes when `validation` is given).
    """
    keras.utils.set_random_seed(seed)
    model = build_joint_embedding(cfg, train.features.shape[1], dtype_policy=dtype_policy)
    model.feature_normalization.adapt(train.features)
    train_ds = pair_dataset(train, cfg.max_chars, cfg.batch_size, seed=seed)
    val_ds = (
        None
        if validation is None
        else pair_dataset(validation, cfg.max_chars, cfg.batch_size, seed=seed, reshuffle=False)
    )
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=cfg.epochs,
        shuffle=False,  # pair_dataset shuffles
        callbacks=callbacks or [],
        verbose=verbose,
    )
    return model, history.history


def degenerate_features_warning(features: np.ndarray, min_std: float = 1e-6) -> str:
    """A warning when the image features hardly vary across images ("" when they do).

    Constant features (an untrained or collapsed classifier) give the DS-SJE loss no gradient:
    the loss stays at 2 and the text encoder stays at its random initialisation.
    """
    spread = float(np.std(features, axis=0).max()) if len(features) > 1 else 0.0
    if spread >= min_std:
        return ""
    return (
        f"the classifier's features are (nearly) the same for every image (largest per-dimension"
        f" std {spread:.3g} < {min_std}): the text encoder has nothing to align captions to and"
        " will not learn. Train the classifier longer or from ImageNet weights."
    )


def evaluate_zero_shot(model: JointEmbedding, data: CaptionedFeatures) -> RetrievalResult:
    """Reed et al.'s zero-shot top-1 on `data` (images of classes unseen in training)."""
    captions, _, caption_labels = data.flat_captions()
    return zero_shot_top1(
        model.embed_images(data.features),
        data.labels,
        model.embed_captions(captions),
        caption_labels,
    )
