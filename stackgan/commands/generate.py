"""`stackgan generate`: a captioned grid of birds from a pushed (or any exported) generator."""

from __future__ import annotations

import argparse
import os
import pickle
import secrets

import numpy as np

from stackgan.errors import UserError

# what loading a pickle (or reading its array) raises on a file that is not one we can use,
# ImportError included: objects of a library not installed (torch tensors, say)
UNREADABLE_PICKLE = (pickle.UnpicklingError, EOFError, ValueError, TypeError, ImportError)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("generate", help="draw birds for captions or text embeddings")
    p.add_argument(
        "--model",
        required=True,
        help="a generator SavedModel dir, or a TF Serving base dir (the newest version is used)",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--caption", action="append", help="a sentence (repeatable); needs the text signature"
    )
    source.add_argument(
        "--embeddings",
        help=".npy of [N, E] or [N, 10, E], or a char-CNN-RNN-embeddings.pickle "
        "([N, 10, E]; the first caption embedding of each image is used)",
    )
    p.add_argument("--captions-file", help="with --embeddings: one label per line for the grid")
    p.add_argument(
        "--n",
        type=int,
        default=None,
        help="how many images (default 8); with --interpolate, how many rows (default 4)",
    )
    p.add_argument(
        "--interpolate",
        type=int,
        metavar="STEPS",
        help="STEPS images from the first caption (or embedding) to the second, the noise held"
        " along each row (the paper's Figure 8); the first row at zero noise",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=None,
        help="the same seed draws the same birds (default: a fresh seed, printed)",
    )
    p.add_argument("--columns", type=int, default=4)
    p.add_argument("--stage", choices=("64", "256"), default=None, help="default: the largest")
    p.add_argument("--out", required=True, help="the PNG to write")
    p.set_defaults(func=run)


def resolve_model_dir(path: str) -> str:
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    if not os.path.isdir(path):
        raise UserError(
            f"--model {path}: no such folder; pass a generator SavedModel folder or a TF"
            " Serving base folder (stackgan run prints where it pushed the model)"
        )
    versions = sorted((int(v) for v in os.listdir(path) if v.isdigit()), reverse=True)
    for version in versions:
        candidate = os.path.join(path, str(version))
        if os.path.exists(os.path.join(candidate, "saved_model.pb")):
            return candidate
    raise UserError(f"--model {path}: no SavedModel in it or in its numbered versions")


