"""CaptionEmbedder: the Beam transform on small shards, then the executor on artifacts."""

from __future__ import annotations

import json
import os

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from tfx.types import artifact_utils, standard_artifacts

from stackgan import config as config_lib
from stackgan.components.caption_embedder import embed_shards
from stackgan.components.caption_embedder.component import READS, CaptionEmbedder
from stackgan.components.caption_embedder.executor import SUMMARY_FILE, Executor
from stackgan.schemas import conformance, features
from stackgan.text.export import TextEncoder, export_text_encoder
from stackgan.text.training import build_joint_embedding
from stackgan.tfrecords import example_codec
from stackgan.tfrecords.shard_writer import TFRecordShardWriter, shard_name

TEN = tuple(f"caption number {i} of a bird" for i in range(10))


def _record(image_id: int, captions: tuple[str, ...]) -> bytes:
    return example_codec.encode(
        example_codec.ImageRecord(
            image_id=image_id,
            filename=f"001.Bird/Bird_{image_id:04d}",
            label=0,
            class_id=1,
            class_name="001.Bird",
            image_high=b"high-bytes",
            image_low=b"low-bytes",
            captions=captions,
            embedding=None,
        )
    )


def _write_examples(root, shards: dict[str, list[list[bytes]]]) -> standard_artifacts.Examples:
    artifact = standard_artifacts.Examples()
    artifact.uri = str(root)
    artifact.split_names = artifact_utils.encode_split_names(list(shards))
    for split, split_shards in shards.items():
        os.makedirs(root / f"Split-{split}")
        for i, records in enumerate(split_shards):
            path = str(root / f"Split-{split}" / shard_name(i, len(split_shards)))
            with TFRecordShardWriter(path) as writer:
                for r in records:
                    writer.write(r)
    return artifact


def _read(path) -> list[bytes]:
    return [r.numpy() for r in tf.data.TFRecordDataset(str(path), compression_type="GZIP")]


@pytest.fixture(scope="module")
def encoder_model(tmp_path_factory):
    """An (untrained) exported text encoder: its output is a fixed function of the text."""
    uri = tmp_path_factory.mktemp("text_encoder")
    model = build_joint_embedding(config_lib.tiny().text, feature_dim=8)
    export_text_encoder(model, uri / "Format-Serving")
    artifact = standard_artifacts.Model()
    artifact.uri = str(uri)
    return artifact


def test_embed_captions_rewrites_each_record_with_embeddings_of_its_captions(
    encoder_model, tmp_path
):
    short = ("only one caption", "  ", "and a second")
    raw = _write_examples(
        tmp_path / "in", {"train": [[_record(1, TEN), _record(2, short)], [_record(3, ())]]}
    )
    jobs = embed_shards.shard_jobs(raw.uri, str(tmp_path / "out"), ["train"])
    encoder_dir = os.path.join(encoder_model.uri, "Format-Serving")
    with test_pipeline.TestPipeline() as p:
        counts = p | beam.Create(jobs) | embed_shards.EmbedCaptions(encoder_dir)
        zero = dict.fromkeys(embed_shards.COUNTERS, 0)
        first, second = (job.input_path for job in jobs)
        assert_that(
            counts,
            equal_to(
                [
                    {**zero, "split": "train", "input_path": first, embed_shards.WRITTEN: 2,
                     embed_shards.CYCLED: 1, embed_shards.BLANK_DROPPED: 1},
                    {**zero, "split": "train", "input_path": second,
                     embed_shards.SKIPPED_NO_CAPTIONS: 1},
                ]
            ),
        )  # fmt: skip

    out_dir = tmp_path / "out" / "Split-train"
    assert sorted(os.listdir(out_dir)) == [shard_name(0, 2), shard_name(1, 2)]
    records = _read(out_dir / shard_name(0, 2))
    assert _read(out_dir / shard_name(1, 2)) == []  # the caption-less image is skipped
    assert conformance.conformance_errors(records, features.WITH_EMBEDDINGS) == []
    decoded = example_codec.decode(records)
    encoder = TextEncoder(encoder_dir)
    # ten captions: kept as they are, each embedded
    assert [c.decode() for c in decoded[0]["captions"]] == list(TEN)
    np.testing.assert_allclose(decoded[0]["embedding"], encoder.embed(TEN), atol=1e-5)
    # two non-blank captions of three lines: cycled to ten, the blank one dropped
    cycled = ["only one caption", "and a second"] * 5
    assert [c.decode() for c in decoded[1]["captions"]] == cycled
    np.testing.assert_allclose(decoded[1]["embedding"], encoder.embed(cycled), atol=1e-5)
    # every other feature untouched
    assert decoded[1]["image_high"] == b"high-bytes" and decoded[1]["image_id"] == 2


