"""The course's JupyterLab settings (jupyter/): a real server opens on 00 and asks no news question."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from course_utils import REPO_ROOT

pytestmark = pytest.mark.slow  # it starts a JupyterLab


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    pytest.importorskip("jupyterlab")
    token = secrets.token_hex(16)
    home = tmp_path_factory.mktemp("home")  # no user settings of the machine's own user
    runtime = home / "runtime"  # where the server writes the port it chose
    env = {**os.environ, "JUPYTER_CONFIG_PATH": str(REPO_ROOT / "jupyter"), "HOME": str(home),
           "JUPYTER_CONFIG_DIR": str(home / ".jupyter"), "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
           "JUPYTER_RUNTIME_DIR": str(runtime)}
    # --port=0: the server binds a free port itself and records it (no port picked here that another could take)
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--port=0", "--ip=127.0.0.1",
           f"--IdentityProvider.token={token}", "--notebook-dir", str(REPO_ROOT / "notebooks"), "--allow-root"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(240):
            info = [json.loads(f.read_text()) for f in runtime.glob(f"jpserver-{proc.pid}.json")]
            if info:
                base = f"http://127.0.0.1:{info[0]['port']}"
                try:
                    urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=1)
                    break
                except (urllib.error.URLError, ConnectionError):
                    pass
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited: {proc.stderr.read()[-2000:]}")
            time.sleep(0.5)
        else:
            pytest.fail("jupyter lab did not answer within 120 s")
        yield base, token
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_lab_opens_on_the_setup_notebook(lab):
    base, token = lab
    opener = urllib.request.build_opener(_NoRedirect)
    with pytest.raises(urllib.error.HTTPError) as info:
        opener.open(f"{base}/?token={token}", timeout=10)
    location = info.value.headers["Location"].split("?")[0]
    assert info.value.code in (301, 302) and location.endswith("/lab/tree/00_setup.ipynb")


def test_no_news_prompt_and_no_update_check(lab):
    base, token = lab
    url = f"{base}/lab/api/settings/@jupyterlab/apputils-extension:notification?token={token}"
    schema = json.load(urllib.request.urlopen(url, timeout=10))["schema"]["properties"]  # defaults, with overrides
    assert schema["fetchNews"]["default"] == "false" and schema["checkForUpdates"]["default"] is False
