"""Decides whether the DAG trains the text encoder or uses the release's embedding pickles."""

from __future__ import annotations

import posixpath

from stackgan.config import Config

EMBEDDINGS_PICKLE = "char-CNN-RNN-embeddings.pickle"


def dataset_has_embeddings(data_root: str) -> bool:
    # tf.io.gfile so that gs:// or s3:// roots work on a cluster as local paths do here.
    import tensorflow as tf

    return all(
        tf.io.gfile.exists(posixpath.join(data_root, "birds", split, EMBEDDINGS_PICKLE))
        for split in ("train", "test")
    )


def should_train_text_encoder(config: Config, data_root: str) -> bool:
    source = config.text.source
    if source == "train":
        return True
    if source == "pickle":
        if not dataset_has_embeddings(data_root):
            raise FileNotFoundError(
                f"config.text.source='pickle' but {data_root}/birds/{{train,test}}/"
                f"{EMBEDDINGS_PICKLE} is missing; use source 'auto' or 'train' to train the "
                "text encoder from the captions instead"
            )
        return False
    if source != "auto":
        raise ValueError(f"config.text.source must be auto|pickle|train, got {source!r}")
    return not dataset_has_embeddings(data_root)


def exports_text_encoder(config: Config, train_text_encoder: bool) -> bool:
    """Whether the pushed generator gets a text encoder (its `text` signatures): the one the
    text path trains, or, on the pickle path, the one distilled from the pickle's embeddings."""
    return train_text_encoder or config.text.distill_pickle
