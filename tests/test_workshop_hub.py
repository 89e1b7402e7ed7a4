"""The workshop hub, for real: workshop/jupyterhub_config.py started on 127.0.0.1 with configurable-http-proxy.

Two real local accounts (created here, as root, in the group ``learners``, and
removed at the end with their homes) log in through the hub's PAM
authenticator, follow the link of ``python -m course_utils.workshop link`` to a
root-owned local clone of the course, get the course pulled into their homes by
nbgitpuller, and run notebook 00 in their own servers, at the same time,
through the servers' REST API and the kernels' websockets. Then each kernel
shows who it runs as, its torch threads and its memory cap, and that it can
neither write into the other learner's home nor allocate beyond the cap. An
idle kernel is culled (the test shortens the timeout; the defaults are checked
by loading the config).

The root-owned clone needs the ``safe.directory`` line docs/instructor.md
gives; the test adds it to the system git config and removes it at the end.
Where the course's Python lies under a folder other accounts cannot enter
(a venv made from a Python under /root, as in CI), the test lets them through
(o+x) for its duration and restores the folder's mode.

Skipped at once without jupyterhub, nbgitpuller, websocket-client,
configurable-http-proxy, root or useradd (``make hub-test`` installs the
packages and runs this alone; ``.ci/run`` requires it).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from course_utils import REPO_ROOT
from course_utils.workshop import course_folder, hub_link
from tests.workshop_support import (
    course_env,
    free_port,
    http_ok,
    processes_of,
    proxy_command,
    require,
    run_cells,
    start,
    stop,
    wait_for,
)

pytestmark = pytest.mark.slow  # it starts a JupyterHub and two learners' servers (make hub-test runs it too)

ACCOUNT_TOOLS = ("useradd", "userdel", "groupadd", "groupdel", "chpasswd")
require([m for m in ("jupyterhub", "nbgitpuller", "websocket", "requests") if importlib.util.find_spec(m) is None]
        + ([] if proxy_command() else ["configurable-http-proxy (npm)"])
        + ([] if sys.platform == "linux" and os.geteuid() == 0 else ["root on Linux (it creates accounts)"])
        + [t for t in ACCOUNT_TOOLS if shutil.which(t) is None], "the hub smoke test")

import requests  # noqa: E402  (after the requirement check)

LEARNERS = ("course-ada", "course-grace")  # unlikely to exist; the test stops if they do
GROUP = "learners"
BRANCH = "workshop-test"
NOTEBOOK = "00_setup.ipynb"
CONFIG = REPO_ROOT / "workshop" / "jupyterhub_config.py"
KERNEL_IDLE, CULL_INTERVAL = 20, 3  # seconds: short, so the culling test sees a kernel go


def _sh(*cmd: str, stdin: str | None = None) -> None:
    subprocess.run(cmd, input=stdin, text=True, check=True, capture_output=True)


def _group_exists(name: str) -> bool:
    return subprocess.run(["getent", "group", name], capture_output=True).returncode == 0


def _grant_traverse(paths: list[Path]) -> dict[Path, int]:
    """Let other accounts enter every folder on the way to ``paths``; returns the modes to restore."""
    changed = {}
    for path in paths:
        for folder in path.parents:
            mode = folder.stat().st_mode
            if not mode & stat.S_IXOTH and folder not in changed:
                changed[folder] = stat.S_IMODE(mode)
                folder.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
    return changed


def _git_system(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "config", "--system", *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def room() -> Iterator[dict[str, Any]]:
    """The accounts, a world-readable scratch folder with a root-owned clone, git's trust in it; all undone after."""
    taken = [n for n in LEARNERS if subprocess.run(["id", n], capture_output=True).returncode == 0]
    if taken:
        pytest.fail(f"accounts {taken} exist already: remove them (userdel -r) or rename LEARNERS", pytrace=False)
    unreadable = [p for p in (REPO_ROOT / "data").rglob("*")
                  if p.is_file() and "runs" not in p.parts and not p.stat().st_mode & stat.S_IROTH]
    if unreadable:  # learners read the shared cache: a file only root can read fails their notebooks
        pytest.fail(f"learners cannot read {len(unreadable)} data files, e.g. {unreadable[0]} "
                    f"(mode {stat.S_IMODE(unreadable[0].stat().st_mode):o}); chmod o+r them", pytrace=False)
    tmp = Path(tempfile.mkdtemp(prefix="course-hub-test-"))
    tmp.chmod(0o755)  # learners read the clone in it
    made_group = not _group_exists(GROUP)
    system_gitconfig = Path(os.environ.get("GIT_CONFIG_SYSTEM") or "/etc/gitconfig")
    had_gitconfig = system_gitconfig.exists()
    clone = tmp / "course"
    trusted = f"{clone}/.git"  # git 2.39's upload-pack checks the .git folder, not the work tree
    created, modes = [], {}
    try:
        if made_group:
            _sh("groupadd", GROUP)
        passwords = {}
        for name in LEARNERS:
            _sh("useradd", "-m", "-s", "/bin/bash", "-G", GROUP, name)
            created.append(name)
            passwords[name] = secrets.token_urlsafe(12)
        _sh("chpasswd", stdin="".join(f"{n}:{p}\n" for n, p in passwords.items()))
        subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(clone)], check=True)
        subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", "-B", BRANCH], check=True)
        _git_system("--add", "safe.directory", trusted).check_returncode()
        modes = _grant_traverse([Path(sys.executable).resolve()])
        yield {"tmp": tmp, "clone": clone, "passwords": passwords,
               "users": {n: pwd.getpwnam(n) for n in LEARNERS}}
    finally:
        uids = {pwd.getpwnam(n).pw_uid for n in created}
        for _ in range(20):  # the hub has gone; end whatever still runs as a learner, then remove the accounts
            pids = processes_of(uids)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)
        for name in created:
            subprocess.run(["userdel", "-r", name], capture_output=True)
        if made_group:
            subprocess.run(["groupdel", GROUP], capture_output=True)
        _git_system("--fixed-value", "--unset-all", "safe.directory", trusted)
        if not had_gitconfig and system_gitconfig.exists() and not _git_system("--list").stdout.strip():
            system_gitconfig.unlink()
        for folder, mode in modes.items():
            folder.chmod(mode)
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def hub(room: dict[str, Any]) -> Iterator[dict[str, Any]]:
    tmp, clone = room["tmp"], room["clone"]
    state = tmp / "state"
    state.mkdir(mode=0o700)
    port = free_port()
    # Everything else at the config's defaults: the ci profile, one thread, the memory cap, PAM and the group.
    env = course_env({"COURSE_HUB_IP": "127.0.0.1", "COURSE_HUB_PORT": str(port), "COURSE_HUB_STATE_DIR": str(state),
                      "COURSE_HUB_REPO": clone.as_uri(), "COURSE_HUB_BRANCH": BRANCH, "COURSE_HUB_GROUP": GROUP,
                      "COURSE_HUB_KERNEL_IDLE": str(KERNEL_IDLE), "COURSE_HUB_CULL_INTERVAL": str(CULL_INTERVAL)})
    for key in ("COURSE_HUB_TRIAL", "COURSE_HUB_PROFILE", "COURSE_HUB_THREADS", "COURSE_HUB_MEM_LIMIT"):
        env.pop(key, None)
    cmd = [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG), f"--JupyterHub.hub_port={free_port()}",
           f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{free_port()}",
           f"--ConfigurableHTTPProxy.command={proxy_command()}"]
    log = tmp / "hub.log"
    proc = start(cmd, state, env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http_ok(f"{base}/hub/health"), 120, "JupyterHub", proc, log)
        yield {**room, "base": base, "log": log}
    finally:
        stop(proc, tmp)


