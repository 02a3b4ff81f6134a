"""What crosses to a PyTorch training run on a GPU machine without TensorFlow, and what comes back.

The GPU machines this project is lent carry PyTorch and no TensorFlow (bench_torch_epoch.py says
why), so a long training run there uses the PyTorch mirror of our networks
(bench/torch_train_run.py). This file is its TensorFlow side, run on a machine with the project
installed:

    # 1. a work dir's training Examples + the exact captions the Evaluator scores -> one .npz
    .venv/bin/python bench/torch_run_data.py export --work-dir stackgan-work --out run/data.npz
    # 2. on the GPU machine (PyTorch, no TensorFlow):
    python bench/torch_train_run.py --data run/data.npz --out run/generated
    # 3. its images, scored by the Evaluator's own code against the work dir's classifier
    .venv/bin/python bench/torch_run_data.py score --work-dir stackgan-work --generated run/generated

`export` writes the training split as stored (the 76 px and 304 px crops' encoded bytes, labels,
the 10 caption embeddings per image) and, per split, the caption embeddings in the order in
which `evaluator.evaluate` asks for them (it is run with a recording generator, so the choice of
captions is the Evaluator's, not a copy of it). `score` replays the run's images through
`evaluate` in that order, once as Stage-I alone (64 px) and once as the two-stage generator:
class top-1, FID, colour gain and, for Stage-II, consistency, detail and edge sharpness, with
the real images' figures beside them; the comparison sheets go next to the generated files.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import io
import os

import numpy as np

# this folder is on sys.path when a bench runs as a script
from work_dir_inputs import work_dir_inputs

SPLITS = ("train", "test")
STAGE1, STAGE2 = "image_64", "image_256"


def pack(blobs: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Byte strings -> (one uint8 buffer, int64 offsets [n+1]): an .npz without pickles."""
    offsets = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
    return np.frombuffer(b"".join(blobs), np.uint8), offsets


def unpack(buffer: np.ndarray, offsets: np.ndarray) -> list[bytes]:
    return [buffer[a:b].tobytes() for a, b in zip(offsets[:-1], offsets[1:], strict=True)]


# what `export` writes and torch_train_run.py needs; what a run writes and `score` needs
EXPORTED_KEYS = ("low_bytes", "low_offsets", "high_bytes", "high_offsets", "labels", "embeddings",
                 "stored", "eval_train_embeddings", "eval_test_embeddings")  # fmt: skip
GENERATED_KEYS = ("embeddings", "stage1", "stage2_bytes", "stage2_offsets")


JPEG_QUALITY = 95


def save_generated(folder: str, split: str, embeddings, stage1, stage2, stage_steps: list[int],
                   **progress) -> str:  # fmt: skip
    """Writes a run's images of one split's captions as `score` reads them: the embeddings,
    Stage-I uint8 images, Stage-II images as JPEG q95 bytes (a 200-image split stays under
    the GPU machine's 16 MiB per returned file) and the run's iterations per stage, plus
    `progress` arrays (Stage-I's progress images and their iterations). -> the path."""
    from PIL import Image

    blobs = []
    for image in stage2:
        out = io.BytesIO()
        Image.fromarray(image).save(out, format="JPEG", quality=JPEG_QUALITY)
        blobs.append(out.getvalue())
    buffer, offsets = pack(blobs)
    path = os.path.join(folder, f"generated_{split}.npz")
    save_npz(path, embeddings=embeddings, stage1=stage1, stage2_bytes=buffer,
             stage2_offsets=offsets, stage_steps=np.asarray(stage_steps), **progress)  # fmt: skip
    print(f"{path}: {len(stage1)} captions, {os.path.getsize(path) / 2**20:.1f} MiB", flush=True)
    return path


def save_npz(path: str, **arrays) -> None:
    """Writes the .npz whole or not at all: a run killed while writing leaves no file that
    looks finished."""
    partial = path + ".partial"
    with open(partial, "wb") as f:
        np.savez(f, **arrays)
    os.replace(partial, path)


def load_npz(path: str, keys: tuple[str, ...], maker: str):
    """The .npz at `path` with `keys`, or exit in one line naming what is wrong."""
    try:
        arrays = np.load(path)
    except (OSError, ValueError) as e:
        raise SystemExit(f"{path}: {e}") from None
    missing = [key for key in keys if key not in arrays]
    if missing:
        raise SystemExit(f"{path} lacks {', '.join(missing)}: not a file of {maker}")
    return arrays


