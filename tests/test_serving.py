"""The exported generator: every signature called in a process that never imported the project
(conditioning input alone -> fresh noise, seeded -> the same images), the same images as the
Keras models, clear errors for bad requests (a wrong dtype named by the client), warm-up records
for every signature, the composed text signatures, older exports, the clients and
`stackgan generate`."""

from __future__ import annotations

import dataclasses
import http.server
import json
import re
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from stackgan.cli import main as cli_main
from stackgan.models import build_stage1_generator, build_stage2_generator
from stackgan.serving import client, interpolation, signatures, warmup
from stackgan.serving.export import (
    SavedTextEncoder,
    _TextToImage,
    export_generator,
    to_uint8,
)
from stackgan.serving.generator import load_generator
from stackgan.serving.signatures import SAMPLING_FILE, describe_sampling


@pytest.fixture(scope="module")
def generators(tiny_config):
    keras_seed = 1
    tf.keras.utils.set_random_seed(keras_seed)
    cfg = tiny_config
    # the demo's residual Stage-II and border padding: their custom layers must serve without
    # the project's code
    padded = dataclasses.replace(cfg.model, generator_padding="replicate")
    residual = dataclasses.replace(padded, stage2_output="residual")
    return (
        build_stage1_generator(padded, cfg.data.low_res),
        build_stage2_generator(residual, cfg.data.low_res),
    )


@pytest.fixture(scope="module")
def encoder(tmp_path_factory, tiny_config):
    path = str(tmp_path_factory.mktemp("encoder") / "encoder")
    _write_hashing_text_encoder(path, tiny_config.model.embedding_dim)
    return SavedTextEncoder(path)


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory, tiny_config, generators, encoder):
    """Stage-I + Stage-II + a text encoder: all five signatures."""
    path = str(tmp_path_factory.mktemp("export") / "Format-Serving")
    return export_generator(path, tiny_config.model, *generators, text_encoder=encoder)


@pytest.fixture(scope="module")
def embeddings(tiny_config):
    return (
        np.random.default_rng(0)
        .normal(size=(3, tiny_config.model.embedding_dim))
        .astype(np.float32)
    )


CAPTIONS = ["a small red bird with black wings", "a yellow bird"]


def _differ(a, b) -> float:
    """The share of differing pixels: an untrained generator's images are near grey, so count
    pixels rather than measure distances."""
    return float((np.asarray(a) != np.asarray(b)).mean())


def test_seed_reproduces_images_and_no_seed_draws_fresh_noise(export_dir, tiny_config, embeddings):
    generator = load_generator(export_dir)
    assert (generator.embedding_dim, generator.z_dim) == (1024, tiny_config.model.z_dim)
    first = generator.generate(embeddings, seed=5)
    again = generator.generate(embeddings, seed=5)
    other = generator.generate(embeddings, seed=6)
    low, high = tiny_config.data.low_res, tiny_config.data.high_res
    assert first["image_64"].shape == (3, low, low, 3) and first["image_64"].dtype == np.uint8
    assert first["image_256"].shape == (3, high, high, 3) and first["image_256"].dtype == np.uint8
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    assert _differ(first["image_64"], other["image_64"]) > 0.2
    # the samples of one request differ from each other (per-sample noise, not one shared draw)
    assert _differ(first["image_64"][0], first["image_64"][1]) > 0.2
    # no seed: serving_default, new noise on every call
    fresh, fresh_again = generator.generate(embeddings), generator.generate(embeddings)
    assert sorted(fresh) == ["image_256", "image_64"]
    assert _differ(fresh["image_64"], fresh_again["image_64"]) > 0.2
    assert _differ(fresh["image_256"], fresh_again["image_256"]) > 0.2


def test_truncation_scales_the_noise_the_signatures_draw(tmp_path, tiny_config, generators):
    """ModelConfig.truncation=0.5: `seeded` equals generate_with_noise fed half of the
    stateless draws, not the draws themselves (the explicit-noise signature takes its noise as
    it is), and the export records the truncation for whoever scores it."""
    cfg = dataclasses.replace(tiny_config.model, truncation=0.5)
    export_dir = export_generator(str(tmp_path / "export"), cfg, *generators)
    generator = load_generator(export_dir)
    assert generator.truncation == 0.5
    assert describe_sampling(generator.truncation) == "truncation 0.5 (the paper: 1)"
    embedding = tf.random.stateless_normal([3, cfg.embedding_dim], seed=[1, 2])
    seed = 9
    draws = [
        tf.random.stateless_normal([3, dim], seed=[seed, stream])
        for stream, dim in enumerate((cfg.z_dim, cfg.ca_dim, cfg.ca_dim))
    ]
    seeded = generator.generate(embedding.numpy(), seed=seed)
    halved = generator.generate_with_noise(embedding, *(0.5 * d for d in draws))
    full = generator.generate_with_noise(embedding, *draws)
    for key in seeded:
        np.testing.assert_array_equal(seeded[key], halved[key])
        # (the untrained tiny generator's images are near grey: 9 % of image_64's pixels
        # differ, measured; an export that ignored the truncation would differ in none)
        assert _differ(seeded[key], full[key]) > 0.03, key
    with pytest.raises(ValueError, match=r"model\.truncation=1\.5 must be a fraction, at most 1"):
        tiny_config.with_overrides(["model.truncation=1.5"])
    # an export from before the record loads, its truncation unknown; a broken record is named
    info = Path(export_dir) / SAMPLING_FILE
    info.write_text("[0.5]")
    with pytest.raises(ValueError, match=r"generator\.json: expected a JSON object"):
        load_generator(export_dir)
    info.unlink()
    assert load_generator(export_dir).truncation is None


