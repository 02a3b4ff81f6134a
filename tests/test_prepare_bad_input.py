"""Bad input to the CUB -> Examples conversion: every case is counted, reported and skipped
(or converted), and a run over the limit publishes nothing that looks complete."""

from __future__ import annotations

import dataclasses
import errno
import io
import json
import os
import pickle
import shutil

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing import test_pipeline
from PIL import Image

from stackgan.components.cub_example_gen import convert, generate, transforms
from stackgan.data import cub
from stackgan.schemas import conformance, features
from stackgan.tfrecords import example_codec

FnApiRunner = "FnApiRunner"  # Beam's in-process runner; skips DirectRunner's Prism probe


def _pipeline():
    return beam.Pipeline(runner=FnApiRunner)


def _set_box(root, image_id: int, box: tuple[float, float, float, float]) -> None:
    path = root / "CUB_200_2011" / "bounding_boxes.txt"
    lines = path.read_text().splitlines()
    lines = [
        f"{image_id} {' '.join(map(str, box))}" if line.split()[0] == str(image_id) else line
        for line in lines
    ]
    path.write_text("\n".join(lines) + "\n")


def _resave(path, mode: str, fmt: str) -> None:
    with Image.open(path) as image:
        converted = image.convert(mode)
    converted.save(path, format=fmt)


@pytest.fixture
def bad_root(synth_root, tmp_path):
    """The tiny synthetic dataset (train: 12 images of 3 classes, test: 4 of 1 class) with one
    image per bad-input case. Returns (root, {case: filename})."""
    root = tmp_path / "bad"
    shutil.copytree(synth_root, root)
    dataset = cub.CubDataset(root)
    train, test = dataset.split("train"), dataset.split("test")
    cases = {}

    def mark(case, example):
        cases[case] = example.filename
        return example

    path = mark("truncated", train[0]).image_path
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    mark("garbage", train[1]).image_path.write_bytes(b"not a jpeg at all" * 20)
    _resave(mark("grayscale", train[2]).image_path, "L", "JPEG")
    _resave(mark("cmyk", train[3]).image_path, "CMYK", "JPEG")
    _resave(mark("png_named_jpg", train[4]).image_path, "RGB", "PNG")
    with Image.open(train[5].image_path) as image:
        width = image.width
    _set_box(root, mark("box_outside", train[5]).image_id, (width + 10.0, 5.0, 40.0, 40.0))
    _set_box(root, mark("box_zero_crop", train[6]).image_id, (10.0, 10.0, 1.0, 1.0))
    # the embeddings pickle loses its last row: the last train image has none
    pickle_path = root / "birds" / "train" / cub.EMBEDDINGS_FILE
    rows = pickle.loads(pickle_path.read_bytes())
    pickle_path.write_bytes(pickle.dumps(np.asarray(rows)[:-1]))
    mark("embedding_row_missing", train[-1])
    mark("missing_file", test[0]).image_path.unlink()
    mark("two_captions", test[1]).caption_path.write_text("a bird\nanother bird\n")
    return root, cases


def _lenient(tiny_config, fraction=0.6, **data):
    return tiny_config.replace(data={"max_skipped_fraction": fraction, **data})


def _read(out, split):
    import tensorflow as tf

    files = sorted(tf.io.gfile.glob(str(out / f"Split-{split}" / "*.gz")))
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def test_each_bad_case_is_skipped_or_converted_and_reported(bad_root, tiny_config, tmp_path):
    root, cases = bad_root
    out = tmp_path / "out"
    report = generate.generate_examples(root, _lenient(tiny_config), str(out), _pipeline)

    assert report.splits["train"].skipped == {"corrupt_image": 2, "bad_box": 2, "bad_embedding": 1}
    assert report.splits["train"].converted == {"grayscale": 1, "cmyk": 1, "not_jpeg": 1}
    assert report.splits["train"].written == 12 - 5
    assert report.splits["test"].skipped == {"missing_file": 1, "bad_captions": 1}
    assert (report.splits["test"].present, report.splits["test"].written) == (3, 2)

    written = json.loads((out / generate.REPORT_NAME).read_text())
    reasons = {(i["filename"], i["reason"]) for i in written["incidents"]}
    assert reasons == {
        (cases["truncated"], "corrupt_image"),
        (cases["garbage"], "corrupt_image"),
        (cases["box_outside"], "bad_box"),
        (cases["box_zero_crop"], "bad_box"),
        (cases["embedding_row_missing"], "bad_embedding"),
        (cases["grayscale"], "grayscale"),
        (cases["cmyk"], "cmyk"),
        (cases["png_named_jpg"], "not_jpeg"),
        (cases["missing_file"], "missing_file"),
        (cases["two_captions"], "bad_captions"),
    }
    details = {i["filename"]: i["detail"] for i in written["incidents"]}
    assert "truncated" in details[cases["truncated"]]
    assert "outside" in details[cases["box_outside"]]
    assert "2 captions, expected 10" in details[cases["two_captions"]]

    records = example_codec.decode(_read(out, "train"))
    assert {r["filename"].decode() for r in records} >= {
        cases["grayscale"],
        cases["cmyk"],
        cases["png_named_jpg"],
    }
    assert conformance.conformance_errors(_read(out, "train"), features.WITH_EMBEDDINGS) == []
    gray = next(r for r in records if r["filename"].decode() == cases["grayscale"])
    pixels = np.asarray(Image.open(io.BytesIO(gray["image_low"]))).astype(int)
    assert pixels.shape == (19, 19, 3)
    assert np.abs(pixels[..., 0] - pixels[..., 2]).max() <= 2  # grey, up to JPEG rounding


