"""Every data file the course uses: one checksummed registry, offline first.

Taught in notebook 00 ("the data check"); used by every later notebook.

Each file is looked for in this order, and its checksum is checked whatever the
source:

1. the cache, ``COURSE_DATA_DIR`` (default: ``data/`` in the repository), at the
   place the course reads it from (e.g. ``FashionMNIST/raw/`` for torchvision),
   or as a copy dropped into the cache by hand (``fashion-mnist/*.gz``,
   ``mnist/*.gz``, ``names.txt``…);
2. a system copy (Debian's ``dataset-fashion-mnist`` package puts Fashion-MNIST
   in ``/usr/share/datasets/fashion-mnist/``; its ``.gz`` containers differ from
   upstream's, so the *decompressed* content is what is verified);
3. a download from the canonical URL, then a mirror, with a progress bar.

Downloads go to a temporary file that is renamed into place only after it
verifies; a corrupt or truncated cached file is reported and replaced. With no
network and no copy, one :class:`DataUnavailableError` names the missing file
and the remedies.

Command line: ``python -m course_utils.data status`` and
``python -m course_utils.data fetch [NAME ...|--all]``. The loaders that read
these files are in :mod:`course_utils.datasets`; the offline bundle (one
archive for a USB stick) in :mod:`course_utils.bundle`.
"""

from __future__ import annotations

import gzip
import http.client
import importlib
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from course_utils import REPO_ROOT
from course_utils.cli import OneLineParser
from course_utils.files import atomic_path, sha256_of, write_text_atomic
from course_utils.progress import progress

SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
_CHUNK = 1 << 20


class DataUnavailableError(RuntimeError):
    """No verified copy of a data file could be found or downloaded."""


@dataclass(frozen=True)
class Dataset:
    """A data set's provenance (shown by ``status`` and in the README), and how it is prepared.

    ``prepare`` names a function, ``"module:function"``, that ``fetch`` runs after
    the files: the topic that reads the data set registers it here, so this module
    imports no topic. It returns the number of failures (0 or 1).
    """

    name: str
    title: str
    homepage: str
    licence: str
    citation: str
    prepare: str | None = None


@dataclass(frozen=True)
class DataFile:
    """One file the course reads.

    ``sha256`` and ``size`` describe the content the course reads (decompressed
    when ``gzip`` is true); ``archive_sha256`` the file as upstream serves it.
    ``dropins`` are paths, relative to the cache, where a hand-copied file is
    accepted; ``system_paths`` are absolute paths of system copies.
    """

    name: str
    dataset: str
    path: str
    urls: tuple[str, ...]
    size: int
    sha256: str | None = None
    archive_sha256: str | None = None
    gzip: bool = False
    dropins: tuple[str, ...] = ()
    system_paths: tuple[str, ...] = ()
    required: bool = True
    hint: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if not (self.sha256 or self.archive_sha256):
            raise ValueError(f"{self.name}: a registry entry needs a checksum")


_FMNIST_URLS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/{f}.gz",
    "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/{f}.gz",
)
_MNIST_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/{f}.gz",
    "https://storage.googleapis.com/cvdf-datasets/mnist/{f}.gz",
)

DATASETS: dict[str, Dataset] = {
    "fashion-mnist": Dataset(
        "fashion-mnist", "Fashion-MNIST (70,000 28x28 grey images of 10 clothing classes)",
        "https://github.com/zalandoresearch/fashion-mnist", "MIT",
        "Xiao, Rasul & Vollgraf (2017). Fashion-MNIST: a Novel Image Dataset for "
        "Benchmarking Machine Learning Algorithms. arXiv:1708.07747",
    ),
    "mnist": Dataset(
        "mnist", "MNIST handwritten digits (70,000 28x28 grey images)",
        "http://yann.lecun.com/exdb/mnist/", "CC BY-SA 3.0 (Yann LeCun and Corinna Cortes)",
        "LeCun, Bottou, Bengio & Haffner (1998). Gradient-based learning applied to "
        "document recognition. Proc. IEEE 86(11)",
    ),
    "tinyshakespeare": Dataset(
        "tinyshakespeare", "Tiny Shakespeare (1.1 MB of Shakespeare's plays)",
        "https://github.com/karpathy/char-rnn", "public domain text; char-rnn repository MIT",
        "Karpathy (2015). The Unreasonable Effectiveness of Recurrent Neural Networks. "
        "github.com/karpathy/char-rnn",
    ),
    "names": Dataset(
        "names", "makemore names (32,033 US baby names, 2018)",
        "https://github.com/karpathy/makemore", "US-government data (ssa.gov); makemore MIT",
        "Karpathy (2022). makemore. github.com/karpathy/makemore; data: US Social "
        "Security Administration baby names, 2018",
    ),
    "bach-chorales": Dataset(
        "bach-chorales", "J. S. Bach's chorales (410 MusicXML files inside the music21 package, one of them "
        "the prelude BWV 846; no download)",
        "https://www.music21.org/music21docs/about/referenceCorpus.html",
        "the music (Bach, 1685-1750) is public domain; the MusicXML encodings (Margaret Greentree, "
        "jsbchorales.net) ship in music21's corpus with the encoders' permission (music21/corpus/license.txt); "
        "music21 itself is BSD-3-Clause",
        "Cuthbert & Ariza (2010). music21: A Toolkit for Computer-Aided Musicology and Symbolic Music Data. "
        "ISMIR 2010; chorales as harmonised by J. S. Bach (BWV 250-438 and chorale movements of his cantatas, "
        "passions, Christmas Oratorio and motets)",
        prepare="course_utils.music:prepare_chorales",
    ),
}


