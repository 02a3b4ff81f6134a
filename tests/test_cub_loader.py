"""The CUB layout loader on the real sample (../shared/cub-sample), on broken copies of it, and
on the synthetic dataset. No TensorFlow here."""

from __future__ import annotations

import os
import pickle
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stackgan.data.cub import (
    BoundingBox,
    CubDataset,
    CubFormatError,
    EmbeddingStore,
    MissingImagesError,
    crop_box,
    load_rgb_crop,
    read_caption_file,
    read_captions,
)

SAMPLE_TRAIN_CLASSES = {2, 3, 5, 7, 10}  # the sample README: StackGAN train classes
SAMPLE_TEST_CLASSES = {1, 4, 6, 8, 9}


def _by_id(dataset: CubDataset) -> dict:
    return {ex.image_id: ex for _, ex in dataset}


def _editable_copy(sample: Path, dest: Path, *, captions: bool = True) -> Path:
    """The sample's metadata copied (to be broken), its images and captions linked."""
    (dest / "CUB_200_2011").mkdir(parents=True)
    for txt in (sample / "CUB_200_2011").glob("*.txt"):
        shutil.copy(txt, dest / "CUB_200_2011" / txt.name)
    os.symlink(sample / "CUB_200_2011" / "images", dest / "CUB_200_2011" / "images")
    for split in ("train", "test"):
        shutil.copytree(sample / "birds" / split, dest / "birds" / split)
    if captions:
        os.symlink(sample / "birds" / "text_c10", dest / "birds" / "text_c10")
    return dest


def _edit_lines(path: Path, edit) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")


# -- the real sample -------------------------------------------------------------------------
def test_stackgan_split_of_the_sample_counts_present_and_missing_images(cub_sample_root):
    data = CubDataset(cub_sample_root)
    train, test = data.split("train"), data.split("test")
    assert (len(train), len(test)) == (50, 51)
    assert {ex.class_id for ex in train} == SAMPLE_TRAIN_CLASSES
    assert {ex.class_id for ex in test} == SAMPLE_TEST_CLASSES
    # the split lists name all 11,788 CUB images; the sample ships 101
    assert (data.reports["train"].listed, data.reports["train"].missing_count) == (8855, 8805)
    assert (data.reports["test"].listed, data.reports["test"].missing_count) == (2933, 2882)
    assert "8805 of 8855 listed are missing" in data.summary()
    assert data.num_classes == 200


def test_official_split_of_the_sample(cub_sample_root):
    data = CubDataset(cub_sample_root, split="official", strict=True)
    train, test = data.split("train"), data.split("test")
    assert (len(train), len(test)) == (62, 39)
    assert data.reports["train"].missing_count == data.reports["test"].missing_count == 0
    # the official split is within classes: all ten classes on both sides
    assert {ex.class_id for ex in train} == {ex.class_id for ex in test} == set(range(1, 11))


def test_strict_mode_refuses_a_partial_download(cub_sample_root):
    with pytest.raises(MissingImagesError, match=r"images listed but absent"):
        CubDataset(cub_sample_root, strict=True)


def test_an_example_carries_its_metadata_and_captions(cub_sample_root):
    data = CubDataset(cub_sample_root)
    ex = _by_id(data)[2]
    assert ex.filename == "001.Black_footed_Albatross/Black_Footed_Albatross_0009_34"
    assert ex.image_path.is_file() and ex.image_path.suffix == ".jpg"
    assert (ex.class_id, ex.label, ex.class_name) == (1, 0, "001.Black_footed_Albatross")
    assert ex.bbox == BoundingBox(139.0, 30.0, 153.0, 264.0)
    assert ex.embedding_ref is None  # the sample ships no embeddings
    captions = read_captions(ex.caption_path)
    assert len(captions) == 10 and all(c == c.strip() and c for c in captions)
    laysan = _by_id(data)[data.id_by_filename["002.Laysan_Albatross/Laysan_Albatross_0002_1027"]]
    assert read_captions(laysan.caption_path)[0] == (
        "a bird with a very long wing span and a long pointed beak."
    )


