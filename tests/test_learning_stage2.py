"""Stage-II learns to refine its Stage-I input (issue: Stage-II must be shown to refine Stage-I).

A world where the truth is known: every real 64x64 image is two sharp discs on a plain
background, their colour named by the text embedding (the first 3 of its dimensions), their
positions drawn at random. The Stage-I generator is replaced by the ideal one: it draws the discs at the
positions its noise z picks and returns the exact 16x16 box-downscale of the 64x64 image, so for
every (text, z) the real high-resolution image that Stage-I's picture came from is known.

Stage-II then trains as in the pipeline (`StageIIGAN.train_step`: the frozen Stage-I draws z
itself, D sees real, wrong-colour and generated 64x64 images). Afterwards, on fixed held-out
noise:
- its image, box-downscaled, keeps the Stage-I input's colours (`consistency_mad`, levels);
- it is closer to the true 64x64 image than bicubic upsampling of the Stage-I input;
- its edges are sharper than bicubic makes them (edge sharpness gain over 2).
It trains with the settings the demo profile uses for Stage-II: the residual computed at
Stage-I's size (`stage2_output="lowres_residual"`), the super-resolution term on real pairs, the
generator at 1e-3, D at 2e-3 and the R1 penalty; but the super-resolution term's real images
are blurred by 0.5 pixel, not the demo's 1. The demo matches that blur to its Stage-I's blurred
birds; this world's Stage-I is exact, and taught to undo a blur of 1 that is not there, Stage-II
overshoots every edge (seed 0: error 4.43 against bicubic's 3.73, consistency 3.89 levels).
The previous demo's Stage-II (`"residual"`, the downscaled L1 consistency term, no
super-resolution term) scored error 3.39 and edge sharpness gain 0.99 here: closer to the truth
than bicubic, but no sharper. Without R1 the same run painted stripes into the discs; without precise BatchNorm statistics the inference-mode images are striped.
A Stage-II that ignores its input (fed a blank Stage-I image, so it cannot know where the disc
is) fails both.
"""

from __future__ import annotations

import numpy as np
import pytest

HIGH, LOW, RADIUS = 64, 16, 8.0
COLOURS = np.array([[0.9, -0.8, -0.8], [-0.8, 0.9, -0.8], [-0.8, -0.6, 0.9], [0.9, 0.8, -0.7]])
BACKGROUND = np.array([0.1, 0.2, 0.3])
EMBEDDING_DIM = 32
# float32: 600 steps, not 1,000: over seeds 0-2 (AMD EPYC) the scores at 600 already pass with
# margin (error 0.68-0.71 of bicubic's where the test asks for 0.8, edge sharpness gain 2.5-3.5
# where it asks for 2), and the test and its blind control cost CI 470 s at 1,000 steps.
# bfloat16 learns this more slowly (600 steps, bf16 emulated on the AMD EPYC: error 3.07, over
# the bound of 2.98) and keeps 1,000; it runs only where the CPU has bf16 units.
STEPS = {"float32": 600, "bfloat16": 1000}


def _render(colour, noise):
    """-> f32[B,64,64,3]: two discs of `colour` [B,3] where the first four `noise` dims put
    them (works on NumPy arrays and tensors alike)."""
    import tensorflow as tf

    grid = tf.range(HIGH, dtype=tf.float32) + 0.5
    inside = 0.0
    for disc in range(2):
        position = tf.tanh(tf.cast(noise[:, 2 * disc : 2 * disc + 2], tf.float32))
        centre = HIGH / 2 + (HIGH / 2 - RADIUS - 2) * position
        dy = grid[None, :, None] - centre[:, 0, None, None]
        dx = grid[None, None, :] - centre[:, 1, None, None]
        inside = tf.maximum(inside, tf.cast(dx * dx + dy * dy <= RADIUS * RADIUS, tf.float32))
    inside = inside[..., None]
    colour = tf.cast(colour, tf.float32)[:, None, None, :]
    return inside * colour + (1.0 - inside) * tf.constant(BACKGROUND, tf.float32)


