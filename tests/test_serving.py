"""The exported generator: signatures, reproducible seeds, the same images as the Keras models,
clear errors for bad requests, warm-up records, the composed text signature and the clients."""

from __future__ import annotations

import dataclasses
import http.server
import json
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest
import tensorflow as tf

from stackgan.models import build_stage1_generator, build_stage2_generator
from stackgan.serving import client, warmup
from stackgan.serving.export import SavedTextEncoder, export_generator, to_uint8
from stackgan.serving.generator import load_generator


@pytest.fixture(scope="module")
def generators(tiny_config):
    keras_seed = 1
    tf.keras.utils.set_random_seed(keras_seed)
    cfg = tiny_config
    # the demo's residual Stage-II: its custom layer must serve without the project's code
    residual = dataclasses.replace(cfg.model, stage2_output="residual")
    return (
        build_stage1_generator(cfg.model, cfg.data.low_res),
        build_stage2_generator(residual, cfg.data.low_res),
    )


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory, tiny_config, generators):
    path = str(tmp_path_factory.mktemp("export") / "Format-Serving")
    return export_generator(path, tiny_config.model, *generators)


@pytest.fixture(scope="module")
def embeddings(tiny_config):
    return (
        np.random.default_rng(0)
        .normal(size=(3, tiny_config.model.embedding_dim))
        .astype(np.float32)
    )


def test_seed_reproduces_images_with_profile_sizes(export_dir, tiny_config, embeddings):
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
    # an untrained generator's images are near grey, so count differing pixels, not their size
    assert (first["image_64"] != other["image_64"]).mean() > 0.2
    # the samples of one request differ from each other (per-sample noise, not one shared draw)
    assert (first["image_64"][0] != first["image_64"][1]).mean() > 0.2


def test_exported_graph_is_the_trained_generators(export_dir, tiny_config, generators):
    """generate_with_noise equals the Keras models run in inference mode, and serving_default
    equals generate_with_noise fed tf.random.stateless_normal([N, d], seed=[seed, stream])."""
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


