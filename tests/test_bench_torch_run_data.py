"""What crosses to a GPU training run and back (bench/torch_run_data.py): the byte packing of
the .npz files and the replay that scores the run's images on the captions they were made of."""

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "bench"))
import torch_run_data


def test_packed_byte_strings_come_back_whole_and_in_order():
    blobs = [b"\xff\xd8jpeg one", b"", b"\x00\x01\x02", b"last"]
    buffer, offsets = torch_run_data.pack(blobs)
    assert buffer.dtype == np.uint8 and offsets.tolist() == [0, 10, 10, 13, 17]
    assert torch_run_data.unpack(buffer, offsets) == blobs


def test_replay_hands_back_each_batch_of_images_for_the_captions_asked():
    embeddings = np.arange(12, dtype=np.float32).reshape(6, 2)
    images = np.arange(6, dtype=np.uint8)[:, None, None, None] * np.ones([1, 2, 2, 3], np.uint8)
    replay = torch_run_data.Replay(embeddings, {"image_64": images})
    first = replay(embeddings[:4], seed=1)["image_64"]
    second = replay(embeddings[4:], seed=2)["image_64"]
    assert first[:, 0, 0, 0].tolist() == [0, 1, 2, 3]
    assert second[:, 0, 0, 0].tolist() == [4, 5]


def test_replay_refuses_captions_the_run_did_not_generate():
    embeddings = np.arange(12, dtype=np.float32).reshape(6, 2)
    replay = torch_run_data.Replay(embeddings, {"image_64": np.zeros([6, 2, 2, 3], np.uint8)})
    replay(embeddings[:2], seed=0)
    with pytest.raises(SystemExit, match="other captions at rows 2-4"):
        replay(embeddings[3:5], seed=0)


def test_an_npz_is_written_whole_and_a_foreign_one_is_refused_in_one_line(tmp_path):
    path = str(tmp_path / "run.npz")
    torch_run_data.save_npz(path, stage1=np.ones([2, 4, 4, 3], np.uint8))
    assert os.listdir(tmp_path) == ["run.npz"]  # no .partial left behind
    assert torch_run_data.load_npz(path, ("stage1",), "x")["stage1"].sum() == 96
    with pytest.raises(SystemExit, match="lacks embeddings, stage2_bytes: not a file of"):
        torch_run_data.load_npz(path, ("stage1", "embeddings", "stage2_bytes"), "x")
    with pytest.raises(SystemExit, match="missing.npz"):
        torch_run_data.load_npz(str(tmp_path / "missing.npz"), ("stage1",), "x")


def test_a_run_s_images_are_written_as_score_reads_them(tmp_path):
    rng = np.random.default_rng(0)
    stage1 = rng.integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    # smooth images, which JPEG keeps within a few levels
    ramp = np.linspace(0, 255, 32).astype(np.uint8)
    stage2 = np.stack(
        [np.broadcast_to(ramp[None, :, None] // (k + 1), (32, 32, 3)) for k in range(3)]
    )
    embeddings = rng.standard_normal((3, 5)).astype(np.float32)
    path = torch_run_data.save_generated(str(tmp_path), "train", embeddings, stage1, stage2,
                                         [120, 45], progress=stage1[None])  # fmt: skip
    assert os.path.basename(path) == "generated_train.npz"
    run = torch_run_data.load_npz(path, torch_run_data.GENERATED_KEYS, "x")
    np.testing.assert_array_equal(run["stage1"], stage1)  # Stage-I exactly
    np.testing.assert_array_equal(run["embeddings"], embeddings)
    assert run["stage_steps"].tolist() == [120, 45] and run["progress"].shape == (1, 3, 8, 8, 3)
    decoded = torch_run_data._decode_jpegs(
        torch_run_data.unpack(run["stage2_bytes"], run["stage2_offsets"])
    )
    assert decoded.shape == stage2.shape
    assert np.abs(decoded.astype(int) - stage2).max() <= 4  # JPEG q95
    assert np.abs(decoded[0].astype(int) - decoded[2]).mean() > 40  # each image its own
