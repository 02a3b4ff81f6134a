"""The four networks: per-block shapes, paper parameter counts, CA, variants, serialisation."""

from __future__ import annotations

import numpy as np
import pytest

from stackgan import config as config_lib


@pytest.fixture(scope="module")
def models():
    from stackgan import models

    return models


def _shape(model, layer):
    return tuple(model.get_layer(layer).output.shape[1:])


# --- parameter counts of the paper profile, from the architecture by hand ------------------------
def _conv(k, cin, cout, bias=False):
    return k * k * cin * cout + (cout if bias else 0)


def _bn(c):
    """(trainable gamma+beta, non-trainable moving mean+variance)."""
    return 2 * c, 2 * c


def _count(convs, bns):
    trainable = sum(convs) + sum(_bn(c)[0] for c in bns)
    return trainable, sum(_bn(c)[1] for c in bns)


CA = _conv(1, 1024, 2 * 128, bias=True)  # fc 1024 -> mu, log_sigma (Ng = 128)
TEXT_HEAD = (
    [_conv(1, 1024, 128, bias=True), _conv(1, 512 + 128, 512), _conv(4, 512, 1, bias=True)],
    [512],
)  # D's text compressor (Nd = 128), 1x1 joint conv, 4x4 logit conv

PAPER_COUNTS = {
    "stage1_generator": _count(
        [
            CA,
            (128 + 100) * 4 * 4 * 1024,  # fc(c, z) -> 4x4x1024, no bias (BN follows)
            # TF residual bottleneck at 4x4: 1x1 1024->256, 3x3 256->256, 3x3 256->1024
            _conv(1, 1024, 256),
            _conv(3, 256, 256),
            _conv(3, 256, 1024),
            _conv(3, 1024, 512),  # up-block to 8x8
            _conv(1, 512, 128),
            _conv(3, 128, 128),
            _conv(3, 128, 512),  # bottleneck at 8x8
            _conv(3, 512, 256),
            _conv(3, 256, 128),  # up-blocks to 16x16, 32x32
            _conv(3, 128, 3, bias=True),  # 64x64 RGB
        ],
        [4 * 4 * 1024, 256, 256, 1024, 512, 128, 128, 512, 256, 128],
    ),
    "stage1_discriminator": _count(
        [_conv(4, 3, 64, bias=True), _conv(4, 64, 128), _conv(4, 128, 256), _conv(4, 256, 512)]
        + TEXT_HEAD[0],
        [128, 256, 512] + TEXT_HEAD[1],
    ),
    "stage2_generator": _count(
        [
            CA,
            _conv(3, 3, 128, bias=True),
            _conv(4, 128, 256),
            _conv(4, 256, 512),  # encoder
            _conv(3, 512 + 128, 512),  # joint code at 16x16
            *[_conv(3, 512, 512)] * 8,  # 4 residual blocks of two 3x3 convs
            _conv(3, 512, 256),
            _conv(3, 256, 128),
            _conv(3, 128, 64),
            _conv(3, 64, 32),
            _conv(3, 32, 3, bias=True),
        ],
        [256, 512, 512, *[512] * 8, 256, 128, 64, 32],
    ),
    "stage2_discriminator": _count(
        [
            _conv(4, 3, 64, bias=True),
            _conv(4, 64, 128),
            _conv(4, 128, 256),
            _conv(4, 256, 512),
            _conv(4, 512, 1024),
            _conv(4, 1024, 2048),
            _conv(1, 2048, 1024),
            _conv(1, 1024, 512),
        ]
        + TEXT_HEAD[0],
        [128, 256, 512, 1024, 2048, 1024, 512] + TEXT_HEAD[1],
    ),
}


@pytest.fixture(scope="module")
def paper_models(models):
    cfg = config_lib.paper()
    return {
        "stage1_generator": models.build_stage1_generator(cfg.model, cfg.data.low_res),
        "stage1_discriminator": models.build_stage1_discriminator(cfg.model, cfg.data.low_res),
        "stage2_generator": models.build_stage2_generator(cfg.model, cfg.data.low_res),
        "stage2_discriminator": models.build_stage2_discriminator(cfg.model, cfg.data.high_res),
    }


@pytest.mark.parametrize("name", sorted(PAPER_COUNTS))
def test_paper_parameter_counts(paper_models, name):
    import keras

    model = paper_models[name]
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert (trainable, frozen) == PAPER_COUNTS[name]
    assert isinstance(model, keras.Model)