# Expected crops worked by hand from bounding_boxes.txt and the image sizes with REFERENCE.md:
# cx = int((2x + w) / 2), cy = int((2y + h) / 2), R = int(0.75 * max(w, h)),
# box = (max(0, cx-R), max(0, cy-R), min(W, cx+R), min(H, cy+R)).
#   id 9   (500x416) x=112 y=76 w=221 h=189: cx=int(445/2)=222, cy=int(341/2)=170,
#          R=int(165.75)=165 -> (57, 5, 387, 335), inside the image on all sides
#   id 129 (500x332) x=206 y=107 w=140 h=115: cx=int(552/2)=276, cy=int(329/2)=164,
#          R=int(105.0)=105 -> (171, 59, 381, 269)
#   id 2   (500x336) x=139 y=30 w=153 h=264: cx=int(431/2)=215, cy=int(324/2)=162,
#          R=int(198.0)=198 -> (17, 0, 413, 336): clipped at the top and bottom
#   id 379 (500x323) x=0 y=10 w=495 h=312 (box touches the left border): cx=int(495/2)=247,
#          cy=int(332/2)=166, R=int(371.25)=371 -> (0, 0, 500, 323): the whole image
#   id 448 (500x333, grayscale) x=47 y=26 w=377 h=267: cx=int(471/2)=235, cy=int(319/2)=159,
#          R=int(282.75)=282 -> (0, 0, 500, 333)
HAND_CROPS = {
    9: (57, 5, 387, 335),
    129: (171, 59, 381, 269),
    2: (17, 0, 413, 336),
    379: (0, 0, 500, 323),
    448: (0, 0, 500, 333),
}


@pytest.mark.parametrize("image_id", sorted(HAND_CROPS))
def test_crop_box_matches_the_hand_computation(cub_sample_root, image_id):
    ex = _by_id(CubDataset(cub_sample_root, split="official"))[image_id]
    with Image.open(ex.image_path) as img:
        assert crop_box(ex.bbox, img.width, img.height) == HAND_CROPS[image_id]
        expected = np.asarray(img.convert("RGB").crop(HAND_CROPS[image_id]))
    np.testing.assert_array_equal(np.asarray(load_rgb_crop(ex)), expected)


def test_grayscale_image_comes_out_rgb(cub_sample_root):
    ex = _by_id(CubDataset(cub_sample_root, split="official"))[448]
    with Image.open(ex.image_path) as img:
        assert img.mode == "L"
    crop = load_rgb_crop(ex)
    assert crop.mode == "RGB" and crop.size == (500, 333)
    pixels = np.asarray(crop)
    assert np.array_equal(pixels[..., 0], pixels[..., 1])
    assert np.array_equal(pixels[..., 1], pixels[..., 2])


# -- broken copies: every error names the file and, for a bad row, the line ------------------
def _drop_id(ident: str):
    return lambda lines: [ln for ln in lines if ln.split()[0] != ident]


def _replace_line(number: int, text: str):
    return lambda lines: [text if i == number else ln for i, ln in enumerate(lines, start=1)]


def _repeat_path(source: int, target: int):
    """images.txt's line `target` gets the path of line `source` (its id stays)."""
    return lambda lines: [
        f"{ln.split()[0]} {lines[source - 1].split()[1]}" if i == target else ln
        for i, ln in enumerate(lines, start=1)
    ]