def test_bad_cases_are_counted_in_beam_metrics(bad_root, tiny_config, tmp_path):
    root, _ = bad_root
    dataset = cub.CubDataset(root)
    pipeline = test_pipeline.TestPipeline(runner=FnApiRunner)
    _ = (
        pipeline
        | beam.Create(transforms.plan_shards(dataset))
        | transforms.CubToTFRecordShards(
            tiny_config.data, str(tmp_path / "out"), generate.embedding_files(dataset)
        )
    )
    result = pipeline.run()
    result.wait_until_finish()
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query(MetricsFilter().with_namespace("cub_example_gen"))[
            "counters"
        ]
    }
    assert counters == {
        "skipped_corrupt_image": 2,
        "skipped_bad_box": 2,
        "skipped_bad_embedding": 1,
        "skipped_missing_file": 1,
        "skipped_bad_captions": 1,
        "converted_grayscale": 1,
        "converted_cmyk": 1,
        "converted_not_jpeg": 1,
        "written_train": 7,
        "written_test": 2,
    }


def _assert_nothing_published(out):
    assert not list(out.glob("Split-*"))
    assert not list(out.glob(".staging-*"))


def test_too_many_skipped_fails_and_publishes_nothing(bad_root, tiny_config, tmp_path):
    root, cases = bad_root
    out = tmp_path / "out"
    with pytest.raises(generate.PreprocessingError) as error:
        generate.generate_examples(root, tiny_config, str(out), _pipeline)  # limit 1%
    message = str(error.value)
    assert "5 of 12 images skipped (41.7% > data.max_skipped_fraction 1.0%)" in message
    assert cases["truncated"] in message
    _assert_nothing_published(out)
    report = json.loads((out / generate.REPORT_NAME).read_text())
    assert report["status"] == "failed" and "41.7%" in report["problem"]


def test_missing_embeddings_of_a_split_fail_the_run(synth_root, tiny_config, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synth_root, root)
    (root / "birds" / "test" / cub.EMBEDDINGS_FILE).unlink()
    out = tmp_path / "out"
    with pytest.raises(
        generate.PreprocessingError, match="test: 4 of 4 images skipped.*missing_embedding"
    ):
        generate.generate_examples(root, tiny_config, str(out), _pipeline)
    _assert_nothing_published(out)


def test_a_crash_mid_run_leaves_no_split(synth_root, tiny_config, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synth_root, root)
    (root / "birds" / "train" / cub.EMBEDDINGS_FILE).write_bytes(b"not a pickle")
    out = tmp_path / "out"
    with pytest.raises(Exception, match="not a readable pickle"):
        generate.generate_examples(root, tiny_config, str(out), _pipeline)
    _assert_nothing_published(out)
    assert not (out / generate.REPORT_NAME).exists()


def test_existing_splits_are_not_overwritten(synth_root, tiny_config, tmp_path):
    out = tmp_path / "out"
    (out / "Split-train").mkdir(parents=True)
    with pytest.raises(FileExistsError, match="Split-train"):
        generate.generate_examples(synth_root, tiny_config, str(out), _pipeline)


def test_an_unknown_image_encoding_is_refused_before_any_work(synth_root, tiny_config, tmp_path):
    cfg = tiny_config.replace(data={"image_encoding": "webp"})
    with pytest.raises(ValueError, match="data.image_encoding must be one of .* got 'webp'"):
        generate.generate_examples(synth_root, cfg, str(tmp_path / "out"), _pipeline)
    assert not (tmp_path / "out").exists()


def test_a_dataset_without_captions_is_refused(synth_root, tiny_config, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synth_root, root)
    shutil.rmtree(root / "birds" / "text_c10")
    with pytest.raises(cub.CubFormatError, match="text_c10: captions folder not found"):
        generate.generate_examples(root, tiny_config, str(tmp_path / "out"), _pipeline)


def test_missing_or_misshapen_embedding_rows_are_skipped(synth_root, tiny_config):
    dataset = cub.CubDataset(synth_root)
    example = dataset.split("train")[0]
    store = cub.EmbeddingStore()
    ok = convert.convert_example(example, tiny_config.data, store)
    assert ok.skip_reason is None and ok.example
    no_row = convert.convert_example(
        dataclasses.replace(example, embedding_ref=None), tiny_config.data, store
    )
    assert (no_row.skip_reason, no_row.example) == (convert.MISSING_EMBEDDING, None)
    wrong_dim = tiny_config.replace(data={"embedding_dim": 512}).data
    misshapen = convert.convert_example(example, wrong_dim, store)
    assert misshapen.skip_reason == convert.BAD_EMBEDDING
    assert "expected (10, 512)" in misshapen.detail


