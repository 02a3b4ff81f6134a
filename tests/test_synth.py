"""The synthetic CUB-format dataset: layout, determinism, truthful captions, embeddings that
carry caption content, exact bounding boxes, all-or-nothing writes, and the `synth` command."""

from __future__ import annotations

import dataclasses
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stackgan import cli
from stackgan.config import SynthConfig
from stackgan.data import synth, synth_birds, synth_text
from stackgan.data.synth_text import PALETTE, caption_attributes, caption_embedding

INDEX_FILES = (
    "images.txt",
    "bounding_boxes.txt",
    "image_class_labels.txt",
    "train_test_split.txt",
    "classes.txt",
)
SMALL = SynthConfig(classes=3, images_per_class=2, seed=3, min_side=96, max_side=128)


def _rows(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text().splitlines()]


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def _all_files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


# -- layout ----------------------------------------------------------------------------------
def test_layout_has_every_cub_and_birds_file_with_consistent_rows(synth_root, tiny_config):
    cfg = tiny_config.synth
    n = cfg.classes * cfg.images_per_class
    cub = synth_root / "CUB_200_2011"
    for name in INDEX_FILES:
        rows = _rows(cub / name)
        assert len(rows) == (cfg.classes if name == "classes.txt" else n), name
    classes = {int(i): folder for i, folder in _rows(cub / "classes.txt")}
    assert sorted(classes) == list(range(1, cfg.classes + 1))
    labels = {int(i): int(c) for i, c in _rows(cub / "image_class_labels.txt")}
    for image_id, path in _rows(cub / "images.txt"):
        folder, file = path.split("/")
        # CUB's naming: NNN.Name/Name_XXXX_id.jpg, the folder being the image's class
        assert folder == classes[labels[int(image_id)]]
        name = folder.split(".", 1)[1]
        assert file.startswith(f"{name}_") and file.endswith(f"_{image_id}.jpg")
        with Image.open(cub / "images" / path) as img:
            assert img.format == "JPEG" and img.mode == "RGB"
            assert cfg.min_side <= max(img.size) <= cfg.max_side
        captions = (synth_root / "birds" / "text_c10" / path).with_suffix(".txt")
        assert len(captions.read_text().splitlines()) == 10
    for _image_id, *box in _rows(cub / "bounding_boxes.txt"):
        assert all(v.endswith(".0") for v in box)  # CUB writes "60.0": floats of whole pixels
    assert {flag for _, flag in _rows(cub / "train_test_split.txt")} == {"0", "1"}


def test_pickles_load_like_the_original_release_and_split_by_class(synth_root, tiny_config):
    birds = synth_root / "birds"
    seen_classes = {}
    for split in ("train", "test"):
        folder = birds / split
        for encoding in ("ASCII", "latin1"):  # plain pickle.load, and how Py2 pickles are read
            with (folder / "filenames.pickle").open("rb") as f:
                names = pickle.load(f, encoding=encoding)
            with (folder / "class_info.pickle").open("rb") as f:
                classes = pickle.load(f, encoding=encoding)
            with (folder / "char-CNN-RNN-embeddings.pickle").open("rb") as f:
                embeddings = pickle.load(f, encoding=encoding)
            assert isinstance(names, list) and all(isinstance(n, str) for n in names)
            assert classes == [int(n.split(".", 1)[0]) for n in names]
            assert isinstance(embeddings, list) and len(embeddings) == len(names)
            assert all(e.shape == (10, 1024) and e.dtype == np.float32 for e in embeddings)
        seen_classes[split] = set(classes)
    assert not seen_classes["train"] & seen_classes["test"]  # class-disjoint, like StackGAN's
    # tiny: 4 classes, test_class_fraction 0.25 -> 1 test class
    assert len(seen_classes["test"]) == 1 and len(seen_classes["train"]) == 3


def test_same_seed_gives_identical_bytes_and_another_seed_other_birds(tmp_path):
    first = synth.write_dataset(tmp_path / "a", SMALL)
    synth.write_dataset(tmp_path / "b", SMALL)
    files_a, files_b = _all_files(tmp_path / "a"), _all_files(tmp_path / "b")
    assert files_a.keys() == files_b.keys()
    assert len([k for k in files_a if k.endswith(".jpg")]) == first.images == 6
    for name in files_a:
        assert files_a[name] == files_b[name], name
    other = synth.write_dataset(tmp_path / "c", dataclasses.replace(SMALL, seed=4))
    files_c = _all_files(tmp_path / "c")
    assert [sp.traits for sp in other.species] != [sp.traits for sp in first.species]
    assert files_c["CUB_200_2011/bounding_boxes.txt"] != files_a["CUB_200_2011/bounding_boxes.txt"]