BROKEN_METADATA = [
    ("bounding_boxes.txt", _drop_id("448"), r"bounding_boxes\.txt: no row for image id 448"),
    ("bounding_boxes.txt", _replace_line(3, "3 14.0 abc 388.0 186.0"), r"bounding_boxes\.txt:3: "),
    (
        "bounding_boxes.txt",
        _replace_line(4, "4 112.0 90.0 255.0"),
        r"bounding_boxes\.txt:4: expected 5",
    ),
    (
        "bounding_boxes.txt",
        _replace_line(5, "5 10.0 10.0 0.0 50.0"),
        r"bounding_boxes\.txt:5: image 5 \(001\.Black_footed_Albatross/.*in a split\) has an empty",
    ),
    (
        "bounding_boxes.txt",
        _replace_line(6, "6 nan 10.0 40.0 50.0"),
        r"bounding_boxes\.txt:6: image 6 .* non-finite box",
    ),
    ("images.txt", _replace_line(5, "5"), r"images\.txt:5: expected 2 fields"),
    (
        "images.txt",
        _repeat_path(3, 7),
        r"images\.txt:7: 001\.Black_footed_Albatross/\S+\.jpg is listed twice, for image 7 and"
        r" at line 3 for image 3",
    ),
    (
        "image_class_labels.txt",
        _replace_line(7, "6 1"),
        r"image_class_labels\.txt:7: duplicate id 6",
    ),
    ("image_class_labels.txt", _replace_line(1, "1 300"), r"image_class_labels\.txt.*class 300"),
    ("image_class_labels.txt", _drop_id("2"), r"image_class_labels\.txt: no row for image id 2"),
    ("train_test_split.txt", _replace_line(2, "2 yes"), r"train_test_split\.txt:2: "),
    ("classes.txt", _replace_line(9, "nine 009.Brewer_Blackbird"), r"classes\.txt:9: "),
]


@pytest.mark.parametrize(
    "name, edit, message",
    BROKEN_METADATA,
    ids=[f"{m[0]}-{i}" for i, m in enumerate(BROKEN_METADATA)],
)
def test_broken_index_file_is_reported_with_file_and_line(
    cub_sample_root, tmp_path, name, edit, message
):
    root = _editable_copy(cub_sample_root, tmp_path / "cub")
    _edit_lines(root / "CUB_200_2011" / name, edit)
    with pytest.raises(CubFormatError, match=message):
        CubDataset(root)


def test_missing_index_file_is_named(cub_sample_root, tmp_path):
    root = _editable_copy(cub_sample_root, tmp_path / "cub")
    (root / "CUB_200_2011" / "classes.txt").unlink()
    with pytest.raises(CubFormatError, match=re.escape(str(root / "CUB_200_2011" / "classes.txt"))):
        CubDataset(root)


def test_wrong_root_is_named(tmp_path):
    with pytest.raises(CubFormatError, match=r"CUB_200_2011: not a directory"):
        CubDataset(tmp_path)


def test_truncated_split_pickle_is_named(cub_sample_root, tmp_path):
    root = _editable_copy(cub_sample_root, tmp_path / "cub")
    names = root / "birds" / "test" / "filenames.pickle"
    names.write_bytes(names.read_bytes()[:1000])  # an interrupted download
    with pytest.raises(CubFormatError, match=r"test/filenames\.pickle: not a readable pickle"):
        CubDataset(root)


@pytest.mark.parametrize(
    "class_info, message",
    [([4] * 2933, r"class_info\.pickle: class 4 disagrees"), ([1, 4], r"2 entries but")],
)
def test_class_info_that_disagrees_with_filenames_is_named(
    cub_sample_root, tmp_path, class_info, message
):
    root = _editable_copy(cub_sample_root, tmp_path / "cub")
    with (root / "birds" / "test" / "class_info.pickle").open("wb") as f:
        pickle.dump(class_info, f)
    with pytest.raises(CubFormatError, match=message):
        CubDataset(root)


def test_split_names_that_are_not_cub_filenames_are_named(cub_sample_root, tmp_path):
    root = _editable_copy(cub_sample_root, tmp_path / "cub")
    with (root / "birds" / "train" / "filenames.pickle").open("wb") as f:
        pickle.dump(["Black_Footed_Albatross_0009_34"], f)
    with (root / "birds" / "train" / "class_info.pickle").open("wb") as f:
        pickle.dump([1], f)
    with pytest.raises(CubFormatError, match=r"train/filenames\.pickle"):
        CubDataset(root)


@pytest.mark.parametrize("name", ["images.txt", "bounding_boxes.txt"])
def test_bytes_that_are_not_utf8_name_the_file_and_line(cub_sample_root, tmp_path, name):
    root = _editable_copy(cub_sample_root, tmp_path / "cub")
    path = root / "CUB_200_2011" / name
    lines = path.read_bytes().splitlines(keepends=True)
    lines[3] = lines[3].replace(b"4 ", b"4 \xe9\xff", 1)  # Latin-1 bytes in a UTF-8 file
    path.write_bytes(b"".join(lines))
    with pytest.raises(
        CubFormatError, match=rf"{re.escape(name)}:4: not UTF-8 \(byte 0xe9 at column 3\)"
    ):
        CubDataset(root)


