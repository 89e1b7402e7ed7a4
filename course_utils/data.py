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
``python -m course_utils.data fetch [NAME ...|--all]``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import http.client
import json
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from course_utils import REPO_ROOT
from course_utils.progress import progress
from course_utils.runtime import errors_exit

SYSTEM_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_CHUNK = 1 << 20


class DataUnavailableError(RuntimeError):
    """No verified copy of a data file could be found or downloaded."""


@dataclass(frozen=True)
class Dataset:
    """A data set's provenance: shown by ``status`` and in the README."""

    name: str
    title: str
    homepage: str
    licence: str
    citation: str


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
        "bach-chorales", "J. S. Bach's chorales (410 MusicXML files inside the music21 package; no download)",
        "https://www.music21.org/music21docs/about/referenceCorpus.html",
        "the music (Bach, 1685-1750) is public domain; the MusicXML encodings (Margaret Greentree, "
        "jsbchorales.net) ship in music21's corpus with the encoders' permission (music21/corpus/license.txt); "
        "music21 itself is BSD-3-Clause",
        "Cuthbert & Ariza (2010). music21: A Toolkit for Computer-Aided Musicology and Symbolic Music Data. "
        "ISMIR 2010; chorales as harmonised by J. S. Bach (BWV 250-438 and cantata movements)",
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


def write_bytes_atomic(target: str | Path, payload: bytes, mode: int = 0o644) -> Path:
    """Write ``payload`` to ``target`` through a temporary file in the same folder, then rename it into place.

    A crash leaves either the old file or the new one, never half a file; ``mode``
    replaces the private permissions ``mkstemp`` gives (caches and tables are ordinary files).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target




def sha256_of(path: str | Path, gz: bool = False) -> tuple[str, int]:
    """sha256 and byte count of a file's content (decompressed first when ``gz``): the course's one checksum helper."""
    digest, n = hashlib.sha256(), 0
    opener = gzip.open if gz else open
    with opener(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            n += len(chunk)
    return digest.hexdigest(), n


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def check_content(entry: DataFile, path: Path) -> str | None:
    """None if ``path`` holds ``entry``'s verified content, else what is wrong."""
    size = path.stat().st_size
    if size != entry.size:
        return f"size {size:,} bytes, expected {entry.size:,} (truncated or wrong file)"
    expected = entry.sha256
    if expected is None:  # only the archive checksum is known: compare with the one recorded at install
        side = _sidecar(path)
        expected = side.read_text().strip() if side.exists() else None
        if expected is None:
            return "no recorded checksum (installed by hand?)"
    digest, _ = sha256_of(path)
    return None if digest == expected else f"sha256 {digest[:12]}… expected {expected[:12]}…"


