"""tfrecords/input_pipeline.py on Examples written by the CUB conversion from the tiny
synthetic dataset (train: 12 images of 3 classes; test: 4 images of 1 class; with embeddings)."""

from __future__ import annotations

import collections
import itertools
import shutil

import apache_beam as beam
import numpy as np
import pytest
import tensorflow as tf

from stackgan.components.cub_example_gen import generate
from stackgan.data import cub
from stackgan.tfrecords import example_codec, input_pipeline


def _convert(root, out, config):
    generate.generate_examples(root, config, str(out), lambda: beam.Pipeline(runner="FnApiRunner"))
    return out


@pytest.fixture(scope="module")
def examples_dir(synth_root, tmp_path_factory):
    from stackgan import config

    cfg = config.tiny().replace(data={"num_shards": 2})
    return _convert(synth_root, tmp_path_factory.mktemp("pipeline") / "examples", cfg)


@pytest.fixture(scope="module")
def stored(examples_dir):
    """image_id -> (label, low uint8 [19,19,3], high uint8 [76,76,3], embeddings [10,1024],
    captions)."""
    out = {}
    for path in sorted((examples_dir / "Split-train").glob("*.gz")) + sorted(
        (examples_dir / "Split-test").glob("*.gz")
    ):
        records = [r.numpy() for r in tf.data.TFRecordDataset(str(path), compression_type="GZIP")]
        for r in example_codec.decode(records):
            # TF's decoder, as the pipeline's (PIL's JPEG decoder rounds differently)
            low = tf.io.decode_image(r["image_low"], channels=3).numpy()
            high = tf.io.decode_image(r["image_high"], channels=3).numpy()
            out[r["image_id"]] = (r["label"], low, high, r["embedding"], r["captions"])
    return out


def _pattern(examples_dir, split):
    return str(examples_dir / f"Split-{split}" / "*.gz")


def _to_uint8(image):
    return np.round((image + 1.0) * 127.5).astype(np.int64)


def _find(image, stored, train_ids):
    """(image_id, flipped, offset) of the stored 19x19 crop window `image` was cut from."""
    size = image.shape[0]
    for image_id in train_ids:
        low = stored[image_id][1].astype(np.int64)
        for flipped, (dy, dx) in itertools.product(
            (False, True), itertools.product(range(19 - size + 1), repeat=2)
        ):
            window = low[dy : dy + size, dx : dx + size]
            if flipped:
                window = window[:, ::-1]
            if np.array_equal(window, image):
                return image_id, flipped, (dy, dx)
    raise AssertionError("image is not a crop of any stored training image")


def test_train_batches_have_the_contract_shapes_and_range(examples_dir, tiny_config):
    for stage, size in ((1, 16), (2, 64)):
        ds = input_pipeline.make_train_dataset(
            _pattern(examples_dir, "train"), tiny_config, stage, 5, deterministic=True
        )
        batches = list(ds)
        assert len(batches) == 2  # 12 images, drop_remainder
        for batch in batches:
            assert set(batch) == {"image", "wrong_image", "embedding"}
            assert batch["image"].shape == (5, size, size, 3)
            assert batch["wrong_image"].shape == (5, size, size, 3)
            assert batch["embedding"].shape == (5, 1024)
            for key in ("image", "wrong_image"):
                assert batch[key].dtype == tf.float32
                assert -1.0 <= float(tf.reduce_min(batch[key])) < 0.0
                assert 0.0 < float(tf.reduce_max(batch[key])) <= 1.0


def test_crops_flips_wrong_classes_and_embedding_means(examples_dir, stored, tiny_config):
    train_ids = sorted(_train_ids(examples_dir))
    ds = input_pipeline.make_train_dataset(
        _pattern(examples_dir, "train"), tiny_config, 1, 4, deterministic=True, repeat=True
    )
    flips, offsets, samples = 0, set(), 0
    subsets = [list(c) for c in itertools.combinations(range(10), 4)]
    for batch in ds.take(30):
        for image, wrong, embedding in zip(
            _to_uint8(batch["image"].numpy()),
            _to_uint8(batch["wrong_image"].numpy()),
            batch["embedding"].numpy(),
            strict=True,
        ):
            image_id, flipped, offset = _find(image, stored, train_ids)
            wrong_id, _, _ = _find(wrong, stored, train_ids)
            assert stored[wrong_id][0] != stored[image_id][0], "wrong image of the same class"
            means = stored[image_id][3][subsets].mean(axis=1)
            assert np.abs(means - embedding).max(axis=1).min() < 1e-5
            flips += flipped
            offsets.add(offset)
            samples += 1
    assert samples == 120
    assert 30 < flips < 90  # p = 0.5
    assert len(offsets) > 8  # of the 16 possible 16x16 windows of a 19x19 image


