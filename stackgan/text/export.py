"""The trained text encoder as a SavedModel that takes raw strings.

Signatures:
- `serving_default`: `caption` string[N] -> `embedding` f32[N, E]. Tokenisation (lowercase,
  alphabet ids, truncation to `max_chars`, padding) runs inside, so any sentence can be
  embedded; this is the function the text-to-image generator calls.
- `image_embedding` (DS-SJE encoders only; not an encoder distilled from a dataset's embeddings,
  which has no image side): `features` f32[N, D] (the classifier's pooled features) ->
  `embedding` f32[N, E], the image side of the joint embedding, for retrieval against captions.
"""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from stackgan.saved_models import export_archive, load_saved_model
from stackgan.text import tokenizer
from stackgan.text.training import JointEmbedding

CAPTION_SIGNATURE = "serving_default"
IMAGE_SIGNATURE = "image_embedding"


def export_text_encoder(model: JointEmbedding, export_dir: str | os.PathLike) -> None:
    """Writes the SavedModel described in the module docstring to `export_dir`."""

    def embed_images(features):
        return {"embedding": model.embed_image_features(features)}

    archive = _caption_archive(model.text_encoder)
    archive.add_endpoint(
        name=IMAGE_SIGNATURE,
        fn=embed_images,
        input_signature=[tf.TensorSpec([None, model.feature_dim], tf.float32, name="features")],
    )
    archive.write_out(os.fspath(export_dir), verbose=False)


def export_caption_encoder(text_encoder: keras.Model, export_dir: str | os.PathLike) -> None:
    """Writes a text encoder without an image side (stackgan/text/distill.py): the caption
    signature only."""
    _caption_archive(text_encoder).write_out(os.fspath(export_dir), verbose=False)


def _caption_archive(text_encoder: keras.Model) -> keras.export.ExportArchive:
    max_chars = text_encoder.input_shape[-1]

    def embed_captions(caption):
        ids = tokenizer.tokenize(caption, max_chars)
        return {"embedding": text_encoder(ids, training=False)}

    archive = export_archive()
    archive.add_endpoint(
        name=CAPTION_SIGNATURE,
        fn=embed_captions,
        input_signature=[tf.TensorSpec([None], tf.string, name="caption")],
    )
    return archive


class TextEncoder:
    """A loaded text-encoder SavedModel: `embed(captions)` and `embed_image_features(features)`."""

    def __init__(self, path: str | os.PathLike):
        self.path, self._loaded = load_saved_model(
            path, "text encoder", (CAPTION_SIGNATURE, IMAGE_SIGNATURE)
        )
        self._captions = self._loaded.signatures[CAPTION_SIGNATURE]
        self._images = self._loaded.signatures[IMAGE_SIGNATURE]
        self.embedding_dim = int(self._captions.structured_outputs["embedding"].shape[-1])
        self.feature_dim = int(self._images.structured_input_signature[1]["features"].shape[-1])

    def embed(self, captions, batch_size: int = 512) -> np.ndarray:
        """f32[N, E] for N raw caption strings (str or UTF-8 bytes)."""
        captions = list(captions)
        out = [
            self._captions(caption=tf.constant(captions[i : i + batch_size], tf.string))[
                "embedding"
            ].numpy()
            for i in range(0, len(captions), batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.embedding_dim), np.float32)

    def embed_image_features(self, features) -> np.ndarray:
        """f32[N, E] image-side embeddings of f32[N, D] classifier features."""
        features = tf.constant(np.asarray(features, dtype=np.float32))
        return self._images(features=features)["embedding"].numpy()
