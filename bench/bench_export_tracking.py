"""Seconds to write and to load the profile's classifier and generator SavedModels, with the
Keras models their signatures call left untracked (`stackgan.saved_models.export_archive`, main
since d2d7bfe) against tracked by the ExportArchive (the form before), in alternating rounds on
the same machine.

An endpoint carries every variable it reads either way; a tracked model adds its whole layer
tree to the SavedModel's object graph, which the writer walks layer by layer and the loader
restores. Before any time is reported the bench checks that both forms' signatures give the same
outputs, bit for bit, for the same inputs (the generator's `seeded` for the same seed):

    .venv/bin/python bench/bench_export_tracking.py --profile demo
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

# this folder is on sys.path when a bench runs as a script
from bench_export import _size_mb
from bench_train_step import _hardware

FORMS = ("untracked (now)", "tracked (before)")


def _exporters(cfg):
    """{model name: (the modules whose `export_archive` to patch, the Keras models the form
    before tracked, export(out), load_and_call(out) -> {output: array})}."""
    import numpy as np
    import tensorflow as tf

    from stackgan.evaluation import classifier
    from stackgan.models import build_stage1_generator, build_stage2_generator
    from stackgan.serving import export
    from stackgan.serving.generator import load_generator

    classes = 48
    models = classifier.build_classifier(
        cfg.classifier, classes, classifier.choose_weights(cfg.classifier)
    )
    image = np.random.default_rng(0).uniform(-1, 1, (4, 64, 64, 3)).astype("float32")
    stage1 = build_stage1_generator(cfg.model, cfg.data.low_res)
    stage2 = build_stage2_generator(cfg.model, cfg.data.low_res)
    embedding = np.ones([2, cfg.model.embedding_dim], np.float32)

    def classify(out):
        outputs = classifier.load_classifier(out)(tf.constant(image))
        return {k: v.numpy() for k, v in outputs.items()}

    return {
        f"classifier (MobileNetV2 alpha {cfg.classifier.alpha}, {classes} classes)": (
            classifier,
            [models.classifier],
            lambda out: classifier.export_classifier(models, out, {"classes": classes}),
            classify,
        ),
        "generator (Stage-I + Stage-II)": (
            export,
            [stage1, stage2],
            lambda out: export.export_generator(out, cfg.model, stage1, stage2),
            lambda out: load_generator(out).generate(embedding, seed=3),
        ),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profile", default="demo")
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="exports per form and model, alternating (the first pays TF's warm-up)",
    )
    args = p.parse_args()

    import numpy as np
    import tensorflow as tf

    from stackgan import saved_models
    from stackgan.config import PROFILES

    cfg = PROFILES[args.profile]()
    print(f"hardware: {_hardware()}; load average {os.getloadavg()[0]:.1f}")
    print(f"profile {args.profile}, {args.rounds} rounds")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for model_name, (module, tracked, write, read) in _exporters(cfg).items():
            archives = {
                FORMS[0]: saved_models.export_archive,
                FORMS[1]: lambda *r, tracked=tracked: saved_models.export_archive(*r, *tracked),
            }
            times = {form: {"write": [], "load": []} for form in FORMS}
            sizes, outputs = {}, {}
            try:
                for round_ in range(args.rounds):
                    for form in FORMS:
                        module.export_archive = archives[form]
                        out = os.path.join(scratch, f"{len(rows)}-{round_}-{FORMS.index(form)}")
                        start = time.perf_counter()
                        write(out)
                        times[form]["write"].append(time.perf_counter() - start)
                        start = time.perf_counter()
                        outputs[form] = read(out)
                        times[form]["load"].append(time.perf_counter() - start)
                        sizes[form] = _size_mb(out)
            finally:  # the module's own archive again, whatever happened
                module.export_archive = saved_models.export_archive
            now, before = (outputs[form] for form in FORMS)
            for key in now:
                if not np.array_equal(np.asarray(now[key]), np.asarray(before[key])):
                    raise SystemExit(f"{model_name}: the two forms' {key} differ: no time reported")
            rows.append((model_name, times, sizes))
    print("| model | form | write s (each round) | median | load + call s (median) | MB |")
    print("| --- | --- | --- | ---: | ---: | ---: |")
    for model_name, times, sizes in rows:
        for form in FORMS:
            each = " / ".join(f"{s:.2f}" for s in times[form]["write"])
            write = statistics.median(times[form]["write"])
            load = statistics.median(times[form]["load"])
            print(
                f"| {model_name} | {form} | {each} | {write:.2f} | {load:.2f} | {sizes[form]:.2f} |"
            )
    for model_name, times, _ in rows:
        ratios = [
            statistics.median(times[FORMS[1]][kind]) / statistics.median(times[FORMS[0]][kind])
            for kind in ("write", "load")
        ]
        print(
            f"{model_name}: untracked writes {ratios[0]:.2f}x and loads {ratios[1]:.2f}x as fast"
            f" (medians; tf {tf.__version__})"
        )


if __name__ == "__main__":
    main()