# -- pictures --------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [(500, 375), (96, 140), (130, 96)])
def test_draw_bird_returns_the_exact_extent_of_the_painted_pixels(size):
    magenta = (255, 0, 255)  # no palette colour, even jittered, comes near it
    species = synth_birds.make_species(12, np.random.default_rng(7))
    for i, sp in enumerate(species):
        canvas = Image.new("RGB", size, magenta)
        (x, y, w, h), _ = synth_birds.draw_bird(canvas, sp, np.random.default_rng(i))
        painted = np.any(np.asarray(canvas) != magenta, axis=-1)
        rows, cols = np.flatnonzero(painted.any(axis=1)), np.flatnonzero(painted.any(axis=0))
        assert (x, y, w, h) == (cols[0], rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1)
        assert min(x, y) >= 0 and x + w <= size[0] and y + h <= size[1]


def test_plain_backgrounds_are_a_sky_gradient_and_scenes_are_not(tmp_path):
    """`synth.backgrounds="plain"` (the demo): every image's pixels outside the bird's box are
    one colour per row, blue above and paler below; the default scenes vary along the rows."""
    cfg = dataclasses.replace(SMALL, classes=4, images_per_class=3)
    for backgrounds in ("plain", "scenes"):
        root = tmp_path / backgrounds
        synth.write_dataset(root, dataclasses.replace(cfg, backgrounds=backgrounds))
        cub = root / "CUB_200_2011"
        paths = dict(_rows(cub / "images.txt"))
        spreads = []
        for image_id, *box in _rows(cub / "bounding_boxes.txt"):
            pixels = np.asarray(Image.open(cub / "images" / paths[image_id]), np.float64)
            x, y, w, h = (round(float(v)) for v in box)
            outside = np.ones(pixels.shape[:2], bool)
            # JPEG rings within its 8x8 blocks around the bird's edges
            outside[max(y - 16, 0) : y + h + 16, max(x - 16, 0) : x + w + 16] = False
            rows = [pixels[r][outside[r]] for r in range(len(pixels)) if outside[r].sum() > 8]
            # JPEG (quality 92) moves a smooth gradient by a few levels at most
            spreads.append(max(float(np.abs(row - np.median(row, 0)).max()) for row in rows))
            if backgrounds == "plain":
                top, bottom = pixels[0].mean(0), pixels[-1].mean(0)
                assert top[2] > top[0] and bottom.sum() > top.sum()  # blue overhead, paler low
        if backgrounds == "plain":
            assert max(spreads) <= 6, spreads
        else:
            assert np.median(spreads) > 10, spreads  # noise, clouds, branches, water, ...


def test_the_synth_command_draws_plain_backgrounds_when_asked(tmp_path):
    args = ["synth", "--profile", "tiny", "--classes", "2", "--images-per-class", "2"]
    assert cli.main([*args, str(tmp_path / "plain"), "--backgrounds", "plain"]) == 0
    assert cli.main([*args, str(tmp_path / "scenes"), "--backgrounds", "scenes"]) == 0
    plain, scenes = _all_files(tmp_path / "plain"), _all_files(tmp_path / "scenes")
    jpgs = [k for k in plain if k.endswith(".jpg")]
    assert len(jpgs) == 4 and all(plain[k] != scenes[k] for k in jpgs)
    # the same species and captions in front of either background
    texts = [k for k in plain if k.endswith(".txt") and "text_c10" in k]
    assert len(texts) == 4 and all(plain[k] == scenes[k] for k in texts)


def _beak_and_tail_columns(canvas: Image.Image, used: dict) -> tuple[float, float]:
    pixels = np.asarray(canvas).astype(int)
    columns = []
    for part in ("beak", "tail"):
        ys, xs = np.nonzero(np.abs(pixels - used[part]).max(axis=-1) == 0)
        assert len(xs) >= 5, part
        columns.append(float(xs.mean()))
    return columns[0], columns[1]


def test_facing_right_turns_every_bird_right_and_draws_nothing_else_differently():
    """`facing="right"` (the demo): the beak right of the tail in every image; "both" faces
    either way, and its right-facing birds are drawn pixel for pixel as "right" draws them."""
    species = synth_birds.make_species(6, np.random.default_rng(5))
    magenta = (255, 0, 255)
    faced_right = {"both": [], "right": []}
    for i in range(24):
        sp = species[i % len(species)]
        canvases = {}
        for facing in faced_right:
            canvas = Image.new("RGB", (300, 240), magenta)
            box, used = synth_birds.draw_bird(canvas, sp, np.random.default_rng(i), facing)
            beak, tail = _beak_and_tail_columns(canvas, used)
            faced_right[facing].append(beak > tail)
            canvases[facing] = (np.asarray(canvas), box)
        if faced_right["both"][-1]:
            assert np.array_equal(canvases["both"][0], canvases["right"][0])
            assert canvases["both"][1] == canvases["right"][1]
    assert all(faced_right["right"])
    assert 6 <= sum(faced_right["both"]) <= 18  # p = 0.5 over 24 birds


