"""CubExampleGen's executor, tested as TFX runs it (Executor().Do on artifact URIs) and its
PTransform on its own (TestPipeline + assert_that)."""

from __future__ import annotations

import json
import os

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from tfx.components.util import examples_utils, tfxio_utils
from tfx.types import artifact_utils, standard_artifacts

from stackgan import config as config_lib
from stackgan.components.cub_example_gen import component, generate, transforms
from stackgan.components.cub_example_gen.executor import Executor
from stackgan.data import cub, synth
from stackgan.schemas import conformance, features
from stackgan.tfrecords import example_codec
from stackgan.tfrecords.shard_writer import shard_name

IN_PROCESS = "FnApiRunner"  # Beam's in-process runner, as the DirectRunner uses for batch


@pytest.fixture(scope="module")
def tiny():
    return config_lib.tiny()


@pytest.fixture(scope="module")
def synth_data(tmp_path_factory, tiny):
    root = tmp_path_factory.mktemp("cub_example_gen") / "data"
    synth.write_dataset(root, tiny.synth)
    return root


def _read(path) -> list[bytes]:
    import tensorflow as tf

    return [r.numpy() for r in tf.data.TFRecordDataset(str(path), compression_type="GZIP")]


def test_do_writes_split_shards_and_sets_artifact_properties(synth_data, tiny, tmp_path):
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "CubExampleGen" / "examples" / "1")
    os.makedirs(examples.uri)
    cfg = tiny.replace(data={"num_shards": 2})
    executor = Executor(
        Executor.Context(make_beam_pipeline_fn=lambda: beam.Pipeline(runner=IN_PROCESS))
    )
    executor.Do(
        {},
        {"examples": [examples]},
        {"data_root": str(synth_data), **component.READS.exec_properties(cfg)},
    )

    assert artifact_utils.decode_split_names(examples.split_names) == ["train", "test"]
    assert examples_utils.get_payload_format_string(examples) == "FORMAT_TF_EXAMPLE"
    assert examples_utils.get_file_format(examples) == "tfrecords_gzip"
    assert examples.get_int_custom_property("has_embeddings") == 1
    dataset = cub.CubDataset(synth_data)
    for split in ("train", "test"):
        split_uri = artifact_utils.get_split_uri([examples], split)
        assert sorted(os.listdir(split_uri)) == [shard_name(0, 2), shard_name(1, 2)]
        records = [r for i in range(2) for r in _read(os.path.join(split_uri, shard_name(i, 2)))]
        assert len(records) == len(dataset.split(split))
        assert examples.get_int_custom_property(f"num_{split}") == len(records)
        assert conformance.conformance_errors(records, features.WITH_EMBEDDINGS) == []
        decoded = {r["image_id"]: r for r in example_codec.decode(records)}
        assert set(decoded) == {e.image_id for e in dataset.split(split)}
        first = dataset.split(split)[0]
        np.testing.assert_array_equal(
            decoded[first.image_id]["embedding"], cub.EmbeddingStore().get(first.embedding_ref)
        )
    with open(os.path.join(examples.uri, generate.REPORT_NAME)) as f:
        report = json.load(f)
    assert report["status"] == "complete"
    assert sorted(os.listdir(examples.uri)) == [
        "Split-test", "Split-train", generate.REPORT_NAME, generate.SCHEMA_NAME
    ]  # fmt: skip


def _assert_tfx_reads(examples, counts: dict[str, int]) -> None:
    """TFX's own reader (what Transform, StatisticsGen and Trainer use) finds every record."""
    factory = tfxio_utils.get_tfxio_factory_from_artifact(
        [examples],
        telemetry_descriptors=["cub_example_gen_test"],
        schema=features.environment_schema(features.WITH_EMBEDDINGS),
    )
    for split, count in counts.items():
        tfxio = factory(os.path.join(artifact_utils.get_split_uri([examples], split), "*"))
        with beam.Pipeline(runner=IN_PROCESS) as pipeline:
            rows = (
                pipeline
                | tfxio.BeamSource()
                | beam.Map(lambda batch: batch.num_rows)
                | beam.CombineGlobally(sum)
            )
            assert_that(rows, equal_to([count]))


def test_ptransform_writes_one_shard_per_task(synth_data, tiny, tmp_path):
    dataset = cub.CubDataset(synth_data)
    tasks = transforms.plan_shards(dataset, num_shards=3)
    out = str(tmp_path / "out")
    results_dir = str(tmp_path / "results")
    train, test = len(dataset.split("train")), len(dataset.split("test"))
    expected = [("train", i, len(range(i, train, 3)), 0) for i in range(3)] + [
        ("test", i, len(range(i, test, 3)), 0) for i in range(3)
    ]
    with test_pipeline.TestPipeline(runner=IN_PROCESS) as pipeline:
        results = (
            pipeline
            | beam.Create(tasks)
            | transforms.CubToTFRecordShards(
                tiny.data, out, generate.embedding_files(dataset), results_dir
            )
            | beam.Map(lambda r: (r.split, r.index, r.written, len(r.skipped)))
        )
        assert_that(results, equal_to(expected))
    # the results each task wrote as JSON are the ones it output
    read = transforms.read_shard_results(results_dir)
    assert sorted((r.split, r.index, r.written, len(r.skipped)) for r in read) == sorted(expected)
    assert {r.path for r in read} == {
        f"{out}/Split-{split}/{shard_name(i, 3)}" for split in ("train", "test") for i in range(3)
    }
    shard = tmp_path / "out" / "Split-train" / shard_name(1, 3)
    ids = [r["image_id"] for r in example_codec.decode(_read(shard))]
    assert ids == [e.image_id for e in dataset.split("train")[1::3]]


def test_shard_count_derives_from_the_split_size():
    assert transforms.num_shards_for(0, 0) == 1
    assert transforms.num_shards_for(50, 0) == 1
    assert transforms.num_shards_for(8855, 0) == 18
    assert transforms.num_shards_for(8855, 4) == 4


def test_component_declares_its_parameters_and_output(tiny):
    gen = component.CubExampleGen(data_root="/data/cub", config=tiny)
    assert gen.exec_properties["data_root"] == "/data/cub"
    # the data fields the conversion reads, and nothing of the other sections
    data = json.loads(gen.exec_properties["data_config"])
    assert data == {name: getattr(tiny.data, name) for name in component.READS.fields("data")}
    assert "low_res" not in data and "shuffle_buffer" not in data
    assert not any(
        name.endswith("_config") and name != "data_config" for name in gen.exec_properties
    )
    assert gen.outputs["examples"].type == standard_artifacts.Examples
