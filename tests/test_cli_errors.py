"""`stackgan` on user mistakes: one line on stderr naming the thing and what to do, exit code 2,
nothing started; `--debug` shows the traceback; a bug keeps its traceback. No TensorFlow here:
every mistake is caught before the DAG (or a Beam job) would start."""

from __future__ import annotations

import os
import pickle
import shutil
import subprocess
import sys

import pytest

from stackgan import cli
from stackgan.commands import beam_options
from stackgan.config import ConfigError
from stackgan.data import cub


def _fails(capsys, argv: list[str]) -> str:
    """Runs `stackgan argv`, expects exit code 2 and returns its one stderr line."""
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    return err.rstrip("\n")


def test_an_unknown_set_field_is_named_with_the_closest_one(capsys, tmp_path):
    work = tmp_path / "work"
    line = _fails(capsys, ["run", "--work-dir", str(work), "--set", "train.max_step=3"])
    assert line == (
        "stackgan run: error: --set train.max_step=3: unknown config field train.max_step;"
        " did you mean train.max_steps?"
    )
    assert not work.exists()


def test_a_bad_set_value_is_named(capsys, tmp_path):
    line = _fails(capsys, ["run", "--work-dir", str(tmp_path), "--set", "train.max_steps=ten"])
    assert line == (
        "stackgan run: error: --set train.max_steps=ten: 'ten' is not an integer"
        " (invalid literal for int() with base 10: 'ten')"
    )


@pytest.mark.parametrize(
    "assignment, named",
    [
        ("model.ca_activation=bogus", "model.ca_activation='bogus' is not one of"),
        ("data.split=x", "data.split='x' is not one of 'stackgan', 'official'"),
        ("data.high_res=128", "data.high_res=128 must be 4 x data.low_res=64"),
        ("train.max_steps=-1", "train.max_steps=-1 must be >= 0"),
        ("eval.min_class_accuracy_ratio=nan", "eval.min_class_accuracy_ratio=nan is not a finite"),
    ],
)
def test_run_validates_the_config_before_anything_runs(capsys, tmp_path, assignment, named):
    work = tmp_path / "work"
    line = _fails(capsys, ["run", "--work-dir", str(work), "--set", assignment])
    assert line.startswith(f"stackgan run: error: invalid config: {named}")
    assert line.endswith("Change it with --set SECTION.FIELD=VALUE")
    assert not work.exists()  # not even the synthetic dataset was written


def test_a_data_folder_that_does_not_exist_is_named(capsys, tmp_path):
    missing = tmp_path / "no-such-data"
    line = _fails(capsys, ["run", "--data", str(missing), "--work-dir", str(tmp_path / "w")])
    assert line == (
        f"stackgan run: error: --data {missing}: no such folder; pass the folder that holds"
        " CUB_200_2011/ and birds/"
    )


def test_a_data_folder_without_birds_is_named(capsys, cub_sample_root, tmp_path):
    root = tmp_path / "cub"
    (root / "CUB_200_2011").mkdir(parents=True)
    line = _fails(capsys, ["run", "--data", str(root), "--work-dir", str(tmp_path / "w")])
    assert line == (
        f"stackgan run: error: --data {root}: no birds/ in it; pass the folder that holds"
        " CUB_200_2011/ and birds/"
    )


def test_an_unreadable_split_file_is_named_before_anything_runs(capsys, cub_sample_root, tmp_path):
    root = tmp_path / "cub"
    shutil.copytree(cub_sample_root / "CUB_200_2011", root / "CUB_200_2011", symlinks=True)
    shutil.copytree(cub_sample_root / "birds" / "train", root / "birds" / "train")
    shutil.copytree(cub_sample_root / "birds" / "test", root / "birds" / "test")
    names = root / "birds" / "test" / "filenames.pickle"
    names.write_bytes(names.read_bytes()[:1000])
    work = tmp_path / "w"
    line = _fails(capsys, ["run", "--data", str(root), "--work-dir", str(work)])
    assert line.startswith(f"stackgan run: error: {names}: not a readable pickle")
    assert os.listdir(work) == []  # checked writable, nothing written


