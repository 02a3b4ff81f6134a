"""train.precision: what `auto` picks on which hardware, float16 refused on a CPU, and the
choice reaching the networks, the optimizers, TensorBoard and the run summary.

Whether bfloat16 still learns is tested where learning is: tests/test_learning.py and
tests/test_learning_stage2.py run under float32 and bfloat16 alike.
"""

from __future__ import annotations

import os

import pytest

from stackgan import config as config_lib
from stackgan.config import ConfigError
from stackgan.errors import UserError
from stackgan.training import precision
from stackgan.training.precision import Hardware

AMX_CPU = frozenset({"avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8"})
AVX512_BF16_CPU = frozenset({"avx2", "avx512f", "avx512_bf16"})
AVX2_CPU = frozenset({"sse4_2", "avx", "avx2", "fma"})


@pytest.mark.parametrize(
    "hardware, name, reason",
    [
        (Hardware(AMX_CPU), "bfloat16", "auto: AMX bf16 found"),
        (Hardware(AVX512_BF16_CPU), "bfloat16", "auto: AVX512_BF16 found"),
        (
            Hardware(AVX2_CPU),
            "float32",
            "auto: no native bf16 on this CPU (no AMX / AVX512_BF16 flag)",
        ),
        (Hardware(frozenset()), "float32", None),
        # a GPU decides, whatever the CPU has
        (Hardware(AVX2_CPU, ((8, 0),)), "bfloat16", "auto: NVIDIA GPU of compute capability 8.0"),
        (Hardware(AVX2_CPU, ((9, 0),)), "bfloat16", None),
        (Hardware(AMX_CPU, ((7, 5),)), "float16", "no bf16 units (< 8.0)"),
        (Hardware(AVX2_CPU, ((6, 1),)), "float16", "float16 with loss scaling"),
        # several GPUs: the oldest decides (one policy for every replica)
        (Hardware(AVX2_CPU, ((8, 6), (7, 0))), "float16", "compute capability 7.0"),
    ],
)
def test_auto_follows_the_hardware(hardware, name, reason):
    chosen = precision.resolve("auto", hardware)
    assert chosen.name == name
    if reason:
        assert reason in chosen.reason
    assert chosen.reason.startswith("auto: ")
    assert chosen.policy == {"float32": "float32", "bfloat16": "mixed_bfloat16"}.get(
        name, "mixed_float16"
    )


@pytest.mark.parametrize("cpu", [AMX_CPU, AVX2_CPU])
def test_float16_on_a_cpu_is_refused_in_one_line(cpu):
    with pytest.raises(precision.PrecisionError) as raised:
        precision.resolve("float16", Hardware(cpu))
    message = str(raised.value)
    assert isinstance(raised.value, UserError)  # the CLI prints it as one line, exit code 2
    assert "\n" not in message
    assert message.startswith("train.precision=float16 needs a GPU")
    assert "auto" in message and "float32" in message  # what to do instead


def test_explicit_choices_are_kept_and_say_so():
    gpu = Hardware(AVX2_CPU, ((7, 0),))
    assert precision.resolve("float16", gpu).policy == "mixed_float16"
    assert precision.resolve("float32", Hardware(AMX_CPU)).reason == "train.precision=float32"
    native = precision.resolve("bfloat16", Hardware(AMX_CPU))
    assert (native.name, native.reason) == ("bfloat16", "train.precision=bfloat16")
    # allowed, but the record says it is emulated
    emulated = precision.resolve("bfloat16", Hardware(AVX2_CPU))
    assert emulated.policy == "mixed_bfloat16" and "emulated" in emulated.reason


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nmodel name\t: Some Xeon\nflags\t\t: fpu avx2 avx512_bf16 amx_bf16\n\n"
        "processor\t: 1\nflags\t\t: fpu\n"
    )
    flags = precision.read_cpu_flags(str(cpuinfo))
    assert flags == {"fpu", "avx2", "avx512_bf16", "amx_bf16"}  # the first CPU's
    assert precision.auto_choice(Hardware(flags)).reason == "auto: AMX bf16 found"
    assert precision.read_cpu_flags(str(tmp_path / "absent")) == frozenset()


