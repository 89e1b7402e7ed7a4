"""course_utils.data: checksums, sources in order, atomic downloads, the offline error, the command line."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import threading
from pathlib import Path

import pytest

from course_utils import data
from tests.data_support import CONTENT, private_cache, register


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    return private_cache(tmp_path, monkeypatch)


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
    with pytest.raises(KeyError, match="unknown data set or file 'fashion'"):
        data.names_in("fashion")


def test_cli_status_and_fetch_errors(cache, monkeypatch, capsys):
    register(monkeypatch, dropins=())
    assert data.main(["status"]) == 0
    assert "toy" in capsys.readouterr().out
    assert data.main(["fetch", "nope"]) == 2
    assert data.main(["fetch", "--offline", "toy"]) == 1
    assert "Remedies" in capsys.readouterr().err


PREPARED: list[str] = []


def prepare_toy() -> int:
    """A toy data set's registered preparation (``tests.test_data:prepare_toy``)."""
    PREPARED.append("toyset")
    return 0


def test_fetch_runs_a_registered_preparation_only_when_asked(cache, monkeypatch, capsys):
    monkeypatch.setitem(data.DATASETS, "toyset", data.Dataset("toyset", "a toy", "https://example.org", "MIT", "none",
                                                              prepare="tests.test_data:prepare_toy"))
    monkeypatch.setattr(data, "FILES", {})
    PREPARED.clear()
    assert data.selection(["toyset"]) == ([], ["toyset"])
    assert data.main(["fetch", "toyset"]) == 0 and PREPARED == ["toyset"]
    assert data.main(["fetch", "nope"]) == 2 and PREPARED == ["toyset"]  # an unknown name: nothing runs
    assert "unknown data set or file 'nope'" in capsys.readouterr().err
    assert data.selection([]) == ([], ["bach-chorales", "toyset"])  # no names: every preparation
    assert data.selection([], everything=True) == ([], ["bach-chorales", "toyset"])


def test_the_chorales_are_prepared_by_music_which_data_does_not_import():
    assert data.DATASETS["bach-chorales"].prepare == "course_utils.music:prepare_chorales"
    assert data.selection(["bach-chorales"]) == ([], ["bach-chorales"])
    assert data.selection(["fashion-mnist"])[1] == []  # another data set: no parse
    assert data.selection(["mnist"])[0] == ["mnist/test-images", "mnist/test-labels"]  # its required files
    assert data.selection(["mnist/train-images"])[0] == ["mnist/train-images"]  # a file named: that file
