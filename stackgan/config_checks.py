"""Checks of a whole `stackgan.config.Config`, run before any component does (`Config.validate`).

A field with a fixed set of choices is declared `Literal[...]` in config.py and checked from its
annotation, so a new choice field needs nothing here. Numbers are checked by kind: every float
finite and >= 0, every int >= 0 (seeds aside), the fields below positive or a fraction; then the
relations between fields that the networks and the preprocessing rely on.
"""

from __future__ import annotations

import dataclasses
import math
import typing

from stackgan.errors import UserError

# 0 would build an empty network, divide by zero, or never fire
POSITIVE = {
    "synth": ("classes", "images_per_class", "min_side", "max_side"),
    "data": (
        "low_res_stored", "low_res", "high_res_stored", "high_res", "embedding_dim",
        "captions_per_image", "embeddings_per_sample", "shuffle_buffer",
    ),
    "model": (
        "embedding_dim", "ca_dim", "z_dim", "gf_dim", "df_dim", "text_dim_d", "d_spatial",
        "stage2_gf_dim", "stage2_df_dim",
    ),
    "train": (
        "batch_size", "learning_rate", "lr_decay_epochs", "lr_decay_factor", "r1_every",
        "checkpoint_every_steps", "sample_every_steps", "log_every_steps",
    ),
    "classifier": (
        "image_size", "alpha", "batch_size", "learning_rate_head", "learning_rate_finetune",
    ),
    "eval": ("is_splits", "batch_size"),
    "text": ("embedding_dim", "max_chars", "conv_filters", "rnn_units", "batch_size",
             "learning_rate"),
}  # fmt: skip
AT_MOST_ONE = {
    "synth": ("test_class_fraction",),
    "data": ("max_skipped_fraction",),
    "model": ("truncation",),
    "train": ("beta_1", "lr_decay_factor", "generator_ema"),
    "classifier": ("holdout_fraction",),
}


class ConfigError(UserError, ValueError):
    """A config field (from a profile or `--set`) that cannot work; the message names it."""


def validate(config) -> None:
    """Raises ConfigError naming every bad field of `config`, or returns None."""
    problems = []
    for section in dataclasses.fields(config):
        value = getattr(config, section.name)
        if dataclasses.is_dataclass(value):
            problems.extend(_section_problems(section.name, value))
    problems.extend(_relation_problems(config))
    if problems:
        raise ConfigError(
            "invalid config: " + "; ".join(problems) + ". Change it with --set SECTION.FIELD=VALUE"
        )


def _section_problems(name: str, section) -> list[str]:
    hints = typing.get_type_hints(type(section))
    problems = []
    for field in dataclasses.fields(section):
        key, value = f"{name}.{field.name}", getattr(section, field.name)
        choices = typing.get_args(hints[field.name])
        if typing.get_origin(hints[field.name]) is typing.Literal:
            if value not in choices:
                problems.append(f"{key}={value!r} is not one of {', '.join(map(repr, choices))}")
            continue
        numbers = value if isinstance(value, tuple) else (value,)
        for number in numbers:
            problems.extend(_number_problems(name, field.name, number))
        if isinstance(value, tuple) and not value and field.name in POSITIVE.get(name, ()):
            problems.append(f"{key} is empty")
    return problems


def _number_problems(section: str, field: str, value) -> list[str]:
    key = f"{section}.{field}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return []
    if isinstance(value, float) and not math.isfinite(value):
        return [f"{key}={value} is not a finite number"]
    if field == "seed" or field.endswith("_seed"):
        return []
    if field in POSITIVE.get(section, ()) and value <= 0:
        return [f"{key}={value} must be > 0"]
    if value < 0:
        return [f"{key}={value} must be >= 0"]
    if field in AT_MOST_ONE.get(section, ()) and value > 1:
        return [f"{key}={value} must be a fraction, at most 1"]
    return []


def _relation_problems(config) -> list[str]:
    data, model, synth = config.data, config.model, config.synth
    problems = []
    # Stage-I's generator doubles from 4x4, its discriminator halves down to d_spatial
    base = max(4, model.d_spatial)
    if data.low_res > 0 and not _doubles_from(base, data.low_res):
        problems.append(
            f"data.low_res={data.low_res} must be {base} times a power of 2"
            f" ({2 * base}, {4 * base}, {8 * base}, ...)"
        )
    if data.high_res != 4 * data.low_res:
        problems.append(
            f"data.high_res={data.high_res} must be 4 x data.low_res={data.low_res}"
            f" ({4 * data.low_res}): Stage-II upsamples 4 times"
        )
    for size in ("low_res", "high_res"):
        stored, cropped = getattr(data, f"{size}_stored"), getattr(data, size)
        if stored < cropped:
            problems.append(
                f"data.{size}_stored={stored} is smaller than data.{size}={cropped}, the"
                " training crop taken from it"
            )
    if data.embeddings_per_sample > data.captions_per_image:
        problems.append(
            f"data.embeddings_per_sample={data.embeddings_per_sample} is more than"
            f" data.captions_per_image={data.captions_per_image}"
        )
    for other in ("model", "text"):
        dim = getattr(config, other).embedding_dim
        if dim != data.embedding_dim:
            problems.append(
                f"{other}.embedding_dim={dim} differs from data.embedding_dim="
                f"{data.embedding_dim}; the text embeddings must have one size"
            )
    if config.train.generator_ema == 1:
        problems.append(
            f"train.generator_ema={config.train.generator_ema} never moves the average off the"
            " first step's weights;"
            " use a momentum below 1 (0.995-0.999), or 0 for no average"
        )
    if synth.min_side > synth.max_side:
        problems.append(f"synth.min_side={synth.min_side} is above synth.max_side={synth.max_side}")
    return problems


def _doubles_from(small: int, large: int) -> bool:
    """Whether `large` is `small` times 2, 4, 8, ..."""
    steps = round(math.log2(large / small)) if large > small > 0 else 0
    return steps >= 1 and small * 2**steps == large