def _config(profile: str, overrides: list[str]):
    from stackgan.config import get_profile

    return get_profile(profile).with_overrides(overrides)


def _eval_batches(examples: str, split: str, cfg):
    from stackgan.tfrecords.input_pipeline import make_eval_dataset

    pattern = os.path.join(examples, f"Split-{split}", "*")
    return make_eval_dataset(pattern, cfg, cfg.eval.batch_size).as_numpy_iterator()


def _evaluate(examples, split, cfg, generate_fn, classifier):
    from stackgan.evaluation import evaluator

    eval_cfg = dataclasses.replace(cfg.eval, captions_split=split)
    return evaluator.evaluate(
        _eval_batches(examples, split, cfg),
        generate_fn,
        classifier,
        eval_cfg,
        classifier.info["class_ids"],
    )


def _training_split(examples: str) -> dict[str, np.ndarray]:
    import tensorflow as tf

    from stackgan.schemas import features

    files = sorted(glob.glob(os.path.join(examples, "Split-train", "*")))
    wanted = (features.LABEL, features.IMAGE_LOW, features.IMAGE_HIGH, features.EMBEDDING)
    spec = features.parse_spec(features.WITH_EMBEDDINGS, wanted)
    low, high, labels, embeddings = [], [], [], []
    records = tf.data.TFRecordDataset(files, compression_type="GZIP")
    for example in records.map(lambda record: tf.io.parse_single_example(record, spec)):
        low.append(example[features.IMAGE_LOW].numpy())
        high.append(example[features.IMAGE_HIGH].numpy())
        labels.append(int(example[features.LABEL].numpy()))
        embeddings.append(example[features.EMBEDDING].numpy())
    if not labels:
        raise SystemExit(f"torch_run_data: no training Examples under {examples}Split-train")
    low_buffer, low_offsets = pack(low)
    high_buffer, high_offsets = pack(high)
    return {
        "low_bytes": low_buffer,
        "low_offsets": low_offsets,
        "high_bytes": high_buffer,
        "high_offsets": high_offsets,
        "labels": np.asarray(labels, np.int64),
        "embeddings": np.stack(embeddings).astype(np.float16),
    }


def export(args) -> None:
    from stackgan.evaluation.classifier import load_classifier

    inputs = work_dir_inputs(args.work_dir)
    cfg = _config(args.profile, args.set)
    classifier = load_classifier(inputs["classifier"])
    arrays = _training_split(inputs["examples"])
    arrays["encoding"] = np.array(cfg.data.image_encoding)
    arrays["stored"] = np.array([cfg.data.low_res_stored, cfg.data.high_res_stored])
    for split in SPLITS:
        asked = []

        def record(embeddings, seed, asked=asked):
            # blank images of the served sizes: only the captions asked for matter here
            asked.append(np.array(embeddings, np.float32))
            n, low, high = len(embeddings), cfg.data.low_res, cfg.data.high_res
            return {
                STAGE1: np.zeros([n, low, low, 3], np.uint8),
                STAGE2: np.zeros([n, high, high, 3], np.uint8),
            }

        _evaluate(inputs["examples"], split, cfg, record, classifier)
        arrays[f"eval_{split}_embeddings"] = np.concatenate(asked)
        arrays[f"eval_{split}_batches"] = np.array([len(a) for a in asked], np.int64)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    save_npz(args.out, **arrays)
    print(
        f"{args.out}: {len(arrays['labels'])} training images "
        f"({len(np.unique(arrays['labels']))} classes), embeddings "
        f"{list(arrays['embeddings'].shape)}; Evaluator captions: "
        + ", ".join(f"{s} {len(arrays[f'eval_{s}_embeddings'])}" for s in SPLITS)
        + f"; {os.path.getsize(args.out) / 2**20:.1f} MiB"
    )


