"""The Evaluator component's job, apart from TFX: score a generator (and the latest blessed
one, the baseline) with the CUB classifier on the captions of `EvalConfig.captions_split`,
judge it (`stackgan.evaluation.evaluator.judge`), and write metrics.json, metrics.md and the
sample sheets. Its executor only turns artifacts into `EvaluatorJobArgs` (TFX's Trainer idiom:
FnArgs -> run_fn), then writes the blessing and the artifact properties TFX reads."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import time
from collections.abc import Sequence
from typing import Any

import tensorflow as tf

from stackgan.config import Config
from stackgan.evaluation import evaluator, interpolation_sheet
from stackgan.evaluation.classifier import LoadedClassifier, load_classifier
from stackgan.serving import signatures
from stackgan.serving.generator import Generator, load_generator
from stackgan.tfrecords.input_pipeline import make_eval_dataset
from stackgan.training.progress import ProgressLine
from stackgan.visualize.sample_sheet import render_comparison, render_sheet

METRICS_FILE = "metrics.json"
TABLE_FILE = "metrics.md"
SHEET_FILE = "samples.png"
# real | Stage-I | Stage-II for the same captions (only for generators with a Stage-II)
COMPARISON_FILE = "comparison.png"
# from one scored caption to one of another class (stackgan.evaluation.interpolation_sheet)
INTERPOLATION_FILE = "interpolation.png"
SHEET_COLUMNS = 8
PROGRESS_EVERY_S = 10.0  # the Evaluator's progress line: at most this often
CLASSIFIER_INFO_KEYS = (
    "holdout_top1_accuracy",
    "classes",
    "class_ids",
    "image_size",
    "alpha",
    "weights_source",
    "warning",
)


@dataclasses.dataclass(frozen=True)
class GeneratorRef:
    """A generator to score: its Model directory (the SavedModel at Format-Serving under it)
    and its id in the metadata store, as the report names it."""

    uri: str
    id: int


@dataclasses.dataclass(frozen=True)
class EvaluatorJobArgs:
    config: Config  # eval, data crop sizes and encoding (component READS)
    captions_pattern: str  # TFRecord files of the split whose captions are scored
    model: GeneratorRef  # the candidate
    classifier_dir: str  # the classifier's Model directory (SavedModel at Format-Serving)
    classifier_path: str  # ... and the SavedModel itself
    output_dir: str  # metrics.json, metrics.md, samples.png, interpolation.png (+ comparison.png)
    baseline: GeneratorRef | None = None  # the latest blessed generator, if any


@dataclasses.dataclass
class Baseline:
    """The latest model an earlier run blessed, scored like the candidate."""

    model: GeneratorRef
    evaluation: evaluator.Evaluation
    same_as_candidate: bool  # a re-run of the same model: its own scores, not re-computed
    truncation: float | None  # the noise scale it was sampled at (None: not recorded)


@dataclasses.dataclass(frozen=True)
class EvaluatorJobResult:
    evaluation: evaluator.Evaluation
    verdict: evaluator.Verdict
    baseline: Baseline | None
    metrics: dict[str, Any]


def run_evaluator_job(args: EvaluatorJobArgs) -> EvaluatorJobResult:
    """Scores the candidate (and the baseline), judges it and writes the report."""
    config = args.config
    classifier = load_classifier(args.classifier_path)
    if classifier.info.get("warning"):
        logging.warning("Evaluator: the classifier says: %s", classifier.info["warning"])
    generator = load_generator(args.model.uri)
    result = _score(generator, args.captions_pattern, config, classifier)
    baseline = score_baseline(
        args.baseline, args.model, generator, result, args.captions_pattern, config, classifier
    )
    verdict = evaluator.judge(
        result, config.eval, baseline.evaluation if baseline is not None else None
    )
    logging.info("Evaluator: %s", markdown_table(result, verdict, baseline, generator.truncation))
    metrics = metrics_json(
        result, verdict, baseline, config, args.model, generator, args.classifier_dir, classifier
    )
    extra_files, metrics["interpolation"] = _interpolation(generator, result.caption_ends, config)
    write_report(
        args.output_dir, result, verdict, baseline, metrics, generator.truncation, extra_files
    )
    return EvaluatorJobResult(result, verdict, baseline, metrics)


def _interpolation(
    generator: Generator, ends: evaluator.CaptionEnds | None, config: Config
) -> tuple[list[tuple[str, bytes]], dict[str, Any] | None]:
    """(the interpolation sheet as a file to write, its entry in metrics.json): from the split's
    first caption to the first of another class; none when the split has one class."""
    if ends is None:
        return [], None
    seed = config.eval.seed
    png = interpolation_sheet.render(generator, ends, seed)
    steps, rows = interpolation_sheet.STEPS, interpolation_sheet.ROWS
    entry = {"file": INTERPOLATION_FILE, "from": ends.first, "to": ends.last, "steps": steps,
             "rows": rows, "seed": seed}  # fmt: skip
    return [(INTERPOLATION_FILE, png)], entry


def markdown_table(
    result: evaluator.Evaluation,
    verdict: evaluator.Verdict,
    baseline: Baseline | None,
    truncation: float | None,
) -> str:
    lines = [
        "| images | count | top-1 (correct) | inception score | FID |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for row in result.table():
        lines.append(
            f"| {row['images']} | {row['count']} | {row['top1_accuracy']:.3f}"
            f" ({row['top1_correct']}) | {row['inception_score_mean']:.3f}"
            f" ± {row['inception_score_std']:.3f} | {row['fid']:.3f} |"
        )
    lines += [
        "",
        "Top-1 of the generated images: against the class of the caption each was generated"
        f" from (chance, one class for every caption: {result.chance:.3f}); of the real images:"
        " against their own class. FID of the real images: between two random halves of the"
        " real test images (the sampling-noise floor at this size). All scores use the"
        " project's MobileNetV2 CUB classifier, so they are not comparable with"
        " Inception-v3-based numbers in papers.",
        "",
        f"Generated images sampled at {signatures.describe_sampling(truncation)}: the noise z"
        " and the CA's eps drawn from N(0, truncation^2).",
        "",
    ]
    if result.refinement is not None:
        r = result.refinement
        lines.append(
            f"Stage-I -> Stage-II ({r.stage1_size} -> {r.stage2_size} px, {r.count} pairs):"
            f" consistency {r.consistency_mad:.2f} levels (mean |downscaled Stage-II - Stage-I|,"
            f" lower = more faithful), detail gain {r.detail_gain:.2f} (1 = no detail beyond"
            f" upsampling), edge sharpness gain {r.edge_sharpness_gain:.2f} (n = edges n times"
            " narrower than upsampling's)."
        )
        lines.append("")
    lines.append(_baseline_line(baseline))
    lines.append(f"Blessed: {'yes' if verdict.blessed else 'no: ' + verdict.message}.")
    return "\n".join(lines) + "\n"


def _baseline_line(baseline: Baseline | None) -> str:
    if baseline is None:
        return "Baseline: none (no model was blessed before)."
    if baseline.same_as_candidate:
        return f"Baseline: this same model ({baseline.model.uri}), blessed by an earlier run."
    return (
        f"Baseline (latest blessed model, re-scored now): {baseline.model.uri}, generated top-1"
        f" {baseline.evaluation.generated.top1_accuracy:.3f},"
        f" sampled at {signatures.describe_sampling(baseline.truncation)}."
    )


def _baseline_metrics(baseline: Baseline | None) -> dict[str, Any] | None:
    if baseline is None:
        return None
    result = baseline.evaluation
    return {
        "model": baseline.model.uri,
        "model_id": baseline.model.id,
        "same_as_candidate": baseline.same_as_candidate,
        "truncation": baseline.truncation,
        "table": result.table(),
        "chance": result.chance,
        "refinement": _asdict(result.refinement),
        "batch_seeds": result.batch_seeds,
    }


def _asdict(value) -> dict[str, Any] | None:
    return None if value is None else dataclasses.asdict(value)


def metrics_json(
    result: evaluator.Evaluation,
    verdict: evaluator.Verdict,
    baseline: Baseline | None,
    config: Config,
    model: GeneratorRef,
    generator: Generator,
    classifier_uri: str,
    classifier: LoadedClassifier,
) -> dict[str, Any]:
    cfg = config.eval
    return {
        "table": result.table(),
        # the noise the generated images were drawn with (the export's ModelConfig.truncation)
        "sampling": {"truncation": generator.truncation},
        "captions_split": cfg.captions_split,
        "chance": result.chance,
        "refinement": _asdict(result.refinement),
        "num_samples": result.generated.count,
        "num_real_images": result.real.count,
        "is_splits": cfg.is_splits,
        "seed": cfg.seed,
        "batch_seeds": result.batch_seeds,
        "generated_image_size": int(result.sheet_images.shape[1]),
        "gate": {
            "min_class_accuracy_ratio": cfg.min_class_accuracy_ratio,
            "required_top1": verdict.required_top1,
            "baseline_tolerance": cfg.baseline_tolerance,
            "baseline_required_top1": verdict.baseline_required_top1,
            "min_colour_gain_ratio": cfg.min_colour_gain_ratio,
            "required_colour_gain": verdict.required_colour_gain,
            "baseline_required_colour_gain": verdict.baseline_required_colour_gain,
            "reasons": list(verdict.reasons),
        },
        "baseline": _baseline_metrics(baseline),
        "blessed": verdict.blessed,
        "generator": model.uri,
        "classifier": {
            "uri": classifier_uri,
            **{key: classifier.info.get(key) for key in CLASSIFIER_INFO_KEYS},
        },
    }


def _score(
    generator: Generator,
    captions_pattern: str,
    config: Config,
    classifier: LoadedClassifier,
    name: str = "Evaluator",
):
    batches = make_eval_dataset(captions_pattern, config, config.eval.batch_size)
    return evaluator.evaluate(
        batches.as_numpy_iterator(),
        generator.generate,
        classifier,
        config.eval,
        classifier.info["class_ids"],
        progress=progress_line(name, config.eval.batch_size),
    )


def progress_line(name: str, batch_size: int, stream=None, clock=time.monotonic):
    """`progress(batches done, batches)` printing `<name> step k/n  img/s  ETA` at most every
    PROGRESS_EVERY_S (and the last batch): the whole test split of CUB is ~29,000 captions."""
    line: list[ProgressLine] = []

    def progress(done: int, total: int) -> None:
        if not line:
            line.append(ProgressLine(total, batch_size, prefix=f"{name} ", stream=stream,
                                     clock=clock, min_interval_s=PROGRESS_EVERY_S))  # fmt: skip
        line[0].report(done, {})

    return progress


def score_baseline(
    baseline_model: GeneratorRef | None,
    model: GeneratorRef,
    generator: Generator,
    result: evaluator.Evaluation,
    captions_pattern: str,
    config: Config,
    classifier: LoadedClassifier,
) -> Baseline | None:
    """The baseline scored with this run's classifier, captions and seeds (its own earlier
    scores used another classifier); None without one."""
    if baseline_model is None:
        return None
    if baseline_model.id == model.id:
        # a re-run whose trainers were cached: the baseline is the candidate, same scores
        return Baseline(baseline_model, result, True, generator.truncation)
    try:
        baseline_generator = load_generator(baseline_model.uri)
        evaluation = _score(
            baseline_generator, captions_pattern, config, classifier, "Evaluator (baseline)"
        )
    except (ValueError, FileNotFoundError) as e:
        raise ValueError(
            f"the latest blessed model {baseline_model.uri} (the baseline) cannot be scored on"
            f" these examples: {e}. It was blessed under another configuration; use a new"
            " --work-dir or --pipeline-name to start a new model lineage."
        ) from e
    return Baseline(baseline_model, evaluation, False, baseline_generator.truncation)


def write_report(
    out: str,
    result,
    verdict,
    baseline,
    metrics: dict[str, Any],
    truncation: float | None,
    extra_files: Sequence[tuple[str, bytes]] = (),
) -> None:
    sheet = io.BytesIO()
    render_sheet(result.sheet_images, result.sheet_captions, columns=SHEET_COLUMNS).save(
        sheet, format="PNG"
    )
    files = [(SHEET_FILE, sheet.getvalue()), *extra_files]
    if result.comparison is not None:
        comparison = io.BytesIO()
        c = result.comparison
        render_comparison(c.real, c.stage1, c.stage2, c.captions).save(comparison, format="PNG")
        files.append((COMPARISON_FILE, comparison.getvalue()))
    for name, content in (
        *files,
        (TABLE_FILE, markdown_table(result, verdict, baseline, truncation).encode()),
        (METRICS_FILE, json.dumps(metrics, indent=2).encode()),
    ):
        with tf.io.gfile.GFile(os.path.join(out, name), "wb") as f:
            f.write(content)
