"""TensorBoard summaries written with TensorFlow's core `tf.summary.write`.

`tf.summary.scalar/image/text` live in the `tensorboard` package, which the pinned environment
does not install (TensorBoard is a viewer; training must not depend on it). These functions write
the same records those do: the tensor layout and plugin name each TensorBoard plugin reads
(scalars: a float32 scalar; images: [width, height, png, png, ...] strings; text: a string).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import summary_pb2


def _metadata(plugin: str, description: str = "") -> summary_pb2.SummaryMetadata:
    metadata = summary_pb2.SummaryMetadata(summary_description=description)
    metadata.plugin_data.plugin_name = plugin
    return metadata


def scalar(name: str, value: float, step: int) -> None:
    tf.summary.write(name, tf.constant(value, tf.float32), step=step, metadata=_metadata("scalars"))


def images(name: str, pixels: np.ndarray, step: int, description: str = "") -> None:
    """uint8 [N, H, W, 3] images, one PNG each."""
    pixels = np.asarray(pixels, np.uint8)
    encoded = [tf.io.encode_png(image) for image in pixels]
    height, width = pixels.shape[1:3]
    tensor = tf.stack([tf.constant(str(width)), tf.constant(str(height)), *encoded])
    tf.summary.write(name, tensor, step=step, metadata=_metadata("images", description))


def text(name: str, value: str, step: int) -> None:
    tf.summary.write(name, tf.constant(value), step=step, metadata=_metadata("text"))
