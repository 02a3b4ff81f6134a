"""The text-conditioned logit both discriminators end with (paper, section 3.2/3.3).

D compresses the 1024-d embedding to Nd with its OWN fully connected layer (+ LeakyReLU), part of
D's trainable weights (Keras ports that feed D the generator's mu, or a fixed layer, never train
it), tiles it Md x Md, joins it to the Md x Md image code, and maps the joint code to one logit
with a 1x1 conv + BN + LeakyReLU and an Md x Md conv. `model.d_conditioning=projection` (later
work) replaces the join with the projection discriminator's inner product.
"""

from __future__ import annotations

from keras import layers

from stackgan.config import ModelConfig
from stackgan.models.blocks import batch_norm, conv, dense, leaky_relu, spatial_tile


def conditional_logit(image_code, embedding, model_cfg: ModelConfig, channels: int, dtype=None):
    """[B,Md,Md,C] image code + [B,E] embedding -> logit [B,1] (float32)."""
    md = model_cfg.d_spatial
    text = dense(embedding, model_cfg.text_dim_d, "text_compress_fc", bias=True, dtype=dtype)
    text = leaky_relu(text, "text_compress_lrelu", dtype=dtype)
    if model_cfg.d_conditioning == "projection":
        return _projection_logit(image_code, text, md, channels, dtype)
    text = spatial_tile(text, md, "text_compress", dtype=dtype)
    x = layers.Concatenate(name="joint_concat", dtype=dtype)([image_code, text])
    x = conv(x, channels, 1, 1, "joint_conv", bias=False, dtype=dtype)
    x = leaky_relu(batch_norm(x, "joint_bn", dtype=dtype), "joint_lrelu", dtype=dtype)
    return _logit(x, md, "logit")


def unconditional_logit(image_code, model_cfg: ModelConfig):
    """PT's Stage-II extra head: real/fake from the image code alone."""
    return _logit(image_code, model_cfg.d_spatial, "uncond_logit")


def _logit(x, md: int, name: str):
    # float32 output layer: under mixed precision the loss must see float32 logits
    x = conv(x, 1, md, md, f"{name}_conv", bias=True, dtype="float32", padding="valid")
    return layers.Reshape((1,), name=name, dtype="float32")(x)


def _projection_logit(image_code, text, md: int, channels: int, dtype):
    """Miyato & Koyama 2018: logit = psi(x) + <V text, sum over positions of x>."""
    pooled = layers.GlobalAveragePooling2D(name="proj_pool", dtype=dtype)(image_code)
    # the sum over the Md x Md positions, as the paper's global sum pooling
    pooled = layers.Rescaling(float(md * md), name="proj_sum", dtype=dtype)(pooled)
    text = dense(text, channels, "proj_text", bias=False, dtype=dtype)
    matched = layers.Dot(axes=1, name="proj_dot", dtype="float32")([text, pooled])
    return layers.Add(name="logit_sum", dtype="float32")([_logit(image_code, md, "logit"), matched])