def test_config_field_replaces_mixed_precision():
    assert config_lib.paper().train.precision == "auto"
    assert config_lib.tiny().train.precision == "float32"
    cfg = config_lib.tiny().with_overrides(["train.precision=bfloat16"])
    assert cfg.train.precision == "bfloat16"
    with pytest.raises(ConfigError, match=r"train.precision='fp16' is not one of 'float32'"):
        config_lib.tiny().with_overrides(["train.precision=fp16"])
    with pytest.raises(ConfigError, match="did you mean train.precision"):
        config_lib.tiny().with_overrides(["train.mixed_precision=true"])


def test_optimizers_scale_the_loss_only_for_float16(tiny_config):
    import keras

    from stackgan import models

    for policy, scaled in (("float32", False), ("mixed_bfloat16", False), ("mixed_float16", True)):
        g = models.build_stage1_generator(tiny_config.model, 16, dtype_policy=policy)
        assert precision.needs_loss_scaling(g) is scaled
        optimizer = precision.for_precision(keras.optimizers.Adam(), g)
        assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer) is scaled


@pytest.mark.parametrize(
    "stage2_output, behind_a_bilinear_upsampling",
    [("lowres_residual", ["pixel_conv/kernel", "lowres_conv1/kernel"]),
     ("residual", ["enc_conv1/kernel", "res1_conv1/kernel", "up8_conv/kernel"])],
)  # fmt: skip
def test_a_jit_compiled_bf16_stage2_step_with_bilinear_upsampling_runs(
    tiny_config, stage2_output, behind_a_bilinear_upsampling
):
    """`train.xla` in bfloat16 with every bilinear upsampling the generators have (the demo's
    Stage-II, `model.generator_upsampling=bilinear`): TensorFlow's XLA lowers a bf16 bilinear
    resize's gradient to float32, which failed the step ("mixed precision is disallowed")
    until those layers computed in float32."""
    import numpy as np
    import tensorflow as tf

    from stackgan import models, training

    cfg = tiny_config.replace(
        model={"stage2_output": stage2_output, "generator_upsampling": "bilinear"}
    )
    m, low, high = cfg.model, cfg.data.low_res, cfg.data.high_res
    policy = "mixed_bfloat16"
    gan = training.StageIIGAN(
        models.build_stage1_generator(m, low, dtype_policy=policy),
        models.build_stage2_generator(m, low, dtype_policy=policy),
        models.build_stage2_discriminator(m, high, dtype_policy=policy),
        cfg,
    )
    gan.compile(*training.make_optimizers(cfg.train, steps_per_epoch=10, stage=2))
    rng = np.random.default_rng(0)
    batch = {
        "image": tf.constant(rng.uniform(-1, 1, (2, high, high, 3)), tf.float32),
        "wrong_image": tf.constant(rng.uniform(-1, 1, (2, high, high, 3)), tf.float32),
        "embedding": tf.constant(rng.normal(size=(2, m.embedding_dim)), tf.float32),
    }
    before = [v.numpy() for v in gan.generator.trainable_variables]
    logs = tf.function(gan.train_step, jit_compile=True)(batch)
    assert all(np.isfinite(float(v)) for v in logs.values())
    moved = {
        v.path for b, v in zip(before, gan.generator.trainable_variables, strict=True)
        if not np.array_equal(b, v.numpy())
    }  # fmt: skip
    # weights whose gradient passes a bilinear upsampling's took their Adam step
    assert set(behind_a_bilinear_upsampling) <= moved


@pytest.fixture(scope="module")
def train_pattern(tmp_path_factory):
    from tiny_examples import write_tiny_examples

    root = tmp_path_factory.mktemp("examples")
    write_tiny_examples(str(root), config_lib.tiny())
    return str(root / "Split-train" / "*")


def test_training_run_records_the_precision_and_why(tiny_config, tmp_path, train_pattern):
    """train_stage on this machine under `auto`: the networks compute in what `auto` chose, and
    TensorBoard's `precision` text says what and why."""
    import tensorflow as tf

    from stackgan.training import runner

    cfg = tiny_config.replace(train={"precision": "auto", "max_steps": 1})
    expected = precision.resolve("auto")
    run = runner.train_stage(cfg, 1, train_pattern, str(tmp_path / "run"))
    assert run.precision == expected
    conv = run.gan.generator.get_layer("up8_conv")
    assert conv.compute_dtype == {"float32": "float32"}.get(expected.name, expected.name)
    texts = []
    for event_file in tf.io.gfile.glob(str(tmp_path / "run" / "logs" / "events.*")):
        for event in tf.compat.v1.train.summary_iterator(event_file):
            for value in event.summary.value:
                if value.tag == "precision":
                    texts.append(tf.make_ndarray(value.tensor).item().decode())
    assert texts == [expected.describe()]


