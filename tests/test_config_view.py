"""Each component is given the config fields it reads and no others (stackgan.config_view)."""

from __future__ import annotations

import dataclasses
import json
import pickle

import pytest

from stackgan import config as config_lib
from stackgan import config_view
from stackgan.components.caption_embedder.component import READS as EMBEDDER
from stackgan.components.classifier_trainer.component import READS as CLASSIFIER
from stackgan.components.cub_example_gen.component import READS as EXAMPLE_GEN
from stackgan.components.evaluator.component import READS as EVALUATOR
from stackgan.components.stage1_trainer.component import READS as STAGE1
from stackgan.components.stage2_trainer.component import READS as STAGE2
from stackgan.components.text_encoder_trainer.component import DISTILL_READS
from stackgan.components.text_encoder_trainer.component import READS as TEXT_ENCODER

ALL_READS = (EXAMPLE_GEN, CLASSIFIER, TEXT_ENCODER, EMBEDDER, STAGE1, STAGE2, EVALUATOR)
DISTILLER = "TextEncoderTrainer (distill)"


def _properties_changed(before: config_lib.Config, after: config_lib.Config) -> set[str]:
    """The components whose exec properties (so whose TFX cache key) differ; the text encoder
    under each objective ("TextEncoderTrainer": ds_sje, the text path's; DISTILLER: the
    embeddings path's, the Quickstart's)."""
    changed = {
        reads.component
        for reads in ALL_READS
        if reads.exec_properties(before) != reads.exec_properties(after)
    }
    if DISTILL_READS.exec_properties(before) != DISTILL_READS.exec_properties(after):
        changed.add(DISTILLER)
    return changed


@pytest.mark.parametrize(
    ("assignment", "components"),
    [
        ("eval.num_samples=8", {"Evaluator"}),
        ("classifier.head_epochs=2", {"ClassifierTrainer"}),
        ("text.epochs=3", {"TextEncoderTrainer"}),
        ("text.distill_epochs=3", {DISTILLER}),
        # distillation opens no image and no classifier
        ("classifier.batch_size=3", {"ClassifierTrainer", "TextEncoderTrainer"}),
        ("text.rnn_units=8", {"TextEncoderTrainer", DISTILLER}),
        ("text.source=train", set()),  # the pipeline's choice of path, read by none
        ("synth.classes=5", set()),  # read by `stackgan run` before the DAG, not by the DAG
        ("train.stage2_max_steps=9", {"Stage2Trainer"}),
        ("train.stage2_batch_size=2", {"Stage2Trainer"}),
        ("model.stage2_residual_blocks=2", {"Stage2Trainer"}),
        ("train.max_steps=9", {"Stage1Trainer", "Stage2Trainer"}),
        # the classifier, the measuring instrument, and the text encoder keep their own seeds
        ("train.seed=3", {"Stage1Trainer", "Stage2Trainer"}),
        ("classifier.seed=3", {"ClassifierTrainer"}),
        ("text.seed=3", {"TextEncoderTrainer", DISTILLER}),
        ("train.precision=bfloat16",
         {"TextEncoderTrainer", DISTILLER, "Stage1Trainer", "Stage2Trainer"}),
        ("data.shuffle_buffer=8", {"ClassifierTrainer", "Stage1Trainer", "Stage2Trainer"}),
        # in memory or streamed: the same first epoch, later ones in another order
        ("data.cache_decoded_mb=0", {"Stage1Trainer", "Stage2Trainer"}),
        ("data.image_encoding=png", {c.component for c in ALL_READS} - {"CaptionEmbedder"}),
        ("data.num_shards=2", {"CubExampleGen"}),
    ],
)  # fmt: skip
def test_a_change_reaches_only_the_components_that_read_it(tiny_config, assignment, components):
    # the rest of what re-runs is downstream of these (their outputs are new artifacts):
    # tests/test_pipeline_run.py checks that through `stackgan run` and MLMD
    assert _properties_changed(tiny_config, tiny_config.with_overrides([assignment])) == components


def test_exec_properties_hold_only_the_declared_fields(tiny_config):
    properties = CLASSIFIER.exec_properties(tiny_config)
    assert set(properties) == {"classifier_config", "data_config"}
    assert json.loads(properties["classifier_config"])["seed"] == 0
    stage1_train = json.loads(STAGE1.exec_properties(tiny_config)["train_config"])
    assert "max_steps" in stage1_train and "stage2_max_steps" not in stage1_train
    # all_but: a field added to a section later is sent unless excluded
    assert set(stage1_train) == {f.name for f in dataclasses.fields(config_lib.TrainConfig)} - set(
        STAGE1.sections["train"].excluded
    )


def test_an_undeclared_field_raises_naming_component_and_field(tiny_config):
    config = CLASSIFIER.restrict(tiny_config)
    assert config.data.ordered == tiny_config.data.ordered
    assert config_view.given(config.classifier) == dataclasses.asdict(tiny_config.classifier)
    for read in (
        lambda: config.train.max_steps,
        lambda: config.model,
        lambda: config.to_json(),  # reads every field
        lambda: getattr(config.train, "batch_size", 64),  # no silent default either
        lambda: dataclasses.replace(config.data, high_res=32),
    ):
        with pytest.raises(config_view.UndeclaredConfigFieldError, match="ClassifierTrainer"):
            read()
    with pytest.raises(
        config_view.UndeclaredConfigFieldError, match=r"reads data\.low_res, which its config"
    ):
        _ = config.data.low_res
    with pytest.raises(
        config_view.UndeclaredConfigFieldError, match=r"reads config\.train, which its config"
    ):
        _ = config.train.seed  # the classifier keeps its own seed


def test_a_restricted_config_pickles_for_beam_workers(tiny_config):
    config = pickle.loads(pickle.dumps(EXAMPLE_GEN.restrict(tiny_config)))
    assert config.data.num_shards == tiny_config.data.num_shards
    assert config_view.given(config) == {"data": EXAMPLE_GEN.values(tiny_config)["data"]}
    with pytest.raises(config_view.UndeclaredConfigFieldError, match="data.low_res"):
        _ = config.data.low_res


def test_reads_are_checked_when_declared_and_when_received(tiny_config):
    with pytest.raises(ValueError, match=r"no fields \['shuffle_bufer'\] in config.data"):
        config_view.Reads("X", {"data": ("shuffle_bufer",)})
    with pytest.raises(ValueError, match="no config section 'evaluation'"):
        config_view.Reads("X", {"evaluation": config_view.ALL})
    properties = EVALUATOR.exec_properties(tiny_config)
    with pytest.raises(ValueError, match=r"no exec property data_config"):
        EVALUATOR.config({"eval_config": properties["eval_config"]})
    with pytest.raises(ValueError, match=r"data_config lacks fields \['low_res'\]"):
        data = json.loads(properties["data_config"])
        del data["low_res"]
        EVALUATOR.config({**properties, "data_config": json.dumps(data)})