def test_a_data_folder_without_captions_is_named(capsys, cub_sample_root, tmp_path):
    root = tmp_path / "cub"
    os.makedirs(root / "birds")
    os.symlink(cub_sample_root / "CUB_200_2011", root / "CUB_200_2011")
    for split in ("train", "test"):
        os.symlink(cub_sample_root / "birds" / split, root / "birds" / split)
    line = _fails(capsys, ["prepare", "--data", str(root), "--out", str(tmp_path / "out")])
    assert line == (
        f"stackgan prepare: error: --data {root}: no birds/text_c10/ (the 10 captions of each"
        " image) in it; add the captions of the StackGAN release"
    )


def test_pickle_embeddings_asked_for_but_absent_are_named(capsys, cub_sample_root, tmp_path):
    line = _fails(
        capsys,
        ["run", "--data", str(cub_sample_root), "--work-dir", str(tmp_path / "w"),
         "--set", "text.source=pickle"],
    )  # fmt: skip
    pickle_path = cub_sample_root / "birds" / "train" / cub.EMBEDDINGS_FILE
    assert line == (
        f"stackgan run: error: --data {cub_sample_root}: text.source=pickle but {pickle_path}"
        " is missing; use --set text.source=train to train the text encoder on the captions"
        " instead"
    )


