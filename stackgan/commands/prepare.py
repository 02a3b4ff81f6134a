"""`stackgan prepare`: a CUB dataset root -> Split-train/, Split-test/ TFRecords + schema.

The same conversion as the CubExampleGen component, without a TFX pipeline around it. Beam
options go after `--`, e.g. two local worker processes:

    stackgan prepare --data ../shared/cub-sample --out /tmp/examples -- \
        --direct_running_mode=multi_processing --direct_num_workers=2
"""

from __future__ import annotations

import argparse

from stackgan.commands import common


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="convert a CUB dataset root to sharded TFRecords of tf.Example",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", required=True, help="root holding CUB_200_2011/ and birds/")
    parser.add_argument("--out", required=True, help="output folder (local or gs://...)")
    parser.add_argument(
        "--split",
        choices=("stackgan", "official"),
        default="stackgan",
        help="StackGAN's class-disjoint split (default) or CUB's train_test_split.txt",
    )
    common.add_config_arguments(parser, default_profile="paper")
    parser.add_argument(
        "beam_args",
        nargs=argparse.REMAINDER,
        help="after --: Beam pipeline options (--runner, --direct_num_workers, ...)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import apache_beam as beam

    from stackgan.components.cub_example_gen import generate

    beam_args = [a for a in args.beam_args if a != "--"]
    cfg = common.config_from_args(args).replace(data={"split": args.split})
    report = generate.generate_examples(
        args.data, cfg, args.out, lambda: beam.Pipeline(argv=beam_args)
    )
    print(report.summary())
    print(f"report: {args.out.rstrip('/')}/{generate.REPORT_NAME}")
    return 0
