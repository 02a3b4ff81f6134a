"""A procedural dataset in exactly the on-disk layout of CUB-200-2011 + StackGAN's `birds/`.

It lets the whole pipeline run (and be tested) without the real data, which needs a manual
download, and without Reed et al.'s char-CNN-RNN embeddings, which are not obtainable here::

    OUT/CUB_200_2011/images/<NNN.Name>/<Name_XXXX_id>.jpg
    OUT/CUB_200_2011/{images,bounding_boxes,image_class_labels,train_test_split,classes}.txt
    OUT/birds/{train,test}/{filenames,class_info,char-CNN-RNN-embeddings}.pickle
    OUT/birds/text_c10/<NNN.Name>/<Name_XXXX_id>.txt
    OUT/synth_config.json  (the SynthConfig it was made from, so a reuse can check it)

Each class is a species (`synth_birds`), each image one bird on a scene with its exact bounding
box, each image 10 captions that state what is drawn and 10 embeddings that are a function of
the captions (`synth_text`). The StackGAN split is class-disjoint like the original; the
official `train_test_split.txt` splits within classes like CUB's.

Everything derives from `SynthConfig.seed` through per-item seed sequences, so two runs give
byte-identical files. The dataset is written into a hidden sibling folder and renamed into
place at the end, so an interrupted run never leaves a folder that looks complete.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from stackgan.config import SynthConfig
from stackgan.data import synth_birds, synth_text
from stackgan.data.cub import EMBEDDINGS_FILE

# The text side, re-exported: tests of trained generators check pictures against captions.
from stackgan.data.synth_text import (  # noqa: F401
    PALETTE,
    PARTS,
    caption_attributes,
    caption_colours,
    caption_embedding,
    embed_captions,
    nearest_colour,
)

CAPTIONS_PER_IMAGE = 10
EMBEDDING_DIM = 1024
# Protocol 2 is what Python 2 wrote the original release with; it loads with plain
# pickle.load and with encoding="latin1" alike.
PICKLE_PROTOCOL = 2
JPEG_QUALITY = 92
# Seed-sequence tags, so each kind of randomness has its own stream.
_SPECIES, _SPLIT, _IMAGE, _CAPTIONS, _EMBEDDINGS = range(5)


@dataclasses.dataclass(frozen=True)
class SynthSummary:
    root: Path
    species: tuple[synth_birds.Species, ...]
    train_classes: tuple[int, ...]  # StackGAN split (class-disjoint)
    test_classes: tuple[int, ...]
    train_images: int
    test_images: int
    official_train_images: int  # train_test_split.txt (within classes)
    official_test_images: int

    @property
    def images(self) -> int:
        return self.train_images + self.test_images

    def format(self) -> str:
        return "\n".join(
            [
                f"wrote {self.root}: {len(self.species)} classes, {self.images} images,"
                f" {self.images * CAPTIONS_PER_IMAGE} captions and embeddings",
                f"  StackGAN split: train {self.train_images} images of"
                f" {len(self.train_classes)} classes, test {self.test_images} images of"
                f" {len(self.test_classes)} classes {list(self.test_classes)}",
                f"  official split: train {self.official_train_images},"
                f" test {self.official_test_images} images",
            ]
        )


def validate(cfg: SynthConfig) -> None:
    """Raise ValueError naming the field when `cfg` cannot give a usable dataset."""
    if not 2 <= cfg.classes <= 999:  # NNN class folders; >= 1 train and >= 1 test class
        raise ValueError(f"SynthConfig.classes must be in [2, 999], got {cfg.classes}")
    if not 2 <= cfg.images_per_class <= 9999:  # Name_XXXX ids; >= 1 per official split
        raise ValueError(
            f"SynthConfig.images_per_class must be in [2, 9999], got {cfg.images_per_class}"
        )
    if not 0.0 < cfg.test_class_fraction < 1.0:
        raise ValueError(
            f"SynthConfig.test_class_fraction must be in (0, 1), got {cfg.test_class_fraction}"
        )
    if not 64 <= cfg.min_side <= cfg.max_side:
        raise ValueError(
            f"SynthConfig needs 64 <= min_side <= max_side, got {cfg.min_side}, {cfg.max_side}"
        )


def held_out_classes(cfg: SynthConfig) -> tuple[int, ...]:
    """The classes of the StackGAN test split: a seeded choice, as scattered over the class ids
    as StackGAN's 50 test classes are over CUB's 200."""
    count = min(cfg.classes - 1, max(1, round(cfg.classes * cfg.test_class_fraction)))
    rng = np.random.default_rng([cfg.seed, _SPLIT])
    chosen = rng.choice(np.arange(1, cfg.classes + 1), size=count, replace=False)
    return tuple(sorted(int(c) for c in chosen))


CONFIG_FILE = "synth_config.json"


def _config_record(cfg: SynthConfig) -> str:
    return json.dumps(dataclasses.asdict(cfg), indent=2, sort_keys=True) + "\n"


def written_by(root: str | os.PathLike, cfg: SynthConfig) -> bool:
    """Whether the dataset at `root` was written, whole, from `cfg` (what `write_dataset`
    records last); False for a folder without that record or written from another config."""
    try:
        recorded = json.loads((Path(root) / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return recorded == json.loads(_config_record(cfg))


def write_dataset(
    out_dir: str | os.PathLike,
    cfg: SynthConfig,
    *,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = None,
) -> SynthSummary:
    """Write the synthetic dataset to `out_dir` and return what was written.

    `out_dir` must not exist or be empty, unless `overwrite` (then it is replaced, only after
    the new dataset is complete). `progress` receives one line per class.
    """
    validate(cfg)
    out = Path(out_dir)
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out}: exists and is not empty (use overwrite / --overwrite)")
    out.parent.mkdir(parents=True, exist_ok=True)
    # a hidden sibling on the same file system, so the final rename is atomic; mkdir (not
    # mkdtemp, which makes it 0700) so the dataset gets the user's usual permissions
    staging = out.parent / f".{out.name}.partial-{secrets.token_hex(6)}"
    staging.mkdir()
    try:
        summary = _write_layout(staging, cfg, progress or (lambda line: None))
        _move_into_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return dataclasses.replace(summary, root=out)


def _move_into_place(staging: Path, out: Path) -> None:
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    if out.exists():
        retired = out.parent / f".{out.name}.old-{secrets.token_hex(6)}"
        os.replace(out, retired)
        os.replace(staging, out)
        shutil.rmtree(retired)
    else:
        os.replace(staging, out)


@dataclasses.dataclass(frozen=True)
class _Image:
    image_id: int
    species: synth_birds.Species
    filename: str  # "NNN.Name/Name_XXXX_id", no extension
    bbox: tuple[int, int, int, int]
    is_train_official: bool


def _write_layout(root: Path, cfg: SynthConfig, progress: Callable[[str], None]) -> SynthSummary:
    species = synth_birds.make_species(cfg.classes, np.random.default_rng([cfg.seed, _SPECIES]))
    cub, birds = root / "CUB_200_2011", root / "birds"
    test_ids = set(held_out_classes(cfg))
    embeddings: dict[str, np.ndarray] = {}
    images: list[_Image] = []
    for sp in species:
        class_images = cub / "images" / sp.folder
        class_text = birds / "text_c10" / sp.folder
        class_images.mkdir(parents=True)
        class_text.mkdir(parents=True)
        # CUB's official split puts about half of each class in train
        official_rng = np.random.default_rng([cfg.seed, _SPLIT, sp.class_id])
        half = math.ceil(cfg.images_per_class / 2)
        official_train = {int(k) for k in official_rng.choice(cfg.images_per_class, half, False)}
        for k in range(cfg.images_per_class):
            image_id = (sp.class_id - 1) * cfg.images_per_class + k + 1
            stem = f"{sp.name}_{k + 1:04d}_{image_id}"
            rng = np.random.default_rng([cfg.seed, _IMAGE, image_id])
            canvas = synth_birds.draw_background(
                synth_birds.image_size(cfg.min_side, cfg.max_side, rng), rng, cfg.backgrounds
            )
            bbox, _ = synth_birds.draw_bird(canvas, sp, rng, cfg.facing)
            canvas.save(class_images / f"{stem}.jpg", quality=JPEG_QUALITY, subsampling=0)
            captions = synth_text.write_captions(
                sp.traits,
                np.random.default_rng([cfg.seed, _CAPTIONS, image_id]),
                CAPTIONS_PER_IMAGE,
            )
            (class_text / f"{stem}.txt").write_text("\n".join(captions) + "\n", encoding="utf-8")
            filename = f"{sp.folder}/{stem}"
            embeddings[filename] = synth_text.embed_captions(
                captions, EMBEDDING_DIM, np.random.default_rng([cfg.seed, _EMBEDDINGS, image_id])
            )
            images.append(_Image(image_id, sp, filename, bbox, k in official_train))
        split = "test" if sp.class_id in test_ids else "train"
        progress(
            f"class {sp.class_id}/{len(species)} {sp.folder} ({split}):"
            f" {cfg.images_per_class} images"
        )

    _write_index_files(cub, species, images)
    counts = {}
    for split in ("train", "test"):
        chosen = [im for im in images if (im.species.class_id in test_ids) == (split == "test")]
        counts[split] = len(chosen)
        folder = birds / split
        folder.mkdir(parents=True)
        _dump(folder / "filenames.pickle", [im.filename for im in chosen])
        _dump(folder / "class_info.pickle", [im.species.class_id for im in chosen])
        _dump(folder / EMBEDDINGS_FILE, [embeddings[im.filename] for im in chosen])
    official_train = sum(im.is_train_official for im in images)
    (root / CONFIG_FILE).write_text(_config_record(cfg), encoding="utf-8")
    return SynthSummary(
        root=root,
        species=tuple(species),
        train_classes=tuple(sp.class_id for sp in species if sp.class_id not in test_ids),
        test_classes=tuple(sorted(test_ids)),
        train_images=counts["train"],
        test_images=counts["test"],
        official_train_images=official_train,
        official_test_images=len(images) - official_train,
    )


def _write_index_files(cub: Path, species: list[synth_birds.Species], images: list[_Image]) -> None:
    """CUB's five index files: `id value...` rows, boxes as floats like "60.0"."""
    tables = {
        "classes.txt": [f"{sp.class_id} {sp.folder}" for sp in species],
        "images.txt": [f"{im.image_id} {im.filename}.jpg" for im in images],
        "bounding_boxes.txt": [
            f"{im.image_id} " + " ".join(f"{float(v):.1f}" for v in im.bbox) for im in images
        ],
        "image_class_labels.txt": [f"{im.image_id} {im.species.class_id}" for im in images],
        "train_test_split.txt": [f"{im.image_id} {int(im.is_train_official)}" for im in images],
    }
    for name, rows in tables.items():
        (cub / name).write_text("\n".join(rows) + "\n", encoding="utf-8")


def _dump(path: Path, value) -> None:
    with path.open("wb") as f:
        pickle.dump(value, f, protocol=PICKLE_PROTOCOL)
