"""Stage-II: Stage-I image + text -> 4x larger image (paper, section 3.3; authors' TF code).

The generator encodes the Stage-I image down to Mg = low_res / 4 (16x16 in the paper), joins
its OWN Conditioning Augmentation code tiled Mg x Mg, refines with residual blocks and
upsamples 4 x2 steps to 4 * low_res. It has no noise input: the randomness comes from the
Stage-I image and eps. The discriminator downsamples high_res -> Md x Md.
"""

from __future__ import annotations

import keras
from keras import layers

from stackgan.config import ModelConfig
from stackgan.models.blocks import (
    batch_norm,
    conv,
    down_block,
    leaky_relu,
    relu,
    resampling_steps,
    residual_block,
    spatial_tile,
    up_block,
    upsampling,
)
from stackgan.models.conditioning import conditioning_augmentation
from stackgan.models.discriminator_head import conditional_logit, unconditional_logit
from stackgan.models.refinement import TanhResidual

ENCODER_DOWNSAMPLING = 4  # two stride-2 convs: 64x64 -> Mg = 16x16


def build_stage2_generator(
    model_cfg: ModelConfig, low_res: int, *, dtype_policy: str | None = None
) -> keras.Model:
    """[stage1_image f32[B,s,s,3], embedding f32[B,E], ca_noise f32[B,Ng]] ->
    [image f32[B,4s,4s,3] (tanh), mu f32[B,Ng], log_sigma f32[B,Ng]]."""
    resampling_steps(ENCODER_DOWNSAMPLING, low_res, "Stage-II low_res (data.low_res)")
    d = dtype_policy
    gf = model_cfg.stage2_gf_dim
    joint_size = low_res // ENCODER_DOWNSAMPLING
    stage1_image = keras.Input((low_res, low_res, 3), name="stage1_image")
    embedding = keras.Input((model_cfg.embedding_dim,), name="embedding")
    ca_noise = keras.Input((model_cfg.ca_dim,), name="ca_noise")

    c, mu, log_sigma = conditioning_augmentation(embedding, ca_noise, model_cfg, "ca", dtype=d)
    pad = model_cfg.generator_padding

    # image encoder: 3x3 conv gf + ReLU, then two 4x4 stride-2 convs (2 gf, 4 gf) + BN + ReLU
    x = relu(
        conv(stage1_image, gf, 3, 1, "enc_conv1", bias=True, padding=pad, dtype=d), "enc_relu1", d
    )
    for i, filters in enumerate((2 * gf, 4 * gf), start=2):
        x = conv(x, filters, 4, 2, f"enc_conv{i}", bias=False, dtype=d)
        x = relu(batch_norm(x, f"enc_bn{i}", dtype=d), f"enc_relu{i}", d)

    # joint image-text code at Mg x Mg
    x = layers.Concatenate(name="joint_concat", dtype=d)([x, spatial_tile(c, joint_size, "c", d)])
    x = conv(x, 4 * gf, 3, 1, "joint_conv", bias=False, padding=pad, dtype=d)
    x = relu(batch_norm(x, "joint_bn", dtype=d), "joint_relu", d)
    for i in range(model_cfg.stage2_residual_blocks):
        x = residual_block(x, 4 * gf, f"res{i + 1}", padding=pad, dtype=d)

    # 4 up-blocks (16 -> 256 in the paper): 2 gf, gf, gf/2, gf/4 channels, then RGB;
    # "lowres_residual" stops at Stage-I's size (2 up-blocks) and goes on from there
    channels = 4 * gf
    steps = resampling_steps(joint_size, 4 * low_res, "Stage-II high_res")
    if model_cfg.stage2_output == "lowres_residual":
        steps -= resampling_steps(joint_size, low_res, "Stage-II low_res")
    for i in range(steps):
        channels = max(1, channels // 2)
        x = up_block(
            x,
            channels,
            f"up{joint_size * 2 ** (i + 1)}",
            max_phase_filters=model_cfg.upsample_conv_max_filters,
            padding=pad,
            interpolation=model_cfg.generator_upsampling,
            dtype=d,
        )
    if model_cfg.stage2_output == "lowres_residual":
        image = _lowres_residual(x, stage1_image, model_cfg.stage2_lowres_residual_dim, pad, d)
    elif model_cfg.stage2_output == "residual":
        # The correction needs to see the edges it sharpens: the 16x16 code cannot say where
        # they are to the pixel, so the upsampled Stage-I image joins the last features (a
        # skip connection, as in super-resolution generators).
        upsampled = upsampling(stage1_image, 4, "stage1_upsample", "bilinear")
        x = layers.Concatenate(name="skip_concat", dtype=d)([x, upsampled])
        x = conv(x, max(8, channels), 3, 1, "skip_conv", bias=True, padding=pad, dtype=d)
        x = relu(x, "skip_relu", d)
        x = conv(x, 3, 3, 1, "to_rgb_conv", bias=True, padding=pad, dtype=d)
        image = TanhResidual(name="image", dtype="float32")([upsampled, x])
    else:
        x = conv(x, 3, 3, 1, "to_rgb_conv", bias=True, padding=pad, dtype=d)
        image = layers.Activation("tanh", name="image", dtype="float32")(x)
    mu = layers.Identity(name="mu", dtype="float32")(mu)
    log_sigma = layers.Identity(name="log_sigma", dtype="float32")(log_sigma)
    return keras.Model(
        [stage1_image, embedding, ca_noise], [image, mu, log_sigma], name="stage2_generator"
    )


def _lowres_residual(features, stage1_image, width: int, pad: str, d):
    """[text-conditioned features, Stage-I image] at Stage-I's size -> the 4x image as
    tanh(atanh(bilinear x4 Stage-I) + correction).

    Sharpening an edge means knowing where it lies to a fraction of a Stage-I pixel, and
    Stage-I's edges are smeared over several pixels. The paper's up-blocks see them only
    through the 16x16 code and a 3x3 conv at 256 px covers less than one Stage-I pixel, so
    they learn it slowly (docs/EXPERIMENTS.md, "Edge sharpness"). Here three 3x3 convs at
    Stage-I's size (a 7 px field there, 28 px at full size) find the edges; their features are
    bilinearly interpolated to full size, where a per-pixel MLP (1x1 convs) with the upsampled
    image draws them: a nonlinearity after interpolation turns a smooth feature into a step at the
    sub-pixel place where it crosses zero (as implicit-function super-resolution, LIIF, does).
    Unlike a pixel shuffle it paints no 4x4 checkerboard, and it costs no 3x3 conv at full size.
    """
    upsampled = upsampling(stage1_image, 4, "stage1_upsample", "bilinear")
    # The text-conditioned features join through a zero-initialised 1x1 conv: fed in directly,
    # their noisy batch statistics kept the path from learning to sharpen in a few hundred
    # steps (edge sharpness 1.55 against 5.2 without them, bench_stage2_variants.py), so the
    # path starts as a pure sharpener of the Stage-I image and lets the text in as it helps.
    x = conv(stage1_image, width, 3, 1, "lowres_conv1", bias=True, padding=pad, dtype=d)
    text = conv(features, width, 1, 1, "lowres_text", bias=False, dtype=d, initializer="zeros")
    x = relu(layers.Add(name="lowres_add", dtype=d)([x, text]), "lowres_relu1", d)
    for i in (2, 3):
        x = conv(x, width, 3, 1, f"lowres_conv{i}", bias=True, padding=pad, dtype=d)
        x = relu(x, f"lowres_relu{i}", d)
    # The per-pixel MLP's first layer is linear, and so is bilinear interpolation: applied to
    # [features, Stage-I image] at Stage-I's size and interpolated after, it is the same function
    # at 1/16 of the cost, and only its narrower output is interpolated to full size.
    x = layers.Concatenate(name="skip_concat", dtype=d)([x, stage1_image])
    x = conv(x, max(8, width // 2), 1, 1, "pixel_conv", bias=True, dtype=d)
    x = upsampling(x, 4, "lowres_upsample", "bilinear")
    x = relu(x, "pixel_relu", d)
    correction = conv(x, 3, 1, 1, "to_rgb_conv", bias=True, dtype=d)
    return TanhResidual(name="image", dtype="float32")([upsampled, correction])


def build_stage2_discriminator(
    model_cfg: ModelConfig, high_res: int, *, dtype_policy: str | None = None
) -> keras.Model:
    """[image f32[B,S,S,3], embedding f32[B,E]] -> logit f32[B,1], or [logit, uncond_logit]
    with `stage2_unconditional_logit` (PT).

    Down-blocks df ... 32 df (256x256 -> 4x4 in the paper), then two 1x1 convs + BN + LeakyReLU
    halving the channels (2048 -> 1024 -> 512, as TF), then the text-conditioned head.
    """
    steps = resampling_steps(model_cfg.d_spatial, high_res, "Stage-II high_res (data.high_res)")
    d = dtype_policy
    image = keras.Input((high_res, high_res, 3), name="image")
    embedding = keras.Input((model_cfg.embedding_dim,), name="embedding")
    x = image
    for i in range(steps):
        size = high_res // 2 ** (i + 1)
        x = down_block(x, model_cfg.stage2_df_dim * 2**i, f"down{size}", normalize=i > 0, dtype=d)
    for i in (1, 2):
        x = conv(x, max(1, x.shape[-1] // 2), 1, 1, f"squeeze{i}_conv", bias=False, dtype=d)
        x = leaky_relu(batch_norm(x, f"squeeze{i}_bn", dtype=d), f"squeeze{i}_lrelu", d)
    logit = conditional_logit(x, embedding, model_cfg, x.shape[-1], dtype=d)
    outputs = (
        [logit, unconditional_logit(x, model_cfg)]
        if (model_cfg.stage2_unconditional_logit)
        else logit
    )
    return keras.Model([image, embedding], outputs, name="stage2_discriminator")
