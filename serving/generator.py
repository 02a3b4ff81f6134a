"""Python access to an exported generator (the serving contract in docs/ARCHITECTURE.md).

`load_generator(path)` works on a SavedModel directory, a Model artifact (its `Format-Serving`)
or a TF Serving base directory of numbered versions (the newest is used). It needs only
TensorFlow: no project code runs inside the SavedModel.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from stackgan.saved_models import load_saved_model
from stackgan.serving import signatures


class Generator:
    """A loaded text->image generator.

    `generate(embeddings, seed=None)` -> {"image_64": uint8[N,s,s,3], "image_256": ...}
    (image_256 only when Stage-II was exported): fresh noise without a seed, the same images for
    the same seed. Inputs are checked here, so mistakes (a wrong dtype included) fail with the
    input named before TensorFlow sees them.

    Exports written before `serving_default` took the embedding alone (their `serving_default`
    and `text` take a `seed`) load too: they serve as the seeded signatures, and a call without
    a seed draws one here.
    """

    def __init__(self, path: str):
        self.path, self._loaded = load_saved_model(
            path, "StackGAN generator", (signatures.DEFAULT, signatures.NOISE)
        )
        found = self._loaded.signatures
        self._fresh, self._seeded = _fresh_and_seeded(found, signatures.DEFAULT, signatures.SEEDED)
        if self._seeded is None:
            raise ValueError(
                f"{self.path}: not a StackGAN generator export (no seeded signature among "
                f"{sorted(found)})"
            )
        self._text_fresh, self._text_seeded = _fresh_and_seeded(
            found, signatures.TEXT, signatures.TEXT_SEEDED
        )
        self._from_noise = found[signatures.NOISE]
        noise_inputs = self._from_noise.structured_input_signature[1]
        self.embedding_dim = int(noise_inputs["embedding"].shape[-1])
        self.z_dim = int(noise_inputs["noise"].shape[-1])
        self.ca_dim = int(noise_inputs["ca_noise"].shape[-1])
        self.noise_inputs = tuple(sorted(noise_inputs))
        self.outputs = tuple(sorted(self._seeded.structured_outputs))
        # the noise scale of `generate` and the text signatures (ModelConfig.truncation; 1 = the
        # paper's); None for exports written before the export recorded it
        self.truncation: float | None = _sampling(self.path).get("truncation")

    @property
    def has_text_signature(self) -> bool:
        return self._text_seeded is not None

    def generate(self, embeddings, seed: int | None = None) -> dict[str, np.ndarray]:
        """Images for f32[N, E] embeddings; the same seed gives the same images, no seed fresh
        noise."""
        embedding = self._matrix(embeddings, "embedding", self.embedding_dim)
        if seed is None and self._fresh is not None:
            outputs = self._fresh(embedding=embedding)
        else:
            outputs = self._seeded(embedding=embedding, seed=_seed(seed))
        return {name: value.numpy() for name, value in outputs.items()}

    def generate_with_noise(self, embeddings, noise, ca_noise, ca_noise_2=None) -> dict:
        """Images for explicit noise: noise f32[N, z_dim], ca_noise (and for Stage-II exports
        ca_noise_2) f32[N, ca_dim]."""
        inputs = {
            "embedding": self._matrix(embeddings, "embedding", self.embedding_dim),
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

    def generate_from_captions(self, captions: Sequence[str], seed: int | None = None) -> dict:
        """Images for raw caption strings, as `generate` returns them; needs an export that
        includes a text encoder (the `text` signatures, which also output the `embedding` they
        computed; `embed_captions` returns that)."""
        outputs = self._text(captions, seed)
        return {name: value.numpy() for name, value in outputs.items() if name != "embedding"}

    def embed_captions(self, captions: Sequence[str]) -> np.ndarray:
        """f32[N, E]: the embeddings the export's text encoder gives `captions`."""
        return self._text(captions, 0)["embedding"].numpy()

    def _text(self, captions: Sequence[str], seed: int | None) -> dict:
        if self._text_seeded is None:
            raise ValueError(
                f"{self.path} has no text signature (exported without a text encoder); "
                "pass embeddings to generate() instead"
            )
        caption = signatures.checked_input("caption", captions)
        if caption.size == 0:
            raise ValueError("input 'caption' is empty")
        caption = tf.constant(caption.tolist(), tf.string)
        if seed is None and self._text_fresh is not None:
            return self._text_fresh(caption=caption)
        return self._text_seeded(caption=caption, seed=_seed(seed))

    @staticmethod
    def _matrix(values, name: str, width: int) -> tf.Tensor:
        array = signatures.checked_input(name, values)
        if array.shape[1] != width or array.shape[0] == 0:
            raise ValueError(
                f"input {name!r} must have shape [N>0, {width}], got {list(array.shape)}"
            )
        if not np.isfinite(array).all():
            raise ValueError(f"input {name!r} contains NaN or infinite values")
        return tf.constant(array)


def _sampling(path: str) -> dict:
    info = os.path.join(path, signatures.SAMPLING_FILE)
    if not tf.io.gfile.exists(info):
        return {}
    with tf.io.gfile.GFile(info) as f:
        try:
            sampling = json.loads(f.read())
        except json.JSONDecodeError as e:
            raise ValueError(f"{info}: not valid JSON ({e})") from e
    if not isinstance(sampling, dict):
        raise ValueError(f'{info}: expected a JSON object such as {{"truncation": 0.5}}')
    return sampling


def _fresh_and_seeded(found, fresh_name: str, seeded_name: str):
    """(the signature without a seed or None, the seeded one or None). In an export from before
    the seedless signatures, `fresh_name` is the one that takes a seed."""
    fresh, seeded = found.get(fresh_name), found.get(seeded_name)
    if seeded is None and fresh is not None and "seed" in fresh.structured_input_signature[1]:
        return None, fresh
    return fresh, seeded


def _seed(seed) -> tf.Tensor:
    """An int64 scalar tensor; None (an older export's call without a seed) draws one."""
    if seed is None:
        seed = int(np.random.default_rng().integers(0, 2**63 - 1))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ValueError(f"input 'seed' must be an integer in [0, 2**63), got {seed!r}")
    return tf.constant(int(seed), tf.int64)


def load_generator(path: str) -> Generator:
    """The generator exported at `path` (layouts: `stackgan.saved_models.resolve_saved_model_dir`)."""
    return Generator(path)