def test_paper_stage1_generator_blocks(paper_models):
    g = paper_models["stage1_generator"]
    assert [tuple(i.shape[1:]) for i in g.inputs] == [(1024,), (100,), (128,)]
    assert _shape(g, "fc_reshape") == (4, 4, 1024)
    assert _shape(g, "res4_relu") == (4, 4, 1024)
    assert _shape(g, "up8_bn") == (8, 8, 512)
    assert _shape(g, "res8_relu") == (8, 8, 512)
    assert _shape(g, "up16_relu") == (16, 16, 256)
    assert _shape(g, "up32_relu") == (32, 32, 128)
    assert [tuple(o.shape[1:]) for o in g.outputs] == [(64, 64, 3), (128,), (128,)]


def test_paper_stage1_discriminator_blocks(paper_models):
    d = paper_models["stage1_discriminator"]
    expected = {
        "down32": (32, 32, 64),
        "down16": (16, 16, 128),
        "down8": (8, 8, 256),
        "down4": (4, 4, 512),
    }
    for block, shape in expected.items():
        assert _shape(d, f"{block}_lrelu") == shape
    assert _shape(d, "text_compress_tile") == (4, 4, 128)
    assert _shape(d, "joint_concat") == (4, 4, 640)
    assert tuple(d.output.shape[1:]) == (1,)


def test_paper_stage2_generator_blocks(paper_models):
    g = paper_models["stage2_generator"]
    assert [tuple(i.shape[1:]) for i in g.inputs] == [(64, 64, 3), (1024,), (128,)]
    assert _shape(g, "enc_relu3") == (16, 16, 512)
    assert _shape(g, "joint_concat") == (16, 16, 640)
    assert _shape(g, "res4_relu") == (16, 16, 512)
    for size, channels in ((32, 256), (64, 128), (128, 64), (256, 32)):
        assert _shape(g, f"up{size}_relu") == (size, size, channels)
    assert [tuple(o.shape[1:]) for o in g.outputs] == [(256, 256, 3), (128,), (128,)]


def test_paper_stage2_discriminator_blocks(paper_models):
    d = paper_models["stage2_discriminator"]
    for i, size in enumerate((128, 64, 32, 16, 8, 4)):
        assert _shape(d, f"down{size}_lrelu") == (size, size, 64 * 2**i)
    assert _shape(d, "squeeze1_lrelu") == (4, 4, 1024)
    assert _shape(d, "squeeze2_lrelu") == (4, 4, 512)
    assert tuple(d.output.shape[1:]) == (1,)


def test_tiny_profile_sizes_derive_from_image_size(models, tiny_config):
    m, low, high = tiny_config.model, tiny_config.data.low_res, tiny_config.data.high_res
    g1 = models.build_stage1_generator(m, low)
    assert _shape(g1, "fc_reshape") == (4, 4, 8 * m.gf_dim)
    assert _shape(g1, "res8_relu") == (8, 8, 4 * m.gf_dim)
    assert tuple(g1.outputs[0].shape[1:]) == (16, 16, 3)
    d1 = models.build_stage1_discriminator(m, low)
    assert _shape(d1, "down4_lrelu") == (4, 4, 2 * m.df_dim)
    g2 = models.build_stage2_generator(m, low)
    assert _shape(g2, "enc_relu3") == (4, 4, 4 * m.stage2_gf_dim)
    assert tuple(g2.outputs[0].shape[1:]) == (64, 64, 3)
    d2 = models.build_stage2_discriminator(m, high)
    assert _shape(d2, "down4_lrelu") == (4, 4, 8 * m.stage2_df_dim)


def test_image_size_must_be_four_times_a_power_of_two(models, tiny_config):
    with pytest.raises(ValueError, match=r"data.low_res"):
        models.build_stage1_generator(tiny_config.model, 48)
    with pytest.raises(ValueError, match=r"data.high_res"):
        models.build_stage2_discriminator(tiny_config.model, 100)


def _tiny_inputs(m, batch=4, seed=0):
    rng = np.random.default_rng(seed)
    return (
        rng.normal(size=(batch, m.embedding_dim)).astype("float32"),
        rng.normal(size=(batch, m.z_dim)).astype("float32"),
        rng.normal(size=(batch, m.ca_dim)).astype("float32"),
    )


