"""The one SavedModel loader (stackgan/saved_models.py): where it looks and what it refuses."""

import pytest
import tensorflow as tf

from stackgan.saved_models import load_saved_model, resolve_saved_model_dir


class _Doubler(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def double(self, x):
        return {"y": 2.0 * x}


@pytest.fixture(scope="module")
def pushed(tmp_path_factory):
    """A Pusher-style folder: versions 1 and 7, each a SavedModel with a `double` signature."""
    root = tmp_path_factory.mktemp("serving")
    for version in (1, 7):
        module = _Doubler()
        tf.saved_model.save(module, str(root / str(version)), signatures={"double": module.double})
    (root / "12").mkdir()  # a newer number without a SavedModel (a push in progress)
    return root


def test_finds_the_newest_numbered_version_and_calls_it(pushed):
    folder, loaded = load_saved_model(pushed, "doubler", ["double"])
    assert folder == str(pushed / "7")
    assert loaded.signatures["double"](x=tf.constant([1.5]))["y"].numpy().tolist() == [3.0]
    assert resolve_saved_model_dir(pushed / "1") == str(pushed / "1")


def test_a_model_artifact_resolves_to_its_format_serving(tmp_path):
    module = _Doubler()
    tf.saved_model.save(module, str(tmp_path / "Format-Serving"), signatures={"x": module.double})
    assert resolve_saved_model_dir(tmp_path) == str(tmp_path / "Format-Serving")


def test_a_missing_signature_or_model_is_named(pushed, tmp_path):
    with pytest.raises(ValueError, match=r"7: not a CUB classifier SavedModel: it lacks the "
                       r"signatures \['classify'\] \(it has \['double'\]\)"):  # fmt: skip
        load_saved_model(pushed, "CUB classifier", ["classify", "double"])
    with pytest.raises(FileNotFoundError, match="no SavedModel there, in its Format-Serving"):
        load_saved_model(tmp_path, "text encoder")
