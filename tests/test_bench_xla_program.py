"""What crosses to the GPU machine as our TensorFlow training step (bench/bench_xla_program.py):
the XLA module's arguments in the order it takes them, filled as the trainer's variables start,
and the aliases that feed each iteration's updated variables to the next. The JAX side runs
where JAX is (`check` compares its step with TensorFlow's there); this is the TensorFlow side."""

import json
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "bench"))
import bench_xla_program

from stackgan import config as config_lib


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("xla"))
    cfg = config_lib.get_profile("tiny")
    manifest = bench_xla_program.export_program(cfg, "float32", 1, 2, out, 1.0, reference=True)
    return out, manifest, np.load(os.path.join(out, manifest["reference"]))


def test_the_module_takes_the_batch_then_every_variable_as_they_start(exported):
    out, manifest, reference = exported
    with open(os.path.join(out, "stage1_b2_float32.json")) as f:
        assert json.load(f) == json.loads(json.dumps(manifest))  # the manifest as written
    args = manifest["args"]
    cfg = config_lib.get_profile("tiny")
    emb, low = cfg.model.embedding_dim, cfg.data.low_res
    assert [(a["name"], a["shape"]) for a in args[:3]] == [
        ("embedding", [2, emb]), ("image", [2, low, low, 3]), ("wrong_image", [2, low, low, 3]),
    ]  # fmt: skip
    names = [a["name"] for a in args[3:]]
    assert "noise_seed/seed_generator_state" in names and "fc/kernel" in names
    by_name = {a["name"]: (i, a) for i, a in enumerate(args)}
    # a kernel by its initial spread, BatchNorm's variance and the noise seed by value
    i, kernel = by_name["fc/kernel"]
    assert kernel["std"] == pytest.approx(reference[f"arg{i}"].std(), rel=1e-6)
    assert 0.005 < kernel["std"] < 0.05 and abs(kernel["mean"]) < 0.005
    i, variance = by_name["fc_bn/moving_variance"]
    assert "values" not in variance or variance["values"] == [1.0] * len(variance["values"])
    i, seed = by_name["noise_seed/seed_generator_state"]
    assert seed["values"] == reference[f"arg{i}"].tolist() and seed["dtype"] == "int64"


def test_the_aliases_feed_back_every_variable_the_step_updates(exported):
    _, manifest, reference = exported
    aliased = {param for _, param in manifest["aliases"]}
    changed = {
        i for i in range(3, len(manifest["args"]))
        if not np.array_equal(reference[f"after{i}"], reference[f"arg{i}"])
    }  # fmt: skip
    assert len(changed) > 20  # every weight moves in Adam's first step
    assert changed <= aliased
    assert all(p >= 3 for p in aliased)  # never the batch
    # outputs: the logs first, then the updated variables
    assert min(o for o, _ in manifest["aliases"]) == len(manifest["log_names"])
    assert manifest["log_names"] == sorted(["d_loss", "g_loss", "kl", "d_acc_real",
                                            "d_acc_wrong", "d_acc_fake", "g_penalty"])  # fmt: skip


def test_the_module_header_aliases_are_read_as_output_to_parameter():
    header = (
        "HloModule a_inference_train_step_1__.191, input_output_alias={ {7}: (3, {}, may-alias), "
        "{8}: (12, {}, may-alias) }, entry_computation_layout={(f32[2,4]{1,0})->(f32[])}\nENTRY"
    )
    assert bench_xla_program._aliases(header) == [(7, 3), (8, 12)]
