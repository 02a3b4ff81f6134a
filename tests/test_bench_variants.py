"""The variant benches' `--variant NAME=overrides` parsing (bench/ is not a package)."""

import argparse
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "bench"))
import work_dir_inputs as bench


def test_a_variant_is_a_name_and_its_overrides_in_order():
    name, overrides = bench.custom_variant(
        "batch 8, 1.5x steps=train.batch_size=8, train.max_steps=3600"
    )
    assert name == "batch 8, 1.5x steps"
    assert overrides == ["train.batch_size=8", "train.max_steps=3600"]


@pytest.mark.parametrize("text", ["no overrides", "=train.batch_size=8", "name=", "name= , "])
def test_a_variant_without_a_name_or_overrides_is_refused(text):
    with pytest.raises(argparse.ArgumentTypeError, match="expected NAME=section.field=value"):
        bench.custom_variant(text)
