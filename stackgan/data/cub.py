"""Reader of the CUB-200-2011 + StackGAN `birds/` layout on disk.

Pure Python (no TensorFlow), used by every component that touches raw data. Layout::

    ROOT/CUB_200_2011/images/<NNN.Class>/<Name_XXXX_id>.jpg
    ROOT/CUB_200_2011/{images,bounding_boxes,image_class_labels,train_test_split,classes}.txt
    ROOT/birds/{train,test}/filenames.pickle, class_info.pickle
    ROOT/birds/{train,test}/char-CNN-RNN-embeddings.pickle   (optional)
    ROOT/birds/text_c10/<NNN.Class>/<Name_XXXX_id>.txt        (optional, 10 captions each)

Index files are joined on the image id, never on line order: a row missing from one file, a
duplicated id or a garbled line is an error that names the file and the line. Images named by a
split list but absent on disk (a partial download) are counted per split; `strict=True` makes
that an error instead.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pickle
import re
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

SPLITS = ("train", "test")
EMBEDDINGS_FILE = "char-CNN-RNN-embeddings.pickle"
# an entry of birds/{train,test}/filenames.pickle: "002.Laysan_Albatross/Laysan_Albatross_0002_1027"
_SPLIT_NAME = re.compile(r"\d+\.[^/]+/[^/]+")


class CubFormatError(ValueError):
    """Raised for missing or malformed metadata; the message names the file (and line)."""


class MissingImagesError(CubFormatError):
    """Raised in strict mode when a split names images that are not on disk."""


@dataclasses.dataclass(frozen=True)
class BoundingBox:
    x: float
    y: float
    width: float
    height: float


@dataclasses.dataclass(frozen=True)
class CubExample:
    image_id: int  # CUB's 1-based image id
    filename: str  # "002.Laysan_Albatross/Laysan_Albatross_0002_1027" (no extension)
    image_path: Path
    class_id: int  # CUB's 1-based class id
    class_name: str  # "002.Laysan_Albatross"
    label: int  # 0-based index of the class among this dataset's classes (class_id - 1)
    bbox: BoundingBox
    caption_path: Path | None  # None when the dataset has no text_c10/
    # (pickle file, row) of this image's 10 x D embeddings; None when no embeddings are known
    embedding_ref: tuple[Path, int] | None


@dataclasses.dataclass(frozen=True)
class SplitReport:
    listed: int  # images the split names
    present: int  # of those, on disk
    missing: tuple[str, ...]  # filenames named but absent

    @property
    def missing_count(self) -> int:
        return len(self.missing)


def crop_box(bbox: BoundingBox, width: int, height: int) -> tuple[int, int, int, int]:
    """StackGAN's crop around a bounding box, as (left, top, right, bottom) pixel bounds.

    cx = int((2x + w) / 2), cy = int((2y + h) / 2), R = int(0.75 * max(w, h)); the crop is
    img[max(0, cy-R):min(H, cy+R), max(0, cx-R):min(W, cx+R)], clipped at the borders (so it
    can be non-square) and resized to a square afterwards.
    """
    r = int(0.75 * max(bbox.width, bbox.height))
    cx = int((2 * bbox.x + bbox.width) / 2)
    cy = int((2 * bbox.y + bbox.height) / 2)
    return max(0, cx - r), max(0, cy - r), min(width, cx + r), min(height, cy + r)


def _read_rows(path: Path, fields: int, kinds: Sequence[type]) -> dict[int, tuple]:
    """Rows `id value...` of a CUB index file, keyed by id, with the file and line in errors."""
    if not path.is_file():
        raise CubFormatError(f"{path}: file not found")
    rows: dict[int, tuple] = {}
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != fields:
                raise CubFormatError(
                    f"{path}:{lineno}: expected {fields} fields, got {len(parts)}: {line.strip()!r}"
                )
            try:
                image_id = int(parts[0])
                values = tuple(kind(v) for kind, v in zip(kinds, parts[1:], strict=True))
            except ValueError as e:
                raise CubFormatError(f"{path}:{lineno}: {e}: {line.strip()!r}") from None
            if image_id in rows:
                raise CubFormatError(f"{path}:{lineno}: duplicate id {image_id}")
            rows[image_id] = values
    return rows


def _load_pickle(path: Path):
    # The original release was pickled by Python 2: latin1 decodes its byte strings.
    try:
        with path.open("rb") as f:
            return pickle.load(f, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError) as e:
        raise CubFormatError(f"{path}: not a readable pickle ({e})") from None


class CubDataset:
    """The dataset under `root`, indexed once; cheap to construct (metadata only)."""

    def __init__(self, root: str | os.PathLike, split: str = "stackgan", strict: bool = False):
        if split not in ("stackgan", "official"):
            raise ValueError(f"split must be 'stackgan' or 'official', got {split!r}")
        self.root = Path(root)
        self.cub_dir = self.root / "CUB_200_2011"
        self.birds_dir = self.root / "birds"
        self.split_source = split
        self.strict = strict
        if not self.cub_dir.is_dir():
            raise CubFormatError(
                f"{self.cub_dir}: not a directory (expected the CUB_200_2011 folder)"
            )
        self._index_cub()
        self._splits: dict[str, list[CubExample]] = {}
        self.reports: dict[str, SplitReport] = {}
        for name in SPLITS:
            self._splits[name], self.reports[name] = self._build_split(name)
        if strict:
            missing = {n: r.missing_count for n, r in self.reports.items() if r.missing_count}
            if missing:
                first = next(r.missing[0] for r in self.reports.values() if r.missing)
                raise MissingImagesError(
                    f"{self.root}: images listed but absent: {missing} (first: {first}.jpg)"
                )

    # -- index files -------------------------------------------------------------------------
    def _index_cub(self) -> None:
        d = self.cub_dir
        self.paths = {i: v[0] for i, v in _read_rows(d / "images.txt", 2, (str,)).items()}
        self.boxes = {
            i: BoundingBox(*v)
            for i, v in _read_rows(d / "bounding_boxes.txt", 5, (float,) * 4).items()
        }
        self.labels = {
            i: v[0] for i, v in _read_rows(d / "image_class_labels.txt", 2, (int,)).items()
        }
        self.is_train = {
            i: v[0] for i, v in _read_rows(d / "train_test_split.txt", 2, (int,)).items()
        }
        self.class_names = {i: v[0] for i, v in _read_rows(d / "classes.txt", 2, (str,)).items()}
        for name, table in (
            ("bounding_boxes.txt", self.boxes),
            ("image_class_labels.txt", self.labels),
            ("train_test_split.txt", self.is_train),
        ):
            absent = sorted(set(self.paths) - set(table))
            if absent:
                raise CubFormatError(
                    f"{d / name}: no row for image id {absent[0]} listed in images.txt"
                    f" ({len(absent)} ids missing)"
                )
        for image_id, class_id in self.labels.items():
            if class_id not in self.class_names:
                raise CubFormatError(
                    f"{d / 'image_class_labels.txt'}: image {image_id} has class {class_id},"
                    f" which classes.txt does not define"
                )
        for image_id, box in self.boxes.items():
            # "nan" and "inf" parse as floats; only finite boxes of positive size are usable
            finite = all(math.isfinite(v) for v in dataclasses.astuple(box))
            if not finite or box.width <= 0 or box.height <= 0:
                raise CubFormatError(
                    f"{d / 'bounding_boxes.txt'}: image {image_id} has an empty or non-finite box {box}"
                )
        # "001.Black_footed_Albatross/Black_Footed_Albatross_0046_18" -> id
        self.id_by_filename = {os.path.splitext(p)[0]: i for i, p in self.paths.items()}

    # -- splits ------------------------------------------------------------------------------
    def _split_filenames(self, split: str) -> list[str]:
        if self.split_source == "official":
            want = 1 if split == "train" else 0
            return [
                os.path.splitext(self.paths[i])[0]
                for i in sorted(self.paths)
                if self.is_train[i] == want
            ]
        path = self.birds_dir / split / "filenames.pickle"
        if not path.is_file():
            raise CubFormatError(f"{path}: file not found (needed for the StackGAN split)")
        names = _load_pickle(path)
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise CubFormatError(f"{path}: expected a list of 'NNN.Class/Name' strings")
        for row, name in enumerate(names):
            if not _SPLIT_NAME.fullmatch(name):
                raise CubFormatError(f"{path}: entry {row} is {name!r}, not 'NNN.Class/Name'")
        class_info = self.birds_dir / split / "class_info.pickle"
        if class_info.is_file():
            classes = _load_pickle(class_info)
            if len(classes) != len(names):
                raise CubFormatError(
                    f"{class_info}: {len(classes)} entries but filenames.pickle has {len(names)}"
                )
            for n, c in zip(names, classes, strict=True):
                if int(n.split(".", 1)[0]) != c:
                    raise CubFormatError(f"{class_info}: class {c} disagrees with {n}")
        return names

    def _embedding_rows(self) -> dict[str, tuple[Path, int]]:
        """filename -> (pickle, row), over both StackGAN split folders that ship embeddings."""
        rows: dict[str, tuple[Path, int]] = {}
        for split in SPLITS:
            emb = self.birds_dir / split / EMBEDDINGS_FILE
            names = self.birds_dir / split / "filenames.pickle"
            if emb.is_file() and names.is_file():
                for row, name in enumerate(_load_pickle(names)):
                    rows[name] = (emb, row)
        return rows

    def _build_split(self, split: str) -> tuple[list[CubExample], SplitReport]:
        names = self._split_filenames(split)
        embedding_rows = self._embedding_rows() if self.has_embeddings else {}
        text_dir = self.birds_dir / "text_c10"
        examples, missing = [], []
        for name in names:
            image_id = self.id_by_filename.get(name)
            # A name the index files do not know is also a partial download: the sample and
            # trimmed copies cut images.txt down to the images they ship.
            image_path = (
                None if image_id is None else self.cub_dir / "images" / self.paths[image_id]
            )
            if image_path is None or not image_path.is_file():
                missing.append(name)
                continue
            class_id = self.labels[image_id]
            examples.append(
                CubExample(
                    image_id=image_id,
                    filename=name,
                    image_path=image_path,
                    class_id=class_id,
                    class_name=self.class_names[class_id],
                    label=class_id - 1,
                    bbox=self.boxes[image_id],
                    caption_path=(text_dir / f"{name}.txt") if text_dir.is_dir() else None,
                    embedding_ref=embedding_rows.get(name),
                )
            )
        return examples, SplitReport(len(names), len(examples), tuple(missing))

    # -- public ------------------------------------------------------------------------------
    @property
    def has_embeddings(self) -> bool:
        return any((self.birds_dir / s / EMBEDDINGS_FILE).is_file() for s in SPLITS)

    @property
    def has_captions(self) -> bool:
        return (self.birds_dir / "text_c10").is_dir()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def split(self, name: str) -> list[CubExample]:
        if name not in self._splits:
            raise KeyError(f"unknown split {name!r}; have {list(self._splits)}")
        return self._splits[name]

    def __iter__(self) -> Iterator[tuple[str, CubExample]]:
        for name, examples in self._splits.items():
            for ex in examples:
                yield name, ex

    def summary(self) -> str:
        lines = [f"{self.root} ({self.split_source} split)"]
        for name, r in self.reports.items():
            classes = len({e.class_id for e in self._splits[name]})
            lines.append(
                f"  {name}: {r.present} images of {classes} classes present,"
                f" {r.missing_count} of {r.listed} listed are missing"
            )
        lines.append(
            f"  captions: {'yes' if self.has_captions else 'no'};"
            f" embeddings: {'yes' if self.has_embeddings else 'no'}"
        )
        return "\n".join(lines)


def read_captions(path: Path) -> list[str]:
    """The non-empty lines of a text_c10 file (UTF-8; undecodable bytes are replaced)."""
    if not path.is_file():
        raise CubFormatError(f"{path}: captions file not found")
    with path.open(encoding="utf-8", errors="replace") as f:
        return [line.strip() for line in f if line.strip()]


class EmbeddingStore:
    """Loads each embeddings pickle once and hands out one image's 10 x D array."""

    def __init__(self) -> None:
        self._cache: dict[Path, np.ndarray] = {}

    def get(self, ref: tuple[Path, int]) -> np.ndarray:
        path, row = ref
        if path not in self._cache:
            data = _load_pickle(path)
            try:
                self._cache[path] = np.asarray(data, dtype=np.float32)
            except ValueError as e:
                raise CubFormatError(f"{path}: embeddings of unequal shapes ({e})") from None
            if self._cache[path].ndim != 3:
                raise CubFormatError(
                    f"{path}: expected (images, captions, dim), got shape {self._cache[path].shape}"
                )
        array = self._cache[path]
        if row >= len(array):
            raise CubFormatError(f"{path}: has {len(array)} rows, row {row} requested")
        return array[row]


def load_rgb_crop(example: CubExample):
    """The bounding-box crop of one image as an RGB PIL image (grayscale/CMYK converted)."""
    from PIL import Image

    with Image.open(example.image_path) as img:
        img = img.convert("RGB")
        return img.crop(crop_box(example.bbox, img.width, img.height))
