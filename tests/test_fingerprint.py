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


def test_content_fingerprint_follows_bytes_and_names_not_folders(tmp_path):
    from stackgan.data.fingerprint import content_fingerprint

    for folder in ("one", "two"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.gz").write_bytes(b"\x00\x01records")
        (tmp_path / folder / "b.gz").write_bytes(b"more")
    one, two = (sorted(str(p) for p in (tmp_path / f).iterdir()) for f in ("one", "two"))
    assert content_fingerprint(one) == content_fingerprint(two[::-1])  # another URI, any order
    assert content_fingerprint(one).startswith("2-files-sha256:")
    (tmp_path / "two" / "b.gz").write_bytes(b"mora")
    assert content_fingerprint(two) != content_fingerprint(one)
    (tmp_path / "two" / "b.gz").rename(tmp_path / "two" / "c.gz")  # same bytes, other name
    (tmp_path / "two" / "c.gz").write_bytes(b"more")
    renamed = [str(tmp_path / "two" / "a.gz"), str(tmp_path / "two" / "c.gz")]
    assert content_fingerprint(renamed) != content_fingerprint(one)
