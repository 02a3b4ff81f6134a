"""Config.validate: every profile passes, and each field that cannot work is named in one line
before anything runs (issue 11, item 7)."""

from __future__ import annotations

import pytest

from stackgan import config as config_lib
from stackgan.config import ConfigError
from stackgan.errors import UserError


@pytest.mark.parametrize("name", sorted(config_lib.PROFILES))
def test_every_profile_is_valid(name):
    cfg = config_lib.get_profile(name)
    assert cfg.validate() is cfg


BAD = [
    # choices: every Literal field of config.py
    ("model.ca_activation=bogus", "model.ca_activation='bogus' is not one of 'leaky_relu', 'relu'"),
    ("data.split=x", "data.split='x' is not one of 'stackgan', 'official'"),
    ("data.image_encoding=webp", "data.image_encoding='webp' is not one of 'png', 'jpeg', 'raw'"),
    ("model.frozen_stage1_batchnorm=frozen", "model.frozen_stage1_batchnorm='frozen'"),
    ("model.stage2_output=residuals", "model.stage2_output='residuals' is not one of"),
    ("train.stage2_consistency=l2", "train.stage2_consistency='l2' is not one of"),
    ("train.gan_loss=wgan", "train.gan_loss='wgan' is not one of 'cross_entropy', 'hinge'"),
    ("classifier.classes=some", "classifier.classes='some' is not one of 'test', 'all'"),
    ("classifier.weights=imgnet", "classifier.weights='imgnet' is not one of 'imagenet', 'none'"),
    ("eval.captions_split=val", "eval.captions_split='val' is not one of 'test', 'train'"),
    ("text.source=wiki", "text.source='wiki' is not one of 'auto', 'pickle', 'train'"),
    ("text.rnn_cell=rnn", "text.rnn_cell='rnn' is not one of 'simple', 'gru', 'lstm'"),
    # sizes
    ("data.high_res=128", "data.high_res=128 must be 4 x data.low_res=64 (256)"),
    ("data.low_res=48", "data.low_res=48 must be 4 times a power of 2"),
    ("data.low_res_stored=60", "data.low_res_stored=60 is smaller than data.low_res=64"),
    ("model.embedding_dim=512", "model.embedding_dim=512 differs from data.embedding_dim=1024"),
    ("data.embeddings_per_sample=11", "data.embeddings_per_sample=11 is more than"),
    ("train.batch_size=0", "train.batch_size=0 must be > 0"),
    ("text.conv_filters=64,0", "text.conv_filters=0 must be > 0"),
    # counts
    ("train.max_steps=-5", "train.max_steps=-5 must be >= 0"),
    ("train.stage2_max_steps=-1", "train.stage2_max_steps=-1 must be >= 0"),
    ("classifier.head_epochs=-2", "classifier.head_epochs=-2 must be >= 0"),
    ("eval.num_samples=-16", "eval.num_samples=-16 must be >= 0"),
    # thresholds and rates
    ("eval.min_class_accuracy_ratio=nan", "eval.min_class_accuracy_ratio=nan is not a finite"),
    ("eval.baseline_tolerance=inf", "eval.baseline_tolerance=inf is not a finite number"),
    ("data.max_skipped_fraction=1.5", "data.max_skipped_fraction=1.5 must be a fraction"),
    ("train.learning_rate=0", "train.learning_rate=0.0 must be > 0"),
    ("train.r1_gamma=-1", "train.r1_gamma=-1.0 must be >= 0"),
    ("train.d_learning_rate=-1", "train.d_learning_rate=-1.0 must be >= 0"),
    ("train.stage2_reconstruction_weight=-1", "train.stage2_reconstruction_weight=-1.0 must be"),
    ("train.stage2_reconstruction_blur=-0.5", "train.stage2_reconstruction_blur=-0.5 must be"),
    ("train.stage2_consistency_blur=-1", "train.stage2_consistency_blur=-1.0 must be >= 0"),
    ("train.generator_ema=1.5", "train.generator_ema=1.5 must be a fraction, at most 1"),
    ("train.generator_ema=1", "train.generator_ema=1.0 never moves the average"),
]


@pytest.mark.parametrize("assignment, message", BAD, ids=[b[0] for b in BAD])
def test_a_field_that_cannot_work_is_named(assignment, message):
    with pytest.raises(ConfigError) as error:
        config_lib.demo().with_overrides([assignment])
    text = str(error.value)
    assert message in text
    assert "\n" not in text and text.endswith("Change it with --set SECTION.FIELD=VALUE")
    assert isinstance(error.value, UserError) and isinstance(error.value, ValueError)


def test_every_bad_field_is_named_at_once():
    with pytest.raises(ConfigError) as error:
        config_lib.tiny().with_overrides(["train.max_steps=-1", "model.ca_activation=x"])
    assert "model.ca_activation='x'" in str(error.value)
    assert "train.max_steps=-1" in str(error.value)


def test_a_seed_may_be_negative():
    assert config_lib.tiny().with_overrides(["train.seed=-3"]).train.seed == -3


def test_an_unknown_field_gets_the_closest_name():
    with pytest.raises(ConfigError, match=r"unknown config field train\.max_step; did you mean "):
        config_lib.tiny().with_overrides(["train.max_step=3"])


def test_an_unknown_field_without_a_close_name_lists_the_fields():
    with pytest.raises(ConfigError, match=r"unknown config field eval\.zzz; its fields are .*seed"):
        config_lib.tiny().with_overrides(["eval.zzz=3"])


def test_an_unknown_section_lists_the_sections():
    with pytest.raises(ConfigError, match=r"unknown config section 'trian'; the sections are "):
        config_lib.tiny().with_overrides(["trian.max_steps=3"])


@pytest.mark.parametrize(
    "assignment, message",
    [
        ("train.max_steps=ten", r"--set train.max_steps=ten: 'ten' is not an integer"),
        ("train.xla=maybe", r"--set train.xla=maybe: 'maybe' is not true/false"),
        ("train.kl_weight=two", r"--set train.kl_weight=two: 'two' is not a number"),
        ("train.max_steps", r"--set expects SECTION.FIELD=VALUE, got 'train.max_steps'"),
    ],
)
def test_a_value_that_does_not_parse_is_named(assignment, message):
    with pytest.raises(ConfigError, match=message):
        config_lib.tiny().with_overrides([assignment])


def test_an_unknown_profile_is_a_config_error():
    with pytest.raises(ConfigError, match=r"unknown profile 'huge'"):
        config_lib.get_profile("huge")
