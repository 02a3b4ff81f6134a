"""StageIGAN / StageIIGAN train steps: what they update, what they leave alone, their schedule."""

from __future__ import annotations

import numpy as np
import pytest

from stackgan import config as config_lib


def _batches(size: int, count: int, batch: int, seed: int = 0):
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    n = count * batch
    data = {
        "image": rng.uniform(-1, 1, (n, size, size, 3)).astype("float32"),
        "wrong_image": rng.uniform(-1, 1, (n, size, size, 3)).astype("float32"),
        "embedding": rng.normal(size=(n, 1024)).astype("float32"),
    }
    return tf.data.Dataset.from_tensor_slices(data).batch(batch, drop_remainder=True)


def _stage1(cfg, steps_per_epoch=1):
    from stackgan import models, training

    g = models.build_stage1_generator(cfg.model, cfg.data.low_res)
    d = models.build_stage1_discriminator(cfg.model, cfg.data.low_res)
    gan = training.StageIGAN(g, d, cfg)
    gan.compile(*training.make_optimizers(cfg.train, steps_per_epoch))
    return gan


def _stage2(cfg, stage1=None):
    from stackgan import models, training

    stage1 = stage1 or models.build_stage1_generator(cfg.model, cfg.data.low_res)
    g = models.build_stage2_generator(cfg.model, cfg.data.low_res)
    d = models.build_stage2_discriminator(cfg.model, cfg.data.high_res)
    gan = training.StageIIGAN(stage1, g, d, cfg)
    gan.compile(*training.make_optimizers(cfg.train, 1))
    return gan


def _snapshot(model):
    return {w.path: np.array(w) for w in model.weights}


def _correct(discriminator, image, embedding, label: float) -> float:
    """Fraction of the batch D (training mode) classifies as `label` (logit > 0 is real)."""
    logits = np.asarray(discriminator([image, embedding], training=True)).ravel()
    return float(np.mean((logits > 0) == bool(label)))


def _assert_every_trainable_weight_moved(model, before):
    trainable = [w.path for w in model.trainable_weights]
    assert trainable, model.name
    unchanged = [
        p for p in trainable if not np.abs(np.array(_snapshot(model)[p]) - before[p]).max()
    ]
    assert unchanged == [], f"{model.name}: trainable weights that did not change: {unchanged}"


def test_stage1_step_updates_both_networks_and_logs_trackers(tiny_config):
    from stackgan import training

    gan = _stage1(tiny_config)
    g_before, d_before = _snapshot(gan.generator), _snapshot(gan.discriminator)
    data = _batches(16, 1, 4)
    batch = next(iter(data))
    # D's accuracies are taken before D's update, on BatchNorm's batch statistics: the same
    # logits as D (not yet updated) gives in training mode now
    expected = {
        "d_acc_real": _correct(gan.discriminator, batch["image"], batch["embedding"], 1.0),
        "d_acc_wrong": _correct(gan.discriminator, batch["wrong_image"], batch["embedding"], 0.0),
    }
    logs = gan.fit(data, epochs=1, verbose=0).history
    assert sorted(logs) == sorted(training.TRACKERS)
    for name in ("d_loss", "g_loss", "kl"):
        assert np.isfinite(logs[name][0]) and logs[name][0] > 0.0, name
    for name, value in expected.items():
        assert logs[name][0] == pytest.approx(value), name
    assert logs["d_acc_fake"][0] in (0.0, 0.25, 0.5, 0.75, 1.0)  # a fraction of 4 fakes
    g_after, d_after = _snapshot(gan.generator), _snapshot(gan.discriminator)
    # every trainable weight of both networks moved, D's own text compressor included
    for model, before, after in (
        (gan.generator, g_before, g_after),
        (gan.discriminator, d_before, d_after),
    ):
        for w in model.trainable_weights:
            assert np.abs(after[w.path] - before[w.path]).max() > 0.0, w.path
    assert "text_compress_fc/kernel" in {w.path for w in gan.discriminator.trainable_weights}
    assert int(gan.d_optimizer.iterations) == int(gan.g_optimizer.iterations) == 1