def test_a_work_dir_that_cannot_be_written_is_named(capsys, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    work = blocker / "work"
    line = _fails(capsys, ["run", "--work-dir", str(work)])
    assert line == (
        f"stackgan run: error: --work-dir {work}: cannot write there (Not a directory); choose"
        " a folder you can write to"
    )


def test_prepare_on_a_missing_folder_is_named(capsys, tmp_path):
    missing = tmp_path / "nothing"
    line = _fails(capsys, ["prepare", "--data", str(missing), "--out", str(tmp_path / "out")])
    assert line == (
        f"stackgan prepare: error: --data {missing}: no such folder; pass the folder that holds"
        " CUB_200_2011/ and birds/"
    )
    assert not (tmp_path / "out").exists()


def test_prepare_into_existing_examples_is_named(capsys, synth_root, tmp_path):
    out = tmp_path / "out"
    (out / "Split-train").mkdir(parents=True)
    line = _fails(
        capsys, ["prepare", "--data", str(synth_root), "--out", str(out), "--profile", "tiny"]
    )
    assert line == (
        f"stackgan prepare: error: {out} already holds {out}/Split-train: remove it or choose"
        " another output"
    )


@pytest.mark.parametrize(
    "beam_arg, expected",
    [
        (
            "--direct_num_worker=2",
            "--beam-arg --direct_num_worker=2: Beam has no such option (DirectRunner would drop"
            " it); did you mean --direct_num_workers?",
        ),
        ("--direct_num_workers=two", "--beam-arg --direct_num_workers: invalid int value: 'two'"),
        (
            "--runner=Flnk",
            "--beam-arg --runner=Flnk: Beam has no such runner; its runners are"
            " BundleBasedDirectRunner, DataflowRunner, DirectRunner, FlinkRunner,",
        ),
    ],
)
def test_a_beam_arg_beam_would_drop_or_refuse_is_named_before_anything_runs(
    capsys, tmp_path, beam_arg, expected
):
    work = tmp_path / "work"
    line = _fails(capsys, ["run", "--work-dir", str(work), f"--beam-arg={beam_arg}"])
    assert line.startswith(f"stackgan run: error: {expected}"), line
    assert list(work.iterdir()) == []  # no data synthesised, no DAG started


def test_prepare_names_a_beam_option_beam_would_refuse(capsys, synth_root, tmp_path):
    out = tmp_path / "out"
    argv = ["prepare", "--data", str(synth_root), "--out", str(out), "--profile", "tiny", "--"]
    line = _fails(capsys, [*argv, "--direct_running_mode=fast"])
    assert line == (
        "stackgan prepare: error: --direct_running_mode: invalid choice: 'fast' (choose from"
        " 'in_memory', 'multi_threading', 'multi_processing')"
    )
    line = _fails(capsys, [*argv, "--runner=FnApiRunner", "--direct_num_wokers=2"])
    assert line == (
        "stackgan prepare: error: --direct_num_wokers=2: Beam has no such option (FnApiRunner"
        " would drop it); did you mean --direct_num_workers?"
    )
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(
    "beam_args, note",
    [
        (["--direct_running_mode=multi_processing", "--direct_num_workers=2"], None),
        (["--runner", "direct", "--direct_num_workers", "2"], None),
        (["--runner=FlinkRunner", "--flink_master=localhost:8081"], None),
        # a remote runner's service may define options the Python SDK does not know: passed on,
        # named in a note (where a typo shows)
        (
            ["--runner=FlinkRunner", "--checkpointing_interval=60"],
            "  note: Beam's Python SDK does not know --checkpointing_interval=60; FlinkRunner"
            " gets them as given (its service may define them)",
        ),
        (
            ["--runner=DataflowRunner", "--project=p", "--regoin=x"],
            "  note: Beam's Python SDK does not know --regoin=x (did you mean --region?);"
            " DataflowRunner gets them as given (its service may define them)",
        ),
        (
            ["--runner=my_runners.custom.CustomRunner", "--custom_option=1"],
            "  note: Beam's Python SDK does not know --custom_option=1;"
            " my_runners.custom.CustomRunner gets them as given (its service may define them)",
        ),
    ],
)
def test_beam_options_that_a_runner_takes_pass_the_check(beam_args, note):
    assert beam_options.check(beam_args, "--beam-arg ") == note


def test_compile_without_a_visible_data_folder_says_what_to_set(capsys, tmp_path):
    line = _fails(
        capsys,
        ["compile", "--out", str(tmp_path / "p.json"), "--data", "gs://bucket/cub",
         "--pipeline-root", "gs://bucket/root", "--serving-dir", "gs://bucket/serving"],
    )  # fmt: skip
    assert line.startswith("stackgan compile: error: cannot look inside gs://bucket/cub from here")
    assert "--set text.source=pickle" in line


def test_compile_to_a_folder_it_cannot_write_is_named(capsys, tmp_path):
    (tmp_path / "taken").write_text("a file where the folder should be")
    out = tmp_path / "taken" / "p.json"
    line = _fails(
        capsys,
        ["compile", "--out", str(out), "--data", "gs://bucket/cub", "--set", "text.source=pickle",
         "--pipeline-root", "gs://bucket/root", "--serving-dir", "gs://bucket/serving"],
    )  # fmt: skip
    assert line.startswith(f"stackgan compile: error: --out {tmp_path / 'taken'}: cannot write")


def test_a_malformed_embeddings_pickle_is_one_line(capsys, synth_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synth_root, root)
    path = root / "birds" / "test" / cub.EMBEDDINGS_FILE
    path.write_bytes(pickle.dumps({"not": "an array"}))
    argv = ["prepare", "--data", str(root), "--out", str(tmp_path / "out"), "--profile", "tiny"]
    line = _fails(capsys, argv)
    assert line.startswith(f"stackgan prepare: error: {path}: holds a dict (keys 'not', ...)")


def test_generate_from_a_missing_model_is_named(capsys, tmp_path):
    missing = tmp_path / "serving"
    argv = ["generate", "--model", str(missing), "--caption", "a red bird", "--out", "x.png"]
    line = _fails(capsys, argv)
    assert line.startswith(f"stackgan generate: error: --model {missing}: no such folder; pass a")


def test_generate_from_a_folder_without_a_saved_model_is_named(capsys, tmp_path):
    (tmp_path / "serving" / "3").mkdir(parents=True)
    argv = ["generate", "--model", str(tmp_path / "serving"), "--caption", "a", "--out", "x.png"]
    line = _fails(capsys, argv)
    assert line == (
        f"stackgan generate: error: --model {tmp_path / 'serving'}: no SavedModel in it or in"
        " its numbered versions"
    )


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(tmp_path, where):
    argv = ["run", "--work-dir", str(tmp_path), "--set", "model.ca_activation=bogus"]
    argv = ["--debug", *argv] if where == "before" else [*argv, "--debug"]
    with pytest.raises(ConfigError, match=r"model\.ca_activation='bogus'"):
        cli.main(argv)


def test_an_internal_error_keeps_its_traceback(monkeypatch, tmp_path):
    from stackgan.commands import synth

    def broken(args):
        raise KeyError("a bug, not a user mistake")

    monkeypatch.setattr(synth, "run", broken)
    with pytest.raises(KeyError, match="a bug"):
        cli.main(["synth", str(tmp_path / "out")])


def test_the_installed_command_exits_2_with_one_line(tmp_path):
    missing = tmp_path / "missing"
    done = subprocess.run(
        [sys.executable, "-m", "stackgan.cli", "prepare", "--data", str(missing), "--out",
         str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"stackgan prepare: error: --data {missing}: no such folder; pass the folder that holds"
        " CUB_200_2011/ and birds/"
    ]


def test_generate_from_a_saved_model_that_is_not_a_generator_is_named(capsys, tmp_path):
    import tensorflow as tf

    module = tf.Module()
    module.f = tf.function(lambda x: {"y": x + 1}, input_signature=[tf.TensorSpec([None])])
    tf.saved_model.save(module, str(tmp_path / "other"), signatures={"serving_default": module.f})
    argv = ["generate", "--model", str(tmp_path / "other"), "--caption", "a", "--out", "x.png"]
    line = _fails(capsys, argv)
    assert line.startswith(f"stackgan generate: error: {tmp_path / 'other'}")
    assert "generate_with_noise" in line  # the signature a generator has and this one lacks


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--n", "0"], "--n 0: draw at least one image"),
        (["--columns", "0"], "--columns 0: the grid needs at least one column"),
        (["--seed", "-1"], "--seed -1: a seed is an integer in [0, 2**63)"),
        (["--seed", str(2**63)], f"--seed {2**63}: a seed is an integer in [0, 2**63)"),
        (["--out", "grid.txt"], "--out grid.txt: no image format has this extension; name the"),
        (["--out", "grid"], "--out grid: no image format has this extension; name the file"),
        (["--captions-file", "labels.txt"], "--captions-file labels.txt: no such file"),
        (["--interpolate", "1"], "--interpolate 1: a line from one caption to another needs"),
        (["--interpolate", "5"], "--interpolate: give exactly two --caption (the line's ends), got 1"),
        (["--caption", " "], "--caption number 2 is blank: give the sentence to draw"),
    ],
)  # fmt: skip
def test_generate_names_a_bad_argument_before_looking_for_the_model(capsys, arguments, expected):
    # the model folder does not exist either: the arguments' own mistakes come first, before
    # TensorFlow's import
    argv = ["generate", "--model", "missing", "--caption", "a", "--out", "x.png", *arguments]
    assert _fails(capsys, argv).startswith(f"stackgan generate: error: {expected}")


