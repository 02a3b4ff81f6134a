"""The StackGAN TFX DAG.

    CubExampleGen ─┬──────────────────────────────────────────────┐
                   ├─> ClassifierTrainer ─┬─> TextEncoderTrainer ─> CaptionEmbedder ─┐ (text path)
                   │                      │                                         v
                   │                      │   examples (with embeddings) ─> Stage1Trainer ─> Stage2Trainer
                   │                      └──────────────────────────────> Evaluator <──────┘
    latest_blessed_model_resolver ── baseline_model (optional) ──────────────^   │ blessing
                   └─────────────────────────────────────────────────────> Pusher (Stage-II generator)

The Resolver (TFX's LatestBlessedModelStrategy over this pipeline's Models and ModelBlessings)
gives the Evaluator the latest generator an earlier run blessed, if any: the new generator must
not be worse than it (EvalConfig.baseline_tolerance), as with TFX's own Evaluator. The Pusher
pushes only what the Evaluator blessed.

`create_pipeline` only wires components; it imports no model code (the components do, when they
run), so compiling for Kubeflow on a laptop stays cheap. Each component is given the whole
config and keeps only the fields its READS names (component.py, stackgan/config_view.py), so
TFX's cache re-runs a component only when one of those fields, or an input, changed.

The text path: when the dataset ships `char-CNN-RNN-embeddings.pickle` the trainers use those
1024-d embeddings as the paper did; otherwise (the real CUB sample, a user with only images and
captions) a char-CNN-RNN text encoder is trained on the captions and every caption is embedded.
`config.text.source` forces either path ("pickle" / "train"); "auto" decides from the data.
On the pickle path a TextEncoderTrainer still runs (objective "distill", no classifier): it
learns to reproduce the pickle's embeddings from the captions, so the pushed generator takes
sentences too (`config.text.distill_pickle=false` leaves it out: embeddings only).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from tfx.components.pusher import component as pusher_component
from tfx.dsl.components.common import resolver
from tfx.dsl.input_resolution.strategies import latest_blessed_model_strategy
from tfx.orchestration import pipeline as tfx_pipeline
from tfx.proto import pusher_pb2
from tfx.types import channel, standard_artifacts

from stackgan.components.caption_embedder.component import CaptionEmbedder
from stackgan.components.classifier_trainer.component import ClassifierTrainer
from stackgan.components.cub_example_gen.component import CubExampleGen
from stackgan.components.evaluator.component import Evaluator
from stackgan.components.stage1_trainer.component import Stage1Trainer
from stackgan.components.stage2_trainer.component import Stage2Trainer
from stackgan.components.text_encoder_trainer.component import TextEncoderTrainer
from stackgan.config import Config
from stackgan.data.fingerprint import dataset_fingerprint
from stackgan.pipeline.text_path import exports_text_encoder

BASELINE_RESOLVER_ID = "latest_blessed_model_resolver"


@dataclasses.dataclass(frozen=True)
class PipelinePaths:
    """Where a pipeline run keeps its things. `pipeline_root` holds every artifact."""

    pipeline_root: str
    serving_dir: str  # the pusher writes <serving_dir>/<version>/ (TF Serving's layout)
    checkpoint_dir: str  # stable across runs, so a killed trainer resumes


def create_pipeline(
    config: Config,
    *,
    pipeline_name: str,
    data_root: str,
    paths: PipelinePaths,
    train_text_encoder: bool,
    metadata_connection_config=None,
    beam_pipeline_args: Sequence[str] = (),
    enable_cache: bool = True,
) -> tfx_pipeline.Pipeline:
    """Wires the DAG. `train_text_encoder` selects the text path (see module docstring)."""
    example_gen = CubExampleGen(
        data_root=data_root,
        config=config,
        data_fingerprint=dataset_fingerprint(data_root),
    )
    raw_examples = example_gen.outputs["examples"]
    classifier = ClassifierTrainer(
        examples=raw_examples, config=config, checkpoint_dir=f"{paths.checkpoint_dir}/classifier"
    )
    components = [example_gen, classifier]

    text_encoder_model = None
    examples = raw_examples
    if train_text_encoder:
        text_encoder = TextEncoderTrainer(
            examples=raw_examples,
            classifier=classifier.outputs["model"],
            config=config,
            checkpoint_dir=f"{paths.checkpoint_dir}/text_encoder",
        )
        embedder = CaptionEmbedder(
            examples=raw_examples,
            text_encoder=text_encoder.outputs["model"],
            config=config,
        )
        components += [text_encoder, embedder]
        examples = embedder.outputs["examples"]
        text_encoder_model = text_encoder.outputs["model"]
    elif exports_text_encoder(config, train_text_encoder):
        # the trainers keep the dataset's embeddings; this encoder learns to reproduce them
        # from the captions, so the pushed generator also takes sentences
        text_encoder = TextEncoderTrainer(
            examples=raw_examples,
            classifier=None,
            config=config,
            objective="distill",
            checkpoint_dir=f"{paths.checkpoint_dir}/text_encoder",
        )
        components.append(text_encoder)
        text_encoder_model = text_encoder.outputs["model"]

    stage1 = Stage1Trainer(
        examples=examples,
        config=config,
        checkpoint_dir=f"{paths.checkpoint_dir}/stage1",
    )
    stage2 = Stage2Trainer(
        examples=examples,
        stage1_model=stage1.outputs["model"],
        text_encoder=text_encoder_model,
        config=config,
        checkpoint_dir=f"{paths.checkpoint_dir}/stage2",
    )
    # Channels without a producer: every Model and ModelBlessing of this pipeline, of any run;
    # the strategy keeps the newest Model whose id a blessed ModelBlessing names
    baseline = resolver.Resolver(
        strategy_class=latest_blessed_model_strategy.LatestBlessedModelStrategy,
        model=channel.Channel(type=standard_artifacts.Model),
        model_blessing=channel.Channel(type=standard_artifacts.ModelBlessing),
    ).with_id(BASELINE_RESOLVER_ID)
    evaluator = Evaluator(
        examples=examples,
        model=stage2.outputs["model"],
        classifier=classifier.outputs["model"],
        baseline_model=baseline.outputs["model"],
        config=config,
    )
    pusher = pusher_component.Pusher(
        model=stage2.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=paths.serving_dir)
        ),
    )
    components += [stage1, stage2, baseline, evaluator, pusher]

    return tfx_pipeline.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=paths.pipeline_root,
        components=components,
        enable_cache=enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(beam_pipeline_args),
    )