def test_learning_rate_halves_every_lr_decay_epochs(tiny_config):
    cfg = tiny_config.replace(train={"lr_decay_epochs": 2})
    steps_per_epoch = 3
    gan = _stage1(cfg, steps_per_epoch)
    lr0 = cfg.train.learning_rate
    assert float(gan.d_optimizer.learning_rate) == pytest.approx(lr0)
    # 7 steps = 2 epochs and 1 step: one halving after step 6 (= 2 epochs * 3 steps)
    gan.fit(_batches(16, 7, 4), epochs=1, verbose=0)
    for opt in (gan.d_optimizer, gan.g_optimizer):
        assert int(opt.iterations) == 7
        assert float(opt.learning_rate) == pytest.approx(lr0 * 0.5)
    # the schedule itself, further out: halved once per 6 steps
    from stackgan.training import step_decay

    schedule = step_decay(cfg.train, steps_per_epoch)
    values = [float(schedule(step)) for step in (0, 5, 6, 11, 12, 30)]
    assert values == pytest.approx([lr0, lr0, lr0 / 2, lr0 / 2, lr0 / 4, lr0 / 32])


def test_d_learning_rate_gives_d_its_own_rate_on_the_same_schedule(tiny_config):
    """TTUR: D starts from train.d_learning_rate, G from learning_rate; both halve together."""
    cfg = tiny_config.replace(train={"lr_decay_epochs": 1, "d_learning_rate": 8e-4})
    gan = _stage1(cfg, 2)
    lr_g = cfg.train.learning_rate
    assert lr_g != pytest.approx(8e-4)
    assert float(gan.d_optimizer.learning_rate) == pytest.approx(8e-4)
    assert float(gan.g_optimizer.learning_rate) == pytest.approx(lr_g)
    gan.fit(_batches(16, 3, 4), epochs=1, verbose=0)  # past the first halving (2 steps)
    assert float(gan.d_optimizer.learning_rate) == pytest.approx(4e-4)
    assert float(gan.g_optimizer.learning_rate) == pytest.approx(lr_g / 2)


def test_schedule_rejects_bad_steps_per_epoch(tiny_config):
    from stackgan.training import make_optimizers

    with pytest.raises(ValueError, match="steps_per_epoch"):
        make_optimizers(tiny_config.train, 0)


def test_adam_hyperparameters_follow_the_config(tiny_config):
    gan = _stage1(tiny_config)
    for opt in (gan.d_optimizer, gan.g_optimizer):
        assert opt.beta_1 == pytest.approx(0.5)
        assert float(opt.learning_rate) == pytest.approx(2e-4)


def test_noise_is_drawn_per_sample(tiny_config):
    gan = _stage1(tiny_config)
    embedding = np.repeat(np.random.default_rng(0).normal(size=(1, 1024)), 4, 0).astype("f4")
    image, mu, _ = (np.asarray(t) for t in gan.generate(embedding, training=False))
    np.testing.assert_allclose(mu, np.broadcast_to(mu[0], mu.shape), rtol=1e-6)
    assert min(np.abs(image[0] - image[i]).max() for i in range(1, 4)) > 1e-4
    # and a new draw at every call (the SeedGenerator advances)
    again = np.asarray(gan.generate(embedding, training=False)[0])
    assert np.abs(again - image).max() > 1e-4


def test_kl_divergence_per_sample():
    from stackgan.training import losses

    mu = np.array([[0.0, 0.0], [1.0, -1.0], [0.0, 0.0]], "float32")
    log_sigma = np.array([[0.0, 0.0], [0.0, 0.0], [np.log(2.0)] * 2], "float32")
    kl = np.asarray(losses.kl_divergence(mu, log_sigma))
    # KL(N(mu, s^2) || N(0, 1)) = -log s + (s^2 + mu^2 - 1) / 2, averaged over dimensions
    expected = [0.0, 0.5, -np.log(2.0) + (4.0 - 1.0) / 2]
    np.testing.assert_allclose(kl, expected, rtol=1e-6, atol=1e-7)