def _is_gz(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _install(entry: DataFile, source: Path, target: Path) -> str | None:
    """Copy (decompressing if needed) ``source`` to ``target`` atomically if it verifies.

    Returns None on success, else the reason the source was rejected.
    """
    gz = _is_gz(source)
    if entry.sha256 is None:  # only the upstream archive's checksum is known
        if not gz:
            return "only the upstream .gz archive can be verified for this file"
        if sha256_of(source)[0] != entry.archive_sha256:
            return "archive sha256 mismatch"
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, (gzip.open(source, "rb") if gz else open(source, "rb")) as src:
            shutil.copyfileobj(src, out, _CHUNK)
        problem = check_content(entry, tmp) if entry.sha256 else _check_size(entry, tmp)
        if problem:
            return problem
        if entry.sha256 is None:
            _sidecar(target).write_text(sha256_of(tmp)[0] + "\n")
        os.chmod(tmp, 0o644)  # mkstemp's file is private; a shared cache (a workshop hub) must be readable by all
        os.replace(tmp, target)
        return None
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        return f"unreadable ({type(exc).__name__}: {exc})"
    finally:
        tmp.unlink(missing_ok=True)


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
    if not chosen:
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


# --- loaders --------------------------------------------------------------------


def _image_root(dataset: str, train: bool) -> Path:
    split = "train" if train else "test"
    for name in (f"{dataset}/{split}-images", f"{dataset}/{split}-labels"):
        fetch(name, verbose=False)
    return data_dir()


def _one_split(base: type, folder: str) -> type:
    """A torchvision MNIST-style class that needs only the split it loads.

    torchvision checks for all four IDX files even when one split is asked for;
    offline, the course may have only the test split (MNIST in CI).
    """

    class OneSplit(base):
        @property
        def raw_folder(self) -> str:
            return os.path.join(self.root, folder, "raw")

        def _check_exists(self) -> bool:
            prefix = "train" if self.train else "t10k"
            return all(
                (Path(self.raw_folder) / f"{prefix}-{kind}-ubyte").exists()
                for kind in ("images-idx3", "labels-idx1")
            )

    OneSplit.__name__ = OneSplit.__qualname__ = base.__name__
    return OneSplit


def fashion_mnist(train: bool = True, transform=None, target_transform=None):
    """torchvision's ``FashionMNIST`` on the verified cache (``download=False``, works offline)."""
    from torchvision.datasets import FashionMNIST

    root = _image_root("fashion-mnist", train)
    cls = _one_split(FashionMNIST, "FashionMNIST")
    return cls(root, train=train, transform=transform, target_transform=target_transform, download=False)


def mnist(train: bool = False, transform=None, target_transform=None):
    """torchvision's ``MNIST``. Only the test split is needed offline; train downloads."""
    from torchvision.datasets import MNIST

    root = _image_root("mnist", train)
    return _one_split(MNIST, "MNIST")(root, train=train, transform=transform, target_transform=target_transform,
                                      download=False)


def image_tensors(dataset: str = "fashion-mnist", train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """The whole split in memory: images float32 ``[N, 1, 28, 28]`` in [0, 1], labels int64.

    The fast path for training loops (one pass over Fashion-MNIST train: 0.7 s,
    against 3.4 s for a ``DataLoader`` with per-image ``ToTensor`` on 2 cores).
    """
    loaders = {"fashion-mnist": fashion_mnist, "mnist": mnist}
    if dataset not in loaders:
        raise KeyError(f"unknown image data set {dataset!r}; use one of {', '.join(loaders)}")
    ds = loaders[dataset](train=train)
    return ds.data.unsqueeze(1).float().div_(255.0), ds.targets.long()


def tensor_batches(
    *tensors: torch.Tensor, batch_size: int, shuffle: bool = True,
    generator: torch.Generator | None = None, drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, ...]]:
    """Mini-batches of in-memory tensors (one epoch), indexed rather than collated."""
    if not tensors:
        raise ValueError("tensor_batches needs at least one tensor")
    n = len(tensors[0])
    if any(len(t) != n for t in tensors):
        raise ValueError(f"tensors differ in length: {[len(t) for t in tensors]}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        idx = order[start:start + batch_size]
        yield tuple(t[idx] for t in tensors)


def load_text(name: str = "tinyshakespeare") -> str:
    """A registered text file as a string (``tinyshakespeare`` or ``names``)."""
    if name not in ("tinyshakespeare", "names"):
        raise KeyError(f"{name!r} is not a text data set; use 'tinyshakespeare' or 'names'")
    return fetch(name, verbose=False).read_text(encoding="utf-8")


def load_names() -> list[str]:
    """The makemore names list: 32,033 lowercase names, in file order."""
    return [line for line in load_text("names").splitlines() if line]


# --- the offline bundle (workshops: one file on a USB stick) ------------------------------


class BundleError(RuntimeError):
    """A bundle is corrupt, truncated, or does not match the registry; nothing was installed."""


BUNDLE_FORMAT = 1


def _shipped_dir() -> Path:
    from course_utils import checkpoints  # imported here: checkpoints itself imports this module

    return checkpoints.SHIPPED_DIR


def bundle(out: str | Path, include_optional: bool = True) -> dict:
    """Write one ``.tar.gz`` with every verified data file of the cache and every shipped checkpoint.

    A ``MANIFEST.json`` inside lists each file with its size and sha256. Missing
    required data files are an error (fetch them first). The archive is written
    to a temporary file and renamed into place. Returns the manifest.
    """
    import datetime as dt
    import io
    import tarfile

    out = Path(out)
    cache, shipped = data_dir(), _shipped_dir()
    members: list[tuple[str, Path, dict]] = []
    for entry in FILES.values():
        path = cache / entry.path
        problem = check_content(entry, path) if path.exists() else "missing"
        if problem:
            if entry.required or path.exists():
                raise BundleError(f"{entry.name}: {problem} in {cache}; run python -m course_utils.data fetch first")
            continue
        if not entry.required and not include_optional:
            continue
        members.append((f"data/{entry.path}", path, {"kind": "data", "name": entry.name}))
    for path in sorted(p for p in shipped.rglob("*") if p.is_file()):
        members.append((f"checkpoints/{path.relative_to(shipped).as_posix()}", path, {"kind": "checkpoint"}))
    files = [{"path": arc, **info, "bytes": path.stat().st_size, "sha256": sha256_of(path)[0]}
             for arc, path, info in members]
    manifest = {"format": BUNDLE_FORMAT, "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                "files": files}
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with tarfile.open(tmp, "w:gz", compresslevel=6) as tar:
            blob = json.dumps(manifest, indent=1).encode()
            info = tarfile.TarInfo("MANIFEST.json")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
            for arc, path, _ in members:
                tar.add(path, arcname=arc, recursive=False)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return manifest


def _read_bundle(archive: Path, staging: Path) -> dict:
    """Extract ``archive`` into ``staging`` (regular files only, no path escapes); return its manifest."""
    import tarfile

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


def _verify_bundle(manifest: dict, staging: Path, archive: Path) -> None:
    by_name = {e.name: e for e in FILES.values()}
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
            problem = check_content(entry, path) if entry.sha256 else None
            if problem:
                raise BundleError(f"{archive.name}: {entry.name} fails the registry's check ({problem}); "
                                  "nothing was installed")


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
    cache, shipped = data_dir(), _shipped_dir()
    cache.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cache, prefix=".unbundle-"))
    report = []
    try:
        manifest = _read_bundle(archive, staging)
        _verify_bundle(manifest, staging, archive)
        for item in manifest["files"]:
            source = staging / item["path"]
            rel = Path(item["path"]).relative_to(item["path"].split("/")[0])
            target = (cache if item["kind"] == "data" else shipped) / rel
            if target.exists() and sha256_of(target)[0] == item["sha256"]:
                report.append(f"{item['path']}: already there")
                continue
            if item["kind"] == "checkpoint" and target.exists():
                report.append(f"{item['path']}: differs from the shipped file; left alone")
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
            if FILES.get(item.get("name", "")) is not None and FILES[item["name"]].sha256 is None:
                _sidecar(target).write_text(item["sha256"] + "\n")
            report.append(f"{item['path']}: installed")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


# --- command line ---------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils.data", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("status", help="what is present, verified, missing")
    fetch_p = sub.add_parser("fetch", help="fetch data sets or files (default: all the course needs)")
    fetch_p.add_argument("names", nargs="*", help=f"data sets ({', '.join(DATASETS)}) or files")
    fetch_p.add_argument("--all", action="store_true", help="every registered file, optional ones too")
    fetch_p.add_argument("--offline", action="store_true", help="never download; use local copies only")
    bundle_p = sub.add_parser("bundle", help="write one archive with every data file and checkpoint (for offline use)")
    bundle_p.add_argument("out", type=Path)
    unbundle_p = sub.add_parser("unbundle", help="verify a bundle and install it into the data cache")
    unbundle_p.add_argument("archive", type=Path)
    args = parser.parse_args(argv)
    print(f"data cache: {data_dir()}")
    if args.command in ("bundle", "unbundle"):
        return _bundle_command(args)
    if args.command == "status":
        for row in status():
            print(f"  {row.name:<26} {row.state}")
        return 0
    try:
        wanted = list(FILES) if args.all else (
            [n for sel in args.names if sel != "bach-chorales" for n in (names_in(sel) if sel in FILES else [
                f for f in names_in(sel) if FILES[f].required])]
            if args.names else [n for n, f in FILES.items() if f.required]
        )
    except KeyError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    failed = 0
    for name in wanted:
        try:
            path = fetch(name, download=not args.offline)
            print(f"  {name:<26} ok  {path}")
        except DataUnavailableError as exc:
            failed += 1
            print(f"error: {exc}", file=sys.stderr)
    if args.all or not args.names or "bach-chorales" in args.names:
        failed += prepare_chorales()
    return 1 if failed else 0


def prepare_chorales() -> int:
    """Parse the Bach chorales in music21's corpus once into the token cache of notebooks 05 and 06.

    No download: the chorales ship inside the ``music21`` package. Parsing all of them
    takes a while, so ``fetch`` (and ``make data``) does it once instead of the notebook's
    first run. Returns the number of failures (0 or 1).
    """
    try:
        from course_utils import music

        chorales = music.load_chorales()
    except ImportError as exc:
        print(f"error: bach-chorales needs music21 ({exc}); pip install music21", file=sys.stderr)
        return 1
    print(f"  {'bach-chorales':<26} ok  {music.cache_path()} ({len(chorales)} melodies)")
    return 0


@errors_exit(BundleError)
def _bundle_command(args: argparse.Namespace) -> int:
    if args.command == "bundle":
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
