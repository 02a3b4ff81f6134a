"""One CUB image -> one serialized tf.Example, or the reason it is skipped.

Pure Python (PIL, numpy, tfx_bsl): no Beam, no TensorFlow, so it is cheap to test and to run
in Beam worker processes. The crop and sizes follow the original preprocessing
(../shared/REFERENCE.md): bounding-box crop, bicubic resize to data.high_res_stored, then
bicubic resize of THAT image to data.low_res_stored.
"""

from __future__ import annotations

import dataclasses
import io

from PIL import Image

from stackgan.data import cub
from stackgan.tfrecords import example_codec

# Why a record is skipped (also the Beam counter names, prefixed "skipped_").
MISSING_FILE = "missing_file"  # named by the split (or listed) but not on disk
CORRUPT_IMAGE = "corrupt_image"  # not decodable: truncated, garbage, unknown format
BAD_BOX = "bad_box"  # box outside the image, or a crop of zero pixels
MISSING_CAPTIONS = "missing_captions"
BAD_CAPTIONS = "bad_captions"  # not data.captions_per_image lines
MISSING_EMBEDDING = "missing_embedding"  # the dataset has embeddings, but none for this image
BAD_EMBEDDING = "bad_embedding"  # unreadable row or wrong shape
SKIP_REASONS = (
    MISSING_FILE, CORRUPT_IMAGE, BAD_BOX, MISSING_CAPTIONS, BAD_CAPTIONS, MISSING_EMBEDDING,
    BAD_EMBEDDING,
)  # fmt: skip

# Images that decode fine but are not RGB JPEGs are converted (counter names "converted_...").
GRAYSCALE = "grayscale"
CMYK = "cmyk"
OTHER_MODE = "other_mode"  # palette, RGBA, 16-bit, ...
NOT_JPEG = "not_jpeg"  # e.g. a PNG named .jpg
# captions with bytes that are not UTF-8: kept, those bytes replaced with U+FFFD
NON_UTF8_CAPTIONS = "non_utf8_captions"
CONVERSIONS = (GRAYSCALE, CMYK, OTHER_MODE, NOT_JPEG, NON_UTF8_CAPTIONS)
_GRAYSCALE_MODES = {"1", "L", "LA", "I", "I;16", "F"}

IMAGE_ENCODINGS = ("png", "jpeg", "raw")
# JPEG at quality 95 without chroma subsampling (4:4:4): on the CUB sample's crops, PSNR 42 dB
# and no pixel off by more than 23 levels; PIL's default 4:2:0 smears the birds' coloured edges
# (errors up to 106 levels) to save 20 % (bench/bench_image_encoding.py).
JPEG_QUALITY = 95
# zlib level 1: on these crops 3-4x faster to write than the default 6 and within a few % in size.
PNG_COMPRESS_LEVEL = 1


@dataclasses.dataclass(frozen=True)
class Outcome:
    """Either `example` (serialized) or `skip_reason`; `detail` says what was wrong or done."""

    filename: str
    image_id: int | None
    example: bytes | None = None
    skip_reason: str | None = None
    conversions: tuple[str, ...] = ()
    detail: str = ""