def test_conditioning_augmentation_samples_per_sample(models, tiny_config):
    m = tiny_config.model
    g = models.build_stage1_generator(m, tiny_config.data.low_res)
    emb, z, eps = _tiny_inputs(m)
    emb[:] = emb[0]  # one caption for the whole batch
    image, mu, log_sigma = (np.asarray(t) for t in g([emb, z, eps], training=False))
    # same text -> same mu and sigma; per-sample eps -> different images
    np.testing.assert_allclose(mu, np.broadcast_to(mu[0], mu.shape), rtol=1e-6)
    assert min(np.abs(image[0] - image[i]).max() for i in range(1, 4)) > 1e-4
    assert image.min() >= -1.0 and image.max() <= 1.0
    # c = mu + exp(log_sigma) * eps, computed from the CA layer's own fc
    ca = g.get_layer("ca")
    c, mu2, ls2 = (np.asarray(t) for t in ca([emb, eps]))
    np.testing.assert_allclose(c, mu2 + np.exp(ls2) * eps, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mu2, mu, rtol=1e-6)


def test_ca_activation_relu_makes_sigma_at_least_one(models, tiny_config):
    m = tiny_config.replace(model={"ca_activation": "relu"}).model
    g = models.build_stage1_generator(m, tiny_config.data.low_res)
    _, _, log_sigma = g(list(_tiny_inputs(m)), training=False)
    assert float(np.min(log_sigma)) >= 0.0
    m_tf = tiny_config.model
    g_tf = models.build_stage1_generator(m_tf, tiny_config.data.low_res)
    _, _, log_sigma_tf = g_tf(list(_tiny_inputs(m_tf, batch=16)), training=False)
    assert float(np.min(log_sigma_tf)) < 0.0  # LeakyReLU lets sigma go below 1


def test_pt_variants(models, tiny_config):
    pt = tiny_config.replace(
        model={"stage1_residual_bottlenecks": False, "stage2_unconditional_logit": True}
    ).model
    g = models.build_stage1_generator(pt, tiny_config.data.low_res)
    assert not [layer.name for layer in g.layers if layer.name.startswith("res")]
    d = models.build_stage2_discriminator(pt, tiny_config.data.high_res)
    assert [tuple(o.shape[1:]) for o in d.outputs] == [(1,), (1,)]
    images = np.zeros((2, 64, 64, 3), "float32")
    logit, uncond = d([images, np.zeros((2, pt.embedding_dim), "float32")], training=False)
    assert logit.shape == (2, 1) and uncond.shape == (2, 1)


def test_discriminator_text_compressor_is_trainable(models, tiny_config):
    d = models.build_stage1_discriminator(tiny_config.model, tiny_config.data.low_res)
    names = [w.path for w in d.trainable_weights]
    assert any(n.startswith("text_compress_fc/") for n in names), names


@pytest.mark.parametrize("stage", [1, 2])
def test_projection_discriminator_adds_the_text_image_inner_product(models, tiny_config, stage):
    """`model.d_conditioning=projection`: logit = psi(image code) + <V text, sum of the code over
    positions>; the same image scores differently under two captions only through that term."""
    import keras

    cfg = tiny_config.replace(model={"d_conditioning": "projection"})
    m, size = cfg.model, (cfg.data.low_res if stage == 1 else cfg.data.high_res)
    build = models.build_stage1_discriminator if stage == 1 else models.build_stage2_discriminator
    d = build(m, size)
    assert not [layer.name for layer in d.layers if layer.name.startswith("joint")]
    rng = np.random.default_rng(0)
    # training=True: batch statistics, so the code keeps its scale through Stage-II D's many
    # freshly initialised blocks
    images = rng.uniform(-1, 1, (3, size, size, 3)).astype("float32")
    texts = rng.normal(size=(3, m.embedding_dim)).astype("float32")
    parts = keras.Model(
        d.inputs,
        [
            d.get_layer("proj_pool").input,
            d.get_layer("text_compress_lrelu").output,
            d.get_layer("logit").output,
        ],
    )
    code, text, psi = (np.asarray(x, "float64") for x in parts([images, texts], training=True))
    v = np.asarray(d.get_layer("proj_text").kernel, "float64")
    want = psi[:, 0] + np.einsum("bc,bc->b", text @ v, code.sum(axis=(1, 2)))
    got = np.asarray(d([images, texts], training=True))[:, 0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # the text term is not negligible: the same images under other captions score otherwise
    other = np.asarray(d([images, texts[::-1]], training=True))[:, 0]
    assert np.abs(other - got)[[0, 2]].min() > 1e-3, (got, other)


def test_freezable_batch_norm_modes(models):
    import keras

    bn = models.FreezableBatchNorm()
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(64, 5)).astype("float32")
    bn.build(x.shape)
    moving_before = [np.array(bn.moving_mean), np.array(bn.moving_variance)]
    bn.trainable = False
    # frozen, default: Keras' inference mode (moving mean 0, variance 1: x / sqrt(1 + eps))
    inference = x / np.sqrt(1.0 + bn.epsilon)
    np.testing.assert_allclose(bn(x, training=True), inference, rtol=1e-5, atol=1e-5)
    # frozen with batch statistics: normalised by the batch, moving averages untouched
    bn.batch_statistics_when_frozen = True
    y = np.asarray(bn(x, training=True))
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(y.std(axis=0), 1.0, atol=1e-3)
    for before, after in zip(moving_before, (bn.moving_mean, bn.moving_variance)):
        np.testing.assert_array_equal(before, np.array(after))
    # training=False is inference whatever the switch says
    np.testing.assert_allclose(bn(x, training=False), inference, rtol=1e-5, atol=1e-5)
    assert isinstance(bn, keras.layers.BatchNormalization)


