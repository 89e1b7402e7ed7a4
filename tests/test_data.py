"""course_utils.data: checksums, sources in order, atomic downloads, the offline error."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from course_utils import data

CONTENT = b"IDX-like content for the tests\n" * 100
SHA = hashlib.sha256(CONTENT).hexdigest()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv("COURSE_DATA_DIR", str(root))
    return root


def register(monkeypatch, **overrides) -> data.DataFile:
    fields = dict(
        name="toy", dataset="toy", path="Toy/raw/toy-file", urls=("http://127.0.0.1:9/toy.gz",),
        size=len(CONTENT), sha256=SHA, gzip=True, dropins=("toy/toy-file.gz",),
    )
    fields.update(overrides)
    entry = data.DataFile(**fields)
    monkeypatch.setitem(data.FILES, entry.name, entry)
    return entry


@pytest.fixture
def server(tmp_path):
    """A local HTTP server on 127.0.0.1 serving files from a folder."""
    root = tmp_path / "served"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.name.endswith((".part", ".download"))]


def test_registry_entries_are_complete():
    for entry in data.FILES.values():
        assert entry.urls and entry.size > 0 and (entry.sha256 or entry.archive_sha256), entry.name
        assert len(entry.urls) >= 2, f"{entry.name}: canonical URL plus a mirror"
        assert entry.dataset in data.DATASETS
    for ds in data.DATASETS.values():
        assert ds.licence and ds.citation and ds.homepage.startswith("http")


def test_registry_entry_without_checksum_is_refused():
    with pytest.raises(ValueError, match="checksum"):
        data.DataFile(name="x", dataset="toy", path="x", urls=("u",), size=1)


def test_dropin_gz_is_verified_unpacked_and_cached(cache, monkeypatch):
    entry = register(monkeypatch)
    (cache / "toy").mkdir(parents=True)
    (cache / "toy" / "toy-file.gz").write_bytes(gzip.compress(CONTENT))
    path = data.fetch("toy", download=False)
    assert path == cache / entry.path and path.read_bytes() == CONTENT
    assert path.stat().st_mode & 0o777 == 0o644
    assert data.fetch("toy", download=False) == path  # second call: straight from the cache


def test_system_copy_with_a_different_gzip_container_verifies_by_content(cache, tmp_path, monkeypatch):
    system = tmp_path / "usr-share" / "toy-file.gz"
    system.parent.mkdir()
    system.write_bytes(gzip.compress(CONTENT, compresslevel=1, mtime=12345))  # not upstream's bytes
    register(monkeypatch, dropins=(), system_paths=(str(system),))
    assert data.fetch("toy", download=False).read_bytes() == CONTENT


def test_corrupt_cached_file_is_reported_and_replaced(cache, monkeypatch, capsys):
    entry = register(monkeypatch)
    target = cache / entry.path
    target.parent.mkdir(parents=True)
    target.write_bytes(b"X" * len(CONTENT))  # right size, wrong bytes
    (cache / "toy").mkdir()
    (cache / "toy" / "toy-file.gz").write_bytes(gzip.compress(CONTENT))
    assert data.fetch("toy", download=False).read_bytes() == CONTENT
    assert "corrupt (sha256" in capsys.readouterr().err


def test_truncated_cached_file_is_detected(cache, monkeypatch):
    entry = register(monkeypatch, dropins=())
    target = cache / entry.path
    target.parent.mkdir(parents=True)
    target.write_bytes(CONTENT[:100])
    assert "truncated" in data.check_content(entry, target)
    with pytest.raises(data.DataUnavailableError, match="truncated"):
        data.fetch("toy", download=False)
    assert not target.exists(), "the bad copy must not stay in the cache"


def test_download_from_local_server_verifies_and_renames(cache, server, monkeypatch):
    root, base = server
    (root / "toy.gz").write_bytes(gzip.compress(CONTENT))
    entry = register(monkeypatch, dropins=(), urls=(f"{base}/missing.gz", f"{base}/toy.gz"))
    path = data.fetch("toy")
    assert path == cache / entry.path and path.read_bytes() == CONTENT
    assert leftovers(cache) == []
    assert path.stat().st_mode & 0o777 == 0o644  # readable by every learner of a shared (hub) cache


def test_download_that_fails_verification_leaves_nothing(cache, server, monkeypatch):
    root, base = server
    (root / "toy.gz").write_bytes(gzip.compress(CONTENT[:-1] + b"?"))
    entry = register(monkeypatch, dropins=(), urls=(f"{base}/toy.gz",))
    with pytest.raises(data.DataUnavailableError, match="rejected: sha256"):
        data.fetch("toy")
    assert not (cache / entry.path).exists()
    assert leftovers(cache) == []


def test_interrupted_download_leaves_nothing(cache, monkeypatch):
    class Truncating(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"\x1f\x8b" + b"0" * 100)  # then the connection closes

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Truncating)
    threading.Thread(target=httpd.handle_request, daemon=True).start()
    entry = register(monkeypatch, dropins=(), urls=(f"http://127.0.0.1:{httpd.server_address[1]}/toy.gz",))
    with pytest.raises(data.DataUnavailableError):
        data.fetch("toy")
    httpd.server_close()
    assert not (cache / entry.path).exists()
    assert leftovers(cache) == []


def test_offline_error_names_the_file_and_the_remedies(cache, monkeypatch):
    register(monkeypatch, dropins=("toy/toy-file.gz",), system_paths=("/nonexistent/toy-file.gz",))
    with pytest.raises(data.DataUnavailableError) as info:
        data.fetch("toy")
    text = str(info.value)
    assert "'toy'" in text and "Toy/raw/toy-file" in text
    assert "connect to the internet and rerun" in text
    assert "apt-get install dataset-fashion-mnist" in text
    assert str(cache / "toy" / "toy-file.gz") in text and "COURSE_DATA_DIR" in text


def test_archive_only_entry_checks_the_archive_and_records_the_content(cache, monkeypatch):
    archive = gzip.compress(CONTENT)
    entry = register(monkeypatch, sha256=None, archive_sha256=hashlib.sha256(archive).hexdigest())
    (cache / "toy").mkdir(parents=True)
    (cache / "toy" / "toy-file.gz").write_bytes(gzip.compress(CONTENT, compresslevel=1))  # other container
    with pytest.raises(data.DataUnavailableError, match="archive sha256 mismatch"):
        data.fetch("toy", download=False)
    (cache / "toy" / "toy-file.gz").write_bytes(archive)
    path = data.fetch("toy", download=False)
    assert data.check_content(entry, path) is None
    path.write_bytes(b"Y" * len(CONTENT))
    assert "sha256" in data.check_content(entry, path)


def test_unknown_names_are_clear_errors():
    with pytest.raises(KeyError, match="unknown data file 'fashion'"):
        data.fetch("fashion")
    with pytest.raises(KeyError, match="not a text data set"):
        data.load_text("mnist")


def test_tensor_batches_cover_every_row_once():
    import torch

    x, y = torch.arange(10).float(), torch.arange(10)
    batches = list(data.tensor_batches(x, y, batch_size=4, generator=torch.Generator().manual_seed(0)))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat([b[1] for b in batches]).tolist()) == list(range(10))
    assert all(torch.equal(bx.long(), by) for bx, by in batches)
    assert len(list(data.tensor_batches(x, batch_size=4, drop_last=True))) == 2
    with pytest.raises(ValueError, match="differ in length"):
        next(data.tensor_batches(x, y[:5], batch_size=2))


def test_cli_status_and_fetch_errors(cache, monkeypatch, capsys):
    register(monkeypatch, dropins=())
    assert data.main(["status"]) == 0
    assert "toy" in capsys.readouterr().out
    assert data.main(["fetch", "nope"]) == 2
    assert data.main(["fetch", "--offline", "toy"]) == 1
    assert "Remedies" in capsys.readouterr().err


# --- the real files (present after `make data`; CI copies ../shared/data in) ----------

def _real(name: str) -> None:
    try:
        data.fetch(name, download=False, verbose=False)
    except data.DataUnavailableError:
        pytest.skip(f"{name} is not cached here (run: python -m course_utils.data fetch)")


def test_torchvision_reads_the_cached_fashion_mnist_offline():
    _real("fashion-mnist/test-images")
    _real("fashion-mnist/test-labels")
    ds = data.fashion_mnist(train=False)
    assert len(ds) == 10_000
    image, label = ds[0]
    assert image.size == (28, 28) and label == 9  # the first test image is an ankle boot
    x, y = data.image_tensors("fashion-mnist", train=False)
    assert x.shape == (10_000, 1, 28, 28) and x.min() == 0.0 and x.max() == 1.0  # bytes / 255
    assert x.mean().item() == pytest.approx(0.28685, abs=1e-5)
    assert y[:5].tolist() == [9, 2, 1, 1, 6] and y.bincount().tolist() == [1000] * 10
    # the fast path and torchvision's PIL images hold the same pixels
    assert x[0, 0].sum().item() == pytest.approx(sum(image.tobytes()) / 255, rel=1e-6)


def test_mnist_test_split_loads_without_the_train_split():
    _real("mnist/test-images")
    _real("mnist/test-labels")
    x, y = data.image_tensors("mnist", train=False)
    assert x.shape == (10_000, 1, 28, 28)
    assert y.bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.skipif(not data.SYSTEM_FASHION_MNIST.exists(), reason="Debian's dataset-fashion-mnist is not installed")
def test_debian_copy_installs_into_an_empty_cache(cache):
    path = data.fetch("fashion-mnist/test-labels", download=False, verbose=False)
    assert path == cache / "FashionMNIST/raw/t10k-labels-idx1-ubyte"
    assert data.check_content(data.FILES["fashion-mnist/test-labels"], path) is None
    ds = data.fashion_mnist(train=False)  # the test split alone is enough for torchvision
    assert len(ds) == 10_000 and not (cache / "FashionMNIST/raw/train-images-idx3-ubyte").exists()


def test_text_loaders():
    _real("names")
    _real("tinyshakespeare")
    names = data.load_names()
    assert len(names) == 32_033 and len(set(names)) == 29_494
    text = data.load_text("tinyshakespeare")
    assert len(text) == 1_115_394 and len(set(text)) == 65


# --- the offline bundle ---------------------------------------------------------------------------


@pytest.fixture
def small_course(cache, monkeypatch, tmp_path):
    """A registry of two small files, both cached, and a shipped folder with one checkpoint."""
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
    from course_utils import checkpoints

    monkeypatch.setattr(checkpoints, "SHIPPED_DIR", shipped)
    checkpoints.save_tensors({"w": __import__("torch").arange(4.0)}, shipped / "model", {"what": "test"})
    return cache, shipped


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_bundle_round_trip_into_an_empty_cache(small_course, tmp_path, monkeypatch):
    cache, shipped = small_course
    archive = tmp_path / "course.tar.gz"
    manifest = data.bundle(archive)
    assert sorted(f["path"] for f in manifest["files"]) == [
        "checkpoints/model.json", "checkpoints/model.safetensors", "data/Toy/raw/toy-file", "data/toy2.txt"]
    before = _tree(cache), _tree(shipped)
    fresh = tmp_path / "fresh"
    monkeypatch.setenv("COURSE_DATA_DIR", str(fresh))
    (shipped / "model.safetensors").unlink()  # a checkout without the binary: the bundle restores it
    report = data.unbundle(archive)
    assert _tree(fresh) == before[0] and _tree(shipped) == before[1]
    assert "data/toy2.txt: installed" in report and "checkpoints/model.json: already there" in report
    assert data.check_content(data.FILES["toy"], fresh / "Toy/raw/toy-file") is None
    assert data.unbundle(archive) == [line.replace("installed", "already there") for line in report]
    assert not [p for p in fresh.iterdir() if p.name.startswith(".unbundle")]  # staging removed


def _corrupt(archive: Path, how: str) -> None:
    raw = archive.read_bytes()
    archive.write_bytes(raw[: len(raw) // 2] if how == "truncate" else raw[:200] + bytes([raw[200] ^ 0xFF]) + raw[201:])


@pytest.mark.parametrize("how", ["truncate", "flip"])
def test_a_damaged_bundle_is_refused_and_the_cache_left_alone(small_course, tmp_path, monkeypatch, how):
    cache, shipped = small_course
    archive = tmp_path / "course.tar.gz"
    data.bundle(archive)
    _corrupt(archive, how)
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "fresh"))
    with pytest.raises(data.BundleError, match="corrupt or truncated|does not match") as info:
        data.unbundle(archive)
    assert "nothing was installed" in str(info.value)
    assert [p.name for p in (tmp_path / "fresh").iterdir()] == []
    assert data.main(["unbundle", str(archive)]) == 1


def test_a_tampered_manifest_is_caught_by_the_registry(small_course, tmp_path, monkeypatch):
    import io
    import json
    import tarfile

    cache, _ = small_course
    (cache / "toy2.txt").write_bytes(b"X" * data.FILES["toy2"].size)  # wrong bytes, right size
    with pytest.raises(data.BundleError, match="toy2.*fetch first"):
        data.bundle(tmp_path / "refused.tar.gz")
    # a hand-made archive whose manifest matches the wrong bytes: the registry's checksum still refuses it
    blob = json.dumps({"format": 1, "files": [{"path": "data/toy2.txt", "kind": "data", "name": "toy2",
                                               "bytes": data.FILES["toy2"].size,
                                               "sha256": data.sha256_of(cache / "toy2.txt")[0]}]}).encode()
    with tarfile.open(tmp_path / "evil.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("MANIFEST.json")
        info.size = len(blob)
        tar.addfile(info, io.BytesIO(blob))
        tar.add(cache / "toy2.txt", arcname="data/toy2.txt")
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "fresh"))
    with pytest.raises(data.BundleError, match="fails the registry's check"):
        data.unbundle(tmp_path / "evil.tar.gz")


@pytest.mark.parametrize("entry", ["../outside.txt", "/etc/course-evil", "data/link"])
def test_a_bundle_entry_outside_the_cache_or_not_a_file_is_refused(small_course, tmp_path, monkeypatch, entry):
    import io
    import tarfile

    with tarfile.open(tmp_path / "evil.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo(entry)
        if entry == "data/link":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "fresh"))
    with pytest.raises(data.BundleError, match="unexpected entry"):
        data.unbundle(tmp_path / "evil.tar.gz")
    assert not (tmp_path / "outside.txt").exists() and not Path("/etc/course-evil").exists()
    assert [p.name for p in (tmp_path / "fresh").iterdir()] == []


def test_fetch_prepares_the_chorale_cache_only_when_asked(monkeypatch, capsys):
    from course_utils import music

    calls = []
    monkeypatch.setattr(music, "load_chorales", lambda: calls.append(1) or [{"name": "bwv1.6"}] * 3)
    assert data.main(["fetch", "bach-chorales"]) == 0
    assert calls == [1] and "bach-chorales" in capsys.readouterr().out
    assert data.main(["fetch", "nope"]) == 2 and calls == [1]  # a named file (here an unknown one): no parse

    def missing():
        raise ImportError("No module named 'music21'")

    monkeypatch.setattr(music, "load_chorales", missing)
    assert data.main(["fetch", "bach-chorales"]) == 1
    assert "pip install music21" in capsys.readouterr().err


def test_write_bytes_atomic_replaces_whole_files_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "cache.json"
    data.write_bytes_atomic(target, b"old")
    assert target.read_bytes() == b"old" and (target.stat().st_mode & 0o777) == 0o644

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(data.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        data.write_bytes_atomic(target, b"new")
    assert target.read_bytes() == b"old" and [p.name for p in target.parent.iterdir()] == ["cache.json"]