class _Skip(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def encode_image(image: Image.Image, encoding: str) -> bytes:
    """uint8 RGB bytes as PNG, JPEG (quality 95, 4:4:4) or raw row-major HxWx3."""
    if encoding == "raw":
        return image.tobytes()
    buffer = io.BytesIO()
    if encoding == "png":
        image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    elif encoding == "jpeg":
        image.save(buffer, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
    else:
        raise ValueError(f"data.image_encoding must be one of {IMAGE_ENCODINGS}, got {encoding!r}")
    return buffer.getvalue()


def load_rgb(path) -> tuple[Image.Image, tuple[str, ...], str]:
    """The decoded image as RGB, the conversions it needed, and a note on what they were."""
    try:
        with Image.open(path) as opened:
            opened.load()  # decode now: a truncated file fails here, not later
            image, original_format, mode = opened, opened.format, opened.mode
            conversions = []
            if original_format != "JPEG":
                conversions.append(NOT_JPEG)
            if mode == "CMYK":
                conversions.append(CMYK)
            elif mode in _GRAYSCALE_MODES:
                conversions.append(GRAYSCALE)
            elif mode != "RGB":
                conversions.append(OTHER_MODE)
            # load() read the pixels: leaving the `with` closes only the file, so the decoded
            # image itself is kept (a copy cost ~0.1 ms an image)
            rgb = image.convert("RGB") if mode != "RGB" else image
            # Pixels are kept as stored, as the original preprocessing did; dropping the ICC
            # profile and EXIF also keeps PIL from copying them into every encoded crop.
            rgb.info.clear()
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        # OSError covers "cannot identify image file" and "image file is truncated".
        raise _Skip(CORRUPT_IMAGE, f"{path}: {e}") from None
    note = f"{original_format} {mode} -> RGB" if conversions else ""
    return rgb, tuple(conversions), note


def checked_crop(bbox: cub.BoundingBox, width: int, height: int) -> tuple[int, int, int, int]:
    """`cub.crop_box`, refusing a box that misses the image or a crop of zero pixels."""
    if bbox.x >= width or bbox.y >= height or bbox.x + bbox.width <= 0 or bbox.y + bbox.height <= 0:
        raise _Skip(BAD_BOX, f"box {bbox} lies outside the {width}x{height} image")
    left, top, right, bottom = cub.crop_box(bbox, width, height)
    if right <= left or bottom <= top:
        raise _Skip(BAD_BOX, f"box {bbox} gives an empty crop {(left, top, right, bottom)}")
    return left, top, right, bottom


def stored_crops(image: Image.Image, bbox: cub.BoundingBox, high: int, low: int):
    """(high x high, low x low) bicubic resizes of the box crop; low is made from high."""
    cropped = image.crop(checked_crop(bbox, image.width, image.height))
    high_image = cropped.resize((high, high), Image.Resampling.BICUBIC)
    return high_image, high_image.resize((low, low), Image.Resampling.BICUBIC)


def _captions(example: cub.CubExample, count: int) -> tuple[tuple[str, ...], str]:
    """The captions, and a note naming the lines that were not UTF-8 ("" when all were)."""
    if example.caption_path is None or not example.caption_path.is_file():
        raise _Skip(MISSING_CAPTIONS, f"{example.caption_path}: captions file not found")
    read = cub.read_caption_file(example.caption_path)
    if len(read.captions) != count:
        raise _Skip(
            BAD_CAPTIONS, f"{example.caption_path}: {len(read.captions)} captions, expected {count}"
        )
    note = ""
    if read.not_utf8:
        lines = ("line " if len(read.not_utf8) == 1 else "lines ") + ", ".join(
            map(str, read.not_utf8)
        )
        note = f"{example.caption_path}: {lines} not UTF-8, bad bytes replaced with U+FFFD"
    return tuple(read.captions), note


def _embedding(example: cub.CubExample, store: cub.EmbeddingStore, shape: tuple[int, int]):
    if example.embedding_ref is None:
        raise _Skip(MISSING_EMBEDDING, f"{example.filename}: no row in any embeddings pickle")
    try:
        embedding = store.get(example.embedding_ref)
    except cub.CubFormatError as e:
        raise _Skip(BAD_EMBEDDING, str(e)) from None
    if embedding.shape != shape:
        raise _Skip(
            BAD_EMBEDDING,
            f"{example.embedding_ref[0]} row {example.embedding_ref[1]}: shape"
            f" {embedding.shape}, expected {shape}",
        )
    return embedding


def convert_example(
    example: cub.CubExample, data_config, embeddings: cub.EmbeddingStore | None
) -> Outcome:
    """The Example of one image. `embeddings` is None when the dataset has no embeddings (the
    Examples then lack the `embedding` feature); otherwise every image must have its row."""
    try:
        if not example.image_path.is_file():
            raise _Skip(MISSING_FILE, f"{example.image_path}: file not found")
        captions, captions_note = _captions(example, data_config.captions_per_image)
        embedding = None
        if embeddings is not None:
            shape = (data_config.captions_per_image, data_config.embedding_dim)
            embedding = _embedding(example, embeddings, shape)
        image, conversions, note = load_rgb(example.image_path)
        high, low = stored_crops(
            image, example.bbox, data_config.high_res_stored, data_config.low_res_stored
        )
    except _Skip as skip:
        return Outcome(
            example.filename, example.image_id, skip_reason=skip.reason, detail=skip.detail
        )
    record = example_codec.ImageRecord(
        image_id=example.image_id,
        filename=example.filename,
        label=example.label,
        class_id=example.class_id,
        class_name=example.class_name,
        image_high=encode_image(high, data_config.image_encoding),
        image_low=encode_image(low, data_config.image_encoding),
        captions=captions,
        embedding=embedding,
    )
    if captions_note:
        conversions = (*conversions, NON_UTF8_CAPTIONS)
    return Outcome(
        example.filename,
        example.image_id,
        example=example_codec.encode(record),
        conversions=conversions,
        detail="; ".join(n for n in (note, captions_note) if n),
    )


def missing_outcome(filename: str) -> Outcome:
    """A file the split names that the dataset does not have (a partial download)."""
    return Outcome(filename, None, skip_reason=MISSING_FILE, detail=f"{filename}.jpg not on disk")
