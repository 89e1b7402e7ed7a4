"""Shared parts of the workshop kit's end-to-end tests (the hub smoke test, the browser test).

They start real servers, so every helper here is about starting, waiting,
talking to a kernel and, above all, cleaning up: every process a test starts
is ended, even when the test fails.

``COURSE_REQUIRE_WORKSHOP_TESTS=1`` (set by ``make hub-test`` and ``make
browser-test``, which ``.ci/run`` runs) turns a missing requirement from a skip
into a failure, so CI can never pass by skipping them; ``=0`` skips them
(``make test``'s unit run sets it: ``.ci/run`` runs them on their own after it).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from course_utils import REPO_ROOT
from course_utils.runtime import notebook_env

REQUIRE_ENV = "COURSE_REQUIRE_WORKSHOP_TESTS"
LOCAL_PROXY = REPO_ROOT / "build" / "node" / "node_modules" / ".bin" / "configurable-http-proxy"


def require(missing: Sequence[str], what: str) -> None:
    """Skip the module (or fail it, under ``COURSE_REQUIRE_WORKSHOP_TESTS=1``) when something is missing.

    ``COURSE_REQUIRE_WORKSHOP_TESTS=0`` (``make test``) skips it anyway: ``make hub-test`` and ``make browser-test``
    run it on their own.
    """
    if os.environ.get(REQUIRE_ENV) == "0":
        pytest.skip(f"{what}: run on its own (.ci/run, make hub-test, make browser-test)", allow_module_level=True)
    if not missing:
        return
    reason = f"{what} needs {', '.join(missing)} (see make hub-test / make browser-test)"
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def proxy_command() -> str | None:
    """configurable-http-proxy: ``make hub-test``'s local install, else ``$CONFIGURABLE_HTTP_PROXY``, else PATH."""
    if LOCAL_PROXY.exists():
        return str(LOCAL_PROXY)
    return os.environ.get("CONFIGURABLE_HTTP_PROXY") or shutil.which("configurable-http-proxy")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(check: Callable[[], bool], timeout: float, what: str, proc: subprocess.Popen | None = None,
             log: Path | None = None) -> None:
    """Poll ``check`` until true; fail with the log's tail when ``proc`` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"{what}: the process exited ({proc.returncode}).\n{tail(log)}")
        time.sleep(0.5)
    pytest.fail(f"{what}: not ready after {timeout:.0f} s.\n{tail(log)}")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status < 400
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def tail(log: Path | None, chars: int = 4000) -> str:
    return log.read_text(errors="replace")[-chars:] if log is not None and log.exists() else ""


def start(cmd: Sequence[str], cwd: Path, env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start a server in its own session (so it and its children can be ended together), logging to ``log``."""
    with open(log, "wb") as out:
        return subprocess.Popen(list(cmd), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def processes_under(root: Path) -> list[int]:
    """Ids of the processes whose working folder is inside ``root`` (Linux; elsewhere none are found)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:
            continue
        if int(entry.name) != os.getpid() and cwd.is_relative_to(root):
            found.append(int(entry.name))
    return found


def processes_matching(text: str) -> list[int]:
    """Ids of the processes whose command line contains ``text`` (Linux; elsewhere none are found)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def processes_of(uids: set[int]) -> list[int]:
    """Ids of the processes running as one of ``uids`` (Linux; elsewhere none are found)."""
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        real_uid = next((int(line.split()[1]) for line in status.splitlines() if line.startswith("Uid:")), None)
        if real_uid in uids and int(entry.name) != os.getpid():
            found.append(int(entry.name))
    return found


def stop(proc: subprocess.Popen, root: Path, grace: float = 20.0) -> list[int]:
    """End ``proc`` (SIGTERM, then SIGKILL), then anything it left running inside ``root``; returns those ids."""
    if proc.poll() is None:
        with _ignore_gone():
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with _ignore_gone():
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    leftovers = processes_under(root)
    for pid in leftovers:
        with _ignore_gone():
            os.kill(pid, signal.SIGKILL)
    return leftovers


class _ignore_gone:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, *_: Any) -> bool:
        return kind is not None and issubclass(kind, ProcessLookupError)


