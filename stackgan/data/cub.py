"""Reader of the CUB-200-2011 + StackGAN `birds/` layout on disk.

Pure Python (no TensorFlow), used by every component that touches raw data. Layout::

    ROOT/CUB_200_2011/images/<NNN.Class>/<Name_XXXX_id>.jpg
    ROOT/CUB_200_2011/{images,bounding_boxes,image_class_labels,train_test_split,classes}.txt
    ROOT/birds/{train,test}/filenames.pickle, class_info.pickle
    ROOT/birds/{train,test}/char-CNN-RNN-embeddings.pickle   (optional)
    ROOT/birds/text_c10/<NNN.Class>/<Name_XXXX_id>.txt        (optional, 10 captions each)

Index files are joined on the image id, never on line order: a row missing from one file, a
duplicated id or path, a line that is not UTF-8 or is garbled is an error that names the file and
the line. Bounding boxes are checked only for the images a split uses. Images named by a split
list but absent on disk (a partial download) are counted per split; `strict=True` makes that an
error instead.
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

from stackgan.errors import UserError

SPLITS = ("train", "test")
EMBEDDINGS_FILE = "char-CNN-RNN-embeddings.pickle"
# an entry of birds/{train,test}/filenames.pickle: "002.Laysan_Albatross/Laysan_Albatross_0002_1027"
_SPLIT_NAME = re.compile(r"\d+\.[^/]+/[^/]+")


class CubFormatError(UserError, ValueError):
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


@dataclasses.dataclass(frozen=True)
class _Index:
    """The rows of one CUB index file keyed by image id, and the line each came from."""

    path: Path
    rows: dict[int, tuple]
    lines: dict[int, int]

    def where(self, image_id: int) -> str:
        return f"{self.path}:{self.lines[image_id]}"


def _text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a UTF-8 file; bytes that are not UTF-8 name the file and line."""
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise CubFormatError(
                    f"{path}:{lineno}: not UTF-8 (byte {raw[e.start]:#04x} at column"
                    f" {e.start + 1}): {raw.rstrip()!r}; re-save the file as UTF-8"
                ) from None


def _read_rows(
    path: Path, fields: int, kinds: Sequence[type], unique_value: bool = False
) -> _Index:
    """Rows `id value...` of a CUB index file, keyed by id, with the file and line in errors.
    `unique_value`: the (single) value must not repeat either (images.txt's paths)."""
    if not path.is_file():
        raise CubFormatError(f"{path}: file not found")
    rows: dict[int, tuple] = {}
    lines: dict[int, int] = {}
    first_of_value: dict[tuple, int] = {}
    for lineno, line in _text_lines(path):
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
        if unique_value and values in first_of_value:
            first = first_of_value[values]
            raise CubFormatError(
                f"{path}:{lineno}: {values[0]} is listed twice, for image {image_id} and at line"
                f" {lines[first]} for image {first}; keep one row per image"
            )
        rows[image_id], lines[image_id] = values, lineno
        first_of_value.setdefault(values, image_id)
    return _Index(path, rows, lines)


def _load_pickle(path: Path):
    # The original release was pickled by Python 2: latin1 decodes its byte strings.
    try:
        with path.open("rb") as f:
            return pickle.load(f, encoding="latin1")
    except (pickle.UnpicklingError, EOFError, AttributeError, ValueError, ImportError) as e:
        # ImportError: pickled objects of a library not installed (torch tensors, say)
        raise CubFormatError(f"{path}: not a readable pickle ({e})") from None