def test_losses_on_known_logits():
    from stackgan.training import losses

    logits = np.array([[0.0], [2.0], [-3.0]], "float32")
    np.testing.assert_allclose(
        losses.sigmoid_cross_entropy(logits, 1.0),
        [np.log(2.0), np.log1p(np.exp(-2.0)), np.log1p(np.exp(3.0))],
        rtol=1e-6,
    )
    np.testing.assert_allclose(losses.correct_fraction(logits, 1.0), [0, 1, 0])
    np.testing.assert_allclose(losses.correct_fraction(logits, 0.0), [1, 0, 1])
    assert float(losses.average(np.array([1.0, 3.0], "float32"))) == pytest.approx(2.0)
    # train.gan_loss: the paper's cross-entropy (G: non-saturating), or hinge (G: -logit)
    for label in (1.0, 0.0):
        np.testing.assert_array_equal(
            losses.d_term(logits, label, "cross_entropy"),
            losses.sigmoid_cross_entropy(logits, label),
        )
    np.testing.assert_allclose(losses.d_term(logits, 1.0, "hinge"), [1.0, 0.0, 4.0])
    np.testing.assert_allclose(losses.d_term(logits, 0.0, "hinge"), [1.0, 3.0, 0.0])
    np.testing.assert_allclose(losses.g_term(logits, "hinge"), [0.0, -2.0, 3.0])
    np.testing.assert_array_equal(
        losses.g_term(logits, "cross_entropy"), losses.sigmoid_cross_entropy(logits, 1.0)
    )


@pytest.mark.parametrize("mode", ["batch", "moving"])
def test_stage2_keeps_stage1_bit_identical(tiny_config, mode):
    cfg = tiny_config.replace(model={"frozen_stage1_batchnorm": mode})
    gan = _stage2(cfg)
    stage1 = gan.stage1_generator
    before = _snapshot(stage1)
    g_before, d_before = _snapshot(gan.generator), _snapshot(gan.discriminator)
    assert not stage1.trainable_weights
    gan.fit(_batches(64, 2, 4), epochs=1, verbose=0)
    after = _snapshot(stage1)
    assert before.keys() == after.keys()
    for path in before:  # weights AND BatchNorm moving statistics
        np.testing.assert_array_equal(before[path], after[path], err_msg=path)
    # while every trainable Stage-II weight, of both networks, moved (none is exempt: no bias
    # sits in front of a BatchNorm, and every layer feeds D's logit or G's image)
    _assert_every_trainable_weight_moved(gan.generator, g_before)
    _assert_every_trainable_weight_moved(gan.discriminator, d_before)


def test_frozen_stage1_batchnorm_modes(tiny_config):
    from stackgan import models

    m = tiny_config.model
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(8, d)).astype("float32") for d in (1024, m.z_dim, m.ca_dim)]
    outputs = {}
    for mode in ("batch", "moving"):
        cfg = tiny_config.replace(model={"frozen_stage1_batchnorm": mode})
        stage1 = models.build_stage1_generator(m, tiny_config.data.low_res)
        _stage2(cfg, stage1)
        outputs[mode] = (
            np.asarray(stage1(inputs, training=True)[0]),
            np.asarray(stage1(inputs, training=False)[0]),
        )
    batch_train, batch_infer = outputs["batch"]
    moving_train, moving_infer = outputs["moving"]
    # "moving": Stage-I runs as at inference while Stage-II trains
    np.testing.assert_allclose(moving_train, moving_infer, rtol=1e-6, atol=1e-6)
    # "batch": batch statistics, which differ from the (untrained) moving ones
    assert np.abs(batch_train - batch_infer).max() > 1e-3


def test_bad_frozen_batchnorm_mode_is_rejected(tiny_config):
    cfg = tiny_config.replace(model={"frozen_stage1_batchnorm": "none"})
    with pytest.raises(ValueError, match="frozen_stage1_batchnorm"):
        _stage2(cfg)