def _log_in(base: str, name: str, password: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{base}/hub/login", timeout=30).raise_for_status()
    response = session.post(f"{base}/hub/login", data={"username": name, "password": password,
                                                       "_xsrf": session.cookies.get("_xsrf")}, timeout=60)
    response.raise_for_status()
    return session


def _follow(session: requests.Session, url: str, expected_path: str, timeout: float = 240) -> requests.Response:
    """GET ``url`` until the redirects end at ``expected_path`` (the hub shows a waiting page while a server starts)."""
    box: dict[str, requests.Response] = {}

    def arrived() -> bool:
        box["r"] = session.get(url, timeout=60)
        return box["r"].ok and urllib.parse.urlsplit(box["r"].url).path == expected_path

    wait_for(arrived, timeout, f"following {url}")
    return box["r"]


def _pull(session: requests.Session, base: str, name: str, link: str) -> list[dict[str, Any]]:
    """What the nbgitpuller page's script does: call its event-stream API and read it to the end."""
    query = urllib.parse.urlsplit(link).query
    events = []
    with session.get(f"{base}/user/{name}/git-pull/api?{query}", stream=True, timeout=180) as response:
        response.raise_for_status()
        for line in response.iter_lines(decode_unicode=True):
            if line and line.startswith("data: "):
                events.append(json.loads(line[len("data: "):]))
                if events[-1].get("phase") in ("finished", "error"):
                    break
    return events


def _token(session: requests.Session, base: str, name: str) -> str:
    xsrf = session.cookies.get("_xsrf", path="/hub/")
    response = session.post(f"{base}/hub/api/users/{name}/tokens", json={"note": "smoke test"},
                            headers={"X-XSRFToken": xsrf}, timeout=30)
    response.raise_for_status()
    return response.json()["token"]


def _arrive(hub: dict[str, Any], name: str) -> dict[str, Any]:
    base = hub["base"]
    link = hub_link(base, hub["clone"].as_uri(), BRANCH, NOTEBOOK)
    session = _log_in(base, name, hub["passwords"][name])
    page = _follow(session, link, f"/user/{name}/git-pull")
    events = _pull(session, base, name, link)
    token = _token(session, base, name)
    # a kernel left alone at once (no tab, nothing run): the culling test waits for it to go
    idle = requests.post(f"{base}/user/{name}/api/kernels", headers={"Authorization": f"token {token}"},
                         json={"name": "python3"}, timeout=120)
    idle.raise_for_status()
    return {"session": session, "page": page, "events": events, "token": token, "idle_kernel": idle.json()["id"],
            "home": Path(hub["users"][name].pw_dir), "uid": hub["users"][name].pw_uid}


@pytest.fixture(scope="module")
def learners(hub: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each learner logged in, the link followed and the course pulled into their home (both at once)."""
    with ThreadPoolExecutor(len(LEARNERS)) as pool:
        runs = {name: pool.submit(_arrive, hub, name) for name in LEARNERS}
        return {name: run.result() for name, run in runs.items()}


def test_the_link_starts_the_server_and_pulls_the_course_into_each_home(hub, learners):
    for name, learner in learners.items():
        assert learner["events"][-1] == {"phase": "finished"}, f"{name}: nbgitpuller said {learner['events'][-3:]}"
        course = learner["home"] / course_folder()
        pulled = course / "notebooks" / NOTEBOOK
        assert pulled.exists(), f"{name}: {pulled} was not pulled"
        owners = {p.lstat().st_uid for p in [course, *course.rglob("*")]}
        assert owners == {learner["uid"]}, f"{name}'s copy of the course is not all theirs: owners {owners}"
        head = subprocess.run(["runuser", "-u", name, "--", "git", "-C", str(course), "rev-parse", "HEAD"],
                              capture_output=True, text=True)  # the learner's own git (root's distrusts it)
        source = subprocess.run(["git", "-C", str(hub["clone"]), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert head.stdout == source.stdout, f"{name}'s copy is not the course's {BRANCH}"
        # then nbgitpuller's page sends the learner to notebook 00 in JupyterLab
        assert f"lab/tree/{course_folder()}/notebooks/{NOTEBOOK}" in urllib.parse.unquote(learner["page"].text)


def test_the_hub_uses_pam_a_wrong_password_is_refused(hub, learners):
    name = LEARNERS[0]
    session = requests.Session()
    session.get(f"{hub['base']}/hub/login", timeout=30)
    response = session.post(f"{hub['base']}/hub/login", timeout=60, allow_redirects=False,
                            data={"username": name, "password": "not-" + hub["passwords"][name],
                                  "_xsrf": session.cookies.get("_xsrf")})
    assert response.status_code == 403, f"a wrong password got {response.status_code}: not the real authenticator"


def test_a_plain_log_in_lands_on_the_pull_of_00_with_the_course_settings(hub, learners):
    name, learner = next(iter(learners.items()))
    response = learner["session"].get(f"{hub['base']}/user/{name}/", allow_redirects=False, timeout=30)
    target = urllib.parse.unquote(response.headers.get("Location", ""))
    assert response.status_code in (301, 302) and target.startswith(f"/user/{name}/git-pull?"), target
    assert f"repo={hub['clone'].as_uri()}" in target and f"notebooks/{NOTEBOOK}" in target
    settings = learner["session"].get(
        f"{hub['base']}/user/{name}/lab/api/settings/@jupyterlab/apputils-extension:notification",
        headers={"Authorization": f"token {learner['token']}"}, timeout=30)
    schema = settings.json()["schema"]["properties"]
    assert schema["fetchNews"]["default"] == "false", "the hub's JupyterLab does not use the course's settings"


# Run after 00 in the same kernel: who it is, its limits, and what it may not do. Prints one JSON line.
PROBE = """
import json as _json, os as _os, resource as _resource, torch as _torch

def _try(action):
    try:
        action()
        return "allowed"
    except Exception as error:
        return type(error).__name__
def _write(path):
    with open(path, "a") as fh:
        fh.write("x")
_cap = int(_os.environ.get("MEM_LIMIT", "0"))
_other = {other!r}
print("PROBE" + _json.dumps({{
    "uid": _os.getuid(), "server_pid": _os.getppid(), "threads": _torch.get_num_threads(), "cap": _cap,
    "rlimit_data": _resource.getrlimit(_resource.RLIMIT_DATA)[0],
    "write_other_home": _try(lambda: _write(_os.path.join(_other, "from-a-neighbour.txt"))),
    "write_other_notebook": _try(lambda: _write(_os.path.join(_other, {notebook!r}))),
    "allocate_beyond_cap": _try(lambda: bytearray(_cap + 2**28)),
    "allocate_under_cap": _try(lambda: bytearray(2**28)),
}}))
"""


def _run_00(base: str, name: str, token: str, other_home: Path) -> tuple[list[str], dict[str, Any]]:
    """Open 00 as JupyterLab does (a session starts its kernel next to the notebook), run every code cell, probe."""
    auth = {"Authorization": f"token {token}"}
    path = f"{course_folder()}/notebooks/{NOTEBOOK}"
    content = requests.get(f"{base}/user/{name}/api/contents/{path}", headers=auth, timeout=30)
    content.raise_for_status()
    cells = [c["source"] for c in content.json()["content"]["cells"] if c["cell_type"] == "code"]
    probe = PROBE.format(other=str(other_home), notebook=path)
    created = requests.post(f"{base}/user/{name}/api/sessions", headers=auth, timeout=120,
                            json={"path": path, "type": "notebook", "name": NOTEBOOK, "kernel": {"name": "python3"}})
    created.raise_for_status()
    kernel = created.json()["kernel"]["id"]
    ws = base.replace("http://", "ws://") + f"/user/{name}/api/kernels/{kernel}/channels"
    outputs = run_cells(ws, auth, [*cells, probe])
    requests.delete(f"{base}/user/{name}/api/sessions/{created.json()['id']}", headers=auth, timeout=30)
    found = [line[len("PROBE"):] for line in outputs[-1].splitlines() if line.startswith("PROBE")]
    return outputs[:-1], json.loads(found[0])


def _expected_cap() -> int:
    """The documented default: 1.5 x the largest ci peak in docs/timings.json, rounded up to 256 MB."""
    runs = json.loads((REPO_ROOT / "docs" / "timings.json").read_text())["runs"]
    peak = max(r["peak_mb"] for r in runs if r["profile"] == "ci")
    return math.ceil(peak * 1.5 / 256) * 256 * 2**20


def test_each_learner_runs_notebook_00_in_their_own_server_as_themselves_within_limits(hub, learners):
    homes = {name: learner["home"] for name, learner in learners.items()}
    others = {name: next(h for n, h in homes.items() if n != name) for name in homes}
    with ThreadPoolExecutor(len(learners)) as pool:
        runs = {name: pool.submit(_run_00, hub["base"], name, learner["token"], others[name])
                for name, learner in learners.items()}
        results = {name: run.result() for name, run in runs.items()}
    for name, (printed, probe) in results.items():
        text = "".join(printed)
        uid = learners[name]["uid"]
        assert "profile=ci" in text, f"{name}: the hub's default profile (ci) did not reach the kernel"
        assert "every file the course needs is present and verified" in text, f"{name}: the data check did not pass"
        assert probe["uid"] == uid, f"{name}'s kernel runs as uid {probe['uid']}, not {uid}"
        server = Path(f"/proc/{probe['server_pid']}")
        uids = [int(u) for u in next(line for line in (server / "status").read_text().splitlines()
                                     if line.startswith("Uid:")).split()[1:]]
        assert set(uids) == {uid}, f"{name}'s server runs as {uids}, not {uid}"
        assert b"jupyterhub-singleuser" in (server / "cmdline").read_bytes(), f"{name}: the kernel's parent"
        assert probe["threads"] == 1, f"{name}: {probe['threads']} torch threads, not one per learner"
        assert probe["cap"] == _expected_cap() == probe["rlimit_data"], f"{name}: memory cap {probe}"
        assert probe["allocate_under_cap"] == "allowed", f"{name}: {probe}"
        assert probe["allocate_beyond_cap"] == "MemoryError", f"{name}: allocating beyond the cap: {probe}"
        assert probe["write_other_home"] == "PermissionError", f"{name} wrote into another learner's home"
        assert probe["write_other_notebook"] == "PermissionError", f"{name} changed another learner's notebook"
    assert not any(h.joinpath("from-a-neighbour.txt").exists() for h in homes.values())


def test_the_config_sizes_a_room_by_default(monkeypatch):
    """The defaults, read by loading the config as JupyterHub does (no COURSE_HUB_* settings)."""
    from traitlets.config.loader import PyFileConfigLoader

    for key in [k for k in os.environ if k.startswith("COURSE_HUB_")]:
        monkeypatch.delenv(key)
    c = PyFileConfigLoader(str(CONFIG)).load_config()
    assert c.JupyterHub.authenticator_class == "pam" and c.LocalAuthenticator.allowed_groups == {"learners"}
    assert c.Spawner.environment["COURSE_PROFILE"] == "ci"
    assert {c.Spawner.environment[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")} == {"1"}
    assert c.Spawner.mem_limit == f"{_expected_cap() // 2**20}M"
    assert set(c.Spawner.args) >= {"--MappingKernelManager.cull_idle_timeout=5400",
                                   "--MappingKernelManager.cull_interval=300",
                                   "--MappingKernelManager.cull_connected=False",
                                   "--ServerApp.shutdown_no_activity_timeout=7200"}


def test_an_idle_kernel_is_culled(hub, learners):
    """The kernel each learner left idle at log-in goes (the hub's settings reached the server and work)."""
    def gone(name: str, learner: dict[str, Any]) -> bool:
        kernels = requests.get(f"{hub['base']}/user/{name}/api/kernels", timeout=30,
                               headers={"Authorization": f"token {learner['token']}"})
        kernels.raise_for_status()
        return learner["idle_kernel"] not in {k["id"] for k in kernels.json()}

    for name, learner in learners.items():
        wait_for(lambda name=name, learner=learner: gone(name, learner), KERNEL_IDLE + 4 * CULL_INTERVAL + 30,
                 f"{name}'s idle kernel to be culled")