@pytest.mark.parametrize(
    "dtype, tolerance, padding",
    [("float32", 1e-5, "zeros"), ("mixed_bfloat16", 2e-2, "zeros"), ("float32", 1e-5, "replicate")],
)
def test_nearest_up_conv_is_upsampling_then_conv_with_the_same_kernel(dtype, tolerance, padding):
    """NearestUpConv2D must compute what the paper's two layers compute in float32, in the
    output and in both gradients, at every border: a wrong tap or padding gives an error of
    the order of the values themselves. (bf16 rounds its inputs and products to 8 bits.) With
    replicate padding the two layers are the upsampling, the border copied, a valid conv."""
    import keras
    import tensorflow as tf

    from stackgan.models.nearest_up_conv import NearestUpConv2D

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(3, 5, 7, 4)), tf.float32)  # odd, non-square: every edge
    phased = NearestUpConv2D(6, use_bias=True, padding=padding, dtype=dtype)
    phased.build(x.shape)
    phased.kernel.assign(rng.normal(size=(3, 3, 4, 6)))
    phased.bias.assign(rng.normal(size=6))
    upsample = keras.layers.UpSampling2D(2, interpolation="nearest")
    if padding == "replicate":  # the upsampled map's border rows, then columns, copied

        def upsample(t):
            t = keras.layers.UpSampling2D(2, interpolation="nearest")(t)
            t = tf.concat([t[:, :1], t, t[:, -1:]], axis=1)
            return tf.concat([t[:, :, :1], t, t[:, :, -1:]], axis=2)

    conv = keras.layers.Conv2D(6, 3, padding="same" if padding == "zeros" else "valid")
    conv.build((3, 10, 14, 4))
    conv.kernel.assign(phased.kernel)
    conv.bias.assign(phased.bias)

    upstream = tf.constant(rng.normal(size=(3, 10, 14, 6)), tf.float32)  # differs per pixel

    def run(layer_fn, kernel):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.cast(layer_fn(x), tf.float32)
            loss = tf.reduce_sum(y * upstream)
        return [y, *tape.gradient(loss, [x, kernel])]

    ours = run(phased, phased.kernel)
    paper = run(lambda t: conv(upsample(t)), conv.kernel)
    assert ours[0].shape == (3, 10, 14, 6)
    for name, a, b in zip(("output", "input gradient", "kernel gradient"), ours, paper):
        error = float(np.abs(np.asarray(a, np.float32) - b).max()) / float(np.abs(b).max())
        assert error < tolerance, (name, error)
    # the same parameters a Conv2D has, under the same names
    assert [w.path.split("/")[-1] for w in phased.weights] == ["kernel", "bias"]
    restored = NearestUpConv2D.from_config(phased.get_config())
    assert (restored.filters, restored.use_bias, restored.padding) == (6, True, padding)