def test_the_synth_command_turns_every_bird_right_when_asked(tmp_path):
    from stackgan.config import get_profile

    args = ["synth", "--profile", "tiny", "--classes", "2", "--images-per-class", "2"]
    assert cli.main([*args, str(tmp_path / "right"), "--facing", "right"]) == 0
    asked = dataclasses.replace(
        get_profile("tiny").synth, classes=2, images_per_class=2, facing="right"
    )
    assert synth.written_by(tmp_path / "right", asked)
    assert not synth.written_by(tmp_path / "right", dataclasses.replace(asked, facing="both"))


def test_draw_bird_paints_every_part_in_its_species_colour():
    species = synth_birds.make_species(12, np.random.default_rng(11))
    for i, sp in enumerate(species):
        canvas = Image.new("RGB", (500, 375), (255, 0, 255))
        _, used = synth_birds.draw_bird(canvas, sp, np.random.default_rng(i))
        pixels = np.asarray(canvas).reshape(-1, 3).astype(int)
        for part, colour in sp.colours:
            # the individual's colour is within the jitter of the palette colour the captions
            # name, and enough of that part shows to be seen
            assert np.abs(np.subtract(used[part], PALETTE[colour])).max() <= 12
            near = np.abs(pixels - used[part]).max(axis=1) == 0
            assert near.sum() >= 20, (sp.name, part)


def test_every_caption_colour_is_painted_inside_the_recorded_box(synth_root):
    cub = synth_root / "CUB_200_2011"
    boxes = {i: [int(float(v)) for v in box] for i, *box in _rows(cub / "bounding_boxes.txt")}
    for image_id, path in _rows(cub / "images.txt"):
        x, y, w, h = boxes[image_id]
        with Image.open(cub / "images" / path) as img:
            inside = np.asarray(img.crop((x, y, x + w, y + h))).reshape(-1, 3).astype(int)
        lines = (synth_root / "birds" / "text_c10" / path).with_suffix(".txt").read_text()
        named = {}
        for caption in lines.splitlines():
            for part, rgb in synth_text.caption_colours(caption).items():
                # the 10 captions of an image never disagree about a part's colour
                assert named.setdefault(part, rgb) == rgb, (path, part)
        assert named, path
        for part, rgb in named.items():
            # jitter (<= 12 per channel) + JPEG error; palette colours are >= 90 apart
            distance = np.abs(inside - rgb).max(axis=1)
            assert (distance <= 40).sum() >= 3, (path, part, rgb)


# -- captions --------------------------------------------------------------------------------
def test_captions_are_true_varied_and_consistent_within_a_class(synth_root):
    text_dir = synth_root / "birds" / "text_c10"
    for class_dir in sorted(text_dir.iterdir()):
        stated: dict[str, str] = {}
        openings = set()
        for file in class_dir.iterdir():
            captions = file.read_text().splitlines()
            assert len(set(captions)) == 10, file
            for caption in captions:
                attrs = caption_attributes(caption)
                assert attrs, caption
                for key, value in attrs.items():
                    assert stated.setdefault(key, value) == value, (file, caption, key)
                openings.add(" ".join(caption.split()[:3]))
        assert len(openings) >= 4, class_dir  # wording varies, not one template


def test_write_captions_states_a_subset_of_the_species_traits():
    for sp in synth_birds.make_species(30, np.random.default_rng(5)):
        captions = synth_text.write_captions(sp.traits, np.random.default_rng(sp.class_id))
        mentioned = set()
        for caption in captions:
            attrs = caption_attributes(caption)
            assert attrs.items() <= sp.traits.items(), caption
            mentioned |= attrs.keys()
        assert len(mentioned) >= 5  # ten captions between them cover most of the bird


