r"""`stackgan prepare`: a CUB dataset root -> Split-train/, Split-test/ TFRecords + schema.

The same conversion as the CubExampleGen component, without a TFX pipeline around it. Runs
in-process by default; Beam options go after `--`, e.g. two local worker processes:

    stackgan prepare --data ../shared/cub-sample --out /tmp/examples -- \
        --direct_running_mode=multi_processing --direct_num_workers=2

or Dataflow. Workers read the images by path, so --data must be mounted at the same path on
them (e.g. Cloud Storage FUSE); --out may be any Beam file system (gs://...); --setup_file
ships this project to the workers:

    stackgan prepare --data /mnt/cub --out gs://bucket/examples -- \
        --runner=DataflowRunner --project=P --region=R --temp_location=gs://bucket/tmp \
        --setup_file=./setup.py
"""

from __future__ import annotations

import argparse

from stackgan import config as config_lib
from stackgan.commands import beam_options, common
from stackgan.errors import UserError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="convert a CUB dataset root to sharded TFRecords of tf.Example",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data", required=True, help="root holding CUB_200_2011/ and birds/ (a local path)"
    )
    parser.add_argument("--out", required=True, help="output folder (local or gs://...)")
    parser.add_argument(
        "--split",
        choices=("stackgan", "official"),
        help="StackGAN's class-disjoint split (the default, data.split) or CUB's"
        " train_test_split.txt",
    )
    common.add_config_arguments(parser, default_profile="paper")
    parser.add_argument(
        "beam_args",
        nargs=argparse.REMAINDER,
        help="after --: Beam pipeline options (--runner, --direct_num_workers, ...)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = common.config_from_args(args)
    if args.split is not None:
        profile_split = config_lib.get_profile(args.profile).data.split
        if cfg.data.split not in (profile_split, args.split):  # --set chose the other one
            raise UserError(
                f"--split {args.split} and --set data.split={cfg.data.split} disagree; pass one"
            )
        cfg = cfg.replace(data={"split": args.split})
    common.check_data_root(args.data, cfg)
    if "://" not in args.out:  # object stores are checked by the job itself
        common.check_writable_dir(args.out, "--out")
    import apache_beam as beam

    from stackgan.components.cub_example_gen import generate

    beam_args = [a for a in args.beam_args if a != "--"]
    if not any(a.startswith("--runner") for a in beam_args):
        # The engine of the Python DirectRunner for batch, named directly: Beam 2.77's
        # DirectRunner first tries to download and start its Prism runner binary.
        beam_args.insert(0, "--runner=FnApiRunner")
    beam_note = beam_options.check(beam_args)
    if beam_note:
        print(beam_note, flush=True)
    report = generate.generate_examples(
        args.data, cfg, args.out, lambda: beam.Pipeline(argv=beam_args)
    )
    print(report.summary())
    print(f"report: {args.out.rstrip('/')}/{generate.REPORT_NAME}")
    return 0