def test_stage2_with_unconditional_logit_trains(tiny_config):
    cfg = tiny_config.replace(model={"stage2_unconditional_logit": True})
    gan = _stage2(cfg)
    d_before = _snapshot(gan.discriminator)
    logs = gan.fit(_batches(64, 1, 4), epochs=1, verbose=0).history
    assert all(np.isfinite(v[0]) for v in logs.values())
    uncond = gan.discriminator.get_layer("uncond_logit_conv").kernel
    assert uncond.path in {w.path for w in gan.discriminator.trainable_weights}
    # the unconditional logit's loss reached its kernel: one Adam step moves every element
    # with a non-zero gradient by about the learning rate (2e-4)
    moved = np.abs(np.array(uncond) - d_before[uncond.path])
    assert moved.max() > 0.5 * cfg.train.learning_rate, moved.max()
    _assert_every_trainable_weight_moved(gan.discriminator, d_before)


def _stage1_in(cfg, policy: str):
    from stackgan import models, training

    g = models.build_stage1_generator(cfg.model, cfg.data.low_res, dtype_policy=policy)
    d = models.build_stage1_discriminator(cfg.model, cfg.data.low_res, dtype_policy=policy)
    gan = training.StageIGAN(g, d, cfg)
    gan.compile(*training.make_optimizers(cfg.train, 1))
    return gan


def test_float16_step_scales_the_loss(tiny_config):
    import keras

    gan = _stage1_in(tiny_config, "mixed_float16")
    assert isinstance(gan.d_optimizer, keras.optimizers.LossScaleOptimizer)
    assert isinstance(gan.g_optimizer, keras.optimizers.LossScaleOptimizer)
    g = gan.generator
    before = _snapshot(g)
    # Dynamic loss scaling starts at 2**15 and skips a step (halving the scale) whenever the
    # float16 gradients overflow, so the first few steps may apply nothing: give it 24 steps.
    logs = gan.fit(_batches(16, 24, 4), epochs=1, verbose=0).history
    assert all(np.isfinite(v[-1]) for v in logs.values())
    assert all(w.dtype == "float32" for w in g.weights)
    _assert_every_trainable_weight_moved(g, before)  # (measured: all of G and D, seeds 0-1)
    assert gan.g_optimizer.iterations.numpy() > 0  # some steps were applied, not all skipped


