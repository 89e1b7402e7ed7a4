"""The workshop kit: links that put the course into every learner's home on a JupyterHub (shared; for instructors).

A link made here goes to the hub, which starts the learner's server (after the
log-in) and hands the rest to nbgitpuller: the first click clones the course
into the learner's home, every later click brings in the instructor's updates
without overwriting what the learner changed, then JupyterLab opens the chosen
notebook.

    python -m course_utils.workshop link --hub https://hub.example.org            # opens 00
    python -m course_utils.workshop link --hub https://hub.example.org 03 05      # one link per notebook
    python -m course_utils.workshop link --hub http://10.0.0.5:8000 --repo file:///opt/genai-course

``--repo`` defaults to the repository named in ``pyproject.toml`` (``[tool.course]``);
a local path or ``file://`` URL clones from the hub machine itself (no network).
``workshop/jupyterhub_config.py`` uses :func:`pull_path` so that a plain log-in
does the same as the link.
"""

from __future__ import annotations

import argparse
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

from course_utils.cli import OneLineParser, errors_exit
from course_utils.colab import notebooks, repository

GIT_SCHEMES = ("https", "http", "file", "ssh", "git")


class LinkError(ValueError):
    """A link cannot be made from these arguments; the message says which one is wrong and why."""


def default_repo() -> tuple[str, str]:
    """``(clone URL, branch)`` of the course's public repository (``[tool.course]`` in ``pyproject.toml``)."""
    repo, branch = repository()
    return f"https://github.com/{repo}", branch


def normalise_repo(repo: str) -> str:
    """A clone URL git and nbgitpuller accept: URLs as they are, a local folder as a ``file://`` URL.

    A ``file://`` URL (not a bare path) keeps ``--depth 1`` working in nbgitpuller's clone.
    """
    repo = repo.strip()
    if not repo:
        raise LinkError("--repo is empty")
    scheme = urllib.parse.urlsplit(repo).scheme
    if scheme in GIT_SCHEMES:
        return repo.rstrip("/")
    if scheme == "" and repo.startswith(("/", ".", "~")):
        path = Path(repo).expanduser().resolve()
        if not path.is_dir():
            raise LinkError(f"--repo {repo}: no such folder")
        return path.as_uri()
    raise LinkError(f"--repo {repo!r}: give a URL ({', '.join(s + '://' for s in GIT_SCHEMES)}) or a local folder")


def course_folder() -> str:
    """The folder the course is cloned into, in every learner's home: the repository's name (``pyproject.toml``).

    The same whatever the clone URL, so a link to the public repository and one to
    a copy on the hub machine update the same folder.
    """
    return repository()[0].split("/")[1]


def notebook_name(choice: str, available: Sequence[str] | None = None) -> str:
    """The notebook file meant by ``choice``: ``03``, ``03_vae`` and ``03_vae.ipynb`` all name ``03_vae.ipynb``."""
    names = list(available) if available is not None else [p.name for p in notebooks()]
    stem = choice.strip().removesuffix(".ipynb")
    found = [n for n in names if n.removesuffix(".ipynb") == stem or n.startswith(f"{stem}_")]
    if len(found) != 1:
        what = "no notebook" if not found else f"{len(found)} notebooks"
        raise LinkError(f"{what} named {choice!r}; choose one of {', '.join(n.removesuffix('.ipynb') for n in names)}")
    return found[0]


def pull_query(repo: str, branch: str, notebook: str, target: str | None = None) -> dict[str, str]:
    """nbgitpuller's query: what to clone, where, and which notebook JupyterLab opens afterwards."""
    repo = normalise_repo(repo)
    if not branch or any(ch.isspace() for ch in branch):
        raise LinkError(f"--branch {branch!r} is not a branch name")
    target = target or course_folder()
    if target.startswith("/") or ".." in Path(target).parts:
        raise LinkError(f"--target {target!r} must be a folder inside the learner's home")
    return {"repo": repo, "branch": branch, "targetpath": target,
            "urlpath": f"lab/tree/{target}/notebooks/{notebook}"}


def pull_path(repo: str, branch: str, notebook: str = "00_setup.ipynb", target: str | None = None) -> str:
    """The nbgitpuller path inside a learner's server (``/git-pull?...``): a hub's ``Spawner.default_url``."""
    return "/git-pull?" + urllib.parse.urlencode(pull_query(repo, branch, notebook, target))


def hub_link(hub: str, repo: str, branch: str, notebook: str = "00_setup.ipynb", target: str | None = None) -> str:
    """The link to hand out: the hub logs the learner in, starts their server, pulls the course, opens ``notebook``."""
    parts = urllib.parse.urlsplit(hub.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise LinkError(f"--hub {hub!r}: give the hub's address, e.g. https://hub.example.org or http://10.0.0.5:8000")
    base = urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    return f"{base}/hub/user-redirect{pull_path(repo, branch, notebook, target)}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m course_utils.workshop", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    link = sub.add_parser("link", help="print the nbgitpuller link of each notebook (default: 00)")
    link.add_argument("notebooks", nargs="*", default=["00"], help="notebooks to open, e.g. 00 03_vae (default: 00)")
    link.add_argument("--hub", required=True, help="the hub's address, e.g. https://hub.example.org")
    link.add_argument("--repo", default=None, help="clone URL or local folder (default: the course's repository)")
    link.add_argument("--branch", default=None, help="branch to pull (default: the course's, from pyproject.toml)")
    link.add_argument("--target", default=None, help="folder in each learner's home (default: the repository's name)")
    return print_links(parser.parse_args(argv))


@errors_exit(LinkError, code=2)
def print_links(args: argparse.Namespace) -> int:
    """``workshop link``: one line per notebook asked for."""
    repo, branch = default_repo()
    for choice in args.notebooks:
        print(hub_link(args.hub, args.repo or repo, args.branch or branch, notebook_name(choice), args.target))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