@pytest.mark.parametrize(
    "caption, expected",
    [
        # real CUB captions (Reed et al.), from ../shared/cub-sample/birds/text_c10
        (
            "this bird has wings that are black and has a yellow bill",
            {"wings": "black", "beak": "yellow"},
        ),
        (
            "this bird has a white crown, a long neck, and an orange bill",
            {"crown": "white", "beak": "orange"},
        ),
        (
            "a large bird with a white breast and pointed beak.",
            {"size": "large", "breast": "white"},
        ),
        (
            "the long-beaked bird has a white body with long brown wings.",
            {"body": "white", "wings": "brown"},
        ),
        (
            "a bird with a very long wing span and a long pointed beak.",
            {"beak_length": "long"},
        ),
        # the synthetic phrasings
        (
            "this small bird is mostly gray with a red crown, black wings and a short tail",
            {
                "size": "small",
                "body": "grey",
                "crown": "red",
                "wings": "black",
                "tail_length": "short",
            },
        ),
        (
            "the bird has a long thin orange bill, and its belly is white.",
            {"beak": "orange", "beak_length": "long", "belly": "white"},
        ),
        ("a medium sized bird with a green chest", {"size": "medium", "breast": "green"}),
    ],
)
def test_caption_attributes_reads_reed_style_captions(caption, expected):
    assert caption_attributes(caption) == expected


def test_caption_colours_gives_palette_rgb_per_part():
    colours = synth_text.caption_colours("this bird has a red crown, black wings and a white belly")
    assert colours == {"crown": (200, 30, 35), "wings": (25, 25, 25), "belly": (240, 240, 235)}


def test_nearest_colour_names_jittered_and_jpeg_shifted_colours():
    assert synth_text.nearest_colour((200, 30, 35)) == "red"
    assert synth_text.nearest_colour((230, 150, 60)) == "orange"
    assert synth_text.nearest_colour((40, 38, 30)) == "black"
    for name, rgb in PALETTE.items():
        for shift in ((30, -30, 30), (-30, 30, -30)):
            assert synth_text.nearest_colour(np.add(rgb, shift)) == name


# -- embeddings ------------------------------------------------------------------------------
def test_caption_embedding_follows_content_not_wording():
    base = caption_embedding("this bird has a red crown, black wings and a white belly")
    assert base.shape == (1024,) and base.dtype == np.float32
    assert np.sqrt(np.mean(base**2)) == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_array_equal(
        base, caption_embedding("this bird has a red crown, black wings and a white belly")
    )
    paraphrase = caption_embedding("a bird with black wings, a white belly, and a red crown.")
    one_colour_changed = caption_embedding(
        "this bird has a blue crown, black wings and a white belly"
    )
    unrelated = caption_embedding("a large bird with a long beak and a short tail")
    assert _cosine(base, paraphrase) > 0.9
    assert 0.3 < _cosine(base, one_colour_changed) < 0.8
    assert abs(_cosine(base, unrelated)) < 0.3
    noisy = caption_embedding(
        "this bird has a red crown, black wings and a white belly", rng=np.random.default_rng(0)
    )
    assert 0.98 < _cosine(base, noisy) < 1.0
    assert caption_embedding("a red crown", dim=64).shape == (64,)


def test_a_colour_means_the_same_on_every_part():
    # what lets a generator draw "yellow wings" though no training bird had them: the
    # embedding of a part's colour shares the colour's direction with every other part's
    yellow_breast = caption_embedding("this bird has a yellow breast")
    assert _cosine(yellow_breast, caption_embedding("this bird has yellow wings")) > 0.35
    for other in ("blue", "red", "grey"):
        assert abs(_cosine(yellow_breast, caption_embedding(f"this bird has {other} wings"))) < 0.3
    # and the part still matters: the same colour on the same part is nearer still
    assert _cosine(yellow_breast, caption_embedding("a bird with a yellow breast")) > 0.8


