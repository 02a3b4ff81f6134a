"""The deep symmetric structured joint embedding loss (DS-SJE) of Reed et al. 2016.

Compatibility F(v, t) = theta(v) . phi(t) (dot product). Each image is classified by the
class-mean text embedding it is most compatible with, each caption by the class-mean image
embedding; the structured hinge with the 0/1 loss Delta bounds both misclassifications:

    image -> text:  max_y [Delta(y_n, y) + theta(v_n) . mean_{t in y} phi(t)]
                        - theta(v_n) . mean_{t in y_n} phi(t)
    text -> image:  max_y [Delta(y_n, y) + mean_{v in y} theta(v) . phi(t_n)]
                        - mean_{v in y_n} theta(v) . phi(t_n)

averaged over the batch and summed. The expectations over a class are taken over the samples
of that class present in the batch (as Reed et al. do with their minibatches); the term for
y = y_n is 0, so each hinge is non-negative.
"""

from __future__ import annotations

import tensorflow as tf


def _structured_hinge(queries: tf.Tensor, class_means: tf.Tensor, class_index: tf.Tensor):
    """Per-query max_y [Delta + score_y] - score_true, for queries f32[B, E], means f32[C, E]."""
    scores = tf.matmul(queries, class_means, transpose_b=True)  # [B, C]
    delta = 1.0 - tf.one_hot(class_index, tf.shape(class_means)[0], dtype=scores.dtype)
    true_score = tf.gather(scores, class_index, axis=1, batch_dims=1)
    return tf.reduce_max(scores + delta, axis=1) - true_score


def ds_sje_loss(
    image_embeddings: tf.Tensor, text_embeddings: tf.Tensor, labels: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor]:
    """(image->text, text->image) losses, each a scalar mean over the batch.

    image_embeddings f32[B, E]: theta(v_n), text_embeddings f32[B, E]: phi(t_n) of a caption of
    image n, labels int[B]: class of pair n. The total DS-SJE loss is their sum.
    """
    classes, class_index = tf.unique(tf.reshape(labels, [-1]))
    num_classes = tf.size(classes)
    text_means = tf.math.unsorted_segment_mean(text_embeddings, class_index, num_classes)
    image_means = tf.math.unsorted_segment_mean(image_embeddings, class_index, num_classes)
    image_to_text = _structured_hinge(image_embeddings, text_means, class_index)
    text_to_image = _structured_hinge(text_embeddings, image_means, class_index)
    return tf.reduce_mean(image_to_text), tf.reduce_mean(text_to_image)