def _fmnist(split: str, kind: str, size: int, sha256: str) -> DataFile:
    f = f"{split}-{kind}"
    return DataFile(
        name=f"fashion-mnist/{'train' if split == 'train' else 'test'}-{kind.split('-')[0]}",
        dataset="fashion-mnist", path=f"FashionMNIST/raw/{f}",
        urls=tuple(u.format(f=f) for u in _FMNIST_URLS), size=size, sha256=sha256, gzip=True,
        dropins=(f"fashion-mnist/{f}.gz", f"fashion-mnist/{f}", f"FashionMNIST/raw/{f}.gz"),
        system_paths=(str(SYSTEM_FASHION_MNIST / f"{f}.gz"),),
    )


def _mnist(split: str, kind: str, size: int, sha256: str | None, archive: str, required: bool) -> DataFile:
    f = f"{split}-{kind}"
    return DataFile(
        name=f"mnist/{'train' if split == 'train' else 'test'}-{kind.split('-')[0]}",
        dataset="mnist", path=f"MNIST/raw/{f}",
        urls=tuple(u.format(f=f) for u in _MNIST_URLS), size=size, sha256=sha256,
        archive_sha256=archive, gzip=True, required=required,
        dropins=(f"mnist/{f}.gz", f"mnist/{f}", f"MNIST/raw/{f}.gz"),
    )