def course_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a server the tests start: the course importable, the ``ci`` profile, offline."""
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, **notebook_env("ci"), "PYTHONPATH": path, **(extra or {})}


# --- a kernel driven through a Jupyter server's websocket --------------------------------------------


def _message(code: str, session: str) -> dict[str, Any]:
    return {"header": {"msg_id": uuid.uuid4().hex, "msg_type": "execute_request", "username": "test",
                       "session": session, "date": "", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}


def run_cells(ws_url: str, headers: dict[str, str], cells: Sequence[str], timeout: float = 600) -> list[str]:
    """Execute ``cells`` in order in a running kernel; returns each cell's text output.

    Fails at the first cell that raises, naming it and quoting the error.
    """
    import websocket  # websocket-client

    ws = websocket.create_connection(ws_url, header=[f"{k}: {v}" for k, v in headers.items()], timeout=timeout)
    session, outputs = uuid.uuid4().hex, []
    try:
        for index, code in enumerate(cells):
            request = _message(code, session)
            ws.send(json.dumps(request))
            outputs.append(_collect(ws, request["header"]["msg_id"], index, code))
    finally:
        ws.close()
    return outputs


def _collect(ws: Any, msg_id: str, index: int, code: str) -> str:
    """Read messages until the kernel is idle after ``msg_id``; return its text output, fail on an error."""
    text, error, replied, idle = [], None, False, False
    while not (replied and idle):
        msg = json.loads(ws.recv())
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            text.append(content["text"])
        elif kind in ("execute_result", "display_data"):
            text.append(content["data"].get("text/plain", ""))
        elif kind == "error":
            error = f"{content['ename']}: {content['evalue']}"
        elif kind == "execute_reply":
            replied = True
            if content["status"] != "ok" and error is None:
                error = f"{content.get('ename')}: {content.get('evalue')}"
        elif kind == "status" and content["execution_state"] == "idle":
            idle = True
    if error is not None:
        pytest.fail(f"code cell {index} raised {error}\n--- the cell:\n{code[:800]}")
    return "".join(text)


# --- the cells a widget needs ---------------------------------------------------------------------------


def _names(source: str) -> tuple[set[str], set[str], set[str]]:
    """(every global name a cell binds, those it binds for certain at top level, every global name it reads).

    Reads include the globals read inside the functions and classes the cell defines (``symtable``).
    """
    import ast
    import symtable

    table = symtable.symtable(source, "<cell>", "exec")
    bound = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    used = set()
    stack = [table]
    while stack:
        scope = stack.pop()
        top = scope.get_type() == "module"
        used |= {s.get_name() for s in scope.get_symbols() if s.is_referenced() and (top or s.is_global())}
        stack.extend(scope.get_children())
    tree, certain = ast.parse(source), set()
    for node in tree.body:  # a name bound only inside an `if` or a loop's body may stay unbound
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.FunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom,
                             ast.With)):
            certain |= {n for n in bound if _binds(node, n)}
    for node in ast.walk(tree):  # loop variables, nested loops' too, are the cell's own (read inside their loop)
        if isinstance(node, ast.For):
            certain |= bound & {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
    return bound, certain, used


def _binds(node: Any, name: str) -> bool:
    """Whether the top-level statement ``node`` binds ``name`` without reading an earlier value of it.

    A ``with ... as`` name counts as bound (``for`` targets are handled by the caller).
    """
    import ast

    if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
        return node.name == name
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return any((a.asname or a.name).split(".")[0] == name for a in node.names)
    if isinstance(node, ast.With):
        return any(name in {n.id for n in ast.walk(i.optional_vars) if isinstance(n, ast.Name)}
                   for i in node.items if i.optional_vars is not None)
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    def names(tree: Any) -> set[str]:
        return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}

    reads_itself = node.value is not None and name in names(node.value)
    return not reads_itself and any(name in names(t) for t in targets)


def needed_cells(sources: Sequence[str], target: int, setup: int) -> list[int]:
    """The code cells to run for cell ``target``: cells ``0..setup`` (imports, parameters), then, going
    back from the target, every cell that binds a name a needed cell reads (a static slice).

    A cell that only changes an object in place (``model.train()``) is not found, so a widget may show
    an untrained model; the browser test checks the widget, not the model's quality.
    """
    parsed = [_names(_strip_magics(s)) for s in sources]
    chosen, needed = {target}, parsed[target][2] - parsed[target][1]
    for i in range(target - 1, setup, -1):
        bound, certain, used = parsed[i]
        if bound & needed:
            chosen.add(i)
            needed = (needed - certain) | (used - certain)
    return sorted(set(range(setup + 1)) | chosen)


def _strip_magics(source: str) -> str:
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