def test_caption_embedding_is_the_same_in_a_fresh_process_with_another_hash_seed():
    caption = "this bird has a red crown and a long orange beak"
    code = (
        "import sys; from stackgan.data.synth_text import caption_embedding;"
        f"sys.stdout.buffer.write(caption_embedding({caption!r}).tobytes())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, check=True)
    np.testing.assert_array_equal(np.frombuffer(out.stdout, np.float32), caption_embedding(caption))


def test_stored_embeddings_are_the_embeddings_of_the_aligned_captions(synth_root):
    birds = synth_root / "birds"
    for split in ("train", "test"):
        with (birds / split / "filenames.pickle").open("rb") as f:
            names = pickle.load(f)
        with (birds / split / "char-CNN-RNN-embeddings.pickle").open("rb") as f:
            embeddings = pickle.load(f)
        for name, rows in zip(names, embeddings, strict=True):
            captions = (birds / "text_c10" / f"{name}.txt").read_text().splitlines()
            for caption, row in zip(captions, rows, strict=True):
                # the stored row is the caption's embedding plus a little noise
                assert _cosine(row, caption_embedding(caption)) > 0.98, (name, caption)


# -- writing safely and the command ----------------------------------------------------------
def test_an_interrupted_run_leaves_nothing_that_looks_like_a_dataset(tmp_path, monkeypatch):
    real_draw = synth_birds.draw_bird
    calls = []

    def failing_draw(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real_draw(*args, **kwargs)

    monkeypatch.setattr(synth_birds, "draw_bird", failing_draw)
    with pytest.raises(KeyboardInterrupt):
        synth.write_dataset(tmp_path / "out", SMALL)
    assert len(calls) == 4
    assert list(tmp_path.iterdir()) == []  # no OUT_DIR, no hidden staging folder


def test_refuses_a_non_empty_folder_and_replaces_it_only_when_asked(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        synth.write_dataset(out, SMALL)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    summary = synth.write_dataset(out, SMALL, overwrite=True)
    assert summary.root == out and not (out / "keep.txt").exists()
    assert (out / "CUB_200_2011" / "images.txt").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_dataset_records_the_config_it_was_written_from(tmp_path):
    out = tmp_path / "out"
    synth.write_dataset(out, SMALL)
    assert synth.written_by(out, SMALL)
    assert not synth.written_by(out, dataclasses.replace(SMALL, facing="right"))
    assert not synth.written_by(out, dataclasses.replace(SMALL, backgrounds="plain"))
    assert not synth.written_by(tmp_path / "nothing here", SMALL)
    (out / synth.CONFIG_FILE).write_text("{not json")
    assert not synth.written_by(out, SMALL)


def test_run_reuses_the_work_dirs_dataset_only_when_written_from_the_same_config(tmp_path, capsys):
    from stackgan.commands.run import _ensure_synthetic
    from stackgan.config import get_profile

    cfg = get_profile("tiny").with_overrides(
        ["synth.classes=3", "synth.images_per_class=2", "synth.min_side=96", "synth.max_side=128"]
    )
    root = _ensure_synthetic(cfg, str(tmp_path))
    assert "synthesising" in capsys.readouterr().out
    assert _ensure_synthetic(cfg, str(tmp_path)) == root
    assert "using the synthetic dataset already in" in capsys.readouterr().out
    turned = cfg.with_overrides(["synth.facing=right"])
    assert _ensure_synthetic(turned, str(tmp_path)) == root
    assert "synthesising" in capsys.readouterr().out
    assert synth.written_by(root, turned.synth) and not synth.written_by(root, cfg.synth)


@pytest.mark.parametrize(
    "field, value",
    [("classes", 1), ("images_per_class", 1), ("test_class_fraction", 1.0), ("min_side", 32)],
)
def test_unusable_config_is_rejected_by_field_name(tmp_path, field, value):
    with pytest.raises(ValueError, match=field):
        synth.write_dataset(tmp_path / "out", dataclasses.replace(SMALL, **{field: value}))
    assert not (tmp_path / "out").exists()


def test_synth_command_writes_reports_and_refuses_to_clobber(tmp_path, capsys):
    out = tmp_path / "birds_data"
    argv = [
        "synth",
        str(out),
        "--profile",
        "tiny",
        "--classes",
        "3",
        "--images-per-class",
        "2",
        "--seed",
        "9",
    ]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "class 3/3" in printed
    assert "3 classes, 6 images, 60 captions and embeddings" in printed
    assert len(_rows(out / "CUB_200_2011" / "images.txt")) == 6
    before = _all_files(out)

    assert cli.main(argv) == 2
    assert "not empty" in capsys.readouterr().err
    assert _all_files(out) == before

    assert cli.main([*argv[:-1], "10", "--overwrite"]) == 0
    assert _all_files(out) != before  # another seed: other birds
    capsys.readouterr()

    # a size it cannot use: one line naming the field, and nothing written or announced
    refused = tmp_path / "one_class"
    assert cli.main(["synth", str(refused), "--classes", "1"]) == 2
    streams = capsys.readouterr()
    assert streams.out == ""
    assert "SynthConfig.classes must be in [2, 999], got 1" in streams.err
    assert not refused.exists()


def test_a_run_on_photographs_without_the_flip_says_how_to_turn_it_on():
    from stackgan.commands.run import unmirrored_photographs_note
    from stackgan.config import get_profile

    demo = get_profile("demo")
    assert not demo.data.train_flip and demo.synth.facing == "right"
    note = unmirrored_photographs_note(demo)
    assert "--set data.train_flip=true" in note and "\n" not in note
    assert unmirrored_photographs_note(get_profile("paper")) is None
