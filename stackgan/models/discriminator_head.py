"""The text-conditioned logit both discriminators end with (paper, section 3.2/3.3).

D compresses the 1024-d embedding to Nd with its OWN fully connected layer (+ LeakyReLU), part of
D's trainable weights (Keras ports that feed D the generator's mu, or a fixed layer, never train
it), tiles it Md x Md, joins it to the Md x Md image code, and maps the joint code to one logit
with a 1x1 conv + BN + LeakyReLU and an Md x Md conv.
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
