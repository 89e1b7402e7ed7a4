"""course_utils.files: whole files or none, and their checksums."""

from __future__ import annotations

import gzip
import hashlib

import pytest

from course_utils import files


def test_write_bytes_atomic_replaces_whole_files_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "cache.json"
    files.write_bytes_atomic(target, b"old")
    assert target.read_bytes() == b"old" and (target.stat().st_mode & 0o777) == 0o644

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        files.write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"old" and [p.name for p in target.parent.iterdir()] == ["cache.json"]


def test_an_error_inside_the_block_leaves_the_old_file_and_folder(tmp_path):
    target, folder = tmp_path / "table.txt", tmp_path / "model"
    files.write_text_atomic(target, "old")
    with files.atomic_folder(folder) as tmp:
        (tmp / "weights").write_bytes(b"1")
    with pytest.raises(RuntimeError), files.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash")
    with pytest.raises(RuntimeError), files.atomic_folder(folder) as tmp:
        (tmp / "weights").write_bytes(b"2")
        raise RuntimeError("crash")
    assert target.read_text() == "old" and (folder / "weights").read_bytes() == b"1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "table.txt"]


def test_sha256_of_reads_the_file_or_its_decompressed_content(tmp_path):
    payload = b"content\n" * 1000
    (tmp_path / "f").write_bytes(payload)
    (tmp_path / "f.gz").write_bytes(gzip.compress(payload))
    expected = (hashlib.sha256(payload).hexdigest(), len(payload))
    assert files.sha256_of(tmp_path / "f") == expected == files.sha256_of(tmp_path / "f.gz", gz=True)
