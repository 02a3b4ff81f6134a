"""The DAG's wiring and its Kubeflow V2 compile (no component runs here)."""

from __future__ import annotations

import json

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from stackgan import config as config_lib
from stackgan.cli import main as cli_main

# TFX's Kubeflow V2 compiler turns the LatestBlessedModelStrategy Resolver into two tasks
BASELINE_TASK = "latest_blessed_model_resolver-model-resolver"
BASE_TASKS = {
    "CubExampleGen",
    "ClassifierTrainer",
    "Stage1Trainer",
    "Stage2Trainer",
    "Evaluator",
    "Pusher",
    "latest_blessed_model_resolver-model-blessing-resolver",
    BASELINE_TASK,
}
TEXT_TASKS = {"TextEncoderTrainer", "CaptionEmbedder"}


def _compile(
    tmp_path, text_source: str, *more_sets: str, beam_args: tuple[str, ...] = ()
) -> pipeline_spec_pb2.PipelineJob:
    out = tmp_path / f"pipeline-{text_source}-{len(more_sets)}.json"
    code = cli_main(
        [
            "compile",
            "--target",
            "kubeflow",
            "--out",
            str(out),
            "--image",
            "registry.example/stackgan:1",
            "--data",
            "gs://bucket/cub",
            "--pipeline-root",
            "gs://bucket/root",
            "--serving-dir",
            "gs://bucket/serving/stackgan",
            "--set",
            f"text.source={text_source}",
            *(arg for text in more_sets for arg in ("--set", text)),
            *(f"--beam-arg={arg}" for arg in beam_args),
        ]
    )
    assert code == 0
    job = pipeline_spec_pb2.PipelineJob()
    json_format.Parse(out.read_text(), job, ignore_unknown_fields=False)
    return job


def _spec(job) -> pipeline_spec_pb2.PipelineSpec:
    spec = pipeline_spec_pb2.PipelineSpec()
    json_format.ParseDict(json_format.MessageToDict(job.pipeline_spec), spec)
    return spec


def test_kubeflow_compile_with_release_embeddings_has_the_paper_dag(tmp_path):
    spec = _spec(_compile(tmp_path, "pickle", "text.distill_pickle=false"))
    tasks = spec.root.dag.tasks
    assert set(tasks) == BASE_TASKS
    deps = {name: set(task.dependent_tasks) for name, task in tasks.items()}
    assert deps["CubExampleGen"] == set()
    assert deps["Stage1Trainer"] == {"CubExampleGen"}
    assert deps["Stage2Trainer"] == {"CubExampleGen", "Stage1Trainer"}
    assert deps["Evaluator"] == {
        "CubExampleGen",
        "ClassifierTrainer",
        "Stage2Trainer",
        BASELINE_TASK,
    }
    baseline = tasks["Evaluator"].inputs.artifacts["baseline_model"].task_output_artifact
    assert baseline.producer_task == BASELINE_TASK
    assert deps["Pusher"] == {"Evaluator", "Stage2Trainer"}
    # every component runs in the given image, through TFX's V2 container entrypoint
    # (the baseline's Resolver tasks query MLMD and have no container)
    containers = {
        name: executor["container"]
        for name, executor in spec.deployment_spec["executors"].items()
        if "resolver" not in executor
    }
    assert len(containers) == len(BASE_TASKS) - 2
    for name, container in containers.items():
        assert container["image"] == "registry.example/stackgan:1", name
        assert "kubeflow_v2_run_executor" in " ".join(container["command"])
    executor_paths = {container["args"][1] for container in containers.values()}
    assert "stackgan.components.stage2_trainer.executor.Executor" in executor_paths


def test_release_embeddings_add_an_encoder_distilled_from_them_for_the_export(tmp_path):
    """By default the paper's DAG also trains a text encoder to reproduce the pickle's
    embeddings (no classifier, no CaptionEmbedder): the trainers keep the pickle's embeddings
    and only the exported generator gets the encoder."""
    spec = _spec(_compile(tmp_path, "pickle"))
    tasks = spec.root.dag.tasks
    assert set(tasks) == BASE_TASKS | {"TextEncoderTrainer"}
    deps = {name: set(task.dependent_tasks) for name, task in tasks.items()}
    assert deps["TextEncoderTrainer"] == {"CubExampleGen"}
    assert deps["Stage1Trainer"] == {"CubExampleGen"}
    assert deps["Stage2Trainer"] == {"CubExampleGen", "Stage1Trainer", "TextEncoderTrainer"}
    objective = tasks["TextEncoderTrainer"].inputs.parameters["objective"]
    assert objective.runtime_value.constant_value.string_value == "distill"


