"""The workshop hub, for real: workshop/jupyterhub_config.py started on 127.0.0.1 with configurable-http-proxy.

Two learners log in (the trial mode's dummy authenticator, servers as this
user with separate homes), follow the link of ``python -m course_utils.workshop
link`` to a local clone of the course, get the course pulled into their homes
by nbgitpuller, and run notebook 00 in their own servers, at the same time,
through the servers' REST API and the kernels' websockets.

Skipped at once without jupyterhub, nbgitpuller, websocket-client or
configurable-http-proxy (``make hub-test`` installs them and runs this alone;
``.ci/run`` requires it).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
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
    proxy_command,
    require,
    run_cells,
    start,
    stop,
    wait_for,
)

require([m for m in ("jupyterhub", "nbgitpuller", "websocket", "requests") if importlib.util.find_spec(m) is None]
        + ([] if proxy_command() else ["configurable-http-proxy (npm)"]), "the hub smoke test")

import requests  # noqa: E402  (after the requirement check)

LEARNERS = ("ada", "grace")
BRANCH = "workshop-test"
NOTEBOOK = "00_setup.ipynb"
CONFIG = REPO_ROOT / "workshop" / "jupyterhub_config.py"


def _clone_course(tmp: Path) -> Path:
    """A local clone of the course (its committed state) with the branch the links name."""
    clone = tmp / "course"
    subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", "-B", BRANCH], check=True)
    return clone


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("hub")
    clone = _clone_course(tmp)
    port = free_port()
    env = course_env({"COURSE_HUB_TRIAL": "1", "COURSE_HUB_IP": "127.0.0.1", "COURSE_HUB_PORT": str(port),
                      "COURSE_HUB_STATE_DIR": str(tmp), "COURSE_HUB_PROFILE": "ci", "COURSE_HUB_THREADS": "1",
                      "COURSE_HUB_REPO": clone.as_uri(), "COURSE_HUB_BRANCH": BRANCH})
    cmd = [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG), f"--JupyterHub.hub_port={free_port()}",
           f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{free_port()}",
           f"--ConfigurableHTTPProxy.command={proxy_command()}"]
    log = tmp / "hub.log"
    proc = start(cmd, tmp, env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http_ok(f"{base}/hub/health"), 120, "JupyterHub", proc, log)
        yield {"base": base, "tmp": tmp, "clone": clone, "log": log}
    finally:
        stop(proc, tmp)


def _log_in(base: str, name: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{base}/hub/login", timeout=30).raise_for_status()
    response = session.post(f"{base}/hub/login", data={"username": name, "password": "workshop",
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


@pytest.fixture(scope="module")
def learners(hub: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each learner logged in, the link followed and the course pulled into their home."""
    base, link = hub["base"], hub_link(hub["base"], hub["clone"].as_uri(), BRANCH, NOTEBOOK)
    found = {}
    for name in LEARNERS:
        session = _log_in(base, name)
        page = _follow(session, link, f"/user/{name}/git-pull")
        events = _pull(session, base, name, link)
        found[name] = {"session": session, "page": page, "events": events, "token": _token(session, base, name),
                       "home": hub["tmp"] / "homes" / name}
    return found


def test_the_link_starts_the_server_and_pulls_the_course_into_each_home(hub, learners):
    for name, learner in learners.items():
        assert learner["events"][-1] == {"phase": "finished"}, f"{name}: nbgitpuller said {learner['events'][-3:]}"
        pulled = learner["home"] / course_folder() / "notebooks" / NOTEBOOK
        assert pulled.exists(), f"{name}: {pulled} was not pulled"
        head = subprocess.run(["git", "-C", str(pulled.parent), "rev-parse", "HEAD"], capture_output=True, text=True)
        source = subprocess.run(["git", "-C", str(hub["clone"]), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert head.stdout == source.stdout, f"{name}'s copy is not the course's {BRANCH}"
        # then nbgitpuller's page sends the learner to notebook 00 in JupyterLab
        assert f"lab/tree/{course_folder()}/notebooks/{NOTEBOOK}" in urllib.parse.unquote(learner["page"].text)
    homes = [learner["home"] for learner in learners.values()]
    assert len(set(homes)) == len(LEARNERS), "two learners share a home"


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


def _run_00(base: str, name: str, token: str) -> list[str]:
    """Open 00 as JupyterLab does (a session starts its kernel next to the notebook) and run every code cell."""
    auth = {"Authorization": f"token {token}"}
    path = f"{course_folder()}/notebooks/{NOTEBOOK}"
    content = requests.get(f"{base}/user/{name}/api/contents/{path}", headers=auth, timeout=30)
    content.raise_for_status()
    cells = [c["source"] for c in content.json()["content"]["cells"] if c["cell_type"] == "code"]
    created = requests.post(f"{base}/user/{name}/api/sessions", headers=auth, timeout=120,
                            json={"path": path, "type": "notebook", "name": NOTEBOOK, "kernel": {"name": "python3"}})
    created.raise_for_status()
    kernel = created.json()["kernel"]["id"]
    ws = base.replace("http://", "ws://") + f"/user/{name}/api/kernels/{kernel}/channels"
    outputs = run_cells(ws, auth, cells)
    requests.delete(f"{base}/user/{name}/api/sessions/{created.json()['id']}", headers=auth, timeout=30)
    return outputs


def test_each_learner_runs_notebook_00_in_their_own_server(hub, learners):
    with ThreadPoolExecutor(len(learners)) as pool:
        runs = {name: pool.submit(_run_00, hub["base"], name, learner["token"]) for name, learner in learners.items()}
        outputs = {name: run.result() for name, run in runs.items()}
    for name, printed in outputs.items():
        text = "".join(printed)
        assert "profile=ci" in text, f"{name}: the hub's COURSE_PROFILE did not reach the kernel"
        assert "every file the course needs is present and verified" in text, f"{name}: the data check did not pass"