def test_bfloat16_step_computes_in_bf16_and_updates_float32_weights(tiny_config):
    import keras

    gan = _stage1_in(tiny_config, "mixed_bfloat16")
    g, d = gan.generator, gan.discriminator
    # bf16 has float32's exponent range: no loss scaling, no skipped steps
    assert not isinstance(gan.d_optimizer, keras.optimizers.LossScaleOptimizer)
    assert not isinstance(gan.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert g.get_layer("up8_conv").compute_dtype == "bfloat16"
    assert d.get_layer("down8_conv").compute_dtype == "bfloat16"
    before = {net.name: _snapshot(net) for net in (g, d)}
    logs = gan.fit(_batches(16, 2, 4), epochs=1, verbose=0).history
    assert all(np.isfinite(v[-1]) for v in logs.values())
    for net in (g, d):
        assert all(w.dtype == "float32" for w in net.weights)
        _assert_every_trainable_weight_moved(net, before[net.name])
    assert gan.g_optimizer.iterations.numpy() == 2
    # what the losses and the sample sheets see stays float32
    image, mu, log_sigma = gan.generate(np.zeros((2, 1024), "float32"), training=False)
    assert image.dtype == mu.dtype == log_sigma.dtype == "float32"


def _stage1_with_table_noise(cfg):
    """A StageIGAN whose z and eps come from a fixed table, row offset by the SeedGenerator's
    counter. TensorFlow's stateless RNG gives other numbers inside an XLA cluster than outside
    it (on CPU), so keras.random would feed an XLA and a plain step different noise."""
    import tensorflow as tf

    from stackgan import models, training

    class TableNoise(training.StageIGAN):
        def per_sample_normal(self, batch_size, dim):
            table = tf.constant(np.random.default_rng(dim).normal(size=(64, dim)), tf.float32)
            draw = tf.cast(self.seed_generator.next()[1], tf.int32)  # 0, 1, 2, ...
            return tf.gather(table, (tf.range(batch_size) + draw * batch_size) % 64)

    g = models.build_stage1_generator(cfg.model, cfg.data.low_res)
    d = models.build_stage1_discriminator(cfg.model, cfg.data.low_res)
    gan = TableNoise(g, d, cfg)
    gan.compile(*training.make_optimizers(cfg.train, 1))
    return gan


# lazy R1 (the demo's): its every-nth-step cond cannot be differentiated by XLA, so under
# train.xla the penalty is masked instead; two steps, one with the penalty and one without
@pytest.mark.slow  # XLA compiles both stages' steps: 38-49 s each on the 2-core AMD EPYC
@pytest.mark.parametrize(
    "train, steps", [({}, 1), ({"r1_gamma": 1.0, "r1_every": 2}, 2)], ids=["paper", "lazy_r1"]
)
def test_xla_step_matches_the_plain_step(tiny_config, train, steps):
    cfg = tiny_config.replace(train=train)
    plain = _stage1_with_table_noise(cfg)
    xla = _stage1_with_table_noise(cfg.replace(train={"xla": True}))
    assert xla.jit_compile and not plain.jit_compile
    for network in ("generator", "discriminator"):
        getattr(xla, network).set_weights(getattr(plain, network).get_weights())
    before = [w.copy() for net in (plain.generator, plain.discriminator) for w in net.get_weights()]
    data = _batches(16, steps, 4)
    want = plain.fit(data, epochs=1, verbose=0).history
    got = xla.fit(data, epochs=1, verbose=0).history
    for name in want:  # losses to float32 round-off; the accuracies exactly
        assert got[name][0] == pytest.approx(want[name][0], rel=1e-5, abs=1e-6), name
    # Weights (and BatchNorm statistics) agree to 1e-5 per step taken: 5% of the ~2e-4 (the
    # learning rate) that one Adam step moves a weight. Measured: under 2e-6 after one step;
    # after two (lazy R1), once 1.03e-5 in one of 432 elements (a clean-clone CI run), as the
    # second step's Adam normalisation magnifies the first step's round-off.
    tolerance = 1e-5 * steps
    paths = [w.path for net in (plain.generator, plain.discriminator) for w in net.weights]
    trainable = {
        w.path for net in (plain.generator, plain.discriminator) for w in net.trainable_weights
    }
    # The masked R1 runs D on the real images on every step, so D's BatchNorm moving averages
    # take an extra update on the steps without the penalty. D always runs in training mode
    # (batch statistics), so those averages change no loss, no gradient and no image.
    d_moving = {w.path for w in plain.discriminator.non_trainable_weights} if steps > 1 else set()
    for path, old, a, b in zip(
        paths,
        before,
        [w for net in (plain.generator, plain.discriminator) for w in net.get_weights()],
        [w for net in (xla.generator, xla.discriminator) for w in net.get_weights()],
        strict=True,
    ):
        if path in trainable:  # (a BatchNorm statistic may move less than 1e-4)
            assert np.abs(a - old).max() > 1e-4, f"{path} did not move: a comparison of nothing"
        if path not in d_moving:
            np.testing.assert_allclose(b, a, rtol=0, atol=tolerance, err_msg=path)


def test_training_draws_full_scale_noise_whatever_the_sampling_truncation(tiny_config):
    """`model.truncation` scales the noise of the served model, the Evaluator and the sample
    sheets only: two GANs that differ in it alone train to the same weights."""
    import keras

    gans = []
    for truncation in (1.0, 0.25):
        keras.utils.set_random_seed(0)
        gans.append(_stage1(tiny_config.replace(model={"truncation": truncation})))
    full, truncated = gans
    before = full.generator.get_weights()
    for network in ("generator", "discriminator"):
        getattr(truncated, network).set_weights(getattr(full, network).get_weights())
    data = _batches(16, 2, 4)
    want = full.fit(data, epochs=1, verbose=0).history
    got = truncated.fit(data, epochs=1, verbose=0).history
    assert got == want
    moved = [np.abs(a - b).max() for a, b in zip(full.generator.get_weights(), before, strict=True)]
    assert max(moved) > 1e-4
    for network in ("generator", "discriminator"):
        for a, b in zip(getattr(full, network).get_weights(),
                        getattr(truncated, network).get_weights(), strict=True):  # fmt: skip
            np.testing.assert_array_equal(a, b)


def test_paper_config_defaults_are_the_tf_ones():
    cfg = config_lib.paper()
    assert cfg.train.kl_weight == 2.0
    assert cfg.model.ca_activation == "leaky_relu"
    assert cfg.model.stage1_residual_bottlenecks
    assert not cfg.model.stage2_unconditional_logit
    assert cfg.model.frozen_stage1_batchnorm == "batch"
    assert not cfg.train.xla


def test_paper_profile_has_the_papers_setting_and_every_later_work_option_off():
    """What the README's faithfulness table gives as the paper's column: sizes, schedule and
    augmentation as in the paper's TF code, and none of the later-work options on."""
    cfg = config_lib.paper()
    model, train, data = cfg.model, cfg.train, cfg.data
    assert (model.ca_dim, model.z_dim, model.gf_dim, model.df_dim) == (128, 100, 128, 64)
    assert (data.low_res, data.high_res, data.low_res_stored, data.high_res_stored) == (
        64, 256, 76, 304,
    )  # fmt: skip
    assert (train.batch_size, train.stage1_epochs, train.stage2_epochs) == (64, 600, 600)
    assert (train.learning_rate, train.beta_1) == (2e-4, 0.5)
    assert (train.lr_decay_epochs, train.lr_decay_factor) == (50, 0.5)
    assert (train.max_steps, train.stage2_max_steps, train.stage2_batch_size) == (0, 0, 0)
    assert data.train_flip and data.embeddings_per_sample == 4
    # later work, off: each is the paper's choice
    assert (model.d_conditioning, model.stage2_output) == ("concat", "image")
    assert (model.generator_padding, model.generator_upsampling) == ("zeros", "nearest")
    assert model.generator_text_fusion == "input" and model.truncation == 1.0
    assert (train.d_learning_rate, train.stage2_learning_rate) == (0.0, 0.0)  # G's rate
    assert (train.gan_loss, train.d_augment) == ("cross_entropy", "none")
    assert train.r1_gamma == train.generator_ema == 0.0
    assert train.stage2_consistency_weight == train.stage2_reconstruction_weight == 0.0


def test_r1_penalty_is_half_gamma_times_the_squared_gradient_on_real_images(tiny_config):
    import tensorflow as tf

    cfg = tiny_config.replace(train={"r1_gamma": 3.0})
    gan = _stage1(cfg)
    batch = next(iter(_batches(16, 1, 4)))
    image = tf.constant(batch["image"])
    logits, _, penalty = gan.d_logits_with_r1(image, batch["embedding"])
    with tf.GradientTape() as tape:
        tape.watch(image)
        total = tf.reduce_sum(gan.discriminator([image, batch["embedding"]], training=True))
    squared = np.sum(np.square(tape.gradient(total, image)), axis=(1, 2, 3))
    np.testing.assert_allclose(np.asarray(penalty), 1.5 * squared, rtol=1e-4)
    assert penalty.shape == (4,) and float(np.min(penalty)) > 0.0
    # off by default: no penalty, and D's loss is the paper's
    off = _stage1(tiny_config)
    assert not np.any(np.asarray(off.d_logits_with_r1(image, batch["embedding"])[2]))


def test_stage2_consistency_penalty_is_zero_for_an_exact_refinement(tiny_config):
    from stackgan.training import losses

    rng = np.random.default_rng(0)
    low = rng.uniform(-1, 1, (2, 4, 4, 3)).astype("float32")
    exact = low.repeat(4, axis=1).repeat(4, axis=2)  # its 4x4 box-means are `low`
    np.testing.assert_allclose(losses.downscaled_l1(exact, low), 0.0, atol=1e-6)
    np.testing.assert_allclose(losses.color_moments(exact, low), 0.0, atol=1e-6)
    shifted = exact + 0.5  # every pixel 0.5 brighter: L1 0.5, squared mean distance 3 * 0.25
    np.testing.assert_allclose(losses.downscaled_l1(shifted, low), 0.5, rtol=1e-5)
    np.testing.assert_allclose(losses.color_moments(shifted, low), 0.75, rtol=1e-5)


def test_gaussian_blur_matches_the_2d_gaussian_and_keeps_flat_images_flat():
    from stackgan.training import losses

    impulse = np.zeros((1, 15, 15, 3), np.float32)
    impulse[0, 7, 7] = [1.0, 2.0, -1.0]
    blurred = np.asarray(losses.gaussian_blur(impulse, 1.5))
    offsets = np.arange(-7, 8)
    weights = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * 1.5**2))
    weights[np.maximum(abs(offsets[:, None]), abs(offsets[None, :])) > 5] = 0  # radius 5
    np.testing.assert_allclose(blurred[0, ..., 0], weights / weights.sum(), atol=1e-6)
    np.testing.assert_allclose(blurred[0, ..., 1], 2 * blurred[0, ..., 0], atol=1e-6)
    # a flat image stays flat up to the border (mirrored edges); sigma 0 is the identity
    flat = np.full((2, 9, 9, 3), 0.3, np.float32)
    np.testing.assert_allclose(losses.gaussian_blur(flat, 2.0), flat, atol=1e-6)
    rng = np.random.default_rng(0)
    noisy = rng.uniform(-1, 1, (2, 9, 9, 3)).astype(np.float32)
    np.testing.assert_array_equal(losses.gaussian_blur(noisy, 0.0), noisy)
    assert np.std(losses.gaussian_blur(noisy, 1.0)) < 0.5 * np.std(noisy)