def test_kubeflow_compile_with_trained_text_encoder_adds_the_text_path(tmp_path):
    spec = _spec(_compile(tmp_path, "train"))
    tasks = spec.root.dag.tasks
    assert set(tasks) == BASE_TASKS | TEXT_TASKS
    deps = {name: set(task.dependent_tasks) for name, task in tasks.items()}
    assert deps["TextEncoderTrainer"] == {"CubExampleGen", "ClassifierTrainer"}
    assert deps["CaptionEmbedder"] == {"CubExampleGen", "TextEncoderTrainer"}
    assert deps["Stage1Trainer"] == {"CaptionEmbedder"}
    assert "TextEncoderTrainer" in deps["Stage2Trainer"]
    # the trainers keep their checkpoints (the text encoder its epoch backup) where a re-run
    # after a kill finds them: under the pipeline root, not in an execution's artifacts
    for node, folder in (
        ("TextEncoderTrainer", "text_encoder"),
        ("ClassifierTrainer", "classifier"),
        ("Stage1Trainer", "stage1"),
    ):
        where = tasks[node].inputs.parameters["checkpoint_dir"]
        assert where.runtime_value.constant_value.string_value == (
            f"gs://bucket/root/checkpoints/{folder}"
        ), node


def test_beam_args_reach_the_components_beam_jobs_on_the_cluster(tmp_path, capsys):
    """--beam-arg: the preprocessing and the caption embedding can run on Dataflow; TFX's V2
    entrypoint takes them from each executor's container arguments. A typo is named first."""
    dataflow = ("--runner=DataflowRunner", "--project=p", "--region=europe-west4")
    spec = _spec(_compile(tmp_path, "train", beam_args=dataflow))
    executors = spec.deployment_spec["executors"]
    for node in ("CubExampleGen", "CaptionEmbedder"):
        args = list(executors[f"{node}_executor"]["container"]["args"])
        assert args[-3:] == list(dataflow), node

    argv = ["compile", "--out", str(tmp_path / "p.json"), "--data", "gs://b/cub",
            "--pipeline-root", "gs://b/root", "--serving-dir", "gs://b/serving",
            "--set", "text.source=train", "--beam-arg=--runner=Dataflow", "--beam-arg=--regoin=x"]  # fmt: skip
    assert cli_main(argv) == 0  # a remote runner's own options pass on, named in a note
    assert capsys.readouterr().out.endswith(
        "  note: Beam's Python SDK does not know --regoin=x (did you mean --region?);"
        " DataflowRunner gets them as given (its service may define them)\n"
    )
    assert cli_main([*argv[:-2], "--beam-arg=--direct_num_workers=many"]) == 2
    assert capsys.readouterr().err == (
        "stackgan compile: error: --beam-arg --direct_num_workers: invalid int value: 'many'\n"
    )


def test_config_travels_to_the_cluster_unchanged(tmp_path):
    spec = _spec(_compile(tmp_path, "pickle"))
    cfg = config_lib.paper().with_overrides(["text.source=pickle"])
    from stackgan.components.classifier_trainer.component import READS as CLASSIFIER_READS
    from stackgan.components.stage1_trainer.component import READS as STAGE1_READS

    # each component gets the config fields it reads, one parameter per section, and no more
    for node, reads in (("Stage1Trainer", STAGE1_READS), ("ClassifierTrainer", CLASSIFIER_READS)):
        parameters = spec.root.dag.tasks[node].inputs.parameters
        sent = {
            name.removesuffix("_config"): json.loads(
                parameters[name].runtime_value.constant_value.string_value
            )
            for name in parameters
            if name.endswith("_config")
        }
        assert sent == reads.values(cfg), node
    # the classifier: its own seed, nothing of the GANs' training
    assert "train" not in sent and sent["classifier"]["seed"] == 0


def test_compile_refuses_to_guess_the_text_path_for_a_remote_dataset(tmp_path, capsys):
    code = cli_main(
        [
            "compile",
            "--out",
            str(tmp_path / "p.json"),
            "--data",
            "gs://bucket/cub",
            "--pipeline-root",
            "gs://b/r",
            "--serving-dir",
            "gs://b/s",
        ]
    )
    assert code == 2 and "--set text.source=pickle" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()
    assert not (tmp_path / "p.json").exists()


def test_text_path_follows_the_data(tmp_path, cub_sample_root):
    from stackgan.pipeline.text_path import should_train_text_encoder

    auto = config_lib.tiny()
    assert should_train_text_encoder(auto, str(cub_sample_root)) is True  # no pickle in the sample
    with pytest.raises(FileNotFoundError, match="char-CNN-RNN-embeddings.pickle"):
        should_train_text_encoder(auto.with_overrides(["text.source=pickle"]), str(cub_sample_root))
    for split in ("train", "test"):
        (tmp_path / "birds" / split).mkdir(parents=True)
        (tmp_path / "birds" / split / "char-CNN-RNN-embeddings.pickle").write_bytes(b"x")
    assert should_train_text_encoder(auto, str(tmp_path)) is False
    assert should_train_text_encoder(auto.with_overrides(["text.source=train"]), str(tmp_path))