def test_exported_graph_is_the_trained_generators(export_dir, tiny_config, generators):
    """generate_with_noise equals the Keras models run in inference mode, and seeded equals
    generate_with_noise fed tf.random.stateless_normal([N, d], seed=[seed, stream])."""
    stage1, stage2 = generators
    cfg = tiny_config.model
    embedding = tf.random.stateless_normal([2, cfg.embedding_dim], seed=[1, 2])
    seed = 9
    noise = tf.random.stateless_normal([2, cfg.z_dim], seed=[seed, 0])
    ca_noise = tf.random.stateless_normal([2, cfg.ca_dim], seed=[seed, 1])
    ca_noise_2 = tf.random.stateless_normal([2, cfg.ca_dim], seed=[seed, 2])
    low = stage1([embedding, noise, ca_noise], training=False)[0]
    high = stage2([low, embedding, ca_noise_2], training=False)[0]

    generator = load_generator(export_dir)
    explicit = generator.generate_with_noise(embedding, noise, ca_noise, ca_noise_2)
    seeded = generator.generate(embedding.numpy(), seed=seed)
    np.testing.assert_allclose(explicit["image_64"], to_uint8(low).numpy(), atol=1)
    np.testing.assert_allclose(explicit["image_256"], to_uint8(high).numpy(), atol=1)
    for key in explicit:
        np.testing.assert_array_equal(explicit[key], seeded[key])


FRESH_PROCESS = """
import sys
sys.modules["stackgan"] = None  # any import of the project now fails
import numpy as np, tensorflow as tf
from tensorflow.python.tools import saved_model_cli
from tensorflow_serving.apis import prediction_log_pb2

export_dir, work = sys.argv[1], sys.argv[2]
sys.argv = ["saved_model_cli", "show", "--dir", export_dir, "--all"]
try:
    saved_model_cli.main()
except SystemExit:
    pass
sys.stdout.flush()
print("=== called")
embedding = tf.constant(np.load(work + "/embeddings.npy"))
caption = tf.constant(["a small red bird with black wings", "a yellow bird"])
seed = lambda s: tf.constant(s, tf.int64)
sig = tf.saved_model.load(export_dir).signatures
calls = {
    "default_1": sig["serving_default"](embedding=embedding),
    "default_2": sig["serving_default"](embedding=embedding),
    "seeded_11": sig["seeded"](embedding=embedding, seed=seed(11)),
    "seeded_11_again": sig["seeded"](embedding=embedding, seed=seed(11)),
    "seeded_12": sig["seeded"](embedding=embedding, seed=seed(12)),
    "noise": sig["generate_with_noise"](
        embedding=embedding, **{k: tf.zeros([3, 8]) for k in ("noise", "ca_noise", "ca_noise_2")}
    ),
    "text_1": sig["text"](caption=caption),
    "text_2": sig["text"](caption=caption),
    "text_seeded_4": sig["text_seeded"](caption=caption, seed=seed(4)),
}
arrays = {f"{call}/{key}": value.numpy() for call, out in calls.items() for key, value in out.items()}
# TF Serving replays the warm-up records against their signatures when it loads the model
path = export_dir + "/assets.extra/tf_serving_warmup_requests"
for i, record in enumerate(tf.data.TFRecordDataset(path).as_numpy_iterator()):
    request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
    inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
    out = sig[request.model_spec.signature_name](**inputs)
    batch = inputs["caption" if "caption" in inputs else "embedding"].shape[0]
    arrays[f"warmup_{i}/signature"] = np.array(request.model_spec.signature_name)
    arrays[f"warmup_{i}/inputs"] = np.array(sorted(inputs))
    arrays[f"warmup_{i}/rows"] = np.array([batch, out["image_64"].shape[0]])
np.savez(work + "/fresh.npz", **arrays)
"""