def test_without_the_training_flip_every_image_is_an_unmirrored_crop(
    examples_dir, stored, tiny_config
):
    """`data.train_flip=false` (the demo, whose birds all face right): crops, never mirrors."""
    train_ids = sorted(_train_ids(examples_dir))
    cfg = tiny_config.with_overrides(["data.train_flip=false"])
    ds = input_pipeline.make_train_dataset(
        _pattern(examples_dir, "train"), cfg, 1, 4, deterministic=True, repeat=True
    )
    offsets = set()
    for batch in ds.take(15):
        for image in _to_uint8(batch["image"].numpy()):
            _, flipped, offset = _find(image, stored, train_ids)
            assert not flipped
            offsets.add(offset)
    assert len(offsets) > 8  # still cropped at random


def _train_ids(examples_dir):
    records = [
        r.numpy()
        for r in tf.data.TFRecordDataset(
            sorted(map(str, (examples_dir / "Split-train").glob("*.gz"))), compression_type="GZIP"
        )
    ]
    return {r["image_id"] for r in example_codec.decode(records)}


def test_one_embedding_per_sample_picks_a_single_row(examples_dir, stored, tiny_config):
    cfg = tiny_config.replace(data={"embeddings_per_sample": 1, "low_res": 19})
    ds = input_pipeline.make_train_dataset(
        _pattern(examples_dir, "train"), cfg, 1, 4, deterministic=True
    )
    train_ids = _train_ids(examples_dir)
    for batch in ds:
        for image, embedding in zip(_to_uint8(batch["image"].numpy()), batch["embedding"].numpy()):
            image_id, _, _ = _find(image, stored, train_ids)
            assert np.abs(stored[image_id][3] - embedding).max(axis=1).min() == 0.0


def test_deterministic_mode_repeats_exactly_and_seeds_differ(examples_dir, tiny_config):
    def first_batches(seed):
        ds = input_pipeline.make_train_dataset(
            _pattern(examples_dir, "train"), tiny_config, 2, 4, deterministic=True, seed=seed
        )
        return [b["image"].numpy() for b in ds]

    a, b, c = first_batches(7), first_batches(7), first_batches(8)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, z) for x, z in zip(a, c, strict=True))


def test_the_trainers_pipeline_keeps_its_order_unless_data_ordered_is_off(
    examples_dir, tiny_config
):
    """The trainers call make_train_dataset without `deterministic`: `data.ordered` decides."""
    for ordered in (True, False):
        cfg = tiny_config.replace(data={"ordered": ordered})
        ds = input_pipeline.make_train_dataset(_pattern(examples_dir, "train"), cfg, 1, 4)
        assert ds.options().deterministic is ordered


def test_cached_and_streamed_pipelines_give_the_same_first_epoch(examples_dir, tiny_config):
    streamed = tiny_config.replace(data={"cache_decoded_mb": 0})
    for stage in (1, 2):
        a, b = (
            list(
                input_pipeline.make_train_dataset(
                    _pattern(examples_dir, "train"), cfg, stage, 4, deterministic=True, seed=3
                )
            )
            for cfg in (tiny_config, streamed)
        )
        assert len(a) == len(b) == 3
        for x, y in zip(a, b, strict=True):
            for key in x:
                np.testing.assert_array_equal(x[key].numpy(), y[key].numpy())


@pytest.mark.parametrize("cache_mb, reads_files_again", [(2048, False), (0, True)])
def test_cached_images_are_not_read_again_after_the_first_epoch(
    examples_dir, tiny_config, tmp_path, cache_mb, reads_files_again
):
    copy = tmp_path / "examples"
    shutil.copytree(examples_dir / "Split-train", copy)
    cfg = tiny_config.replace(data={"cache_decoded_mb": cache_mb})
    batches = iter(
        input_pipeline.make_train_dataset(
            str(copy / "*.gz"), cfg, 2, 4, deterministic=True, repeat=True
        )
    )
    first_epoch = [next(batches)["image"].numpy() for _ in range(6)]  # 12 images, 2 epochs
    shutil.rmtree(copy)
    if reads_files_again:
        with pytest.raises(tf.errors.NotFoundError):
            for _ in range(12):
                next(batches)
        return
    later = [next(batches)["image"].numpy() for _ in range(12)]  # 4 more epochs, from memory
    assert all(np.isfinite(b).all() and b.shape == (4, 64, 64, 3) for b in later)
    # the crops and flips are still drawn afresh
    assert not any(np.array_equal(later[0], b) for b in first_epoch)


def test_decoded_cache_size_decides_whether_to_cache(tiny_config):
    # 12 tiny images at 76 px: 2 decoded copies of 76*76*3 bytes + 10 embeddings of 1024 floats
    assert input_pipeline.decoded_cache_bytes(12, tiny_config, 2) == 12 * (2 * 17328 + 40960)
    # the paper on CUB's 8,855 training images: Stage-I is kept, Stage-II streams
    from stackgan import config

    paper = config.paper()
    limit = paper.data.cache_decoded_mb * 2**20
    assert input_pipeline.decoded_cache_bytes(8855, paper, 1) < limit
    assert input_pipeline.decoded_cache_bytes(8855, paper, 2) > limit


