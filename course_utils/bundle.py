"""The offline bundle: every data file and shipped checkpoint in one verified archive (shared; for workshops).

A workshop with poor Wi-Fi copies one file from a USB stick instead of
downloading (docs/instructor.md, "The data on a USB stick")::

    python -m course_utils.bundle write genai-data.tar.gz      # on a machine that has everything
    python -m course_utils.bundle install genai-data.tar.gz    # on each laptop or on the hub

A ``MANIFEST.json`` inside lists each file with its size and sha256;
installing checks every file, and each data file against the registry of
:mod:`course_utils.data`, before anything is installed.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from course_utils import checkpoints, data
from course_utils.cli import OneLineParser, errors_exit
from course_utils.files import atomic_path, sha256_of, write_text_atomic

BUNDLE_FORMAT = 1
_CHUNK = 1 << 20


class BundleError(RuntimeError):
    """A bundle is corrupt, truncated, or does not match the registry; nothing was installed."""


def _members(include_optional: bool) -> list[tuple[str, Path, dict[str, str]]]:
    """``(name in the archive, file, what it is)`` for every verified data file and every shipped checkpoint."""
    cache, shipped = data.data_dir(), checkpoints.SHIPPED_DIR
    members = []
    for entry in data.FILES.values():
        path = cache / entry.path
        problem = data.check_content(entry, path) if path.exists() else "missing"
        if problem:
            if entry.required or path.exists():
                raise BundleError(f"{entry.name}: {problem} in {cache}; run python -m course_utils.data fetch first")
            continue
        if entry.required or include_optional:
            members.append((f"data/{entry.path}", path, {"kind": "data", "name": entry.name}))
    for path in sorted(p for p in shipped.rglob("*") if p.is_file()):
        members.append((f"checkpoints/{path.relative_to(shipped).as_posix()}", path, {"kind": "checkpoint"}))
    return members


def bundle(out: str | Path, include_optional: bool = True) -> dict[str, Any]:
    """Write one ``.tar.gz`` with every verified data file of the cache and every shipped checkpoint.

    A ``MANIFEST.json`` inside lists each file with its size and sha256. Missing
    required data files are an error (fetch them first). The archive is written
    whole or not at all. Returns the manifest.
    """
    members = _members(include_optional)
    files = [{"path": arc, **info, "bytes": path.stat().st_size, "sha256": sha256_of(path)[0]}
             for arc, path, info in members]
    manifest = {"format": BUNDLE_FORMAT, "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "files": files}
    with atomic_path(out) as tmp, tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
        blob = json.dumps(manifest, indent=1).encode()
        info = tarfile.TarInfo("MANIFEST.json")
        info.size = len(blob)
        tar.addfile(info, io.BytesIO(blob))
        for arc, path, _ in members:
            tar.add(path, arcname=arc, recursive=False)
    return manifest


def _extract(archive: Path, staging: Path) -> None:
    """Extract ``archive`` into ``staging``: regular files only, no path leaving it; the whole gzip checked first."""
    try:
        with gzip.open(archive, "rb") as whole:  # read to the end first: gzip checks its CRC only there
            while whole.read(_CHUNK):
                pass
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                name = Path(member.name)
                if not member.isfile() or name.is_absolute() or ".." in name.parts:
                    raise BundleError(f"{archive.name}: unexpected entry {member.name!r}; not a course bundle")
                target = staging / name
                target.parent.mkdir(parents=True, exist_ok=True)
                with tar.extractfile(member) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise BundleError(f"{archive} is corrupt or truncated ({type(exc).__name__}: {exc}); nothing was installed. "
                          "Copy the bundle again and rerun.") from None


def _read_manifest(archive: Path, staging: Path) -> dict[str, Any]:
    """The extracted bundle's manifest, refused if it is missing, unreadable or of another format."""
    manifest_path = staging / "MANIFEST.json"
    if not manifest_path.exists():
        raise BundleError(f"{archive.name} has no MANIFEST.json: not a course bundle; nothing was installed")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{archive.name}: its MANIFEST.json is unreadable ({exc}); nothing was installed") from None
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{archive.name}: bundle format {manifest.get('format')!r}, this code reads "
                          f"{BUNDLE_FORMAT}; nothing was installed")
    return manifest