def test_training_refuses_float16_on_a_cpu_before_building(tiny_config, tmp_path, monkeypatch):
    from stackgan.training import runner

    monkeypatch.setattr(precision, "detect_hardware", lambda: Hardware(AMX_CPU))

    def never(*args, **kwargs):
        raise AssertionError("built a GAN")

    monkeypatch.setattr(runner, "build_gan", never)
    cfg = tiny_config.replace(train={"precision": "float16"})
    with pytest.raises(precision.PrecisionError, match="needs a GPU"):
        runner.train_stage(cfg, 1, str(tmp_path / "none-*"), str(tmp_path / "run"))


@pytest.mark.parametrize("shape", [(16, 8, 8, 32), (16, 64)])
def test_fused_bf16_batchnorm_matches_keras(shape, monkeypatch):
    """Under bfloat16 a training batch goes through FusedBatchNormV3: the same outputs,
    gradients and moving statistics as Keras' composed layer, to bf16 rounding."""
    import keras
    import numpy as np
    import tensorflow as tf

    from stackgan.models import batch_norm

    rng = np.random.default_rng(0)
    x = tf.cast(tf.constant(rng.normal(2.0, 3.0, shape), tf.float32), tf.bfloat16)
    weights = tf.constant(rng.normal(size=shape), tf.float32)

    def run(fused: bool):
        monkeypatch.setattr(batch_norm, "FUSED_DTYPES", ("bfloat16",) if fused else ())
        layer = batch_norm.FreezableBatchNorm(
            momentum=0.9,
            gamma_initializer=keras.initializers.RandomNormal(1.0, 0.2, seed=1),
            beta_initializer=keras.initializers.RandomNormal(0.0, 0.2, seed=2),
            dtype="mixed_bfloat16",
        )
        layer.build(shape)
        assert layer._fusable(x) is fused
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(tf.cast(y, tf.float32) ** 2 * weights)
        dx, dgamma, dbeta = tape.gradient(loss, [x, layer.gamma.value, layer.beta.value])
        assert y.dtype == tf.bfloat16
        values = (y, dx, dgamma, dbeta, layer.moving_mean, layer.moving_variance)
        return [np.asarray(tf.cast(v, tf.float32)) for v in values]

    fused, keras_bn = run(True), run(False)
    names = ("y", "dx", "dgamma", "dbeta", "moving_mean", "moving_variance")
    for name, a, b in zip(names, fused, keras_bn, strict=True):
        # bf16 keeps 8 significant bits: 2 units of its last place at the largest value
        assert np.abs(a - b).max() <= 2 * 2**-8 * np.abs(b).max() + 1e-6, name
    assert np.abs(fused[4]).max() > 0.1  # the statistics moved (mean 2, momentum 0.9)


def test_frozen_fused_batchnorm_keeps_its_weights(monkeypatch):
    import numpy as np
    import tensorflow as tf

    from stackgan.models import batch_norm

    layer = batch_norm.FreezableBatchNorm(dtype="mixed_bfloat16")
    layer.build((8, 4, 4, 16))
    layer.trainable = False
    layer.batch_statistics_when_frozen = True
    before = [np.array(w) for w in layer.weights]
    x = tf.cast(tf.random.normal((8, 4, 4, 16), 5.0, 2.0), tf.bfloat16)
    y = np.asarray(tf.cast(layer(x, training=True), tf.float32))
    # normalised with the batch's statistics (the moving ones would leave the mean at ~5)
    assert abs(y.mean()) < 0.05 and abs(y.std() - 1.0) < 0.05
    for old, new in zip(before, layer.weights, strict=True):
        np.testing.assert_array_equal(old, np.array(new))