def test_single_class_data_fails_instead_of_spinning(examples_dir, tiny_config):
    # the StackGAN test split of the tiny dataset is one class
    ds = input_pipeline.make_train_dataset(
        _pattern(examples_dir, "test"), tiny_config, 1, 2, deterministic=True, repeat=True
    )
    with pytest.raises(tf.errors.InvalidArgumentError, match="at least two classes"):
        next(iter(ds))


def test_eval_yields_every_image_caption_pair_once(examples_dir, stored, tiny_config):
    ds = input_pipeline.make_eval_dataset(_pattern(examples_dir, "test"), tiny_config, 3)
    seen = []
    for batch in ds:
        assert batch["image_low"].shape[1:] == (16, 16, 3)
        assert batch["image_high"].shape[1:] == (64, 64, 3)
        for i in range(batch["caption"].shape[0]):
            image_id = int(batch["image_id"][i])
            caption = batch["caption"][i].numpy()
            label, low, high, embeddings, captions = stored[image_id]
            index = captions.index(caption)
            seen.append((image_id, index))
            np.testing.assert_array_equal(batch["embedding"][i].numpy(), embeddings[index])
            assert int(batch["label"][i]) == label
            # centre crops: (19 - 16) // 2 = 1 and (76 - 64) // 2 = 6
            np.testing.assert_array_equal(_to_uint8(batch["image_low"][i].numpy()), low[1:17, 1:17])
            np.testing.assert_array_equal(
                _to_uint8(batch["image_high"][i].numpy()), high[6:70, 6:70]
            )
    test_ids = set(stored) - _train_ids(examples_dir)
    assert len(seen) == len(set(seen)) == 10 * len(test_ids) == 40


def _source_image(condition, stored, image_ids, subsets):
    """The image whose 4-caption means include `condition`."""
    found = [
        image_id
        for image_id in image_ids
        if np.abs(stored[image_id][3][subsets].mean(axis=1) - condition).max(axis=1).min() < 1e-5
    ]
    assert len(found) == 1, found
    return found[0]


def test_training_conditions_are_spread_over_every_class_in_random_order(
    examples_dir, stored, tiny_config
):
    """Precise BatchNorm's sample: conditions drawn as training draws them, from images spread
    over the split, not its first images (which hold few classes)."""
    pattern = _pattern(examples_dir, "train")
    train_ids = sorted(_train_ids(examples_dir))
    file_order = [
        r["image_id"]
        for path in sorted((examples_dir / "Split-train").glob("*.gz"))
        for r in example_codec.decode(
            [x.numpy() for x in tf.data.TFRecordDataset(str(path), compression_type="GZIP")]
        )
    ]
    subsets = [list(c) for c in itertools.combinations(range(10), 4)]

    half = input_pipeline.training_conditions(pattern, tiny_config, 6, seed=0).numpy()
    assert half.shape == (6, 1024)
    sources = [_source_image(c, stored, train_ids, subsets) for c in half]
    # every second image of the 12 in file order, once each: all 3 classes, not the first 6
    assert sorted(sources, key=file_order.index) == file_order[::2]
    assert {stored[i][0] for i in sources} == {stored[i][0] for i in train_ids}
    assert sources != file_order[::2], "conditions left in file order"

    # more draws than images: every image twice or three times, its captions drawn afresh
    many = input_pipeline.training_conditions(pattern, tiny_config, 30, seed=0).numpy()
    counts = collections.Counter(_source_image(c, stored, train_ids, subsets) for c in many)
    assert set(counts) == set(train_ids) and set(counts.values()) == {2, 3}
    assert len({c.tobytes() for c in many}) > 25

    np.testing.assert_array_equal(
        input_pipeline.training_conditions(pattern, tiny_config, 6, seed=0, num_examples=12),
        half,
    )
    assert not np.array_equal(
        input_pipeline.training_conditions(pattern, tiny_config, 6, seed=1).numpy(), half
    )


def test_examples_without_embeddings_are_refused(synth_root, tiny_config, tmp_path):
    root = tmp_path / "data"
    shutil.copytree(synth_root, root)
    for split in cub.SPLITS:
        (root / "birds" / split / cub.EMBEDDINGS_FILE).unlink()
    out = _convert(root, tmp_path / "raw", tiny_config)
    pattern = str(out / "Split-train" / "*.gz")
    with pytest.raises(input_pipeline.MissingEmbeddingsError, match="run the text-encoder path"):
        input_pipeline.make_train_dataset(pattern, tiny_config, 1, 4)
    with pytest.raises(input_pipeline.MissingEmbeddingsError, match="no 'embedding' feature"):
        input_pipeline.make_eval_dataset(pattern, tiny_config, 4)


def test_no_matching_files_is_an_error(tiny_config, tmp_path):
    with pytest.raises(FileNotFoundError, match="no TFRecord files match"):
        input_pipeline.make_train_dataset(str(tmp_path / "*.gz"), tiny_config, 1, 4)
