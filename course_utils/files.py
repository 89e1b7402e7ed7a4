"""Files written whole or not at all, and their checksums (shared): the one place the course does either.

Every cache, table, checkpoint and shipped model goes through :func:`atomic_path`
(a file) or :func:`atomic_folder` (a folder): the content is written under a
temporary name in the same folder and renamed into place, so a crash or a full
disk leaves the old version or the new one, never half of one. No topic module
is imported here.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_CHUNK = 1 << 20


@contextmanager
def atomic_path(target: str | Path, mode: int = 0o644) -> Iterator[Path]:
    """A temporary path beside ``target``; when the block ends without error, it is renamed to ``target``.

    Write the file to the yielded path inside the block. ``mode`` replaces the
    private permissions of ``mkstemp`` (caches and cards are ordinary files). On
    an error the temporary file is removed and ``target`` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextmanager
def atomic_folder(target: str | Path) -> Iterator[Path]:
    """A temporary folder beside ``target``; when the block ends without error, it replaces ``target``.

    Files written into it are made readable by all (a shipped model is read by
    every learner on a shared hub). On an error the temporary folder is removed
    and ``target`` is left as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part"))
    try:
        yield tmp
        for path in tmp.iterdir():
            path.chmod(0o644)
        tmp.chmod(0o755)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_bytes_atomic(target: str | Path, payload: bytes, mode: int = 0o644) -> Path:
    """Write ``payload`` to ``target`` whole or not at all (see :func:`atomic_path`)."""
    with atomic_path(target, mode) as tmp:
        tmp.write_bytes(payload)
    return Path(target)


def write_text_atomic(target: str | Path, text: str, mode: int = 0o644) -> Path:
    """Write ``text`` (UTF-8) to ``target`` whole or not at all."""
    return write_bytes_atomic(target, text.encode("utf-8"), mode)


def sha256_of(path: str | Path, gz: bool = False) -> tuple[str, int]:
    """sha256 and byte count of a file's content (decompressed first when ``gz``)."""
    digest, n = hashlib.sha256(), 0
    opener = gzip.open if gz else open
    with opener(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            n += len(chunk)
    return digest.hexdigest(), n
