"""Stage-I: text -> low-resolution image (paper, section 3.2; authors' TF code, birds).

Sizes derive from `image_size`: the generator upsamples 4x4 -> image_size in log2(size/4) steps
and the discriminator downsamples image_size -> Md x Md in log2(size/Md) steps, so the paper's
64x64 and the tiny profile's 16x16 use the same code.
"""

from __future__ import annotations

import keras
from keras import layers

from stackgan.config import ModelConfig
from stackgan.models.blocks import (
    batch_norm,
    bottleneck_block,
    dense,
    down_block,
    relu,
    resampling_steps,
    up_block,
    up_conv,
)
from stackgan.models.conditioning import conditioning_augmentation
from stackgan.models.discriminator_head import conditional_logit

SEED_SIZE = 4  # the fc layer's output is a 4x4 map


def build_stage1_generator(
    model_cfg: ModelConfig, image_size: int, *, dtype_policy: str | None = None
) -> keras.Model:
    """[embedding f32[B,E], noise f32[B,Nz], ca_noise f32[B,Ng]] ->
    [image f32[B,s,s,3] in [-1,1] (tanh), mu f32[B,Ng], log_sigma f32[B,Ng]].

    fc(c, z) -> 4x4x(8 gf) + BN, then up-blocks halving the channels, then upsample + 3x3 conv to
    RGB + tanh. With `stage1_residual_bottlenecks` (TF) a residual bottleneck follows the 4x4
    map and the first up-block (8x8), before their ReLU, as in the authors' TF code.
    """
    steps = resampling_steps(SEED_SIZE, image_size, "Stage-I image_size (data.low_res)")
    d = dtype_policy
    embedding = keras.Input((model_cfg.embedding_dim,), name="embedding")
    noise = keras.Input((model_cfg.z_dim,), name="noise")
    ca_noise = keras.Input((model_cfg.ca_dim,), name="ca_noise")

    c, mu, log_sigma = conditioning_augmentation(embedding, ca_noise, model_cfg, "ca", dtype=d)
    x = layers.Concatenate(name="c_z_concat", dtype=d)([c, noise])

    channels = 8 * model_cfg.gf_dim
    # BatchNorm over the flat fc output, as both codes do (per-unit statistics).
    x = dense(x, SEED_SIZE * SEED_SIZE * channels, "fc", bias=False, dtype=d)
    x = batch_norm(x, "fc_bn", dtype=d)
    x = layers.Reshape((SEED_SIZE, SEED_SIZE, channels), name="fc_reshape", dtype=d)(x)
    bottlenecks = model_cfg.stage1_residual_bottlenecks
    pad = model_cfg.generator_padding
    if bottlenecks:
        x = bottleneck_block(x, channels, "res4", padding=pad, dtype=d)
    else:
        x = relu(x, "fc_relu", d)

    # steps - 1 up-blocks; the last x2 step goes straight to RGB
    for i in range(1, steps):
        channels = max(1, channels // 2)
        size = SEED_SIZE * 2**i
        with_bottleneck = bottlenecks and i == 1
        x = up_block(
            x,
            channels,
            f"up{size}",
            max_phase_filters=model_cfg.upsample_conv_max_filters,
            activate=not with_bottleneck,
            padding=pad,
            interpolation=model_cfg.generator_upsampling,
            # the caption's code, not the CA's sample of it: see text_affine.py
            condition=mu if model_cfg.generator_text_fusion == "affine" else None,
            dtype=d,
        )
        if with_bottleneck:
            x = bottleneck_block(x, channels, f"res{size}", padding=pad, dtype=d)

    x = up_conv(
        x,
        3,
        "to_rgb_conv",
        bias=True,
        max_phase_filters=model_cfg.upsample_conv_max_filters,
        padding=pad,
        interpolation=model_cfg.generator_upsampling,
        dtype=d,
    )
    image = layers.Activation("tanh", name="image", dtype="float32")(x)
    mu = layers.Identity(name="mu", dtype="float32")(mu)
    log_sigma = layers.Identity(name="log_sigma", dtype="float32")(log_sigma)
    return keras.Model(
        [embedding, noise, ca_noise], [image, mu, log_sigma], name="stage1_generator"
    )


def build_stage1_discriminator(
    model_cfg: ModelConfig, image_size: int, *, dtype_policy: str | None = None
) -> keras.Model:
    """[image f32[B,s,s,3], embedding f32[B,E]] -> logit f32[B,1].

    Down-blocks df, 2 df, 4 df, 8 df (64x64 -> 4x4 in the paper), then the text-conditioned
    head (`discriminator_head.conditional_logit`).
    """
    steps = resampling_steps(model_cfg.d_spatial, image_size, "Stage-I image_size (data.low_res)")
    d = dtype_policy
    image = keras.Input((image_size, image_size, 3), name="image")
    embedding = keras.Input((model_cfg.embedding_dim,), name="embedding")
    x = image
    for i in range(steps):
        size = image_size // 2 ** (i + 1)
        x = down_block(x, model_cfg.df_dim * 2**i, f"down{size}", normalize=i > 0, dtype=d)
    logit = conditional_logit(x, embedding, model_cfg, x.shape[-1], dtype=d)
    return keras.Model([image, embedding], logit, name="stage1_discriminator")
