"""`stackgan compile --target kubeflow`: writes the DAG as a Kubeflow Pipelines V2 / Vertex AI
PipelineJob JSON, for a cluster whose paths (gs://..., a mounted volume) are given here."""

from __future__ import annotations

import argparse
import os

from stackgan.commands import beam_options, common
from stackgan.errors import UserError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("compile", help="compile the pipeline for Kubeflow (V2 / Vertex)")
    p.add_argument("--target", choices=("kubeflow",), default="kubeflow")
    p.add_argument("--out", required=True, help="the PipelineJob JSON to write")
    p.add_argument("--image", default=None, help="container image with this project installed")
    p.add_argument("--data", required=True, help="dataset root as the cluster sees it")
    p.add_argument("--pipeline-root", required=True, help="artifact root, e.g. gs://BUCKET/root")
    p.add_argument("--serving-dir", required=True, help="where the pusher publishes the model")
    p.add_argument("--checkpoint-dir", default=None, help="default: <pipeline-root>/checkpoints")
    p.add_argument("--pipeline-name", default="stackgan")
    common.add_config_arguments(p, default_profile="paper")
    p.add_argument(
        "--beam-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="a Beam pipeline argument for the components' Beam jobs on the cluster, e.g. "
        "--beam-arg=--runner=DataflowRunner (repeatable)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = common.config_from_args(args)
    if os.path.isdir(args.data):
        common.check_data_root(args.data, cfg)
    elif cfg.text.source == "auto":
        raise UserError(
            f"cannot look inside {args.data} from here to choose the text "
            "path; pass --set text.source=pickle (the dataset ships char-CNN-RNN embeddings) "
            "or --set text.source=train (train the text encoder on the captions)"
        )
    common.check_writable_dir(os.path.dirname(os.path.abspath(args.out)), "--out")
    beam_note = beam_options.check(args.beam_arg, "--beam-arg ")
    # TFX and TensorFlow take ~20 s to import: only once the arguments are known to be good
    from stackgan.pipeline import kubeflow_v2_runner
    from stackgan.pipeline.pipeline import PipelinePaths, create_pipeline
    from stackgan.pipeline.text_path import should_train_text_encoder

    paths = PipelinePaths(
        pipeline_root=args.pipeline_root,
        serving_dir=args.serving_dir,
        checkpoint_dir=args.checkpoint_dir or f"{args.pipeline_root.rstrip('/')}/checkpoints",
    )
    pipeline = create_pipeline(
        cfg,
        pipeline_name=args.pipeline_name,
        data_root=args.data,
        paths=paths,
        # an explicit source is taken as given: the data is checked where it lives, when the
        # components run (the trainers fail with a clear message if embeddings are missing)
        train_text_encoder=(
            should_train_text_encoder(cfg, args.data)
            if cfg.text.source == "auto"
            else cfg.text.source == "train"
        ),
        beam_pipeline_args=args.beam_arg,
    )
    out = kubeflow_v2_runner.compile_pipeline(
        pipeline, args.out, image=args.image or kubeflow_v2_runner.DEFAULT_IMAGE
    )
    print(
        f"wrote {out} ({len(pipeline.components)} components, image "
        f"{args.image or kubeflow_v2_runner.DEFAULT_IMAGE})"
    )
    if beam_note:
        print(beam_note)
    return 0
