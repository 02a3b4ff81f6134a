"""Sentences into a pushed generator trained on a dataset's embeddings: how much its `text`
signature (the char-CNN-RNN distilled from those embeddings, stackgan/text/distill.py) loses
against the dataset's own embedding of the same sentence.

Takes a finished `stackgan run` work dir on the embedded synthetic default, writes NEW captions
(not in the dataset) of its training species with the dataset's caption generator, and draws
each one three ways from the pushed generator, with the same noise seeds:
- the dataset's embedding of the sentence (`synth_text.caption_embedding`, as the pickle holds
  it for the dataset's own captions): what the GAN learnt from;
- the sentence through the export's `text_seeded` signature: what a user or TF Serving gets;
- one embedding for every sentence (the training embeddings' mean): an encoder that ignores
  its input.
Each is scored as the Evaluator scores (stackgan/evaluation): the work dir's classifier's top-1
against the caption's species, and the colour agreement gain.

    .venv/bin/stackgan run --work-dir stackgan-work          # the Quickstart, first
    .venv/bin/python bench/bench_text_input.py --work-dir stackgan-work
"""

from __future__ import annotations

import argparse
import glob
import os

# this folder is on sys.path when a bench runs as a script
from work_dir_inputs import work_dir_inputs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("--profile", default="demo", help="the profile the work dir ran")
    parser.add_argument("--captions-per-species", type=int, default=10)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf
    from bench_train_step import _hardware

    from stackgan.config import get_profile
    from stackgan.data import synth, synth_birds, synth_text
    from stackgan.evaluation import colour_agreement
    from stackgan.evaluation.classifier import load_classifier
    from stackgan.serving.generator import load_generator
    from stackgan.text.distill import read_caption_targets

    inputs = work_dir_inputs(args.work_dir)
    versions = sorted(glob.glob(os.path.join(args.work_dir, "serving", "stackgan", "*")))
    if not versions:
        raise SystemExit(f"{args.work_dir}: no pushed model (was the generator blessed?)")
    generator = load_generator(versions[-1])
    if not generator.has_text_signature:
        raise SystemExit(f"{versions[-1]}: no text signature (text.distill_pickle=false?)")
    classifier = load_classifier(inputs["classifier"])
    logit_of_class = {int(c): i for i, c in enumerate(classifier.info["class_ids"])}
    size = int(classifier.info["image_size"])
    print(f"hardware: {_hardware()}\nmodel: {generator.path}")

    synth_cfg = get_profile(args.profile).synth
    species = synth_birds.make_species(
        synth_cfg.classes, np.random.default_rng([synth_cfg.seed, synth._SPECIES])
    )
    held_out = set(synth.held_out_classes(synth_cfg))
    rng = np.random.default_rng(12345)
    captions, labels = [], []
    for bird in species:
        if bird.class_id in held_out:
            continue
        for caption in synth_text.write_captions(bird.traits, rng, args.captions_per_species):
            captions.append(caption)
            labels.append(logit_of_class[bird.class_id - 1])  # class ids are 1-based
    known = set(read_caption_targets(os.path.join(inputs["examples"], "Split-*", "*")).captions)
    new = sum(c not in known for c in captions)
    train_mean = read_caption_targets(
        os.path.join(inputs["examples"], "Split-train", "*")
    ).embeddings.mean(axis=0)
    print(
        f"{len(captions)} captions of {len(set(labels))} training species, {new} of them in"
        f" no caption of the dataset; chance {1 / len(set(labels)):.3f}"
    )

    dataset = synth_text.embed_captions(captions)
    ways = {
        "the dataset's embedding": lambda seed: generator.generate(dataset, seed=seed),
        "the sentence (text signature)": lambda seed: generator.generate_from_captions(
            captions, seed=seed
        ),
        "one embedding for all": lambda seed: generator.generate(
            np.broadcast_to(train_mean, dataset.shape).copy(), seed=seed
        ),
    }
    print(f"{'input':32s} {'seed':>4s} {'top-1':>6s} {'colour gain':>11s}")
    for name, draw in ways.items():
        for seed in args.seeds:
            images = draw(seed)["image_256"]
            small = tf.image.resize(tf.cast(images, tf.float32) / 127.5 - 1.0, [size, size], "area")
            predicted = classifier.predict(small.numpy())["logits"].argmax(axis=1)
            top1 = float(np.mean(predicted == np.asarray(labels)))
            colour = colour_agreement.score(colour_agreement.palette_shares(images), captions)
            print(f"{name:32s} {seed:>4d} {top1:>6.3f} {colour.gain:>+11.3f}")


if __name__ == "__main__":
    main()