@pytest.mark.parametrize("dtype, tolerance", [("float32", 1e-6), ("mixed_bfloat16", 1e-2)])
def test_pointwise_conv_is_the_1x1_conv_it_replaces(dtype, tolerance):
    """PointwiseConv2D must compute what Conv2D(f, 1) computes with the same weights and dtype
    policy, in the output and in both gradients (a transposed or scaled kernel gives errors of
    the order of the values; bf16 results differ by a rounding or two, 0.4 % each); it takes a
    Conv2D's config and weights, and refuses any other kernel."""
    import keras
    import tensorflow as tf

    from stackgan.models.pointwise_conv import PointwiseConv2D

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(3, 5, 7, 4)), tf.float32)
    conv = keras.layers.Conv2D(6, 1, use_bias=True, dtype=dtype)
    conv.build(x.shape)
    conv.kernel.assign(rng.normal(size=(1, 1, 4, 6)))
    conv.bias.assign(rng.normal(size=6))
    ours = PointwiseConv2D.from_config(conv.get_config())
    ours.build(x.shape)
    ours.set_weights(conv.get_weights())
    upstream = tf.constant(rng.normal(size=(3, 5, 7, 6)), tf.float32)  # differs per pixel

    def run(layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.cast(layer(x), tf.float32)
            loss = tf.reduce_sum(y * upstream)
        return [y, *tape.gradient(loss, [x, layer.kernel, layer.bias])]

    for name, a, b in zip(("output", "input", "kernel", "bias"), run(ours), run(conv)):
        error = float(np.abs(np.asarray(a, np.float32) - b).max()) / float(np.abs(b).max())
        assert error < tolerance, (name, error)
    assert [w.path.split("/")[-1] for w in ours.weights] == ["kernel", "bias"]
    with pytest.raises(ValueError, match="1x1, stride-1"):
        PointwiseConv2D(6, 3, name="wide")(x)
    with pytest.raises(ValueError, match="strides"):
        PointwiseConv2D(6, 1, strides=2, name="strided")(x)


def _both_generators(models, m, low):
    """(builder, tiny inputs) of Stage-I's and Stage-II's generator."""
    embedding, noise, ca_noise = _tiny_inputs(m)
    stage1_image = np.random.default_rng(1).uniform(-1, 1, (4, low, low, 3)).astype("float32")
    return (
        (models.build_stage1_generator, [embedding, noise, ca_noise]),
        (models.build_stage2_generator, [stage1_image, embedding, ca_noise]),
    )


@pytest.mark.parametrize("padding", ["zeros", "replicate"])
def test_both_ways_of_upsampling_build_the_same_generators(models, tiny_config, padding):
    """`model.upsample_conv_max_filters` changes how the generators compute, not what: with the
    same weights (same names, same order) both builds give the same images, with either
    padding."""
    import dataclasses

    from stackgan.models.nearest_up_conv import NearestUpConv2D

    m = dataclasses.replace(tiny_config.model, generator_padding=padding)
    low = tiny_config.data.low_res
    two_layers = dataclasses.replace(m, upsample_conv_max_filters=0)
    for build, inputs in _both_generators(models, m, low):
        ours, theirs = build(m, low), build(two_layers, low)
        assert any(isinstance(layer, NearestUpConv2D) for layer in ours.layers)
        assert not any(isinstance(layer, NearestUpConv2D) for layer in theirs.layers)
        assert [w.path for w in ours.weights] == [w.path for w in theirs.weights]
        theirs.set_weights(ours.get_weights())
        # training mode: batch statistics scale the features to ~1, where the N(0, 0.02)
        # weights would otherwise leave images of ~1e-7 that any two networks match
        image = np.asarray(ours(inputs, training=True)[0])
        assert image.std() > 0.01, image.std()
        np.testing.assert_allclose(image, theirs(inputs, training=True)[0], atol=1e-5)


@pytest.mark.parametrize("padding", ["zeros", "replicate"])
def test_stage1_generator_pads_its_border_like_its_interior_with_replicate_padding(
    models, tiny_config, padding
):
    """With `model.generator_padding=replicate` a Stage-I G whose 4x4 seed map is the same at
    every position draws an image that is the same at every pixel: the border is computed as
    the interior is, so no frame. Zero padding darkens the border's inputs and draws one."""
    import dataclasses

    m = dataclasses.replace(tiny_config.model, generator_padding=padding)
    g = models.build_stage1_generator(m, tiny_config.data.low_res)
    fc = g.get_layer("fc")
    kernel = np.asarray(fc.kernel).reshape(fc.kernel.shape[0], 16, -1)
    fc.kernel.assign(np.repeat(kernel[:, :1], 16, axis=1).reshape(fc.kernel.shape))
    bn = g.get_layer("fc_bn")  # per-unit affine: the same at every position too
    bn.gamma.assign(np.ones(bn.gamma.shape))
    bn.beta.assign(np.zeros(bn.beta.shape))
    image = np.asarray(g(list(_tiny_inputs(m)), training=True)[0])
    spread = image.max(axis=(1, 2)) - image.min(axis=(1, 2))  # per image and channel
    scale = np.abs(image).mean()
    assert scale > 1e-3, scale  # an image, not zeros that any padding matches
    if padding == "replicate":
        assert spread.max() < 1e-4 * max(1.0, scale), spread.max()
    else:
        assert spread.max() > 0.1 * scale, (spread.max(), scale)


def test_bilinear_upsampling_changes_how_the_generators_enlarge_not_their_weights(
    models, tiny_config
):
    """`model.generator_upsampling=bilinear`: every x2 step of both generators upsamples
    bilinearly (as two layers: NearestUpConv2D computes nearest only), with the same weights
    under the same names as the nearest build, and so draws another image from them."""
    import dataclasses

    import keras

    from stackgan.models.nearest_up_conv import NearestUpConv2D

    m, low = tiny_config.model, tiny_config.data.low_res
    bilinear = dataclasses.replace(m, generator_upsampling="bilinear")
    for build, inputs in _both_generators(models, m, low):
        nearest, smooth = build(m, low), build(bilinear, low)
        assert not any(isinstance(layer, NearestUpConv2D) for layer in smooth.layers)
        upsampling = [
            layer.interpolation
            for layer in smooth.layers
            if isinstance(layer, keras.layers.UpSampling2D)
            and layer.name.endswith("_upsample")
            and layer.name not in ("stage1_upsample", "lowres_upsample")
        ]
        assert upsampling and set(upsampling) == {"bilinear"}, upsampling
        assert [w.path for w in nearest.weights] == [w.path for w in smooth.weights]
        smooth.set_weights(nearest.get_weights())
        a = np.asarray(nearest(inputs, training=True)[0])
        b = np.asarray(smooth(inputs, training=True)[0])
        assert np.abs(a - b).mean() > 0.01 * np.abs(a).mean(), build.__name__


def test_affine_text_fusion_starts_as_the_papers_generator_and_reads_the_text_per_block(
    models, tiny_config
):
    """`model.generator_text_fusion=affine`: every Stage-I up-block scales and shifts its
    normalised features by linear maps of the condition, zero at the start, so a fresh
    generator with the paper's weights draws the paper's image; once those maps are not zero,
    each block's features follow the caption: two embeddings, with the noise and the input
    path held the same, draw images that differ by more than they do without the fusion."""
    import dataclasses

    m, low = tiny_config.model, tiny_config.data.low_res
    fused_cfg = dataclasses.replace(m, generator_text_fusion="affine")
    paper, fused = (
        models.build_stage1_generator(m, low),
        models.build_stage1_generator(fused_cfg, low),
    )
    blocks = sorted({layer.name.removesuffix("_text") for layer in fused.layers
                     if layer.name.endswith("_text")})  # fmt: skip
    assert blocks == [f"up{2**i}" for i in range(3, int(np.log2(low)))]  # every up-block
    by_path = {w.path: w for w in fused.weights}
    for w in paper.weights:
        by_path[w.path].assign(w)
    inputs = list(_tiny_inputs(m))
    np.testing.assert_allclose(
        np.asarray(fused(inputs, training=True)[0]),
        np.asarray(paper(inputs, training=True)[0]),
        atol=1e-6,
    )

    rng = np.random.default_rng(3)
    for w in fused.weights:
        if "_text_" in w.path and w.path.endswith("kernel"):
            w.assign(rng.normal(0.0, 0.5, w.shape).astype("float32"))
    embedding, noise, ca_noise = inputs
    other = [rng.normal(size=embedding.shape).astype("float32"), noise, ca_noise]

    def caption_effect(g):
        a = np.asarray(g(inputs, training=False)[0])
        b = np.asarray(g(other, training=False)[0])
        return np.abs(a - b).mean()

    assert caption_effect(fused) > 1.5 * caption_effect(paper)


@pytest.mark.parametrize(
    "padding, upsampling, fusion",
    [
        ("zeros", "nearest", "input"),
        ("replicate", "nearest", "input"),
        ("replicate", "bilinear", "input"),
        ("replicate", "nearest", "affine"),
    ],
)
def test_generator_round_trips_through_keras_file(
    models, tiny_config, tmp_path, padding, upsampling, fusion
):
    import dataclasses

    import keras

    m = dataclasses.replace(
        tiny_config.model,
        generator_padding=padding,
        generator_upsampling=upsampling,
        generator_text_fusion=fusion,
    )
    g = models.build_stage1_generator(m, tiny_config.data.low_res)
    if fusion == "affine":  # zero maps would hide a layer that loads without them
        for w in g.weights:
            if "_text_" in w.path:
                w.assign(np.full(w.shape, 0.05, "float32"))
    path = tmp_path / "g.keras"
    g.save(path)
    loaded = keras.models.load_model(path)
    inputs = list(_tiny_inputs(m))
    for a, b in zip(g(inputs, training=False), loaded(inputs, training=False)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-6)


def test_mixed_precision_policy_keeps_outputs_float32(models, tiny_config):
    m = tiny_config.model
    g = models.build_stage1_generator(m, tiny_config.data.low_res, dtype_policy="mixed_float16")
    image, mu, log_sigma = g(list(_tiny_inputs(m)), training=False)
    assert g.get_layer("up8_conv").compute_dtype == "float16"
    assert g.get_layer("up8_conv").variable_dtype == "float32"
    assert (image.dtype, mu.dtype, log_sigma.dtype) == ("float32",) * 3
    d = models.build_stage2_discriminator(
        m, tiny_config.data.high_res, dtype_policy="mixed_float16"
    )
    logit = d([np.zeros((2, 64, 64, 3), "float32"), np.zeros((2, m.embedding_dim), "float32")])
    assert logit.dtype == "float32"


@pytest.mark.parametrize("output", ["residual", "lowres_residual"])
def test_residual_stage2_starts_from_the_upsampled_stage1_image(
    models, tiny_config, tmp_path, output
):
    """`stage2_output="residual"` / "lowres_residual": a zero correction reproduces the
    bilinear-upsampled Stage-I image; the model (with its custom layer) round-trips through a
    .keras file."""
    import keras
    import tensorflow as tf

    from stackgan.models.refinement import TanhResidual

    rng = np.random.default_rng(0)
    base = rng.uniform(-0.95, 0.95, (2, 8, 8, 3)).astype("float32")
    out = TanhResidual()([base, np.zeros_like(base)])
    np.testing.assert_allclose(np.asarray(out), base, atol=1e-5)
    # a positive correction brightens, and the output stays inside (-1, 1)
    brighter = np.asarray(TanhResidual()([base, np.full_like(base, 5.0)]))
    assert (brighter > base).all() and (np.abs(brighter) < 1.0).all()

    m = tiny_config.model
    cfg = tiny_config.replace(model={"stage2_output": output})
    g = models.build_stage2_generator(cfg.model, tiny_config.data.low_res)
    low = rng.uniform(-0.9, 0.9, (2, 16, 16, 3)).astype("float32")
    inputs = [low, np.zeros((2, m.embedding_dim), "float32"), np.zeros((2, m.ca_dim), "float32")]
    # the correction is small at initialisation (weights N(0, 0.02)): the output is the
    # upsampled input, not the grey of the paper's generator
    image = np.asarray(g(inputs, training=False)[0])
    upsampled = np.asarray(tf.image.resize(low, (64, 64), "bilinear"))
    assert np.abs(image - upsampled).mean() < 0.05
    path = tmp_path / "g2.keras"
    g.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(np.asarray(loaded(inputs, training=False)[0]), image, atol=1e-6)


def test_lowres_residual_stage2_lets_the_text_in_from_zero(models, tiny_config):
    """ "lowres_residual": the text-conditioned features join through a zero-initialised 1x1
    conv, so the untrained path sharpens the Stage-I image alone; once that conv has weights,
    the caption changes the path. No 3x3 conv works at full size (the cost it saves)."""
    import keras

    cfg = tiny_config.replace(model={"stage2_output": "lowres_residual"})
    m = cfg.model
    # Keras' initialisers draw from its global seed, which the tests run before this one in
    # the same worker move: seeded, the weights (and the margin below) are the same in any order
    keras.utils.set_random_seed(0)
    g = models.build_stage2_generator(m, cfg.data.low_res)
    rng = np.random.default_rng(0)
    low = rng.uniform(-0.9, 0.9, (2, 16, 16, 3)).astype("float32")
    ca_noise = rng.standard_normal((2, m.ca_dim)).astype("float32")

    # the path's first features, where the text joins (the image's last convs, initialised
    # N(0, 0.02), scale any change down ~10^4 at initialisation)
    first = keras.Model(g.inputs, g.get_layer("lowres_relu1").output)

    def features(embedding):
        return np.asarray(first([low, embedding, ca_noise], training=False))

    one, other = (rng.standard_normal((2, m.embedding_dim)).astype("float32") for _ in "ab")
    np.testing.assert_array_equal(features(one), features(other))
    text = g.get_layer("lowres_text")
    text.kernel.assign(rng.normal(0.0, 0.5, text.kernel.shape).astype("float32"))
    # (the untrained text code itself is small: N(0, 0.02) weights, inference-mode BatchNorm;
    # the change was 0.9 % of the features in a run with unseeded weights, float noise ~1e-7)
    change = np.abs(features(one) - features(other)).mean() / np.abs(features(one)).mean()
    print(f"text's change to the path's first features: {change:.4f} of their size")
    assert change > 0.001, change
    full_size = [
        layer.name
        for layer in g.layers
        if layer.__class__.__name__ == "Conv2D"
        and layer.kernel_size != (1, 1)
        and layer.output.shape[1] == 4 * cfg.data.low_res
    ]
    assert full_size == []


def test_recalibrated_batch_norm_holds_the_mean_of_the_batches_statistics(models):
    import keras

    from stackgan.models.batch_norm import recalibrate_batch_norm

    inputs = keras.Input((3,))
    model = keras.Model(inputs, models.FreezableBatchNorm(momentum=0.9)(inputs))
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc, 2.0, (32, 3)).astype("float32") for loc in (1.0, 5.0, 9.0)]
    feed = iter(batches)
    assert recalibrate_batch_norm(model, lambda: model(next(feed), training=True), 3) == 1
    bn = model.layers[-1]
    expected_mean = np.mean([b.mean(axis=0) for b in batches], axis=0)
    expected_var = np.mean([b.var(axis=0) for b in batches], axis=0)
    np.testing.assert_allclose(np.asarray(bn.moving_mean), expected_mean, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(bn.moving_variance), expected_var, rtol=1e-4)
    assert bn.momentum == 0.9  # restored


