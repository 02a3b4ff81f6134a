"""Zero-shot retrieval of the char-CNN-RNN text encoder, as Reed et al. (2016) report it.

Top-1 of classifying images of UNSEEN (test-split) classes by the nearest class-mean caption
embedding, with chance beside it. The image side is a small CNN trained from scratch on the
train classes only (no pretrained weights can be had here), so the test classes are unseen by
both encoders. Reed et al.'s char-CNN-RNN with ImageNet GoogLeNet features: ~54% on the 50 CUB
test classes.

    .venv/bin/python bench/bench_text_retrieval.py                      # the real CUB sample
    .venv/bin/python bench/bench_text_retrieval.py --synth-classes 40   # synthetic birds
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FEATURE_SIZE = 64  # the CNN's input size


def image_feature_extractor(train_images, train_labels, epochs: int, seed: int):
    """A 4-block CNN classifier trained on the train classes; returns its pooled features."""
    import keras
    import numpy as np
    import tensorflow as tf

    classes, index = np.unique(train_labels, return_inverse=True)
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((None, None, 3))
    x = keras.layers.Resizing(FEATURE_SIZE, FEATURE_SIZE)(inputs)
    for filters in (32, 64, 128, 256):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        # momentum 0.9: with a few hundred steps, 0.99+ leaves the moving statistics at their
        # initial values and inference-mode features collapse
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x)
    features = keras.layers.GlobalAveragePooling2D()(x)
    logits = keras.layers.Dense(len(classes))(keras.layers.Dropout(0.3)(features))
    classifier = keras.Model(inputs, logits)
    extractor = keras.Model(inputs, {"features": features})
    classifier.compile(
        keras.optimizers.Adam(1e-3),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    augment = keras.Sequential(
        [keras.layers.RandomFlip("horizontal"), keras.layers.RandomTranslation(0.1, 0.1)]
    )
    data = (
        tf.data.Dataset.from_tensor_slices((train_images, index))
        .shuffle(len(index), seed=seed)
        .batch(32)
        .map(lambda a, b: (augment(a, training=True), b))
    )
    history = classifier.fit(data, epochs=epochs, verbose=0)
    print(
        f"image CNN: {len(classes)} train classes, {len(index)} images, {epochs} epochs,"
        f" train accuracy {history.history['accuracy'][-1]:.3f}",
        flush=True,
    )

    def features_of(images):
        return extractor(images, training=False)

    return features_of


def load_centre_crops(pattern: str, cfg):
    import numpy as np
    import tensorflow as tf

    from stackgan.schemas import features as F
    from stackgan.text.examples_reader import _centre_crop

    spec = F.parse_spec(F.WITHOUT_EMBEDDINGS, (F.IMAGE_HIGH, F.LABEL))
    images, labels = [], []
    files = tf.io.gfile.glob(pattern)
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        example = tf.io.parse_single_example(record, spec)
        crop = _centre_crop(example[F.IMAGE_HIGH], cfg.data)
        images.append(tf.image.resize(crop, [FEATURE_SIZE, FEATURE_SIZE]).numpy())
        labels.append(int(example[F.LABEL]))
    return np.stack(images), np.array(labels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "cub-sample")
    parser.add_argument(
        "--synth-classes",
        type=int,
        default=0,
        help="use a synthetic dataset of this many classes instead of --data",
    )
    parser.add_argument("--profile", default="demo", help="text-encoder sizes from this profile")
    parser.add_argument("--encoder-epochs", type=int, default=30)
    parser.add_argument("--cnn-epochs", type=int, default=30)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    args = parser.parse_args()

    import apache_beam as beam

    from stackgan import config as config_lib
    from stackgan.components.cub_example_gen import generate
    from stackgan.data import synth
    from stackgan.text.examples_reader import read_split_features
    from stackgan.text.training import evaluate_zero_shot, train_joint_embedding

    cfg = config_lib.get_profile(args.profile).replace(text={"epochs": args.encoder_epochs})
    print(
        f"host: {platform.machine()}, {os.cpu_count()} CPUs, load average"
        f" {os.getloadavg()[0]:.1f}; text encoder {cfg.text}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data
        if args.synth_classes:
            root = Path(tmp) / "synth"
            synth.write_dataset(
                root, cfg.synth.__class__(classes=args.synth_classes, images_per_class=12)
            )
        out = Path(tmp) / "examples"
        generate.generate_examples(
            str(root), cfg, str(out), lambda: beam.Pipeline(runner="FnApiRunner")
        )
        images, labels = load_centre_crops(str(out / "Split-train" / "*.gz"), cfg)
        for seed in args.seeds:
            features_of = image_feature_extractor(images, labels, args.cnn_epochs, seed)
            train = read_split_features(str(out / "Split-train" / "*.gz"), cfg.data, features_of)
            test = read_split_features(str(out / "Split-test" / "*.gz"), cfg.data, features_of)
            start = time.monotonic()
            model, history = train_joint_embedding(train.data, cfg.text, seed=seed)
            zero_shot = evaluate_zero_shot(model, test.data)
            seen = evaluate_zero_shot(model, train.data)
            print(
                f"{root.name} seed {seed}: ZERO-SHOT top-1 {zero_shot.top1:.3f} on"
                f" {zero_shot.num_classes} unseen classes / {zero_shot.num_images} images"
                f" (chance {zero_shot.chance:.3f}); seen classes {seen.top1:.3f}"
                f" (chance {seen.chance:.3f}); DS-SJE loss {history['loss'][0]:.3f} ->"
                f" {history['loss'][-1]:.3f} in {time.monotonic() - start:.0f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
