"""course_utils.bundle: one archive of the data and the shipped checkpoints, verified before anything is installed."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
import torch

from course_utils import bundle, checkpoints, data
from course_utils.files import sha256_of
from tests.data_support import CONTENT, private_cache, register


@pytest.fixture
def small_course(monkeypatch, tmp_path):
    """A registry of two small files, both cached, and a shipped folder with one checkpoint."""
    cache = private_cache(tmp_path, monkeypatch)
    other = b"a second file\n" * 50
    register(monkeypatch, gzip=False, dropins=())
    register(monkeypatch, name="toy2", path="toy2.txt", size=len(other), sha256=hashlib.sha256(other).hexdigest(),
             gzip=False, dropins=())
    monkeypatch.setattr(data, "FILES", {k: v for k, v in data.FILES.items() if k in ("toy", "toy2")})
    (cache / "Toy/raw").mkdir(parents=True)
    (cache / "Toy/raw/toy-file").write_bytes(CONTENT)
    (cache / "toy2.txt").write_bytes(other)
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    monkeypatch.setattr(checkpoints, "SHIPPED_DIR", shipped)
    checkpoints.save_tensors({"w": torch.arange(4.0)}, shipped / "model", {"what": "test"})
    return cache, shipped


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_bundle_round_trip_into_an_empty_cache(small_course, tmp_path, monkeypatch):
    cache, shipped = small_course
    archive = tmp_path / "course.tar.gz"
    manifest = bundle.bundle(archive)
    assert sorted(f["path"] for f in manifest["files"]) == [
        "checkpoints/model.json", "checkpoints/model.safetensors", "data/Toy/raw/toy-file", "data/toy2.txt"]
    before = _tree(cache), _tree(shipped)
    fresh = tmp_path / "fresh"
    monkeypatch.setenv("COURSE_DATA_DIR", str(fresh))
    (shipped / "model.safetensors").unlink()  # a checkout without the binary: the bundle restores it
    report = bundle.unbundle(archive)
    assert _tree(fresh) == before[0] and _tree(shipped) == before[1]
    assert "data/toy2.txt: installed" in report and "checkpoints/model.json: already there" in report
    assert data.check_content(data.FILES["toy"], fresh / "Toy/raw/toy-file") is None
    assert bundle.unbundle(archive) == [line.replace("installed", "already there") for line in report]
    assert not [p for p in fresh.iterdir() if p.name.startswith(".unbundle")]  # staging removed


def _corrupt(archive: Path, how: str) -> None:
    raw = archive.read_bytes()
    archive.write_bytes(raw[: len(raw) // 2] if how == "truncate" else raw[:200] + bytes([raw[200] ^ 0xFF]) + raw[201:])


@pytest.mark.parametrize("how", ["truncate", "flip"])
def test_a_damaged_bundle_is_refused_and_the_cache_left_alone(small_course, tmp_path, monkeypatch, how):
    cache, shipped = small_course
    archive = tmp_path / "course.tar.gz"
    bundle.bundle(archive)
    _corrupt(archive, how)
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "fresh"))
    with pytest.raises(bundle.BundleError, match="corrupt or truncated|does not match") as info:
        bundle.unbundle(archive)
    assert "nothing was installed" in str(info.value)
    assert [p.name for p in (tmp_path / "fresh").iterdir()] == []
    assert bundle.main(["install", str(archive)]) == 1


def test_a_tampered_manifest_is_caught_by_the_registry(small_course, tmp_path, monkeypatch):
    cache, _ = small_course
    (cache / "toy2.txt").write_bytes(b"X" * data.FILES["toy2"].size)  # wrong bytes, right size
    with pytest.raises(bundle.BundleError, match="toy2.*fetch first"):
        bundle.bundle(tmp_path / "refused.tar.gz")
    # a hand-made archive whose manifest matches the wrong bytes: the registry's checksum still refuses it
    blob = json.dumps({"format": 1, "files": [{"path": "data/toy2.txt", "kind": "data", "name": "toy2",
                                               "bytes": data.FILES["toy2"].size,
                                               "sha256": sha256_of(cache / "toy2.txt")[0]}]}).encode()
    with tarfile.open(tmp_path / "evil.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("MANIFEST.json")
        info.size = len(blob)
        tar.addfile(info, io.BytesIO(blob))
        tar.add(cache / "toy2.txt", arcname="data/toy2.txt")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "fresh"))
    with pytest.raises(bundle.BundleError, match="fails the registry's check"):
        bundle.unbundle(tmp_path / "evil.tar.gz")


@pytest.mark.parametrize("entry", ["../outside.txt", "/etc/course-evil", "data/link"])
def test_a_bundle_entry_outside_the_cache_or_not_a_file_is_refused(small_course, tmp_path, monkeypatch, entry):
    with tarfile.open(tmp_path / "evil.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo(entry)
        if entry == "data/link":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "fresh"))
    with pytest.raises(bundle.BundleError, match="unexpected entry"):
        bundle.unbundle(tmp_path / "evil.tar.gz")
    assert not (tmp_path / "outside.txt").exists() and not Path("/etc/course-evil").exists()
    assert [p.name for p in (tmp_path / "fresh").iterdir()] == []


def test_the_command_line_writes_and_installs_a_bundle(small_course, tmp_path, monkeypatch, capsys):
    archive = tmp_path / "usb" / "course.tar.gz"
    assert bundle.main(["write", str(archive)]) == 0
    assert f"wrote {archive}: 4 files" in capsys.readouterr().out
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "fresh"))
    assert bundle.main(["install", str(archive)]) == 0
    assert "data/toy2.txt: installed" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        bundle.main(["install", str(tmp_path / "missing.tar.gz")])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and f"{tmp_path / 'missing.tar.gz'} is not a file" in err