class _NoMetricsRunner(FnApiRunner):
    """Beam's in-process runner, answering for metrics as a runner that commits none does."""

    def run_pipeline(self, pipeline, options):
        result = super().run_pipeline(pipeline, options)
        result.metrics = lambda: _NoMetrics()
        return result


class _NoMetrics:
    def query(self, filter=None):
        return {"counters": [], "distributions": [], "gauges": []}


@pytest.mark.parametrize("runner", ["FnApiRunner", "without committed metrics"])
def test_executor_keeps_splits_and_shards_and_records_its_counts(encoder_model, tmp_path, runner):
    def make_pipeline():
        return beam.Pipeline(runner=_NoMetricsRunner() if runner != "FnApiRunner" else runner)

    raw = _write_examples(
        tmp_path / "in",
        {
            "train": [[_record(i, TEN) for i in range(1, 4)], [_record(4, TEN[:3])]],
            "test": [[_record(5, TEN), _record(6, ())]],
        },
    )
    output = standard_artifacts.Examples()
    output.uri = str(tmp_path / "out")
    os.makedirs(output.uri)
    cfg = config_lib.tiny().replace(data={"max_skipped_fraction": 0.5})
    Executor(Executor.Context(make_beam_pipeline_fn=make_pipeline)).Do(
        {"raw_examples": [raw], "text_encoder": [encoder_model]},
        {"examples": [output]},
        READS.exec_properties(cfg),
    )
    assert artifact_utils.decode_split_names(output.split_names) == ["train", "test"]
    assert sorted(os.listdir(tmp_path / "out" / "Split-train")) == [
        shard_name(0, 2),
        shard_name(1, 2),
    ]
    assert output.get_int_custom_property(embed_shards.WRITTEN) == 5
    assert output.get_int_custom_property(embed_shards.SKIPPED_NO_CAPTIONS) == 1
    assert output.get_int_custom_property(embed_shards.CYCLED) == 1
    assert output.get_int_custom_property("num_train") == 4
    assert output.get_int_custom_property("num_test") == 1
    assert output.get_int_custom_property("has_embeddings") == 1
    assert sorted(os.listdir(tmp_path / "out")) == [
        "Split-test", "Split-train", SUMMARY_FILE, "schema.pbtxt"
    ]  # fmt: skip
    summary = json.loads((tmp_path / "out" / SUMMARY_FILE).read_text())
    assert summary["counts"][embed_shards.WRITTEN] == 5
    test_records = _read(tmp_path / "out" / "Split-test" / shard_name(0, 1))
    assert [r["image_id"] for r in example_codec.decode(test_records)] == [5]


def test_executor_fails_when_too_many_images_have_no_caption(encoder_model, tmp_path):
    raw = _write_examples(tmp_path / "in", {"train": [[_record(1, TEN), _record(2, ("", " "))]]})
    output = standard_artifacts.Examples()
    output.uri = str(tmp_path / "out")
    os.makedirs(output.uri)
    with pytest.raises(ValueError, match=r"1 of 2 examples have no caption"):
        Executor().Do(
            {"raw_examples": [raw], "text_encoder": [encoder_model]},
            {"examples": [output]},
            READS.exec_properties(config_lib.tiny()),
        )
    assert os.listdir(output.uri) == []  # no Split-* folder that looks complete


def test_a_record_that_is_not_a_tf_example_is_named(encoder_model, tmp_path):
    raw = _write_examples(tmp_path / "in", {"train": [[_record(1, TEN), b"\xff\x00garbage"]]})
    jobs = embed_shards.shard_jobs(raw.uri, str(tmp_path / "out"), ["train"])
    encoder_dir = os.path.join(encoder_model.uri, "Format-Serving")
    with (
        pytest.raises(Exception, match=r"record 1: not a tf.Example"),
        test_pipeline.TestPipeline() as p,
    ):
        _ = p | beam.Create(jobs) | embed_shards.EmbedCaptions(encoder_dir)


def test_component_wires_examples_in_and_out(encoder_model):
    from tfx.types.channel_utils import as_channel

    component = CaptionEmbedder(
        examples=as_channel([standard_artifacts.Examples()]),
        text_encoder=as_channel([encoder_model]),
        config=config_lib.tiny(),
    )
    assert set(component.inputs) == {"raw_examples", "text_encoder"}
    assert component.outputs["examples"].type == standard_artifacts.Examples
