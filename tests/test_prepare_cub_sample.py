"""`stackgan prepare` on the real CUB sample (101 JPEGs, captions, no embeddings)."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from stackgan import cli, config
from stackgan.components.cub_example_gen import convert, generate
from stackgan.data import cub
from stackgan.schemas import conformance, features
from stackgan.tfrecords import example_codec


def read_split(out_dir, split: str) -> list[bytes]:
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(str(out_dir / f"Split-{split}" / "*.gz")))
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


@pytest.fixture(scope="module")
def prepared(cub_sample_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared") / "examples"
    return out, cli.main(["prepare", "--data", str(cub_sample_root), "--out", str(out)])


def _decoded(out, split):
    return {r["image_id"]: r for r in example_codec.decode(read_split(out, split))}


def test_counts_are_the_images_present_in_each_stackgan_split(prepared, capsys):
    out, status = prepared
    assert status == 0
    assert len(read_split(out, "train")) == 50
    assert len(read_split(out, "test")) == 51
    report = json.loads((out / generate.REPORT_NAME).read_text())
    assert report["status"] == "complete"
    assert report["splits"]["train"]["written"] == 50
    assert report["splits"]["test"]["written"] == 51
    # the rest of StackGAN's lists is a partial download: reported, not fatal
    assert report["splits"]["train"]["skipped"] == {"missing_file": 8855 - 50}
    assert report["splits"]["test"]["skipped"] == {"missing_file": 2933 - 51}


def test_classes_follow_the_stackgan_split(prepared):
    out, _ = prepared
    train_classes = {r["class_id"] for r in _decoded(out, "train").values()}
    test_classes = {r["class_id"] for r in _decoded(out, "test").values()}
    assert train_classes == {2, 3, 5, 7, 10}
    assert test_classes == {1, 4, 6, 8, 9}
    for record in _decoded(out, "test").values():
        assert record["label"] == record["class_id"] - 1
        assert record["class_name"].decode().startswith(f"{record['class_id']:03d}.")
        assert len(record["captions"]) == 10


def test_every_example_conforms_to_the_schema(prepared):
    out, _ = prepared
    for split in ("train", "test"):
        records = read_split(out, split)
        assert conformance.conformance_errors(records, features.WITHOUT_EMBEDDINGS) == []
    assert (out / "schema.pbtxt").read_text() == features.SCHEMA_PATH.read_text()


def _reference_crops(root, image_id: int):
    """The crop formula of REFERENCE.md written out independently, on the raw index files."""
    cub = root / "CUB_200_2011"
    path = dict(line.split() for line in (cub / "images.txt").read_text().splitlines())[
        str(image_id)
    ]
    boxes = {
        int(line.split()[0]): [float(v) for v in line.split()[1:]]
        for line in (cub / "bounding_boxes.txt").read_text().splitlines()
    }
    x, y, w, h = boxes[image_id]
    pixels = np.asarray(Image.open(cub / "images" / path).convert("RGB"))
    height, width = pixels.shape[:2]
    r = int(0.75 * max(w, h))
    cx, cy = int((2 * x + w) / 2), int((2 * y + h) / 2)
    crop = pixels[max(0, cy - r) : min(height, cy + r), max(0, cx - r) : min(width, cx + r)]
    high = Image.fromarray(crop).resize((304, 304), Image.BICUBIC)
    return np.asarray(high), np.asarray(high.resize((76, 76), Image.BICUBIC)), crop.shape


@pytest.mark.parametrize("image_id", [1, 2])
def test_stored_crops_match_an_independent_reference(prepared, cub_sample_root, image_id):
    out, _ = prepared
    record = _decoded(out, "test")[image_id]  # class 001 is a StackGAN test class
    want_high, want_low, crop_shape = _reference_crops(cub_sample_root, image_id)
    low = np.asarray(Image.open(io.BytesIO(record["image_low"]))).astype(int)
    high = np.asarray(Image.open(io.BytesIO(record["image_high"]))).astype(int)
    assert low.shape == (76, 76, 3) and high.shape == (304, 304, 3)
    # stored as JPEG q95 4:4:4 (the default encoding): a small, bounded loss
    for stored, want in ((low, want_low), (high, want_high)):
        assert np.abs(stored - want).mean() < 2.5
        assert np.abs(stored - want).max() <= 40
    # image 1's crop square (R = 243 around (222, 179)) runs past three edges of the 500x335
    # image: the crop is clipped, not square, and resized to a square as the original does
    if image_id == 1:
        assert crop_shape[0] != crop_shape[1]


def test_lossless_encoding_reproduces_the_reference_exactly(cub_sample_root):
    dataset = cub.CubDataset(cub_sample_root)
    example = next(e for e in dataset.split("test") if e.image_id == 1)
    data = config.paper().replace(data={"image_encoding": "png"}).data
    outcome = convert.convert_example(example, data, None)
    (record,) = example_codec.decode([outcome.example])
    want_high, want_low, _ = _reference_crops(cub_sample_root, 1)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(record["image_low"]))), want_low)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(record["image_high"]))), want_high)


def test_grayscale_jpeg_is_converted_and_reported(prepared):
    out, _ = prepared
    record = _decoded(out, "test")[448]
    pixels = np.asarray(Image.open(io.BytesIO(record["image_low"]))).astype(int)
    assert pixels.shape == (76, 76, 3)
    # grey in, grey out (up to JPEG's YCbCr rounding)
    assert np.abs(pixels[..., 0] - pixels[..., 1]).max() <= 2
    assert np.abs(pixels[..., 1] - pixels[..., 2]).max() <= 2
    report = json.loads((out / generate.REPORT_NAME).read_text())
    converted = [i for i in report["incidents"] if i["kind"] == "converted"]
    assert [(i["image_id"], i["reason"]) for i in converted] == [(448, "grayscale")]
    assert report["splits"]["test"]["converted"] == {"grayscale": 1}


def test_set_data_split_official_prepares_cub_s_own_split(cub_sample_root, tmp_path, capsys):
    out = tmp_path / "official"
    argv = ["prepare", "--data", str(cub_sample_root), "--out", str(out), "--set",
            "data.split=official"]  # fmt: skip
    assert cli.main(argv) == 0
    train, test = _decoded(out, "train"), _decoded(out, "test")
    # train_test_split.txt: within classes, all ten on both sides, 62 / 39 of the sample
    assert (len(train), len(test)) == (62, 39)
    assert {r["class_id"] for r in train.values()} == set(range(1, 11))
    report = json.loads((out / generate.REPORT_NAME).read_text())
    assert report["splits"]["train"]["skipped"] == {}  # the sample lists only its own images


def test_split_flag_and_set_data_split_that_disagree_are_refused_in_one_line(
    cub_sample_root, tmp_path, capsys
):
    argv = ["prepare", "--data", str(cub_sample_root), "--out", str(tmp_path / "x"),
            "--split", "stackgan", "--set", "data.split=official"]  # fmt: skip
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert err == (
        "stackgan prepare: error: --split stackgan and --set data.split=official disagree;"
        " pass one\n"
    )
    assert not (tmp_path / "x").exists()


def test_strict_data_on_a_partial_download_fails_in_one_line_before_writing(
    cub_sample_root, tmp_path, capsys
):
    out = tmp_path / "strict"
    argv = ["prepare", "--data", str(cub_sample_root), "--out", str(out), "--set",
            "data.strict=true"]  # fmt: skip
    assert cli.main(argv) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and err.startswith("stackgan prepare: error: ")
    assert "images listed but absent: {'train': 8805, 'test': 2882}" in err
    assert not out.exists()
