"""A CUB-layout dataset of N full-size images for the benchmarks, made from the real sample.

Image i is a copy of real CUB image i mod 101 (~500x375 JPEGs, so decode cost is real), with
that image's box and captions; classes cycle over 20 ids; 80 % train / 20 % test (StackGAN
split lists). Embeddings (random 10 x 1024 per image) only when asked.
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np

from stackgan.data import cub

CLASSES = 20


def write_replica(sample_root: Path, out: Path, count: int, embeddings: bool = False) -> Path:
    source = cub.CubDataset(sample_root)
    originals = [example for _, example in source]
    cub_dir, birds = out / "CUB_200_2011", out / "birds"
    rows = {"images": [], "boxes": [], "labels": [], "split": []}
    names = {"train": [], "test": []}
    for i in range(count):
        original = originals[i % len(originals)]
        image_id, class_id = i + 1, i % CLASSES + 1
        class_name = f"{class_id:03d}.Replica_{class_id}"
        filename = f"{class_name}/Replica_{image_id:05d}"
        (cub_dir / "images" / class_name).mkdir(parents=True, exist_ok=True)
        (birds / "text_c10" / class_name).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(original.image_path, cub_dir / "images" / f"{filename}.jpg")
        shutil.copyfile(original.caption_path, birds / "text_c10" / f"{filename}.txt")
        b = original.bbox
        rows["images"].append(f"{image_id} {filename}.jpg")
        rows["boxes"].append(f"{image_id} {b.x} {b.y} {b.width} {b.height}")
        rows["labels"].append(f"{image_id} {class_id}")
        split = "test" if i % 5 == 4 else "train"
        rows["split"].append(f"{image_id} {int(split == 'train')}")
        names[split].append(filename)
    for name, file in (
        ("images", "images.txt"),
        ("boxes", "bounding_boxes.txt"),
        ("labels", "image_class_labels.txt"),
        ("split", "train_test_split.txt"),
    ):
        (cub_dir / file).write_text("\n".join(rows[name]) + "\n")
    classes = [f"{c} {c:03d}.Replica_{c}" for c in range(1, CLASSES + 1)]
    (cub_dir / "classes.txt").write_text("\n".join(classes) + "\n")
    rng = np.random.default_rng(0)
    for split, split_names in names.items():
        (birds / split).mkdir(parents=True, exist_ok=True)
        with (birds / split / "filenames.pickle").open("wb") as f:
            pickle.dump(split_names, f)
        with (birds / split / "class_info.pickle").open("wb") as f:
            pickle.dump([int(n.split(".")[0]) for n in split_names], f)
        if embeddings:
            array = rng.standard_normal((len(split_names), 10, 1024), dtype=np.float32)
            with (birds / split / cub.EMBEDDINGS_FILE).open("wb") as f:
                pickle.dump(array, f)
    return out
