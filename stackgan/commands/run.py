"""`stackgan run`: the main job. Runs the whole TFX DAG on a dataset (or on the embedded
synthetic one) and prints where the results are."""

from __future__ import annotations

import argparse
import os
import time

from stackgan import config as config_lib
from stackgan.commands import beam_options, common


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "run",
        help="run the whole pipeline (data -> Stage-I -> Stage-II -> evaluation -> push)",
        description=__doc__,
    )
    p.add_argument("--data", help="dataset root (CUB_200_2011/ + birds/); default: synthesise one")
    p.add_argument("--work-dir", default="stackgan-work", help="where everything is written")
    common.add_config_arguments(p, default_profile="demo")
    p.add_argument("--runner", choices=("local", "beam"), default="local")
    p.add_argument("--pipeline-name", default="stackgan")
    p.add_argument("--no-cache", action="store_true", help="re-run every component")
    p.add_argument(
        "--beam-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="a Beam pipeline argument for the components' Beam jobs, e.g. "
        "--beam-arg=--direct_running_mode=multi_processing (repeatable)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # every mistake a user can make here is found before the DAG starts
    cfg = common.config_from_args(args)
    work_dir = os.path.abspath(args.work_dir)
    common.check_writable_dir(work_dir, "--work-dir")
    if args.data:
        common.check_data_root(args.data, cfg)
    common.check_classifier_weights(cfg)
    beam_note = beam_options.check(args.beam_arg, "--beam-arg ")
    # The local and Beam runners train on this machine: float16 on a CPU is refused now, not
    # after the preprocessing. (Imports TensorFlow, to see the GPUs: after the checks above.)
    from stackgan.training import precision

    chosen = precision.resolve(cfg.train.precision)
    data_root = os.path.abspath(args.data) if args.data else _ensure_synthetic(cfg, work_dir)

    # Imported here: TFX and TensorFlow take ~20 s to import, `stackgan --help` should not.
    from stackgan.pipeline import layout, local_runner, results
    from stackgan.pipeline.pipeline import PipelinePaths, create_pipeline
    from stackgan.pipeline.text_path import exports_text_encoder, should_train_text_encoder

    train_text_encoder = should_train_text_encoder(cfg, data_root)
    takes_text = exports_text_encoder(cfg, train_text_encoder)
    paths = PipelinePaths(
        pipeline_root=layout.pipeline_root(work_dir),
        serving_dir=layout.serving_dir(work_dir),
        checkpoint_dir=layout.checkpoint_dir(work_dir),
    )
    print(
        f"stackgan run: profile {cfg.profile}, data {data_root}, work dir {work_dir}\n"
        f"  precision: {chosen.describe()}\n"
        f"  seeds: train.seed={cfg.train.seed}, classifier.seed={cfg.classifier.seed},"
        f" text.seed={cfg.text.seed} (the same seeds train the same models on this kind of"
        " machine; --set train.seed=N trains other GANs)\n"
        f"  text condition: "
        + (
            "char-CNN-RNN encoder trained on the captions"
            if train_text_encoder
            else "the dataset's char-CNN-RNN-embeddings.pickle"
            + (
                " (and an encoder distilled from it, so the pushed model takes sentences)"
                if takes_text
                else " (the pushed model takes embeddings only)"
            )
        ),
        flush=True,
    )
    if args.data:
        note = unmirrored_photographs_note(cfg)
        if note:
            print(note, flush=True)
    if beam_note:
        print(beam_note, flush=True)

    def factory(connection):
        return create_pipeline(
            cfg,
            pipeline_name=args.pipeline_name,
            data_root=data_root,
            paths=paths,
            train_text_encoder=train_text_encoder,
            metadata_connection_config=connection,
            beam_pipeline_args=args.beam_arg,
            enable_cache=not args.no_cache,
        )

    start = time.monotonic()
    if args.runner == "beam":
        from stackgan.pipeline import beam_runner

        beam_runner.run(factory, work_dir)
    else:
        local_runner.run(factory, work_dir)
    elapsed = time.monotonic() - start
    print(
        results.summarize(work_dir, args.pipeline_name, elapsed, data_root, takes_text),
        flush=True,
    )
    return 0


def unmirrored_photographs_note(cfg: config_lib.Config) -> str | None:
    """One line for a run on the user's data with the training flip off (the demo profile:
    its synthetic birds all face right); birds in photographs face both ways."""
    if cfg.data.train_flip:
        return None
    return (
        "  note: training images are not mirrored (data.train_flip=false: the demo's synthetic"
        " birds all face right); birds in photographs face both ways, and"
        " --set data.train_flip=true mirrors them as the paper does"
    )


def _ensure_synthetic(cfg: config_lib.Config, work_dir: str) -> str:
    """The embedded default dataset, written once into the work dir and reused afterwards."""
    from stackgan.data import synth
    from stackgan.data.cub import CubDataset, CubFormatError
    from stackgan.pipeline import layout

    out = layout.data_dir(work_dir)
    # write_dataset renames a finished staging dir into place, so a dir here is complete; it
    # is reused only if it was written from this profile's SynthConfig (a changed
    # `--set synth.facing=...` or seed must not train on the old birds).
    if synth.written_by(out, cfg.synth):
        try:
            existing = CubDataset(out, strict=True)
            found = sum(r.present for r in existing.reports.values())
        except CubFormatError:
            found = -1
        if found == cfg.synth.classes * cfg.synth.images_per_class:
            print(f"using the synthetic dataset already in {out} ({found} images)", flush=True)
            return out
    print(f"synthesising the embedded default dataset into {out} ...", flush=True)
    summary = synth.write_dataset(out, cfg.synth, overwrite=True)
    print(summary.format(), flush=True)
    return out