def load_embeddings(path: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise UserError(f"--embeddings {path}: no such file")
    try:
        if path.endswith(".npy"):
            array = np.asarray(np.load(path), dtype=np.float32)
        else:
            with open(path, "rb") as f:
                array = np.asarray(pickle.load(f, encoding="latin1"), dtype=np.float32)
    except UNREADABLE_PICKLE as error:
        kind = "a .npy array" if path.endswith(".npy") else "a pickled [N, 10, E] array"
        raise UserError(f"--embeddings {path}: not {kind} of numbers ({error})") from error
    if array.ndim == 3:
        array = array[:, 0, :]
    if array.ndim != 2:
        raise UserError(f"--embeddings {path}: expected [N, E] or [N, 10, E], got {array.shape}")
    return array.astype(np.float32)


def release_captions(embeddings_path: str, n: int) -> list[str] | None:
    """The first caption of each of the first `n` images when `embeddings_path` is a release-
    layout pickle (birds/<split>/ beside filenames.pickle, captions in birds/text_c10/): row i of
    the pickle embeds caption 0 of image i. None when that layout is not there."""
    folder = os.path.dirname(os.path.abspath(embeddings_path))
    names_path = os.path.join(folder, "filenames.pickle")
    text_dir = os.path.join(os.path.dirname(folder), "text_c10")
    if not (os.path.isfile(names_path) and os.path.isdir(text_dir)):
        return None
    try:
        with open(names_path, "rb") as f:
            names = [str(name) for name in pickle.load(f, encoding="latin1")[:n]]
    except UNREADABLE_PICKLE:
        return None  # labels only: the rows' own names serve
    if len(names) < n:
        return None
    captions = []
    for name in names:
        path = os.path.join(text_dir, f"{name}.txt")
        if not os.path.isfile(path):
            return None
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [line.strip() for line in f if line.strip()]
        captions.append(lines[0] if lines else name)
    return captions


def image_format(path: str) -> str | None:
    """The format Pillow writes for `path`'s extension (PNG for .png), or None."""
    from PIL import Image

    found = Image.registered_extensions().get(os.path.splitext(path)[1].lower())
    return found if found in Image.SAVE else None


def check_arguments(args: argparse.Namespace) -> None:
    """The arguments' own mistakes, each named, before TensorFlow's ~20 s import."""
    if args.n is not None and args.n < 1:
        raise UserError(f"--n {args.n}: draw at least one image")
    if args.interpolate is not None:
        if args.interpolate < 2:
            raise UserError(
                f"--interpolate {args.interpolate}: a line from one caption to another needs"
                " at least 2 steps"
            )
        if args.caption is not None and len(args.caption) != 2:
            raise UserError(
                f"--interpolate: give exactly two --caption (the line's ends), got"
                f" {len(args.caption)}"
            )
    for number, caption in enumerate(args.caption or [], 1):
        if not caption.strip():
            # the encoder would embed the empty string and draw birds of no caption
            raise UserError(f"--caption number {number} is blank: give the sentence to draw")
    if args.columns < 1:
        raise UserError(f"--columns {args.columns}: the grid needs at least one column")
    if args.seed is not None and not 0 <= args.seed < 2**63:
        raise UserError(f"--seed {args.seed}: a seed is an integer in [0, 2**63)")
    if image_format(args.out) is None:
        raise UserError(
            f"--out {args.out}: no image format has this extension; name the file .png (or .jpg)"
        )
    if args.captions_file and not os.path.isfile(args.captions_file):
        raise UserError(f"--captions-file {args.captions_file}: no such file")


def save_sheet(sheet, path: str) -> None:
    """Writes the grid through a temporary file, so a failed write leaves no partial image."""
    folder = os.path.dirname(os.path.abspath(path))
    partial = os.path.join(folder, f".{os.path.basename(path)}.partial")
    try:
        os.makedirs(folder, exist_ok=True)
        sheet.save(partial, format=image_format(path))
        os.replace(partial, path)
    except OSError as error:
        if os.path.exists(partial):
            os.remove(partial)
        raise UserError(f"--out {path}: cannot write it ({error})") from error


def run(args: argparse.Namespace) -> int:
    check_arguments(args)
    model_dir = resolve_model_dir(args.model)  # before TensorFlow's ~20 s import
    from stackgan.serving import signatures
    from stackgan.serving.generator import load_generator

    try:
        generator = load_generator(model_dir)
    except ValueError as error:  # not a generator export, or its generator.json is broken
        raise UserError(str(error)) from error
    if args.stage and f"image_{args.stage}" not in generator.outputs:
        stages = " or ".join(o.removeprefix("image_") for o in generator.outputs if "image_" in o)
        raise UserError(f"--stage {args.stage}: {model_dir} draws only --stage {stages}")
    if args.caption and not generator.has_text_signature:
        raise UserError(
            f"--caption: {model_dir} takes no sentences: it was trained on the dataset's"
            " precomputed caption embeddings, so no text encoder was exported with it. Pass"
            " --embeddings (e.g. DATA/birds/test/char-CNN-RNN-embeddings.pickle), or train"
            " one that reads text: `stackgan run` without `--set text.distill_pickle=false`"
            " exports an encoder distilled from those embeddings"
        )
    # always the seeded signatures, so the grid printed can be drawn again
    seed = secrets.randbelow(2**31) if args.seed is None else args.seed
    if args.interpolate is not None:
        return _interpolate(args, generator, model_dir, seed)
    args.n = 8 if args.n is None else args.n
    if args.caption:
        captions = (args.caption * args.n)[: max(args.n, len(args.caption))]
        inputs = captions
    else:
        inputs = load_embeddings(args.embeddings)[: args.n]
        captions = _embedding_labels(args, len(inputs))
    draw = generator.generate_from_captions if args.caption else generator.generate
    try:
        images = draw(inputs, seed=seed)
    except ValueError as error:  # the generator's input checks: they name the input
        raise UserError(f"{model_dir}: {error}") from error
    side = _save_grid(args, images, captions, args.columns)
    print(
        f"wrote {args.out}: {len(captions)} images of {side}px, seed {seed} "
        f"(--seed {seed} draws them again), sampled at "
        f"{signatures.describe_sampling(generator.truncation)}"
    )
    return 0


def _save_grid(args: argparse.Namespace, images: dict, captions: list[str], columns: int) -> int:
    """The --stage images (default the largest) as a captioned grid at --out; their side."""
    from stackgan.visualize.sample_sheet import render_sheet

    key = f"image_{args.stage}" if args.stage else max(images, key=lambda k: images[k].shape[1])
    save_sheet(render_sheet(images[key], captions, columns=columns), args.out)
    return int(images[key].shape[1])


def _embedding_labels(args: argparse.Namespace, n: int) -> list[str]:
    """Labels of the first `n` rows of --embeddings: --captions-file's lines, else the release's
    captions beside the pickle, else the file's name and the row."""
    named = [f"{os.path.basename(args.embeddings)} #{i}" for i in range(n)]
    if args.captions_file:
        try:
            with open(args.captions_file, encoding="utf-8") as f:
                lines = [line.strip() for line in f][:n]
        except UnicodeDecodeError as error:
            raise UserError(
                f"--captions-file {args.captions_file}: not UTF-8 text ({error.reason} at byte"
                f" {error.start})"
            ) from error
        return lines + named[len(lines) :]
    return release_captions(args.embeddings, n) or named


def _interpolate(args: argparse.Namespace, generator, model_dir: str, seed: int) -> int:
    """`--interpolate`: the grid of stackgan.serving.interpolation, one row per noise."""
    from stackgan.serving import interpolation, signatures

    if args.caption:
        ends, (first, last) = generator.embed_captions(args.caption), args.caption
    else:
        ends = load_embeddings(args.embeddings)
        if len(ends) < 2:
            raise UserError(
                f"--embeddings {args.embeddings}: --interpolate needs two rows (the line's"
                f" ends), it has {len(ends)}"
            )
        ends, (first, last) = ends[:2], _embedding_labels(args, 2)
    rows = 4 if args.n is None else args.n
    try:
        images = interpolation.interpolate(
            generator, ends[0], ends[1], args.interpolate, rows, seed
        )
    except ValueError as error:  # the generator's input checks: they name the input
        raise UserError(f"{model_dir}: {error}") from error
    grid = interpolation.labels(first, last, args.interpolate, rows)
    side = _save_grid(args, images, grid, args.interpolate)
    print(
        f"wrote {args.out}: {rows} row(s) of {args.interpolate} images of {side}px from"
        f" {first!r} to {last!r}; row 1 at zero noise"
        + (
            f", rows 2-{rows} with noise from seed {seed} (--seed {seed} draws them again),"
            f" sampled at {signatures.describe_sampling(generator.truncation)}"
            if rows > 1
            else ""
        )
    )
    return 0