def test_a_bad_box_of_an_image_in_no_split_does_not_matter(cub_sample_root, tmp_path):
    # an image CUB's index files know but neither StackGAN split lists
    root = _editable_copy(cub_sample_root, tmp_path / "cub")
    extra = {
        "images.txt": "99999 200.Common_Yellowthroat/Common_Yellowthroat_9999_99999.jpg",
        "bounding_boxes.txt": "99999 nan 10.0 0.0 0.0",
        "image_class_labels.txt": "99999 200",
        "train_test_split.txt": "99999 1",
    }
    for name, row in extra.items():
        _edit_lines(root / "CUB_200_2011" / name, lambda lines, row=row: [*lines, row])
    data = CubDataset(root)
    assert (len(data.split("train")), len(data.split("test"))) == (50, 51)
    # (a bad box of an image a split uses still fails: BROKEN_METADATA, ids 5 and 6)


def test_duplicate_names_in_a_split_pickle_are_named(cub_sample_root, tmp_path):
    root = _editable_copy(cub_sample_root, tmp_path / "cub")
    path = root / "birds" / "test" / "filenames.pickle"
    names = pickle.loads(path.read_bytes())
    names[5] = names[2]
    path.write_bytes(pickle.dumps(names))
    (root / "birds" / "test" / "class_info.pickle").unlink()
    with pytest.raises(
        CubFormatError,
        match=rf"test/filenames\.pickle: 1 names are listed more than once \({re.escape(names[2])}"
        r" at entries 2, 5\)",
    ):
        CubDataset(root)


def test_an_image_in_both_splits_is_named(cub_sample_root, tmp_path):
    root = _editable_copy(cub_sample_root, tmp_path / "cub")
    test_names = pickle.loads((root / "birds" / "test" / "filenames.pickle").read_bytes())
    path = root / "birds" / "train" / "filenames.pickle"
    path.write_bytes(pickle.dumps([*pickle.loads(path.read_bytes()), test_names[0]]))
    (root / "birds" / "train" / "class_info.pickle").unlink()
    with pytest.raises(
        CubFormatError,
        match=rf"1 images are in both splits \(first: {re.escape(test_names[0])}\)",
    ):
        CubDataset(root)


def test_captions_that_are_not_utf8_are_read_and_their_lines_named(tmp_path):
    path = tmp_path / "bird.txt"
    path.write_bytes(b"a small bird\n\na caf\xe9-coloured bird\nplain\n")
    read = read_caption_file(path)
    assert read.captions == ["a small bird", "a caf\ufffd-coloured bird", "plain"]
    assert read.not_utf8 == (3,)


# -- optional parts --------------------------------------------------------------------------
def test_captions_are_optional(cub_sample_root, tmp_path):
    root = _editable_copy(cub_sample_root, tmp_path / "cub", captions=False)
    data = CubDataset(root)
    assert not data.has_captions
    assert len(data.split("train")) == 50
    assert all(ex.caption_path is None for _, ex in data)
    assert "captions: no" in data.summary()


def test_cub_download_without_birds_folder_loads_with_the_official_split(cub_sample_root, tmp_path):
    root = tmp_path / "cub"
    (root / "CUB_200_2011").mkdir(parents=True)
    for txt in (cub_sample_root / "CUB_200_2011").glob("*.txt"):
        shutil.copy(txt, root / "CUB_200_2011" / txt.name)
    os.symlink(cub_sample_root / "CUB_200_2011" / "images", root / "CUB_200_2011" / "images")
    data = CubDataset(root, split="official")
    assert (len(data.split("train")), len(data.split("test"))) == (62, 39)
    assert not data.has_embeddings and not data.has_captions
    with pytest.raises(CubFormatError, match=r"birds/train/filenames\.pickle: file not found"):
        CubDataset(root)


