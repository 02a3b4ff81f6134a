import os

from stackgan.data.fingerprint import dataset_fingerprint


def test_fingerprint_changes_when_a_file_changes_and_only_then(tmp_path):
    (tmp_path / "birds").mkdir()
    (tmp_path / "birds" / "a.txt").write_text("one")
    (tmp_path / "b.txt").write_text("two")
    first = dataset_fingerprint(str(tmp_path))
    assert first.startswith("2-files-") and first == dataset_fingerprint(str(tmp_path))
    (tmp_path / "birds" / "a.txt").write_text("one, longer")
    assert dataset_fingerprint(str(tmp_path)) != first
    second = dataset_fingerprint(str(tmp_path))
    os.utime(tmp_path / "b.txt", ns=(1, 1))  # same size, other mtime
    assert dataset_fingerprint(str(tmp_path)) != second


def test_remote_or_missing_roots_have_no_fingerprint(tmp_path):
    assert dataset_fingerprint("gs://bucket/cub") == ""
    assert dataset_fingerprint(str(tmp_path / "absent")) == ""