def _refuse_duplicates(path: Path, names: list[str]) -> None:
    rows: dict[str, list[int]] = {}
    for row, name in enumerate(names):
        rows.setdefault(name, []).append(row)
    repeated = {name: r for name, r in rows.items() if len(r) > 1}
    if repeated:
        shown = "; ".join(
            f"{name} at entries {', '.join(map(str, r))}" for name, r in list(repeated.items())[:3]
        )
        raise CubFormatError(
            f"{path}: {len(repeated)} names are listed more than once ({shown}); an image may"
            " appear once"
        )


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
        if split == "stackgan":
            self._refuse_overlap()
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
        images = _read_rows(d / "images.txt", 2, (str,), unique_value=True)
        self.paths = {i: v[0] for i, v in images.rows.items()}
        self._box_index = _read_rows(d / "bounding_boxes.txt", 5, (float,) * 4)
        self.boxes = {i: BoundingBox(*v) for i, v in self._box_index.rows.items()}
        labels = _read_rows(d / "image_class_labels.txt", 2, (int,))
        self.labels = {i: v[0] for i, v in labels.rows.items()}
        splits = _read_rows(d / "train_test_split.txt", 2, (int,))
        self.is_train = {i: v[0] for i, v in splits.rows.items()}
        classes = _read_rows(d / "classes.txt", 2, (str,))
        self.class_names = {i: v[0] for i, v in classes.rows.items()}
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
        _refuse_duplicates(path, names)
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

    def _check_box(self, image_id: int, name: str) -> None:
        box = self.boxes[image_id]
        # "nan" and "inf" parse as floats; only finite boxes of positive size are usable
        finite = all(math.isfinite(v) for v in dataclasses.astuple(box))
        if not finite or box.width <= 0 or box.height <= 0:
            raise CubFormatError(
                f"{self._box_index.where(image_id)}: image {image_id} ({name}, in a split) has an"
                f" empty or non-finite box {box}; fix the row or remove the image from the split"
            )

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
            self._check_box(image_id, name)
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

    def check_embeddings(self, captions_per_image: int, dim: int) -> None:
        """Loads each split's embeddings pickle (one at a time) and checks it against its
        filenames.pickle: at most one row per name, each `captions_per_image` x `dim`. A file
        with fewer rows is accepted: the images past its end are skipped and reported."""
        for split in SPLITS:
            path = self.birds_dir / split / EMBEDDINGS_FILE
            names_path = self.birds_dir / split / "filenames.pickle"
            if not (path.is_file() and names_path.is_file()):
                continue
            names = len(_load_pickle(names_path))
            shape = load_embeddings(path).shape
            if shape[0] > names or shape[1:] != (captions_per_image, dim):
                raise CubFormatError(
                    f"{path}: shape {shape}, expected ({names}, {captions_per_image}, {dim}):"
                    f" one row of {captions_per_image} x {dim} caption embeddings for each of the"
                    f" {names} names in {names_path}"
                )

    def _refuse_overlap(self) -> None:
        train, test = (
            {e.filename for e in self._splits[s]} | set(self.reports[s].missing) for s in SPLITS
        )
        both = sorted(train & test)
        if both:
            raise CubFormatError(
                f"{self.birds_dir}/{{train,test}}/filenames.pickle: {len(both)} images are in both"
                f" splits (first: {both[0]}); an image belongs to one split"
            )

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


@dataclasses.dataclass(frozen=True)
class CaptionFile:
    captions: list[str]  # the non-empty lines, stripped
    not_utf8: tuple[int, ...]  # numbers of the lines whose bad bytes became U+FFFD


def read_caption_file(path: Path) -> CaptionFile:
    """A text_c10 file: its non-empty lines (UTF-8; bytes that are not are replaced with U+FFFD)
    and the numbers of the lines where that happened, for the preprocessing report."""
    if not path.is_file():
        raise CubFormatError(f"{path}: captions file not found")
    captions, not_utf8 = [], []
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                line = raw.decode("utf-8", errors="replace")
                not_utf8.append(lineno)
            if line.strip():
                captions.append(line.strip())
    return CaptionFile(captions, tuple(not_utf8))


def read_captions(path: Path) -> list[str]:
    """The non-empty lines of a text_c10 file (UTF-8; undecodable bytes are replaced)."""
    return read_caption_file(path).captions


_EMBEDDINGS_SHAPE = "an array (or list of arrays) of shape (images, captions, dim)"


def load_embeddings(path: Path) -> np.ndarray:
    """A char-CNN-RNN-embeddings.pickle as float32 (images, captions, dim); anything else
    raises CubFormatError naming the file and the shape expected."""
    data = _load_pickle(path)
    if isinstance(data, dict):
        keys = ", ".join(map(repr, list(data)[:3]))
        raise CubFormatError(
            f"{path}: holds a dict (keys {keys}, ...), expected {_EMBEDDINGS_SHAPE}"
            " with rows in the order of filenames.pickle"
        )
    try:
        array = np.asarray(data, dtype=np.float32)
    except (ValueError, TypeError) as e:
        raise CubFormatError(f"{path}: not {_EMBEDDINGS_SHAPE} ({e})") from None
    if array.ndim != 3:
        raise CubFormatError(f"{path}: shape {array.shape}, expected {_EMBEDDINGS_SHAPE}")
    return array


class EmbeddingStore:
    """Loads each embeddings pickle once and hands out one image's 10 x D array."""

    def __init__(self) -> None:
        self._cache: dict[Path, np.ndarray] = {}

    def get(self, ref: tuple[Path, int]) -> np.ndarray:
        path, row = ref
        if path not in self._cache:
            self._cache[path] = load_embeddings(path)
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