# -- the synthetic dataset through the same loader -------------------------------------------
def test_synthetic_dataset_loads_with_embeddings_and_captions(synth_root):
    # config.tiny().synth: 4 classes x 4 images, test_class_fraction 0.25 -> 1 test class
    data = CubDataset(synth_root, strict=True)
    assert data.num_classes == 4 and data.has_embeddings and data.has_captions
    assert (len(data.split("train")), len(data.split("test"))) == (12, 4)
    assert len({ex.class_id for ex in data.split("test")}) == 1
    store = EmbeddingStore()
    for _, ex in data:
        emb = store.get(ex.embedding_ref)
        assert emb.shape == (10, 1024) and emb.dtype == np.float32
        assert len(read_captions(ex.caption_path)) == 10
        crop = load_rgb_crop(ex)
        left, top, right, bottom = crop_box(ex.bbox, *Image.open(ex.image_path).size)
        assert crop.size == (right - left, bottom - top) and crop.mode == "RGB"
        # the crop holds the whole bird box
        assert left <= ex.bbox.x and ex.bbox.x + ex.bbox.width <= right
        assert top <= ex.bbox.y and ex.bbox.y + ex.bbox.height <= bottom
    official = CubDataset(synth_root, split="official", strict=True)
    # half of each class in train, as CUB's train_test_split.txt
    assert (len(official.split("train")), len(official.split("test"))) == (8, 8)
    # official-split examples still find their embeddings in birds/{train,test}
    assert all(ex.embedding_ref is not None for _, ex in official)


def test_embeddings_are_optional_and_a_short_embeddings_file_is_named(synth_root, tmp_path):
    root = shutil.copytree(synth_root, tmp_path / "synth")
    short = root / "birds" / "test" / "char-CNN-RNN-embeddings.pickle"
    with short.open("rb") as f:
        rows = pickle.load(f)
    with short.open("wb") as f:
        pickle.dump(rows[:1], f, protocol=2)
    last = CubDataset(root).split("test")[-1]
    with pytest.raises(CubFormatError, match=r"test/char-CNN-RNN-embeddings\.pickle: has 1 rows"):
        EmbeddingStore().get(last.embedding_ref)
    for split in ("train", "test"):
        (root / "birds" / split / "char-CNN-RNN-embeddings.pickle").unlink()
    data = CubDataset(root)
    assert not data.has_embeddings
    assert all(ex.embedding_ref is None for _, ex in data)
    assert len(data.split("train")) == 12


class _Python2Pickler(pickle._Pickler):
    """Pickles as Python 2 did the StackGAN release: byte strings (a numpy array's data) as
    Python 2's `str` (BINSTRING), which Python 3 decodes only with an `encoding`."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_python2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = _save_python2_str


def _dump_as_python2(value, path: Path) -> None:
    with path.open("wb") as f:
        _Python2Pickler(f, protocol=2).dump(value)
    # Python 2's numpy named its array module numpy.core, not numpy._core
    path.write_bytes(path.read_bytes().replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))


def test_the_release_s_python2_pickles_are_read(synth_root, tmp_path):
    root = shutil.copytree(synth_root, tmp_path / "synth")
    expected = {}
    for split in ("train", "test"):
        folder = root / "birds" / split
        with (folder / "char-CNN-RNN-embeddings.pickle").open("rb") as f:
            expected[split] = [np.asarray(row) for row in pickle.load(f)]
        with (folder / "filenames.pickle").open("rb") as f:
            names = pickle.load(f)
        # the release: a list of [10, 1024] float32 arrays, and the names as Python 2 str
        _dump_as_python2(expected[split], folder / "char-CNN-RNN-embeddings.pickle")
        _dump_as_python2([n.encode() for n in names], folder / "filenames.pickle")
    release = (root / "birds" / "train" / "char-CNN-RNN-embeddings.pickle").read_bytes()
    with pytest.raises(UnicodeDecodeError):  # what a plain pickle.load makes of such a file
        pickle.loads(release)
    data = CubDataset(root)
    data.check_embeddings(10, 1024)
    store = EmbeddingStore()
    for split in ("train", "test"):
        examples = data.split(split)
        assert len(examples) == len(CubDataset(synth_root).split(split))
        for example in examples:
            path, row = example.embedding_ref
            np.testing.assert_array_equal(store.get(example.embedding_ref), expected[split][row])
