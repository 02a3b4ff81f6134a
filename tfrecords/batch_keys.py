"""The keys of the batches the input pipeline yields, declared once: the trainers, sample
sheets, precise BatchNorm and the Evaluator read batches by these names. Evaluation batches
reuse the schema's feature names where a value is that feature as stored."""

from __future__ import annotations

from stackgan.schemas import features

# training batches (make_train_dataset): f32 images in [-1, 1] and the mean caption embedding
IMAGE = "image"
WRONG_IMAGE = "wrong_image"  # a real image of ANOTHER class: the matching-aware D's mismatch
EMBEDDING = features.EMBEDDING

# evaluation batches (make_eval_dataset): one row per (image, caption) pair
IMAGE_LOW = features.IMAGE_LOW
IMAGE_HIGH = features.IMAGE_HIGH
LABEL = features.LABEL
IMAGE_ID = features.IMAGE_ID
CAPTION = "caption"  # one caption (the feature `captions` holds all of an image's)