def _verify(manifest: dict[str, Any], staging: Path, archive: Path) -> None:
    """Every listed file is there and matches its checksum; every data file is the registry's."""
    by_name = {e.name: e for e in data.FILES.values()}
    for item in manifest.get("files", []):
        path = staging / item["path"]
        if not path.exists():
            raise BundleError(f"{archive.name}: {item['path']} is listed but missing; nothing was installed")
        digest, size = sha256_of(path)
        if digest != item["sha256"] or size != item["bytes"]:
            raise BundleError(f"{archive.name}: {item['path']} does not match its checksum; nothing was installed")
        if item["kind"] == "data":
            entry = by_name.get(item.get("name", ""))
            if entry is None or f"data/{entry.path}" != item["path"]:
                raise BundleError(f"{archive.name}: {item['path']} is not a file of this course's registry")
            problem = data.check_content(entry, path) if entry.sha256 else None
            if problem:
                raise BundleError(f"{archive.name}: {entry.name} fails the registry's check ({problem}); "
                                  "nothing was installed")


def _install(item: dict[str, Any], source: Path, cache: Path) -> str:
    """Move one verified file into place (a differing shipped checkpoint is left alone); what happened."""
    rel = Path(item["path"]).relative_to(item["path"].split("/")[0])
    target = (cache if item["kind"] == "data" else checkpoints.SHIPPED_DIR) / rel
    if target.exists() and sha256_of(target)[0] == item["sha256"]:
        return f"{item['path']}: already there"
    if item["kind"] == "checkpoint" and target.exists():
        return f"{item['path']}: differs from the shipped file; left alone"
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, target)
    entry = data.FILES.get(item.get("name", ""))
    if entry is not None and entry.sha256 is None:
        write_text_atomic(data.sidecar(target), item["sha256"] + "\n")
    return f"{item['path']}: installed"


def unbundle(archive: str | Path) -> list[str]:
    """Install a bundle made by :func:`bundle` into the data cache, verifying every file first.

    Everything is checked before anything is installed: a corrupt, truncated
    or tampered archive raises :class:`BundleError` and leaves the cache as it
    was. Data files go into the cache; checkpoints are restored into the
    shipped folder only where a file is missing there (a shipped checkpoint
    that differs is reported and left alone: only ``--ship`` replaces those).
    Returns one line per file saying what happened.
    """
    archive = Path(archive)
    if not archive.is_file():
        raise BundleError(f"{archive} not found")
    cache = data.data_dir()
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cache, prefix=".unbundle-"))
    try:
        _extract(archive, staging)
        manifest = _read_manifest(archive, staging)
        _verify(manifest, staging, archive)
        return [_install(item, staging / item["path"], cache) for item in manifest["files"]]
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@errors_exit(BundleError)
def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m course_utils.bundle", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    write = sub.add_parser("write", help="write one archive with every data file and checkpoint (for offline use)")
    write.add_argument("out", type=Path)
    install = sub.add_parser("install", help="verify a bundle and install it into the data cache")
    install.add_argument("archive", type=Path)
    args = parser.parse_args(argv)
    if args.command == "install" and not args.archive.is_file():
        parser.error(f"argument archive: {args.archive} is not a file (give the bundle that bundle write made)")
    print(f"data cache: {data.data_dir()}")
    if args.command == "write":
        manifest = bundle(args.out)
        total = sum(f["bytes"] for f in manifest["files"])
        print(f"wrote {args.out}: {len(manifest['files'])} files ({total / 1e6:.0f} MB before compression), "
              f"{args.out.stat().st_size / 1e6:.0f} MB")
    else:
        for line in unbundle(args.archive):
            print(f"  {line}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