def test_a_grid_that_cannot_be_written_is_named_and_leaves_no_partial_file(tmp_path):
    from PIL import Image

    from stackgan.commands.generate import save_sheet
    from stackgan.errors import UserError

    (tmp_path / "taken").write_text("a file where the folder should be")
    with pytest.raises(UserError, match=r"--out .*taken/grid\.png: cannot write it"):
        save_sheet(Image.new("RGB", (4, 4)), str(tmp_path / "taken" / "grid.png"))
    save_sheet(Image.new("RGB", (4, 4), (200, 10, 10)), str(tmp_path / "new" / "grid.jpg"))
    assert os.listdir(tmp_path / "new") == ["grid.jpg"]  # the temporary file renamed
    with Image.open(tmp_path / "new" / "grid.jpg") as written:
        assert written.format == "JPEG" and written.getpixel((1, 1))[0] > 180


def test_an_embeddings_pickle_of_a_library_not_installed_is_one_line(capsys, synth_root, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synth_root, root)
    path = root / "birds" / "train" / cub.EMBEDDINGS_FILE
    path.write_bytes(b"\x80\x02cno_such_module\nTensor\nq\x00)\x81q\x01.")  # torch tensors, say
    argv = ["prepare", "--data", str(root), "--out", str(tmp_path / "out"), "--profile", "tiny"]
    assert _fails(capsys, argv) == (
        f"stackgan prepare: error: {path}: not a readable pickle (No module named 'no_such_module')"
    )
    assert not list((tmp_path / "out").glob("Split-*"))  # nothing that looks prepared


