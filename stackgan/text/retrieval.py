"""Zero-shot retrieval as Reed et al. 2016 report it (their Table 1, "Top-1 Acc").

Each image of the (unseen) evaluation classes is classified by the class whose mean caption
embedding is most compatible with it (dot product); the score is the fraction classified
right. Chance is 1 / number of classes. Reed et al.'s char-CNN-RNN reaches 54.0% on the 50
CUB test classes (their image features: GoogLeNet, pre-trained on ImageNet).
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class RetrievalResult:
    top1: float  # fraction of images whose nearest class-mean caption embedding is their class
    num_images: int
    num_classes: int

    @property
    def chance(self) -> float:
        return 1.0 / self.num_classes

    def as_dict(self) -> dict[str, float]:
        return {
            "top1": self.top1,
            "chance": self.chance,
            "images": self.num_images,
            "classes": self.num_classes,
        }


def class_mean_embeddings(embeddings, labels) -> tuple[np.ndarray, np.ndarray]:
    """(classes int[C] sorted, means f32[C, E]) of f32[M, E] embeddings with int[M] labels."""
    embeddings = np.asarray(embeddings, dtype=np.float64)
    labels = np.asarray(labels).reshape(-1)
    if embeddings.ndim != 2 or len(embeddings) != len(labels):
        raise ValueError(
            f"expected embeddings [M, E] and labels [M], got {embeddings.shape} and {labels.shape}"
        )
    classes, index = np.unique(labels, return_inverse=True)
    sums = np.zeros((len(classes), embeddings.shape[1]))
    np.add.at(sums, index, embeddings)
    return classes, sums / np.bincount(index)[:, None]


def zero_shot_top1(image_embeddings, image_labels, text_embeddings, text_labels) -> RetrievalResult:
    """Top-1 accuracy of classifying images by the nearest class-mean text embedding.

    image_embeddings f32[N, E] (the image side of the joint embedding, i.e. projected
    features), image_labels int[N]; text_embeddings f32[M, E], text_labels int[M] (every caption
    of the evaluation classes). Candidate classes are those with captions.
    """
    classes, text_means = class_mean_embeddings(text_embeddings, text_labels)
    image_embeddings = np.asarray(image_embeddings, dtype=np.float64)
    image_labels = np.asarray(image_labels).reshape(-1)
    if image_embeddings.ndim != 2 or len(image_embeddings) != len(image_labels):
        raise ValueError(
            f"expected image embeddings [N, E] and labels [N], got {image_embeddings.shape}"
            f" and {image_labels.shape}"
        )
    if len(image_labels) == 0:
        raise ValueError("no images to classify")
    unknown = np.setdiff1d(image_labels, classes)
    if unknown.size:
        raise ValueError(f"images of classes {unknown.tolist()} have no captions to compare with")
    predicted = classes[np.argmax(image_embeddings @ text_means.T, axis=1)]
    return RetrievalResult(
        top1=float(np.mean(predicted == image_labels)),
        num_images=len(image_labels),
        num_classes=len(classes),
    )