def test_generate_chain_feeds_stage1_image_to_stage2_without_gradient(models, tiny_config):
    import tensorflow as tf

    from stackgan.models.chain import generate_chain

    m, low_res = tiny_config.model, tiny_config.data.low_res
    stage1 = models.build_stage1_generator(m, low_res)
    stage2 = models.build_stage2_generator(m, low_res)
    embedding, noise, ca_noise = (tf.constant(x) for x in _tiny_inputs(m))
    ca_noise_2 = tf.constant(np.random.default_rng(1).normal(size=ca_noise.shape), tf.float32)
    with tf.GradientTape(persistent=True) as tape:
        low, high = generate_chain(stage1, stage2, embedding, noise, ca_noise, ca_noise_2)
        total = tf.reduce_sum(high[0])
    # the same images as calling the stages one after the other
    manual_low = stage1([embedding, noise, ca_noise], training=False)[0]
    manual_high = stage2([manual_low, embedding, ca_noise_2], training=False)[0]
    np.testing.assert_array_equal(low[0].numpy(), manual_low.numpy())
    np.testing.assert_array_equal(high[0].numpy(), manual_high.numpy())
    assert high[0].shape[1] == 4 * low[0].shape[1]
    # Stage-II's loss reaches Stage-II's weights, never Stage-I's (frozen while Stage-II trains)
    assert all(g is None for g in tape.gradient(total, stage1.trainable_variables))
    assert all(g is not None for g in tape.gradient(total, stage2.trainable_variables))
    # without a Stage-II, the chain is Stage-I alone
    only, none = generate_chain(stage1, None, embedding, noise, ca_noise)
    assert none is None
    np.testing.assert_array_equal(only[0].numpy(), manual_low.numpy())