def test_signatures_listed_and_fresh_process_generates_without_project_code(
    export_dir, embeddings, tmp_path
):
    """One subprocess (a fresh TensorFlow, ~20 s), because both facts are about a process that
    never imported this project: `saved_model_cli show --all` lists the signatures, and the
    SavedModel loads and generates the same images with `stackgan` made unimportable."""
    np.save(tmp_path / "embeddings.npy", embeddings)
    script = textwrap.dedent(
        f"""
        import sys
        sys.modules["stackgan"] = None  # any import of the project now fails
        import numpy as np, tensorflow as tf
        from tensorflow.python.tools import saved_model_cli
        sys.argv = ["saved_model_cli", "show", "--dir", {export_dir!r}, "--all"]
        try:
            saved_model_cli.main()
        except SystemExit:
            pass
        sys.stdout.flush()
        print("=== generated")
        loaded = tf.saved_model.load({export_dir!r})
        out = loaded.signatures["serving_default"](
            embedding=tf.constant(np.load({str(tmp_path / "embeddings.npy")!r})),
            seed=tf.constant(11, tf.int64),
        )
        np.savez({str(tmp_path / "fresh.npz")!r}, **{{k: v.numpy() for k, v in out.items()}})
        """
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    shown = result.stdout.split("=== generated")[0]
    for needle in (
        "signature_def['serving_default']",
        "signature_def['generate_with_noise']",
        "inputs['embedding'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, 1024)",
        "inputs['seed'] tensor_info:\n        dtype: DT_INT64\n        shape: ()",
        "inputs['ca_noise_2']",
        "outputs['image_256'] tensor_info:\n        dtype: DT_UINT8\n        shape: (-1, 64, 64, 3)",
    ):
        assert needle in shown, f"{needle!r} not in saved_model_cli output:\n{shown}"
    fresh = np.load(tmp_path / "fresh.npz")
    here = load_generator(export_dir).generate(embeddings, seed=11)
    assert sorted(fresh.files) == ["image_256", "image_64"]
    for key in here:
        np.testing.assert_array_equal(fresh[key], here[key])


def test_bad_requests_fail_naming_the_input(export_dir, tiny_config):
    loaded = tf.saved_model.load(export_dir)
    seed = tf.constant(1, tf.int64)
    e = tiny_config.model.embedding_dim
    # a wrong rank is refused by the function's input signature
    with pytest.raises(TypeError, match="embedding"):
        loaded.serving_default(tf.zeros([e]), seed)
    # signature calls (and TF Serving) feed the graph directly: the in-graph check names the input
    with pytest.raises(
        tf.errors.InvalidArgumentError, match=r"tensor embedding \[2,7\].*\[\?,1024\]"
    ):
        loaded.signatures["serving_default"](embedding=tf.zeros([2, 7]), seed=seed)
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
    with pytest.raises(tf.errors.InvalidArgumentError, match="input seed must be >= 0"):
        loaded.signatures["serving_default"](
            embedding=tf.zeros([1, e]), seed=tf.constant(-1, tf.int64)
        )

    generator = load_generator(export_dir)
    with pytest.raises(ValueError, match=r"embeddings must have shape \[N>0, 1024\], got \[2, 7\]"):
        generator.generate(np.zeros((2, 7), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        generator.generate(np.full((1, e), np.nan, np.float32))
    with pytest.raises(ValueError, match="seed"):
        generator.generate(np.zeros((1, e), np.float32), seed=-3)
    with pytest.raises(ValueError, match="ca_noise_2"):
        generator.generate_with_noise(np.zeros((1, e)), np.zeros((1, 8)), np.zeros((1, 8)))
    with pytest.raises(ValueError, match="no text signature"):
        generator.generate_from_captions(["a bird"])


def test_warmup_requests_replay_against_the_signature(export_dir):
    requests = warmup.read_warmup_requests(export_dir)
    assert [tf.make_ndarray(r.inputs["embedding"]).shape for r in requests] == [
        (1, 1024),
        (2, 1024),
    ]
    loaded = tf.saved_model.load(export_dir)
    for request in requests:
        assert request.model_spec.signature_name == "serving_default"
        fn = loaded.signatures[request.model_spec.signature_name]
        out = fn(**{k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()})
        assert out["image_64"].shape[0] == tf.make_ndarray(request.inputs["embedding"]).shape[0]


def test_stage1_only_export_and_existing_directory(tmp_path, tiny_config, generators):
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
    with pytest.raises(FileExistsError, match="not empty"):
        export_generator(path, tiny_config.model, generators[0])


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


def test_text_signature_composes_a_text_encoder(tmp_path, tiny_config, generators):
    _write_hashing_text_encoder(str(tmp_path / "encoder"), tiny_config.model.embedding_dim)
    encoder = SavedTextEncoder(str(tmp_path / "encoder"))
    path = export_generator(
        str(tmp_path / "export"), tiny_config.model, *generators, text_encoder=encoder
    )
    generator = load_generator(path)
    captions = ["a small red bird with black wings", "a yellow bird"]
    from_text = generator.generate_from_captions(captions, seed=4)
    assert sorted(from_text) == ["image_256", "image_64"]
    embedding = encoder(tf.constant(captions)).numpy()
    np.testing.assert_allclose(generator.embed_captions(captions), embedding, rtol=1e-6)
    from_embedding = generator.generate(embedding, seed=4)
    for key in ("image_64", "image_256"):
        np.testing.assert_array_equal(from_text[key], from_embedding[key])

    narrow = tiny_config.model.__class__(embedding_dim=16)
    with pytest.raises(ValueError, match="embeds to 1024 dimensions, the generator expects 16"):
        export_generator(str(tmp_path / "bad"), narrow, *generators, text_encoder=encoder)


def test_rest_bodies_and_local_sender(export_dir, embeddings):
    body = client.rest_body(client.seed_inputs(embeddings, 3))
    assert body["signature_name"] == "serving_default" and body["inputs"]["seed"] == 3
    with pytest.raises(ValueError, match="'seed' is a scalar"):
        client.rest_body(client.seed_inputs(embeddings, 3), form="instances")
    rows = client.rest_body(
        client.noise_inputs(embeddings, np.zeros((3, 8)), np.zeros((3, 8)), np.zeros((3, 8))),
        signature_name="generate_with_noise",
        form="instances",
    )
    assert len(rows["instances"]) == 3 and sorted(rows["instances"][0]) == [
        "ca_noise",
        "ca_noise_2",
        "embedding",
        "noise",
    ]

    loaded = tf.saved_model.load(export_dir)
    server = http.server.HTTPServer(("127.0.0.1", 0), _serving_handler(loaded))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = client.rest_url("stackgan", "127.0.0.1", server.server_port)
        assert url.endswith("/v1/models/stackgan:predict")
        images = client.post_predict(url, body)
        reference = load_generator(export_dir).generate(embeddings, seed=3)
        for key in reference:
            np.testing.assert_array_equal(images[key], reference[key])
        by_row = client.post_predict(url, rows)
        assert by_row["image_256"].shape == (3, 64, 64, 3)
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

    request = client.grpc_request("stackgan", client.seed_inputs(embeddings, 2), version=3)
    assert request.model_spec.version.value == 3
    wire = predict_pb2.PredictRequest.FromString(request.SerializeToString())
    fn = tf.saved_model.load(export_dir).signatures[wire.model_spec.signature_name]
    out = fn(**{k: tf.constant(tf.make_ndarray(v)) for k, v in wire.inputs.items()})
    response = predict_pb2.PredictResponse()
    for key, value in out.items():
        response.outputs[key].CopyFrom(tf.make_tensor_proto(value.numpy()))
    images = client.parse_grpc_response(response)
    reference = load_generator(export_dir).generate(embeddings, seed=2)
    np.testing.assert_array_equal(images["image_64"], reference["image_64"])