FILES: dict[str, DataFile] = {
    f.name: f
    for f in (
        _fmnist("train", "images-idx3-ubyte", 47_040_016,
                "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
        _fmnist("train", "labels-idx1-ubyte", 60_008,
                "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
        _fmnist("t10k", "images-idx3-ubyte", 7_840_016,
                "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
        _fmnist("t10k", "labels-idx1-ubyte", 10_008,
                "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
        _mnist("t10k", "images-idx3-ubyte", 7_840_016,
               "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
               "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", True),
        _mnist("t10k", "labels-idx1-ubyte", 10_008,
               "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
               "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", True),
        # The train split is optional: no notebook needs it offline. Only the
        # upstream archive's checksum is published, so that is what is verified.
        _mnist("train", "images-idx3-ubyte", 47_040_016, None,
               "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", False),
        _mnist("train", "labels-idx1-ubyte", 60_008, None,
               "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", False),
        DataFile(
            name="tinyshakespeare", dataset="tinyshakespeare", path="tinyshakespeare.txt",
            urls=(
                "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
                "https://raw.githubusercontent.com/karpathy/ng-video-lecture/master/input.txt",
            ),
            size=1_115_394,
            sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
            dropins=("input.txt", "text/tinyshakespeare.txt"),
        ),
        DataFile(
            name="names", dataset="names", path="names.txt",
            urls=(
                "https://raw.githubusercontent.com/karpathy/makemore/master/names.txt",
                "https://raw.githubusercontent.com/karpathy/makemore/988aa59e4d8fefa526d06f3b453ad116258398d4/names.txt",
            ),
            size=228_145,
            sha256="0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d",
            dropins=("text/names.txt",),
        ),
    )
}


def data_dir() -> Path:
    """The cache directory: ``COURSE_DATA_DIR``, else ``data/`` in the course checkout.

    A non-editable install (no checkout around the package) uses
    ``~/.cache/genai-course/data``.
    """
    env = os.environ.get("COURSE_DATA_DIR", "").strip()
    if env:
        return Path(env).expanduser().resolve()
    if (REPO_ROOT / "pyproject.toml").exists():
        return REPO_ROOT / "data"
    return Path.home() / ".cache" / "genai-course" / "data"


# --- verification -------------------------------------------------------------


def sidecar(path: Path) -> Path:
    """Where the content checksum of a file whose registry entry has only the archive's is recorded."""
    return path.with_name(path.name + ".sha256")


def check_content(entry: DataFile, path: Path) -> str | None:
    """None if ``path`` holds ``entry``'s verified content, else what is wrong."""
    size = path.stat().st_size
    if size != entry.size:
        return f"size {size:,} bytes, expected {entry.size:,} (truncated or wrong file)"
    expected = entry.sha256
    if expected is None:  # only the archive checksum is known: compare with the one recorded at install
        side = sidecar(path)
        expected = side.read_text().strip() if side.exists() else None
        if expected is None:
            return "no recorded checksum (installed by hand?)"
    digest, _ = sha256_of(path)
    return None if digest == expected else f"sha256 {digest[:12]}… expected {expected[:12]}…"


def _is_gz(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


class _Rejected(Exception):
    """A source file that does not verify; its message says why."""


def _install(entry: DataFile, source: Path, target: Path) -> str | None:
    """Copy (decompressing if needed) ``source`` to ``target``, whole or not at all, if it verifies.

    Returns None on success, else the reason the source was rejected.
    """
    gz = _is_gz(source)
    if entry.sha256 is None:  # only the upstream archive's checksum is known
        if not gz:
            return "only the upstream .gz archive can be verified for this file"
        if sha256_of(source)[0] != entry.archive_sha256:
            return "archive sha256 mismatch"
    try:
        with atomic_path(target) as tmp:  # readable by all: a shared cache (a workshop hub)
            with (gzip.open(source, "rb") if gz else open(source, "rb")) as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, _CHUNK)
            problem = check_content(entry, tmp) if entry.sha256 else _check_size(entry, tmp)
            if problem:
                raise _Rejected(problem)
            if entry.sha256 is None:
                write_text_atomic(sidecar(target), sha256_of(tmp)[0] + "\n")
    except _Rejected as exc:
        return str(exc)
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        return f"unreadable ({type(exc).__name__}: {exc})"
    return None


def _check_size(entry: DataFile, path: Path) -> str | None:
    size = path.stat().st_size
    return None if size == entry.size else f"size {size:,} bytes, expected {entry.size:,}"


# --- sources --------------------------------------------------------------------


def _download(url: str, dest: Path, timeout: float = 30.0) -> None:
    """Stream ``url`` into ``dest`` (which is a temporary file) with a progress bar."""
    request = urllib.request.Request(url, headers={"User-Agent": "course-utils"})
    with urllib.request.urlopen(request, timeout=timeout) as response, open(dest, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with progress(total=total, unit="B", unit_scale=True, desc=Path(url).name) as bar:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                bar.update(len(chunk))


def _try_download(entry: DataFile, target: Path) -> tuple[bool, list[str]]:
    """Download ``entry`` from each URL in turn into a scratch file, installing the first that verifies."""
    errors = []
    for url in entry.urls:
        fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".download")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            _download(url, tmp)
            problem = _install(entry, tmp, target)
            if problem is None:
                return True, errors
            errors.append(f"{url}: downloaded file rejected: {problem}")
        except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
            errors.append(f"{url}: {type(exc).__name__}: {getattr(exc, 'reason', exc)}")
        finally:
            tmp.unlink(missing_ok=True)
    return False, errors


def _remedies(entry: DataFile, cache: Path) -> str:
    lines = [
        f"connect to the internet and rerun (or run: python -m course_utils.data fetch {entry.dataset});",
    ]
    if entry.system_paths:
        lines.append("on Debian/Ubuntu install the system copy: sudo apt-get install dataset-fashion-mnist;")
    published = entry.urls[0].rsplit("/", 1)[-1]
    lines.append(
        f"copy the file as published ({published}, from {entry.urls[0]}) from a machine that has it "
        f"to {cache / entry.dropins[0] if entry.dropins else cache / entry.path} and rerun "
        f"(the cache is COURSE_DATA_DIR={cache})."
    )
    return "\n".join(f"  {i}. {line}" for i, line in enumerate(lines, 1))


def fetch(name: str, *, download: bool = True, verbose: bool = True) -> Path:
    """Return the path of a verified copy of the registry file ``name``.

    Looks in the cache, then the drop-in places and system copies, then
    downloads (if ``download``). Raises :class:`DataUnavailableError` with the
    remedies when no source works.
    """
    entry = _entry(name)
    cache = data_dir()
    target = cache / entry.path
    notes: list[str] = []
    if target.exists():
        problem = check_content(entry, target)
        if problem is None:
            return target
        _say(verbose, f"{entry.name}: cached file {target} is corrupt ({problem}); replacing it")
        notes.append(f"cached copy rejected: {problem}")
        target.unlink()
    candidates = [cache / d for d in entry.dropins] + [Path(p) for p in entry.system_paths]
    for source in candidates:
        if source.exists() and source.resolve() != target.resolve():
            problem = _install(entry, source, target)
            if problem is None:
                _say(verbose, f"{entry.name}: installed from {source}")
                return target
            _say(verbose, f"{entry.name}: ignoring {source} ({problem})")
            notes.append(f"{source} rejected: {problem}")
    if download:
        target.parent.mkdir(parents=True, exist_ok=True)
        ok, errors = _try_download(entry, target)
        if ok:
            _say(verbose, f"{entry.name}: downloaded and verified")
            return target
        notes += errors
    detail = "\n".join(f"  - {n}" for n in notes) or "  - no copy found and downloading was not allowed"
    raise DataUnavailableError(
        f"Data file '{entry.name}' ({entry.path}) is not available: no verified copy in the cache "
        f"{cache}, none on this system, and it could not be downloaded.\n{detail}\nRemedies:\n"
        f"{_remedies(entry, cache)}"
    )


def _say(verbose: bool, message: str) -> None:
    if verbose:
        print(message, file=sys.stderr)


def _entry(name: str) -> DataFile:
    if name not in FILES:
        raise KeyError(f"unknown data file {name!r}; known: {', '.join(FILES)}")
    return FILES[name]


def names_in(selection: str) -> list[str]:
    """Registry file names for a file name or a data set name (``fashion-mnist``, ``mnist``…)."""
    if selection in FILES:
        return [selection]
    chosen = [f.name for f in FILES.values() if f.dataset == selection]
    if not chosen and selection not in DATASETS:
        raise KeyError(f"unknown data set or file {selection!r}; known: {', '.join(DATASETS)} or {', '.join(FILES)}")
    return chosen


def fetch_dataset(dataset: str, *, download: bool = True) -> list[Path]:
    """Fetch every file of ``dataset`` (optional files such as MNIST train only if asked by name)."""
    files = names_in(dataset)
    if dataset in DATASETS:
        files = [n for n in files if FILES[n].required] or files
    return [fetch(n, download=download) for n in files]


@dataclass(frozen=True)
class StatusRow:
    name: str
    path: Path
    state: str


def status() -> list[StatusRow]:
    """The state of every registry file, without downloading anything."""
    cache, rows = data_dir(), []
    for entry in FILES.values():
        target = cache / entry.path
        if target.exists():
            problem = check_content(entry, target)
            state = "verified" if problem is None else f"corrupt: {problem}"
        else:
            sources = [cache / d for d in entry.dropins] + [Path(p) for p in entry.system_paths]
            found = next((s for s in sources if s.exists()), None)
            state = f"missing (a copy at {found}; fetch installs it)" if found else "missing"
            if not entry.required:
                state += " [optional]"
        rows.append(StatusRow(entry.name, target, state))
    return rows


def prepare(dataset: str) -> int:
    """Run ``dataset``'s registered preparation (see :class:`Dataset`); returns the number of failures."""
    module, _, function = (DATASETS[dataset].prepare or "").partition(":")
    if not function:
        raise KeyError(f"{dataset!r} has no registered preparation")
    return getattr(importlib.import_module(module), function)()


# --- command line ---------------------------------------------------------------


def selection(names: Sequence[str], everything: bool = False) -> tuple[list[str], list[str]]:
    """What ``fetch`` does for its arguments: ``(registry files to fetch, data sets to prepare)``.

    No names: every required file and every preparation; ``everything``: the
    optional files too. A data set's name selects its required files (and its
    preparation), a file's name that file only.
    """
    if everything or not names:
        files = [n for n, f in FILES.items() if everything or f.required]
        return files, [d.name for d in DATASETS.values() if d.prepare]
    files, prepared = [], []
    for chosen in names:
        found = names_in(chosen)
        files += found if chosen in FILES else [n for n in found if FILES[n].required]
        if chosen in DATASETS and DATASETS[chosen].prepare:
            prepared.append(chosen)
    return files, prepared


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m course_utils.data", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="what is present, verified, missing")
    fetch_p = sub.add_parser("fetch", help="fetch data sets or files (default: all the course needs)")
    fetch_p.add_argument("names", nargs="*", help=f"data sets ({', '.join(DATASETS)}) or files")
    fetch_p.add_argument("--all", action="store_true", help="every registered file, optional ones too")
    fetch_p.add_argument("--offline", action="store_true", help="never download; use local copies only")
    args = parser.parse_args(argv)
    print(f"data cache: {data_dir()}")
    if args.command == "status":
        for row in status():
            print(f"  {row.name:<26} {row.state}")
        return 0
    try:
        files, prepared = selection(args.names, args.all)
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    failed = 0
    for name in files:
        try:
            path = fetch(name, download=not args.offline)
            print(f"  {name:<26} ok  {path}")
        except DataUnavailableError as exc:
            failed += 1
            print(f"error: {exc}", file=sys.stderr)
    failed += sum(prepare(dataset) for dataset in prepared)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