def _nearest_stage2(cfg):
    """A Stage-II GAN whose generator upsamples its Stage-I input by nearest neighbour."""
    import keras
    from keras import layers

    from stackgan import models, training

    low, high = cfg.data.low_res, cfg.data.high_res
    image = keras.Input((low, low, 3))
    embedding = keras.Input((cfg.model.embedding_dim,))
    ca_noise = keras.Input((cfg.model.ca_dim,))
    upsample = layers.UpSampling2D(high // low, interpolation="nearest")(image)
    nearest = keras.Model([image, embedding, ca_noise], [upsample, ca_noise, ca_noise])
    return training.StageIIGAN(
        models.build_stage1_generator(cfg.model, low),
        nearest,
        models.build_stage2_discriminator(cfg.model, high),
        cfg,
    )


def test_stage2_consistency_blur_lets_stage2_sharpen_what_stage1_blurred(tiny_config):
    """`train.stage2_consistency_blur`: a Stage-II image with a sharp edge where Stage-I's
    image has it blurred is over 2x closer to it when both are blurred by 2 px first, wherever the
    edge falls; a Stage-II image with other colours stays as far."""
    from stackgan.training import losses

    cfg = tiny_config.replace(
        train={"stage2_consistency": "downscaled_l1", "stage2_consistency_weight": 1.0}
    )
    low, high = cfg.data.low_res, cfg.data.high_res
    plain = _nearest_stage2(cfg)
    blurred = _nearest_stage2(cfg.replace(train={"stage2_consistency_blur": 2.0}))
    for edge in range(high // 2 - 2, high // 2 + 3):  # across one Stage-I pixel
        sharp = np.where(np.arange(high) < edge, -1.0, 1.0).astype(np.float32)
        sharp = np.broadcast_to(sharp[None, None, :, None], (1, high, high, 3)).copy()
        stage1 = np.asarray(losses.gaussian_blur(losses.box_downscale(sharp, low), 1.0))
        strict = float(plain.consistency_error(sharp, stage1)[0])
        lenient = float(blurred.consistency_error(sharp, stage1)[0])
        assert strict > 0.03 and lenient < strict / 2, (edge, strict, lenient)
        inverted = float(blurred.consistency_error(-sharp, stage1)[0])
        assert inverted > 0.5  # the colours swapped: no blur hides that


def test_stage2_reconstruction_blur_makes_g_sharpen_a_blurred_real_image(tiny_config):
    """With `train.stage2_reconstruction_blur`, G is given the blurred downscale: a G that only
    upsamples then misses by the blur, and scores as without blur when sigma is 0."""
    cfg = tiny_config
    high = cfg.data.high_res
    rng = np.random.default_rng(0)
    # 4x4 blocks (rebuilt exactly from the plain box-downscale), with sharp edges between them
    blocks = rng.uniform(-1, 1, (2, cfg.data.low_res, cfg.data.low_res, 3)).astype("float32")
    coarse = blocks.repeat(high // cfg.data.low_res, 1).repeat(high // cfg.data.low_res, 2)
    text = rng.normal(size=(2, cfg.model.embedding_dim)).astype("float32")
    eps = rng.normal(size=(2, cfg.model.ca_dim)).astype("float32")
    plain = _nearest_stage2(cfg).reconstruction_error(coarse, text, eps, True)
    blurred = _nearest_stage2(cfg.replace(train={"stage2_reconstruction_blur": 1.0}))
    np.testing.assert_allclose(plain, 0.0, atol=1e-6)
    assert float(np.min(blurred.reconstruction_error(coarse, text, eps, True))) > 0.1


def test_lazy_r1_applies_every_nth_d_step_with_n_times_the_weight(tiny_config):
    cfg = tiny_config.replace(train={"r1_gamma": 3.0, "r1_every": 4})
    gan = _stage1(cfg)
    batch = next(iter(_batches(16, 1, 4)))
    every_step = _stage1(tiny_config.replace(train={"r1_gamma": 3.0}))
    every_step.discriminator.set_weights(gan.discriminator.get_weights())
    full = np.asarray(every_step.d_logits_with_r1(batch["image"], batch["embedding"])[2])
    due = np.asarray(gan.d_logits_with_r1(batch["image"], batch["embedding"])[2])  # step 0
    np.testing.assert_allclose(due, 4.0 * full, rtol=1e-4)
    gan.d_optimizer.iterations.assign(1)
    assert not np.any(np.asarray(gan.d_logits_with_r1(batch["image"], batch["embedding"])[2]))


def test_stage2_reconstruction_error_is_l1_of_g_on_the_box_downscaled_real_image(tiny_config):
    """`train.stage2_reconstruction_weight`'s term: G refines the real image's box-downscale and
    is scored by mean |G(...) - real|. With a G that upsamples by nearest neighbour, an image
    that is constant on each 4x4 block is rebuilt exactly; a finer one loses its detail."""
    cfg = tiny_config
    low, high = cfg.data.low_res, cfg.data.high_res
    gan = _nearest_stage2(cfg)
    rng = np.random.default_rng(0)
    blocks = rng.uniform(-1, 1, (2, low, low, 3)).astype("float32")
    coarse = blocks.repeat(high // low, axis=1).repeat(high // low, axis=2)
    text = rng.normal(size=(2, cfg.model.embedding_dim)).astype("float32")
    eps = rng.normal(size=(2, cfg.model.ca_dim)).astype("float32")
    np.testing.assert_allclose(gan.reconstruction_error(coarse, text, eps, True), 0.0, atol=1e-6)
    fine = coarse.copy()
    fine[:, ::2] += 0.2  # every other row brighter: each block's mean +0.1, each pixel off by 0.1
    np.testing.assert_allclose(gan.reconstruction_error(fine, text, eps, True), 0.1, rtol=1e-4)