def _downscale(images):
    import tensorflow as tf

    return tf.nn.avg_pool2d(images, HIGH // LOW, HIGH // LOW, "VALID")


def _ideal_stage1(model_cfg, blank: bool):
    """A keras.Model with Stage-I's signature: [embedding, noise, ca_noise] -> [16x16 image,
    mu, log_sigma]. `blank`: a grey image instead (the Stage-II that ignores its input)."""
    import keras
    import tensorflow as tf

    class IdealStageI(keras.layers.Layer):
        def call(self, embedding, noise):
            image = _downscale(_render(embedding[:, :3], noise))
            return tf.zeros_like(image) if blank else image

    embedding = keras.Input((EMBEDDING_DIM,))
    noise = keras.Input((model_cfg.z_dim,))
    ca_noise = keras.Input((model_cfg.ca_dim,))
    image = IdealStageI()(embedding, noise)
    return keras.Model([embedding, noise, ca_noise], [image, ca_noise, ca_noise])


def _data(n, rng, z_dim):
    pick = rng.integers(len(COLOURS), size=n)
    other = (pick + rng.integers(1, len(COLOURS), size=n)) % len(COLOURS)
    extra = 0.3 * rng.standard_normal((n, EMBEDDING_DIM - 3))
    embedding = np.concatenate([COLOURS[pick], extra], axis=1).astype("float32")
    noise = rng.standard_normal((n, z_dim)).astype("float32")
    wrong_noise = rng.standard_normal((n, z_dim)).astype("float32")
    return {
        "image": np.asarray(_render(COLOURS[pick], noise)),
        "wrong_image": np.asarray(_render(COLOURS[other], wrong_noise)),
        "embedding": embedding,
    }


def _config(tiny_config):
    return tiny_config.replace(
        model={
            "embedding_dim": EMBEDDING_DIM,
            "stage2_gf_dim": 8,
            "stage2_df_dim": 8,
            "stage2_residual_blocks": 2,
            "stage2_output": "lowres_residual",
            "stage2_lowres_residual_dim": 32,
            "generator_padding": "replicate",
        },
        train={
            "batch_size": 16,
            "stage2_reconstruction_weight": 200.0,
            "stage2_reconstruction_blur": 0.5,
            "stage2_learning_rate": 1e-3,
            "d_learning_rate": 2e-3,
            "r1_gamma": 1.0,
            "r1_every": 4,
        },
        data={"low_res": LOW, "high_res": HIGH},
    )


def _train(cfg, blank: bool, steps: int):
    import keras
    import tensorflow as tf

    from stackgan import models, training
    from stackgan.training.lr_schedule import make_optimizers
    from stackgan.training.precise_bn import BatchNormRecalibration

    keras.utils.set_random_seed(0)
    policy = training.dtype_policy(cfg.train.precision)
    gan = training.StageIIGAN(
        _ideal_stage1(cfg.model, blank),
        models.build_stage2_generator(cfg.model, LOW, dtype_policy=policy),
        models.build_stage2_discriminator(cfg.model, HIGH, dtype_policy=policy),
        cfg,
    )
    gan.compile(*make_optimizers(cfg.train, 10**6, stage=2))
    data = _data(1024, np.random.default_rng(0), cfg.model.z_dim)
    dataset = tf.data.Dataset.from_tensor_slices(data).shuffle(1024, seed=0).repeat().batch(16)
    gan.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    # what the trainer does before it exports: precise BatchNorm statistics
    recalibration = BatchNormRecalibration(
        [data["embedding"][i : i + 16] for i in range(0, 320, 16)], cfg
    )
    assert recalibration(gan.generator, gan.stage1_generator) > 0
    return gan


def _scores(gan, cfg, blank: bool):
    """(consistency_mad, Stage-II error, bicubic error, Stage-II edge sharpness gain, the true
    image's): errors are mean |image - true 64x64 image| in 0-255 levels, on 64 held-out (text,
    z) pairs; edge sharpness gains over bicubic upsampling of the Stage-I input."""
    import tensorflow as tf

    from stackgan.evaluation.refinement import consistency_mad, edge_sharpness_gain

    held_out = _data(64, np.random.default_rng(1), cfg.model.z_dim)
    rng = np.random.default_rng(2)
    embedding = tf.constant(held_out["embedding"])
    noise = tf.constant(rng.standard_normal((64, cfg.model.z_dim)), tf.float32)
    ca_noise = tf.constant(rng.standard_normal((64, cfg.model.ca_dim)), tf.float32)
    truth = _render(held_out["embedding"][:, :3], noise)
    low = _downscale(truth)
    seen = tf.zeros_like(low) if blank else low
    high = gan.generator([seen, embedding, ca_noise], training=False)[0]
    bicubic = tf.clip_by_value(tf.image.resize(low, (HIGH, HIGH), "bicubic"), -1.0, 1.0)

    def levels(x):
        return np.round((np.asarray(x) + 1.0) * 127.5)

    low8, high8 = levels(low).astype(np.uint8), levels(high).astype(np.uint8)
    mad = consistency_mad(low8, high8)
    stage2_error = float(np.abs(levels(high) - levels(truth)).mean())
    bicubic_error = float(np.abs(levels(bicubic) - levels(truth)).mean())
    edges = edge_sharpness_gain(low8, high8)
    true_edges = edge_sharpness_gain(low8, levels(truth).astype(np.uint8))
    return mad, stage2_error, bicubic_error, edges, true_edges


# bfloat16 too: train.precision=auto may pick it only while it learns as float32 does
@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_stage2_refines_its_stage1_input(tiny_config, precision):
    from stackgan.training import precision as precision_lib

    auto = precision_lib.auto_choice(precision_lib.detect_hardware())
    if precision == "bfloat16" and auto.name != "bfloat16":
        # What this variant licenses, auto's choice of bf16, cannot happen here; TensorFlow
        # emulates bf16 on such a CPU, and this variant took 522 s on the 2-core AMD EPYC
        # against 158 s in float32. Stage-I's bf16 learning test (test_learning.py) still runs.
        pytest.skip(f"train.precision=auto never picks bfloat16 here ({auto.reason})")
    cfg = _config(tiny_config).replace(train={"precision": precision})
    gan = _train(cfg, blank=False, steps=STEPS[precision])
    mad, stage2_error, bicubic_error, edges, true_edges = _scores(gan, cfg, blank=False)
    print(
        f"refining Stage-II: consistency {mad:.2f}, error {stage2_error:.2f} vs bicubic"
        f" {bicubic_error:.2f}, edge sharpness gain {edges:.2f} (the true images' {true_edges:.2f})"
    )
    # measured (seed 0, AMD EPYC, 600 steps): consistency 1.85 levels, error 2.60 against
    # bicubic's 3.73, edge sharpness gain 3.00 where the true images score 7.09 (1,000 steps
    # on the AMX Xeon: 1.44, 2.11, 3.13; bfloat16 1.65, 2.24, 3.50)
    assert mad < 3.0, mad
    assert stage2_error < 0.8 * bicubic_error, (stage2_error, bicubic_error)
    assert edges > 2.0, edges


@pytest.mark.slow
def test_stage2_that_ignores_its_input_fails(tiny_config):
    cfg = _config(tiny_config)
    gan = _train(cfg, blank=True, steps=STEPS["float32"])
    mad, stage2_error, bicubic_error, _, _ = _scores(gan, cfg, blank=True)
    print(
        f"blind Stage-II: consistency {mad:.2f}, error {stage2_error:.2f} vs bicubic {bicubic_error:.2f}"
    )
    # measured (seed 0, AMD EPYC, 600 steps): consistency 22.5 levels, error 23.2 against 3.73
    assert mad > 10.0, mad
    assert stage2_error > 2 * bicubic_error, (stage2_error, bicubic_error)