def test_fresh_process_serves_every_signature_without_project_code(
    export_dir, embeddings, tiny_config, tmp_path
):
    """One subprocess (a fresh TensorFlow, ~20 s) that never imported this project, as TF
    Serving: `saved_model_cli show --all` lists each signature with exactly the contract's inputs;
    every signature answers; the conditioning input alone gives new images on each call (and
    other images than a separate process's first call: the noise is not seeded at export);
    equal seeds give equal images, here and across processes; the warm-up records replay."""
    np.save(tmp_path / "embeddings.npy", embeddings)
    result = subprocess.run(
        [sys.executable, "-I", "-c", FRESH_PROCESS, export_dir, str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    shown = result.stdout.split("=== called")[0]
    listed = {}
    for block in shown.split("signature_def['")[1:]:
        name, _, rest = block.partition("']")
        inputs_part = rest.split("output(s):")[0]
        listed[name] = sorted(re.findall(r"inputs\['(\w+)'\]", inputs_part))
    listed.pop("__saved_model_init_op", None)
    assert listed == {name: sorted(inputs) for name, inputs in signatures.INPUTS.items()}
    for needle in (
        "inputs['embedding'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, 1024)",
        "inputs['seed'] tensor_info:\n        dtype: DT_INT64\n        shape: ()",
        "inputs['caption'] tensor_info:\n        dtype: DT_STRING\n        shape: (-1)",
        "outputs['image_256'] tensor_info:\n        dtype: DT_UINT8\n        shape: (-1, 64, 64, 3)",
    ):
        assert needle in shown, f"{needle!r} not in saved_model_cli output:\n{shown}"

    out = np.load(tmp_path / "fresh.npz")
    for key in ("image_64", "image_256"):
        assert out[f"default_1/{key}"].shape[0] == 3
        assert _differ(out[f"default_1/{key}"], out[f"default_2/{key}"]) > 0.2
        np.testing.assert_array_equal(out[f"seeded_11/{key}"], out[f"seeded_11_again/{key}"])
        assert _differ(out[f"seeded_11/{key}"], out[f"seeded_12/{key}"]) > 0.2
        assert _differ(out[f"text_1/{key}"], out[f"text_2/{key}"]) > 0.2
        assert out[f"noise/{key}"].shape[0] == 3
    generator = load_generator(export_dir)
    here = generator.generate(embeddings, seed=11)
    from_text = generator.generate(generator.embed_captions(CAPTIONS), seed=4)
    first_here = tf.saved_model.load(export_dir).signatures["serving_default"](
        embedding=tf.constant(embeddings)
    )
    for key in here:
        np.testing.assert_array_equal(out[f"seeded_11/{key}"], here[key])
        np.testing.assert_array_equal(out[f"text_seeded_4/{key}"], from_text[key])
        assert _differ(out[f"default_1/{key}"], first_here[key].numpy()) > 0.2
    assert out["text_1/embedding"].dtype == np.float32
    np.testing.assert_array_equal(out["text_1/embedding"], out["text_seeded_4/embedding"])

    warmups = sorted({name.split("/")[0] for name in out.files if name.startswith("warmup_")})
    replayed = sorted(
        (
            str(out[f"{w}/signature"]),
            tuple(out[f"{w}/inputs"]),
            tuple(out[f"{w}/rows"]),
        )
        for w in warmups
    )
    assert replayed == sorted(
        (signature, tuple(sorted(inputs)), (n, n))
        for signature, inputs in signatures.INPUTS.items()
        for n in (1, 2)
    )


def test_bad_requests_fail_naming_the_input(export_dir, tiny_config):
    loaded = tf.saved_model.load(export_dir)
    seed = tf.constant(1, tf.int64)
    e = tiny_config.model.embedding_dim
    # a wrong rank is refused by the function's input signature
    with pytest.raises(TypeError, match="embedding"):
        loaded.seeded(tf.zeros([e]), seed)
    # signature calls (and TF Serving) feed the graph directly: the in-graph check names the input
    for name, extra in (("serving_default", {}), ("seeded", {"seed": seed})):
        with pytest.raises(
            tf.errors.InvalidArgumentError, match=r"tensor embedding \[2,7\].*\[\?,1024\]"
        ):
            loaded.signatures[name](embedding=tf.zeros([2, 7]), **extra)
    with pytest.raises(
        tf.errors.InvalidArgumentError,
        match="input noise must have as many rows as input embedding",
    ):
        loaded.signatures["generate_with_noise"](
            embedding=tf.zeros([2, e]),
            noise=tf.zeros([3, tiny_config.model.z_dim]),
            ca_noise=tf.zeros([2, tiny_config.model.ca_dim]),
            ca_noise_2=tf.zeros([2, tiny_config.model.ca_dim]),
        )
    for name, conditioning in (
        ("seeded", {"embedding": tf.zeros([1, e])}),
        ("text_seeded", {"caption": tf.constant(["a bird"])}),
    ):
        with pytest.raises(tf.errors.InvalidArgumentError, match="input seed must be >= 0"):
            loaded.signatures[name](**conditioning, seed=tf.constant(-1, tf.int64))
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"tensor seed \[1\].*\[\]"):
            loaded.signatures[name](**conditioning, seed=tf.constant([1], tf.int64))
    # NaN or Inf in any input is named, not drawn (uint8 casts NaN to a plausible pixel)
    nan_row = tf.constant(np.where(np.arange(e) == 3, np.nan, 0.0)[None], tf.float32)
    with pytest.raises(tf.errors.InvalidArgumentError, match="input embedding holds NaN or Inf"):
        loaded.signatures["serving_default"](embedding=nan_row)
    with pytest.raises(tf.errors.InvalidArgumentError, match="input ca_noise holds NaN or Inf"):
        loaded.signatures["generate_with_noise"](
            embedding=tf.zeros([1, e]),
            noise=tf.zeros([1, tiny_config.model.z_dim]),
            ca_noise=tf.fill([1, tiny_config.model.ca_dim], np.inf),
            ca_noise_2=tf.zeros([1, tiny_config.model.ca_dim]),
        )
    # a seed is not an input of serving_default: the signature refuses it, as TF Serving does
    with pytest.raises(TypeError, match="seed"):
        loaded.signatures["serving_default"](embedding=tf.zeros([1, e]), seed=seed)

    generator = load_generator(export_dir)
    with pytest.raises(
        ValueError, match=r"input 'embedding' must have shape \[N>0, 1024\], got \[2, 7\]"
    ):
        generator.generate(np.zeros((2, 7), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        generator.generate(np.full((1, e), np.nan, np.float32))
    with pytest.raises(ValueError, match="seed"):
        generator.generate(np.zeros((1, e), np.float32), seed=-3)
    with pytest.raises(TypeError, match="input 'embedding' must be float32, got float64"):
        generator.generate(np.zeros((1, e)), seed=1)
    with pytest.raises(ValueError, match="ca_noise_2"):
        z = np.zeros((1, 8), np.float32)
        generator.generate_with_noise(np.zeros((1, e), np.float32), z, z)
    with pytest.raises(TypeError, match="input 'caption' must be string, got int"):
        generator.generate_from_captions([3, 4])


def test_client_refuses_a_wrong_dtype_naming_the_input(embeddings):
    """Nothing is cast quietly: each builder names the input and the dtype it must have."""
    with pytest.raises(TypeError, match=r"input 'embedding' must be float32, got float64"):
        client.embedding_inputs(embeddings.astype(np.float64))
    with pytest.raises(TypeError, match=r"input 'embedding' must be float32, got float16"):
        client.rest_body({"embedding": tf.constant(embeddings, tf.float16)})
    with pytest.raises(TypeError, match=r"input 'noise' must be float32, got int64"):
        client.noise_inputs(embeddings, np.zeros((3, 8), np.int64), np.zeros((3, 8), np.float32))
    with pytest.raises(TypeError, match=r"input 'seed' must be int64 \(an integer\), got float"):
        client.embedding_inputs(embeddings, seed=7.5)
    with pytest.raises(TypeError, match=r"input 'seed' must be int64, got int32"):
        client.grpc_request("stackgan", {"embedding": embeddings, "seed": np.int32(7)})
    with pytest.raises(TypeError, match=r"input 'caption' must be string, got int"):
        client.caption_inputs(["a bird", 3])
    with pytest.raises(TypeError, match=r"input 'embedding' must be float32 \(numbers\), got str"):
        client.rest_body({"embedding": [["0.5"] * 1024]})
    with pytest.raises(ValueError, match=r"input 'seed' must be >= 0, got -1"):
        client.caption_inputs(["a bird"], seed=-1)
    with pytest.raises(ValueError, match=r"input 'seed' must be a scalar, got shape \[1\]"):
        client.embedding_inputs(embeddings, seed=[1])
    # plain Python numbers carry no dtype (as in JSON): converted, not refused
    inputs = client.embedding_inputs(embeddings.tolist(), seed=np.int64(3))
    assert inputs["embedding"].dtype == np.float32 and inputs["seed"].dtype == np.int64
    np.testing.assert_array_equal(inputs["embedding"], embeddings)
    # a seed sent to a signature without one would be dropped by TF Serving's columnar form
    with pytest.raises(ValueError, match=r"extra \['seed'\].*use signature 'seeded'"):
        client.rest_body(client.embedding_inputs(embeddings, 3), signature_name="serving_default")
    with pytest.raises(ValueError, match=r"no signature takes the inputs \['caption', 'noise'\]"):
        client.rest_body({"caption": ["a"], "noise": np.zeros((1, 8), np.float32)})


def test_stage1_only_export_and_existing_directory(tmp_path, tiny_config, generators, capsys):
    # a crashed earlier attempt left a staging directory; the export replaces it and renames
    # its own staging directory into place only when complete
    (tmp_path / "Format-Serving.staging").mkdir()
    (tmp_path / "Format-Serving.staging" / "saved_model.pb").write_bytes(b"partial")
    path = export_generator(str(tmp_path / "Format-Serving"), tiny_config.model, generators[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Format-Serving"]
    generator = load_generator(str(tmp_path))  # a Model artifact's URI: its Format-Serving
    assert generator.path == path
    out = generator.generate(np.zeros((2, 1024), np.float32), seed=0)
    assert sorted(out) == ["image_64"]
    assert "ca_noise_2" not in generator.noise_inputs
    assert not generator.has_text_signature
    with pytest.raises(ValueError, match="no text signature"):
        generator.generate_from_captions(["a bird"])
    # the warm-up records cover exactly this export's signatures
    requests = warmup.read_warmup_requests(path)
    assert [(r.model_spec.signature_name, sorted(r.inputs)) for r in requests] == [
        ("serving_default", ["embedding"]),
        ("serving_default", ["embedding"]),
        ("seeded", ["embedding", "seed"]),
        ("seeded", ["embedding", "seed"]),
        ("generate_with_noise", ["ca_noise", "embedding", "noise"]),
        ("generate_with_noise", ["ca_noise", "embedding", "noise"]),
    ]
    assert [tf.make_ndarray(r.inputs["embedding"]).shape[0] for r in requests] == [1, 2] * 3
    with pytest.raises(FileExistsError, match="not empty"):
        export_generator(path, tiny_config.model, generators[0])

    # `stackgan generate` on such a model: one line naming what it takes, no traceback
    for args, expected in (
        (["--caption", "a red bird"], "takes no sentences: it was trained on the dataset's"),
        (["--embeddings", _npy(tmp_path, (2, 7))], "input 'embedding' must have shape [N>0, 1024]"),
        (["--embeddings", _npy(tmp_path, (2, 1024)), "--n", "0"], "--n 0: draw at least one"),
        (["--embeddings", _garbage(tmp_path, "e.pickle")], "e.pickle: not a pickled [N, 10, E]"),
        (["--embeddings", _garbage(tmp_path, "e.npy")], "e.npy: not a .npy array of numbers"),
        (
            ["--embeddings", _npy(tmp_path, (2, 1024)), "--stage", "256"],
            f"--stage 256: {path} draws only --stage 64",
        ),
        # a pickle of objects from a library not installed (here: no such module at all)
        (
            ["--embeddings", _pickle_of_a_missing_module(tmp_path)],
            "not a pickled [N, 10, E] array of numbers (No module named 'no_such_module')",
        ),
        (
            ["--embeddings", _npy(tmp_path, (2, 1024)), "--captions-file", _latin1(tmp_path)],
            "labels.txt: not UTF-8 text (invalid continuation byte at byte 4)",
        ),
    ):
        argv = ["generate", "--model", path, *args, "--out", str(tmp_path / "grid.png")]
        assert cli_main(argv) == 2
        assert expected in capsys.readouterr().err
        assert not (tmp_path / "grid.png").exists()


def _pickle_of_a_missing_module(folder) -> str:
    path = folder / "torch_tensors.pickle"
    path.write_bytes(b"\x80\x02cno_such_module\nTensor\nq\x00)\x81q\x01.")
    return str(path)


def _latin1(folder) -> str:
    path = folder / "labels.txt"
    path.write_bytes("row \xe9t\xe9\n".encode("latin-1"))
    return str(path)


def test_generate_names_a_partly_copied_export_in_one_line(export_dir, tmp_path, capsys):
    import shutil

    for broken, damage in (("truncated", "saved_model.pb"), ("no_variables", "variables")):
        copy = tmp_path / broken
        shutil.copytree(export_dir, copy)
        if damage == "variables":
            shutil.rmtree(copy / damage)
        else:
            (copy / damage).write_bytes((copy / damage).read_bytes()[:100])
        argv = [
            "generate",
            "--model",
            str(copy),
            "--caption",
            "a",
            "--out",
            str(tmp_path / "g.png"),
        ]
        assert cli_main(argv) == 2
        out, err = capsys.readouterr()
        assert err.count("\n") == 1, err
        assert err.startswith(
            f"stackgan generate: error: {copy}: cannot load this StackGAN generator SavedModel"
            " (a partial copy? copy the whole folder, variables/ included): "
        )
        assert not (tmp_path / "g.png").exists()


def _garbage(folder, name) -> str:
    path = folder / name
    path.write_text("not an array\n")
    return str(path)


def _npy(folder, shape) -> str:
    path = folder / f"embeddings_{shape[1]}.npy"
    np.save(path, np.ones(shape, np.float32))
    return str(path)


def test_export_from_before_the_seedless_signatures_still_loads(
    tmp_path, tiny_config, generators, export_dir, embeddings
):
    """A generator pushed by an earlier version (its `serving_default` takes `embedding` and
    `seed`, no `seeded`) is still a baseline the Evaluator re-scores: `load_generator` serves it
    through the same API."""
    import keras

    cfg = tiny_config.model
    graph = _TextToImage(cfg, *generators)
    archive = keras.export.ExportArchive()
    for model in generators:
        archive.track(model)
    embedding_spec = tf.TensorSpec([None, cfg.embedding_dim], tf.float32, name="embedding")
    seed_spec = tf.TensorSpec([], tf.int64, name="seed")
    archive.add_endpoint("serving_default", graph.from_seed, [embedding_spec, seed_spec])
    noise_specs = [embedding_spec] + [
        tf.TensorSpec([None, dim], tf.float32, name=name)
        for name, dim in (
            ("noise", cfg.z_dim),
            ("ca_noise", cfg.ca_dim),
            ("ca_noise_2", cfg.ca_dim),
        )
    ]
    archive.add_endpoint("generate_with_noise", graph.from_noise_2, noise_specs)
    archive.write_out(str(tmp_path / "old"), verbose=False)

    old = load_generator(str(tmp_path / "old"))
    seeded = old.generate(embeddings, seed=3)
    np.testing.assert_array_equal(
        seeded["image_256"], load_generator(export_dir).generate(embeddings, seed=3)["image_256"]
    )
    assert _differ(old.generate(embeddings)["image_64"], old.generate(embeddings)["image_64"]) > 0.2


def _write_hashing_text_encoder(path: str, dim: int) -> None:
    """A small stand-in with the text encoder's SavedModel contract (serving_default: caption
    -> embedding): words hashed into buckets, bucket vectors averaged."""

    class Encoder(tf.Module):
        def __init__(self):
            self.table = tf.Variable(tf.random.stateless_normal([64, dim], seed=[3, 4]))

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="caption")])
        def embed(self, caption):
            words = tf.strings.split(caption)
            buckets = tf.strings.to_hash_bucket_fast(words, 64)
            return {"embedding": tf.reduce_mean(tf.gather(self.table, buckets), axis=1)}

    encoder = Encoder()
    tf.saved_model.save(encoder, path, signatures={"serving_default": encoder.embed})


def test_text_signatures_compose_a_text_encoder(
    tmp_path, tiny_config, generators, encoder, export_dir
):
    generator = load_generator(export_dir)
    assert generator.has_text_signature
    from_text = generator.generate_from_captions(CAPTIONS, seed=4)
    assert sorted(from_text) == ["image_256", "image_64"]
    embedding = encoder(tf.constant(CAPTIONS)).numpy()
    np.testing.assert_allclose(generator.embed_captions(CAPTIONS), embedding, rtol=1e-6)
    from_embedding = generator.generate(embedding, seed=4)
    for key in ("image_64", "image_256"):
        np.testing.assert_array_equal(from_text[key], from_embedding[key])
    # captions alone: the `text` signature, new noise on every call
    fresh = [generator.generate_from_captions(CAPTIONS)["image_64"] for _ in range(2)]
    assert _differ(*fresh) > 0.2

    narrow = tiny_config.model.__class__(embedding_dim=16)
    with pytest.raises(ValueError, match="embeds to 1024 dimensions, the generator expects 16"):
        export_generator(str(tmp_path / "bad"), narrow, *generators, text_encoder=encoder)


def test_rest_bodies_and_local_sender(export_dir, embeddings):
    # the conditioning input alone: serving_default, in either body form
    plain = client.rest_body(client.embedding_inputs(embeddings))
    assert plain == {
        "signature_name": "serving_default",
        "inputs": {"embedding": embeddings.tolist()},
    }
    plain_rows = client.rest_body(client.embedding_inputs(embeddings), form="instances")
    assert plain_rows["signature_name"] == "serving_default"
    assert plain_rows["instances"] == [{"embedding": row} for row in embeddings.tolist()]
    body = client.rest_body(client.embedding_inputs(embeddings, 3))
    assert body["signature_name"] == "seeded" and body["inputs"]["seed"] == 3
    with pytest.raises(ValueError, match="'seed' is a scalar"):
        client.rest_body(client.embedding_inputs(embeddings, 3), form="instances")
    z = np.zeros((3, 8), np.float32)
    rows = client.rest_body(client.noise_inputs(embeddings, z, z, z), form="instances")
    assert rows["signature_name"] == "generate_with_noise"
    assert len(rows["instances"]) == 3 and sorted(rows["instances"][0]) == [
        "ca_noise",
        "ca_noise_2",
        "embedding",
        "noise",
    ]
    text = client.rest_body(client.caption_inputs(CAPTIONS))
    assert text == {"signature_name": "text", "inputs": {"caption": CAPTIONS}}
    text_seeded = client.rest_body(client.caption_inputs(CAPTIONS, 4))
    assert text_seeded["signature_name"] == "text_seeded"

    loaded = tf.saved_model.load(export_dir)
    server = http.server.HTTPServer(("127.0.0.1", 0), _serving_handler(loaded))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = client.rest_url("stackgan", "127.0.0.1", server.server_port)
        assert url.endswith("/v1/models/stackgan:predict")
        generator = load_generator(export_dir)
        images = client.post_predict(url, body)
        reference = generator.generate(embeddings, seed=3)
        for key in reference:
            np.testing.assert_array_equal(images[key], reference[key])
        assert client.post_predict(url, plain)["image_256"].shape == (3, 64, 64, 3)
        assert client.post_predict(url, plain_rows)["image_64"].shape == (3, 16, 16, 3)
        assert client.post_predict(url, rows)["image_256"].shape == (3, 64, 64, 3)
        from_text = client.post_predict(url, text_seeded)
        assert from_text["image_64"].dtype == np.uint8
        assert from_text["embedding"].dtype == np.float32
        np.testing.assert_allclose(
            from_text["embedding"], generator.embed_captions(CAPTIONS), rtol=1e-6
        )
        np.testing.assert_array_equal(
            from_text["image_64"], generator.generate_from_captions(CAPTIONS, seed=4)["image_64"]
        )
    finally:
        server.shutdown()
    with pytest.raises(ValueError, match="local server"):
        client.post_predict("http://example.com:8501/v1/models/m:predict", body)


def _serving_handler(loaded):
    """An HTTP handler answering :predict as TF Serving's REST API does (both body forms)."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            fn = loaded.signatures[body["signature_name"]]
            specs = fn.structured_input_signature[1]
            if "inputs" in body:
                inputs = body["inputs"]
            else:
                inputs = {k: [row[k] for row in body["instances"]] for k in body["instances"][0]}
            out = fn(**{k: tf.constant(v, specs[k].dtype) for k, v in inputs.items()})
            if "inputs" in body:
                reply = {"outputs": {k: v.numpy().tolist() for k, v in out.items()}}
            else:
                n = len(body["instances"])
                reply = {
                    "predictions": [
                        {k: v.numpy()[i].tolist() for k, v in out.items()} for i in range(n)
                    ]
                }
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    return Handler


def test_grpc_request_round_trip(export_dir, embeddings):
    from tensorflow_serving.apis import predict_pb2

    generator = load_generator(export_dir)
    for inputs, reference in (
        (client.embedding_inputs(embeddings, 2), generator.generate(embeddings, seed=2)),
        (client.caption_inputs(CAPTIONS, 2), generator.generate_from_captions(CAPTIONS, seed=2)),
    ):
        request = client.grpc_request("stackgan", inputs, version=3)
        assert request.model_spec.version.value == 3
        wire = predict_pb2.PredictRequest.FromString(request.SerializeToString())
        fn = tf.saved_model.load(export_dir).signatures[wire.model_spec.signature_name]
        out = fn(**{k: tf.constant(tf.make_ndarray(v)) for k, v in wire.inputs.items()})
        response = predict_pb2.PredictResponse()
        for key, value in out.items():
            response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
        images = client.parse_grpc_response(response)
        np.testing.assert_array_equal(images["image_64"], reference["image_64"])
    request = client.grpc_request("stackgan", client.embedding_inputs(embeddings))
    assert request.model_spec.signature_name == "serving_default"
    assert sorted(request.inputs) == ["embedding"]


def test_generate_command_prints_a_seed_that_draws_the_grid_again(export_dir, tmp_path, capsys):
    """`stackgan generate` uses the seeded signatures: without --seed it draws one and prints
    it, and that seed gives the same PNG again."""
    args = ["generate", "--model", export_dir, "--caption", CAPTIONS[0], "--n", "2"]
    assert cli_main([*args, "--out", str(tmp_path / "a.png")]) == 0
    printed = capsys.readouterr().out
    seed = re.search(r"seed (\d+) \(--seed \1 draws them again\)", printed)
    assert seed, printed
    assert printed.rstrip().endswith("sampled at truncation 1 (the paper)")  # the tiny export's
    assert cli_main([*args, "--seed", seed.group(1), "--out", str(tmp_path / "b.png")]) == 0
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()


def test_generate_command_draws_8_images_or_4_interpolation_rows_by_default(
    export_dir, tmp_path, capsys
):
    from PIL import Image

    out = tmp_path / "grid.png"
    args = ["generate", "--model", export_dir, "--caption", CAPTIONS[0], "--seed", "3"]
    assert cli_main([*args, "--columns", "8", "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out}: 8 images of 64px, seed 3")
    with Image.open(out) as grid:  # one row of 8 cells of 128 px (64 px enlarged) and padding
        assert grid.size[0] == 8 + 8 * (128 + 8)
    line = tmp_path / "line.png"
    argv = [*args, "--caption", CAPTIONS[1], "--interpolate", "2", "--out", str(line)]
    assert cli_main(argv) == 0
    assert capsys.readouterr().out.startswith(f"wrote {line}: 4 row(s) of 2 images of 64px")


def test_interpolation_walks_from_one_embedding_to_the_other_with_each_rows_noise_held(
    export_dir, embeddings
):
    """Row 0 at zero noise starts and ends on the two embeddings' own images; every row changes
    in steps smaller than the whole way; the seed fixes the rows below, another seed moves
    them and not row 0."""
    generator = load_generator(export_dir)
    start, end = embeddings[0], embeddings[1]
    grid = interpolation.interpolate(generator, start, end, steps=5, rows=3, seed=7)
    zeros = {
        "noise": np.zeros((2, generator.z_dim), np.float32),
        "ca_noise": np.zeros((2, generator.ca_dim), np.float32),
        "ca_noise_2": np.zeros((2, generator.ca_dim), np.float32),
    }
    ends = generator.generate_with_noise(np.stack([start, end]), **zeros)
    assert sorted(grid) == sorted(ends) == ["image_256", "image_64"]
    for name, images in grid.items():
        assert images.shape[0] == 15
        np.testing.assert_array_equal(images[0], ends[name][0])
        np.testing.assert_array_equal(images[4], ends[name][1])
        rows = images.astype(np.float64).reshape(3, 5, -1)
        whole_way = np.abs(rows[:, 4] - rows[:, 0]).mean(axis=-1)
        steps = np.abs(np.diff(rows, axis=1)).mean(axis=-1)
        assert (whole_way > 0).all() and (steps < whole_way[:, None]).all(), (steps, whole_way)

    again = interpolation.interpolate(generator, start, end, steps=5, rows=3, seed=7)
    other = interpolation.interpolate(generator, start, end, steps=5, rows=3, seed=8)
    for name in grid:
        np.testing.assert_array_equal(again[name], grid[name])
        np.testing.assert_array_equal(other[name][:5], grid[name][:5])  # row 0: zero noise
        assert _differ(other[name][5:], grid[name][5:]) > 0.05
    with pytest.raises(ValueError, match="at least 2 steps"):
        interpolation.interpolate(generator, start, end, steps=1, rows=1, seed=0)


def test_generate_command_draws_the_interpolation_grid(export_dir, tmp_path, capsys):
    """`stackgan generate --interpolate`: the two captions' embeddings as the line's ends, one
    row per noise; the grid's first cell is the first caption's image at zero noise."""
    from PIL import Image

    from stackgan.visualize.sample_sheet import render_sheet

    out = tmp_path / "line.png"
    args = ["generate", "--model", export_dir, "--caption", CAPTIONS[0], "--caption", CAPTIONS[1]]
    assert (
        cli_main([*args, "--interpolate", "3", "--n", "2", "--seed", "4", "--out", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    assert printed.startswith(f"wrote {out}: 2 row(s) of 3 images of 64px from {CAPTIONS[0]!r}")
    assert "rows 2-2 with noise from seed 4 (--seed 4 draws them again)" in printed

    generator = load_generator(export_dir)
    ends = generator.embed_captions(CAPTIONS)
    expected = interpolation.interpolate(generator, ends[0], ends[1], steps=3, rows=2, seed=4)
    labels = interpolation.labels(CAPTIONS[0], CAPTIONS[1], 3, 2)
    assert labels[:3] == [CAPTIONS[0], "t = 0.50", CAPTIONS[1]] and labels[3:] == [""] * 3
    sheet = render_sheet(expected["image_256"], labels, columns=3)
    with Image.open(out) as written:
        np.testing.assert_array_equal(np.asarray(written), np.asarray(sheet))


def test_generate_reads_a_release_embeddings_pickle_and_labels_its_rows(
    export_dir, tiny_config, tmp_path, capsys
):
    """`--embeddings` with the release's char-CNN-RNN-embeddings.pickle ([N, 10, E], pickled
    under Python 2, so read as latin1): each image's first caption embedding, labelled with that
    caption from text_c10/ beside it; `--captions-file` labels rows instead; `--interpolate`
    walks from the first row to the second."""
    import pickle

    from PIL import Image

    from stackgan.visualize.sample_sheet import render_sheet

    width = tiny_config.model.embedding_dim
    vectors = np.random.default_rng(3).normal(size=(3, 10, width)).astype(np.float32)
    names = ["001.Red_Bird/red_1", "002.Blue_Bird/blue_1", "002.Blue_Bird/blue_2"]
    test_dir = tmp_path / "birds" / "test"
    test_dir.mkdir(parents=True)
    with open(test_dir / "char-CNN-RNN-embeddings.pickle", "wb") as f:
        pickle.dump(vectors, f, protocol=2)
    with open(test_dir / "filenames.pickle", "wb") as f:
        pickle.dump(names, f, protocol=2)
    for i, name in enumerate(names):
        (tmp_path / "birds" / "text_c10" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "birds" / "text_c10" / f"{name}.txt").write_text(
            f"caption {i} of image {i}\nanother caption\n"
        )
    generator = load_generator(export_dir)

    def drawn(args, images, labels, columns):
        out = tmp_path / "grid.png"
        assert cli_main(["generate", "--model", export_dir, *args, "--out", str(out)]) == 0
        with Image.open(out) as written:
            sheet = render_sheet(images, labels, columns=columns)
            np.testing.assert_array_equal(np.asarray(written), np.asarray(sheet))
        return capsys.readouterr().out

    pickled = str(test_dir / "char-CNN-RNN-embeddings.pickle")
    images = generator.generate(vectors[:2, 0], seed=5)["image_256"]
    printed = drawn(["--embeddings", pickled, "--n", "2", "--seed", "5"], images,
                    ["caption 0 of image 0", "caption 1 of image 1"], columns=4)  # fmt: skip
    assert printed.startswith(f"wrote {tmp_path / 'grid.png'}: 2 images of 64px, seed 5")

    # a filenames.pickle with fewer names than rows, or not a list: the rows' own names
    for broken in (pickle.dumps(names[:1], protocol=2), b"not a pickle"):
        (test_dir / "filenames.pickle").write_bytes(broken)
        drawn(["--embeddings", pickled, "--n", "2", "--seed", "5"], images,
              [f"char-CNN-RNN-embeddings.pickle #{i}" for i in range(2)], columns=4)  # fmt: skip
    with open(test_dir / "filenames.pickle", "wb") as f:
        pickle.dump(names, f, protocol=2)

    labels = tmp_path / "labels.txt"
    labels.write_text("first row\n")  # fewer lines than rows: the rest named by the file
    drawn(["--embeddings", pickled, "--n", "2", "--seed", "5", "--captions-file", str(labels)],
          images, ["first row", "char-CNN-RNN-embeddings.pickle #1"], columns=4)  # fmt: skip

    line = interpolation.interpolate(generator, vectors[0, 0], vectors[1, 0], 3, 1, seed=2)
    printed = drawn(["--embeddings", pickled, "--interpolate", "3", "--n", "1", "--seed", "2"],
                    line["image_256"],
                    interpolation.labels("caption 0 of image 0", "caption 1 of image 1", 3, 1),
                    columns=3)  # fmt: skip
    assert "1 row(s) of 3 images of 64px from 'caption 0 of image 0'" in printed

    one_row = tmp_path / "one.npy"
    np.save(one_row, vectors[:1, 0])
    argv = ["generate", "--model", export_dir, "--embeddings", str(one_row), "--interpolate", "3"]
    assert cli_main([*argv, "--out", str(tmp_path / "never.png")]) == 2
    assert capsys.readouterr().err == (
        f"stackgan generate: error: --embeddings {one_row}: --interpolate needs two rows (the"
        " line's ends), it has 1\n"
    )
    assert not (tmp_path / "never.png").exists()
