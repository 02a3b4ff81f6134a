"""Python access to an exported generator (the serving contract in docs/ARCHITECTURE.md).

`load_generator(path)` works on a SavedModel directory, a Model artifact (its `Format-Serving`)
or a TF Serving base directory of numbered versions (the newest is used). It needs only
TensorFlow: no project code runs inside the SavedModel.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

SEED_SIGNATURE = "serving_default"
NOISE_SIGNATURE = "generate_with_noise"
TEXT_SIGNATURE = "text"


def resolve_saved_model_dir(path: str) -> str:
    """`path` itself, its `Format-Serving`, or its newest numbered version holding a SavedModel."""
    if tf.saved_model.contains_saved_model(path):
        return path
    serving = os.path.join(path, "Format-Serving")
    if tf.saved_model.contains_saved_model(serving):
        return serving
    if tf.io.gfile.isdir(path):
        versions = sorted(
            (
                int(name.rstrip("/"))
                for name in tf.io.gfile.listdir(path)
                if name.rstrip("/").isdigit()
            ),
            reverse=True,
        )
        for version in versions:
            candidate = os.path.join(path, str(version))
            if tf.saved_model.contains_saved_model(candidate):
                return candidate
    raise FileNotFoundError(
        f"{path}: no SavedModel there, in its Format-Serving, or in a numbered version"
    )


class Generator:
    """A loaded text->image generator.

    `generate(embeddings, seed)` -> {"image_64": uint8[N,s,s,3], "image_256": ...} (image_256 only
    when Stage-II was exported). Inputs are checked here, so mistakes fail with the input named
    before TensorFlow sees them.
    """

    def __init__(self, path: str):
        self.path = resolve_saved_model_dir(path)
        self._loaded = tf.saved_model.load(self.path)
        signatures = self._loaded.signatures
        if SEED_SIGNATURE not in signatures or NOISE_SIGNATURE not in signatures:
            raise ValueError(
                f"{self.path}: not a StackGAN generator export (signatures: {sorted(signatures)})"
            )
        self._from_seed = signatures[SEED_SIGNATURE]
        self._from_noise = signatures[NOISE_SIGNATURE]
        self._from_text = signatures.get(TEXT_SIGNATURE)
        noise_inputs = self._from_noise.structured_input_signature[1]
        self.embedding_dim = int(noise_inputs["embedding"].shape[-1])
        self.z_dim = int(noise_inputs["noise"].shape[-1])
        self.ca_dim = int(noise_inputs["ca_noise"].shape[-1])
        self.noise_inputs = tuple(sorted(noise_inputs))
        self.outputs = tuple(sorted(self._from_seed.structured_outputs))

    @property
    def has_text_signature(self) -> bool:
        return self._from_text is not None

    def generate(self, embeddings, seed: int = 0) -> dict[str, np.ndarray]:
        """Images for f32[N, E] embeddings; the same seed gives the same images."""
        embedding = self._matrix(embeddings, "embeddings", self.embedding_dim)
        outputs = self._from_seed(embedding=embedding, seed=tf.constant(_seed(seed), tf.int64))
        return {name: value.numpy() for name, value in outputs.items()}

    def generate_with_noise(self, embeddings, noise, ca_noise, ca_noise_2=None) -> dict:
        """Images for explicit noise: noise f32[N, z_dim], ca_noise (and for Stage-II exports
        ca_noise_2) f32[N, ca_dim]."""
        inputs = {
            "embedding": self._matrix(embeddings, "embeddings", self.embedding_dim),
            "noise": self._matrix(noise, "noise", self.z_dim),
            "ca_noise": self._matrix(ca_noise, "ca_noise", self.ca_dim),
        }
        if "ca_noise_2" in self.noise_inputs:
            if ca_noise_2 is None:
                raise ValueError("this export has Stage-II: ca_noise_2 f32[N, ca_dim] is required")
            inputs["ca_noise_2"] = self._matrix(ca_noise_2, "ca_noise_2", self.ca_dim)
        elif ca_noise_2 is not None:
            raise ValueError("this export is Stage-I only: it takes no ca_noise_2")
        rows = {name: int(t.shape[0]) for name, t in inputs.items()}
        if len(set(rows.values())) != 1:
            raise ValueError(f"inputs disagree on the number of rows: {rows}")
        return {name: v.numpy() for name, v in self._from_noise(**inputs).items()}

    def generate_from_captions(self, captions: Sequence[str], seed: int = 0) -> dict:
        """Images for raw caption strings, as `generate` returns them; needs an export that
        includes a text encoder (the `text` signature, which also outputs the `embedding` it
        computed; `embed_captions` returns that)."""
        outputs = self._text(captions, seed)
        return {name: value.numpy() for name, value in outputs.items() if name != "embedding"}

    def embed_captions(self, captions: Sequence[str]) -> np.ndarray:
        """f32[N, E]: the embeddings the export's text encoder gives `captions`."""
        return self._text(captions, 0)["embedding"].numpy()

    def _text(self, captions: Sequence[str], seed: int) -> dict:
        if self._from_text is None:
            raise ValueError(
                f"{self.path} has no text signature (exported without a text encoder); "
                "pass embeddings to generate() instead"
            )
        captions = [str(c) for c in captions]
        if not captions:
            raise ValueError("captions is empty")
        return self._from_text(
            caption=tf.constant(captions, tf.string), seed=tf.constant(_seed(seed), tf.int64)
        )

    @staticmethod
    def _matrix(values, name: str, width: int) -> tf.Tensor:
        array = np.asarray(values)
        if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
            raise ValueError(f"{name} must be numeric, got dtype {array.dtype}")
        if array.ndim != 2 or array.shape[1] != width or array.shape[0] == 0:
            raise ValueError(f"{name} must have shape [N>0, {width}], got {list(array.shape)}")
        if not np.isfinite(array).all():
            raise ValueError(f"{name} contains NaN or infinite values")
        return tf.constant(array.astype(np.float32))


def _seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def load_generator(path: str) -> Generator:
    """The generator exported at `path` (see `resolve_saved_model_dir` for accepted layouts)."""
    return Generator(path)