def test_bf16_text_encoder_learns_and_exports_float32(tiny_config, tmp_path):
    """The text encoder under bfloat16: zero-shot retrieval on unseen classes as in float32
    (tests/test_text_training.py's data and bound), float32 embeddings in and out of its
    SavedModel."""
    import tensorflow as tf
    from test_text_training import _attribute_birds

    from stackgan.text.export import TextEncoder, export_text_encoder
    from stackgan.text.retrieval import zero_shot_top1
    from stackgan.text.training import evaluate_zero_shot, train_joint_embedding

    train, test = _attribute_birds()
    cfg = tiny_config.replace(text={"epochs": 10}).text
    model, history = train_joint_embedding(train, cfg, seed=0, dtype_policy="mixed_bfloat16")
    assert model.text_encoder.get_layer("conv1").compute_dtype == "bfloat16"
    assert history["loss"][-1] < 0.3 * history["loss"][0]
    result = evaluate_zero_shot(model, test)
    assert result.top1 >= 3 * result.chance, result  # chance 1/6

    export_text_encoder(model, tmp_path / "encoder")
    signature = tf.saved_model.load(str(tmp_path / "encoder")).signatures["serving_default"]
    out = signature(caption=tf.constant(["a red bird with a short beak"]))["embedding"]
    assert out.dtype == tf.float32
    # retrieval through the SavedModel alone, as the CaptionEmbedder and serving use it
    encoder = TextEncoder(tmp_path / "encoder")
    captions, _, caption_labels = test.flat_captions()
    exported = zero_shot_top1(
        encoder.embed_image_features(test.features), test.labels, encoder.embed(captions),
        caption_labels,
    )  # fmt: skip
    assert exported.top1 >= 3 * exported.chance, exported


def test_bf16_stage_job_records_precision_and_exports_float32_signatures(
    tiny_config, tmp_path, train_pattern
):
    """A Stage-I trainer job under bfloat16: training_summary.json and the run summary say what
    ran and why; the served generator keeps float32 inputs and uint8 images and computes in
    bf16, as the trained Keras generator does."""
    import keras
    import numpy as np
    import tensorflow as tf

    from stackgan.pipeline import results
    from stackgan.serving import signatures
    from stackgan.serving.generator import load_generator
    from stackgan.training import trainer_job
    from stackgan.training.runner import StageRun

    cfg = tiny_config.replace(train={"precision": "bfloat16", "max_steps": 1})
    args = trainer_job.StageJobArgs(
        stage=1, config=cfg, train_pattern=train_pattern, sample_pattern=train_pattern,
        model_dir=str(tmp_path / "model"), run_dir=str(tmp_path / "run"),
    )  # fmt: skip
    summary = trainer_job.run_stage_job(args)
    assert summary["precision"] == "bfloat16"
    assert summary["precision_reason"].startswith("train.precision=bfloat16")
    assert results.precision_lines(args.run_dir) == [
        f"      precision: bfloat16 ({summary['precision_reason']})"
    ]
    assert StageRun.__dataclass_fields__["precision"]  # the runner hands it over

    served = tf.saved_model.load(os.path.join(args.model_dir, "Format-Serving"))
    noise_signature = served.signatures[signatures.NOISE]
    inputs = noise_signature.structured_input_signature[1]
    assert {spec.dtype for spec in inputs.values()} == {tf.float32}
    assert noise_signature.structured_outputs["image_64"].dtype == tf.uint8

    rng = np.random.default_rng(0)
    m = cfg.model
    embedding = rng.normal(size=(8, m.embedding_dim)).astype("float32")
    noise = rng.normal(size=(8, m.z_dim)).astype("float32")
    ca_noise = rng.normal(size=(8, m.ca_dim)).astype("float32")
    images = load_generator(os.path.join(args.model_dir, "Format-Serving")).generate_with_noise(
        embedding, noise, ca_noise
    )["image_64"]
    assert images.dtype == np.uint8

    # the served graph's convolutions run in bf16, as the trained generator's do
    trained = keras.saving.load_model(os.path.join(args.model_dir, "generator.keras"))
    assert trained.get_layer("up8_conv").compute_dtype == "bfloat16"
    library = noise_signature.graph.as_graph_def().library.function
    conv_types = {
        tf.dtypes.as_dtype(node.attr["T"].type).name
        for function in library
        for node in function.node_def
        if node.op == "Conv2D"
    }
    assert conv_types == {"bfloat16"}, conv_types


def test_stackgan_run_refuses_float16_on_a_cpu_before_the_dag(capsys, tmp_path, monkeypatch):
    from stackgan import cli

    monkeypatch.setattr(precision, "detect_hardware", lambda: Hardware(AMX_CPU))
    work = tmp_path / "work"
    argv = ["run", "--work-dir", str(work), "--set", "train.precision=float16"]
    assert cli.main(argv) == 2
    out, err = capsys.readouterr()
    assert err.count("\n") == 1, err
    assert "train.precision=float16 needs a GPU" in err
    assert not work.exists() or not any(work.iterdir())  # nothing made, nothing ran