def _no_beam_job():
    raise AssertionError("the Beam job started")


@pytest.mark.parametrize(
    "content, found",
    [
        (
            "dict",
            r"holds a dict \(keys 'a', .*\), expected an array .* of shape \(images, captions, dim\)",
        ),
        ("2-D", r"shape \(12, 1024\), expected an array .* of shape \(images, captions, dim\)"),
        ("extra rows", r"shape \(13, 10, 1024\), expected \(12, 10, 1024\): one row of 10 x 1024"),
    ],
)
def test_a_malformed_embeddings_pickle_is_named_before_the_beam_job(
    synth_root, tiny_config, tmp_path, content, found
):
    root = tmp_path / "data"
    shutil.copytree(synth_root, root)
    path = root / "birds" / "train" / cub.EMBEDDINGS_FILE
    rows = np.asarray(pickle.loads(path.read_bytes()))
    bad = {
        "dict": {"a": rows[0], "b": rows[1]},
        "2-D": rows[:, 0, :],
        "extra rows": np.concatenate([rows, rows[:1]]),
    }[content]
    path.write_bytes(pickle.dumps(bad))
    with pytest.raises(cub.CubFormatError, match=rf"birds/train/{cub.EMBEDDINGS_FILE}: {found}"):
        generate.generate_examples(root, tiny_config, str(tmp_path / "out"), _no_beam_job)
    assert not (tmp_path / "out").exists()


def test_captions_that_are_not_utf8_are_counted_and_named_in_the_report(
    synth_root, tiny_config, tmp_path
):
    root = tmp_path / "data"
    shutil.copytree(synth_root, root)
    example = cub.CubDataset(root).split("train")[2]
    lines = example.caption_path.read_bytes().splitlines(keepends=True)
    lines[6] = lines[6].replace(b"bird", b"b\xefrd", 1)  # Latin-1 in a UTF-8 file
    example.caption_path.write_bytes(b"".join(lines))
    out = tmp_path / "out"
    report = generate.generate_examples(root, tiny_config, str(out), _pipeline)

    assert report.splits["train"].converted == {convert.NON_UTF8_CAPTIONS: 1}
    assert report.splits["train"].written == 12
    written = json.loads((out / generate.REPORT_NAME).read_text())
    assert written["splits"]["train"]["converted"] == {"non_utf8_captions": 1}
    [incident] = written["incidents"]
    assert (incident["filename"], incident["reason"]) == (example.filename, "non_utf8_captions")
    assert incident["detail"] == (
        f"{example.caption_path}: line 7 not UTF-8, bad bytes replaced with U+FFFD"
    )
    record = next(
        r for r in example_codec.decode(_read(out, "train")) if r["image_id"] == example.image_id
    )
    assert "\ufffd" in record["captions"][6].decode()


def test_a_full_disk_publishes_nothing_and_says_where(
    synth_root, tiny_config, tmp_path, monkeypatch
):
    from stackgan.tfrecords import shard_writer

    def full(self, record):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(shard_writer.TFRecordShardWriter, "write", full)
    out = tmp_path / "out"
    with pytest.raises(generate.PreprocessingError) as error:
        generate.generate_examples(synth_root, tiny_config, str(out), _pipeline)
    message = str(error.value)
    assert message.startswith(f"{out}: the disk is full: [Errno 28] writing {out}/.staging-")
    assert "/Split-t" in message and "/data_tfrecord-00000-of-00001.gz: No space left" in message
    assert f"report: {out}/{generate.REPORT_NAME}" in message
    assert "Free space there" in message
    _assert_nothing_published(out)
    report = json.loads((out / generate.REPORT_NAME).read_text())
    assert report["status"] == "failed"
    assert report["problem"].startswith("the disk is full: [Errno 28] writing ")


def test_a_disk_that_fills_while_publishing_leaves_nothing_published(
    synth_root, tiny_config, tmp_path, monkeypatch
):
    """The shards are in place when the schema's write fails: they are taken back, so the folder
    never holds splits without their schema, and the report's "nothing was published" holds."""
    create = generate.FileSystems.create

    def full_at_the_schema(path, *args, **kwargs):
        if path.endswith(generate.SCHEMA_NAME):
            raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)}: '{path}'")
        return create(path, *args, **kwargs)

    monkeypatch.setattr(generate.FileSystems, "create", full_at_the_schema)
    out = tmp_path / "out"
    with pytest.raises(
        generate.PreprocessingError, match="the disk is full: .*nothing was published"
    ):
        generate.generate_examples(synth_root, tiny_config, str(out), _pipeline)
    _assert_nothing_published(out)
    assert not (out / generate.SCHEMA_NAME).exists()
    assert json.loads((out / generate.REPORT_NAME).read_text())["status"] == "failed"
    monkeypatch.undo()  # the disk has room again: the same folder takes a new run
    report = generate.generate_examples(synth_root, tiny_config, str(out), _pipeline)
    assert report.splits["train"].written > 0 and (out / generate.SCHEMA_NAME).exists()