def test_a_classifier_weights_path_that_is_not_a_file_is_named_before_the_dag(capsys, tmp_path):
    missing = tmp_path / "mobilenet_v2.h5"
    argv = ["run", "--work-dir", str(tmp_path / "work"), "--profile", "tiny", "--set",
            f"classifier.weights_path={missing}"]  # fmt: skip
    assert _fails(capsys, argv) == (
        f"stackgan run: error: classifier.weights_path={missing}: no such file; pass the"
        " MobileNetV2 ImageNet weights file (.h5), or leave it empty for Keras' cache"
    )
    assert not (tmp_path / "work" / "tfx").exists()  # nothing ran


def test_a_full_disk_anywhere_in_a_command_is_one_line(monkeypatch, capsys, tmp_path):
    import errno

    from stackgan.commands import synth

    def fills(args):  # as a trainer's checkpoint write would, deep inside a TFX component
        try:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/work/checkpoints/ckpt-9")
        except OSError as error:
            raise RuntimeError("component Stage1Trainer failed") from error

    monkeypatch.setattr(synth, "run", fills)
    assert _fails(capsys, ["synth", str(tmp_path / "out")]) == (
        "stackgan synth: error: the disk is full: [Errno 28] No space left on device:"
        " '/work/checkpoints/ckpt-9'. Free space there and run the same command again"
        " (trainers resume from their last checkpoint)"
    )

    def tensorflow_fills(args):  # TensorFlow keeps only the OS error's text
        raise RuntimeError(
            "ResourceExhaustedError: /work/serving/1/variables/variables.data-00000-of-00001."
            "tempstate123; No space left on device\n\tsome op context"
        )

    monkeypatch.setattr(synth, "run", tensorflow_fills)
    line = _fails(capsys, ["synth", str(tmp_path / "out")])
    assert line.startswith(
        "stackgan synth: error: the disk is full: ResourceExhaustedError: /work/serving/1/"
    )
    assert "No space left on device. Free space there" in line
    with pytest.raises(RuntimeError, match="No space left"):  # --debug: the traceback
        cli.main(["--debug", "synth", str(tmp_path / "out")])


def test_synth_into_a_folder_it_may_not_write_is_one_line_and_leaves_nothing(
    monkeypatch, capsys, tmp_path
):
    import errno

    from stackgan.data import synth

    def refused(staging, cfg, progress):  # as a read-only mount refuses the first image
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(staging / "images"))

    monkeypatch.setattr(synth, "_write_layout", refused)
    out = tmp_path / "data"
    argv = ["synth", str(out), "--classes", "2", "--images-per-class", "2"]
    assert cli.main(argv) == 2
    printed, err = capsys.readouterr()
    assert printed.startswith("writing 2 classes x 2 images")
    assert err.startswith(f"stackgan synth: error: {out}: cannot write there ([Errno 13]")
    assert err.count("\n") == 1
    assert os.listdir(tmp_path) == []  # no staging folder, no dataset