class Replay:
    """A `generate_fn` that hands back a run's images in the order `evaluate` asks for them,
    checking that it asks for the captions they were made from."""

    def __init__(self, embeddings: np.ndarray, images: dict[str, np.ndarray]):
        self.embeddings, self.images, self.start = embeddings, images, 0

    def __call__(self, embeddings, seed):
        end = self.start + len(embeddings)
        if not np.allclose(self.embeddings[self.start : end], embeddings, atol=1e-6):
            raise SystemExit(
                f"torch_run_data: the Evaluator asked for other captions at rows {self.start}-"
                f"{end} than the run generated: export and score must use the same work dir"
            )
        out = {key: images[self.start : end] for key, images in self.images.items()}
        self.start = end
        return out


def _decode_jpegs(blobs: list[bytes]) -> np.ndarray:
    from PIL import Image

    return np.stack([np.asarray(Image.open(io.BytesIO(b)).convert("RGB")) for b in blobs])


def _row(name, split, result) -> str:
    g, r = result.generated, result.real
    cells = [
        name,
        split,
        f"{g.top1_accuracy:.3f} ({result.chance:.3f}, {r.top1_accuracy:.3f})",
        f"{g.colour.gain:+.3f} ({r.colour.gain:+.3f})",
        f"{g.fid:.1f}",
        f"{g.inception_score_mean:.1f} ({r.inception_score_mean:.1f})",
    ]
    refinement = result.refinement
    if refinement is None:
        cells += ["", "", ""]
    else:
        cells += [
            f"{refinement.consistency_mad:.2f}",
            f"{refinement.detail_gain:.2f}",
            f"{refinement.edge_sharpness_gain:.2f}",
        ]
    return "| " + " | ".join(cells) + " |"


def score(args) -> None:
    from stackgan.evaluation.classifier import load_classifier
    from stackgan.visualize.sample_sheet import render_comparison, render_sheet

    inputs = work_dir_inputs(args.work_dir)
    cfg = _config(args.profile, args.set)
    classifier = load_classifier(inputs["classifier"])
    print(
        "| images | captions | top-1 (chance, real) | colour gain (real) | FID | IS (real) |"
        " consistency | detail gain | edge sharpness gain |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for split in SPLITS:
        path = os.path.join(args.generated, f"generated_{split}.npz")
        run = load_npz(path, GENERATED_KEYS, "bench/torch_train_run.py")
        stage1 = run["stage1"]
        stage2 = _decode_jpegs(unpack(run["stage2_bytes"], run["stage2_offsets"]))
        embeddings = run["embeddings"]
        only_stage1 = _evaluate(
            inputs["examples"], split, cfg, Replay(embeddings, {STAGE1: stage1}), classifier
        )
        both = _evaluate(
            inputs["examples"],
            split,
            cfg,
            Replay(embeddings, {STAGE1: stage1, STAGE2: stage2}),
            classifier,
        )
        print(_row("Stage-I, 64 px", split, only_stage1))
        print(_row("Stage-II, 256 px", split, both), flush=True)
        render_sheet(only_stage1.sheet_images, only_stage1.sheet_captions, 4).save(
            os.path.join(args.generated, f"stage1_{split}.png")
        )
        if "progress" in run:
            # Stage-I's images of 8 fixed captions, one row per point of its run
            progress, steps = run["progress"], run["progress_steps"]
            labels = [f"iteration {s}" for s in steps for _ in range(progress.shape[1])]
            render_sheet(progress.reshape(-1, *progress.shape[2:]), labels, progress.shape[1]).save(
                os.path.join(args.generated, "stage1_progress.png")
            )
        if both.comparison is not None:
            c = both.comparison
            render_comparison(c.real, c.stage1, c.stage2, c.captions).save(
                os.path.join(args.generated, f"comparison_{split}.png")
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in (
        ("export", "a work dir -> the .npz a torch_train_run.py run trains on"),
        ("score", "score a torch_train_run.py run's images with the Evaluator"),
    ):
        p = commands.add_parser(name, help=help_text)
        p.add_argument("--work-dir", required=True, help="a finished `stackgan run` work dir")
        # the Evaluator's settings (num_samples, batch_size, seed) come from this profile
        p.add_argument("--profile", default="demo")
        p.add_argument("--set", action="append", default=[], help="config override")
        if name == "export":
            p.add_argument("--out", required=True, help="the .npz to write")
        else:
            p.add_argument("--generated", required=True, help="the folder torch_train_run.py wrote")
    args = parser.parse_args()
    export(args) if args.command == "export" else score(args)


if __name__ == "__main__":
    main()
