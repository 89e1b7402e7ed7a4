"""JupyterHub for a workshop of the course: one server, one JupyterLab per learner.

    jupyterhub -f workshop/jupyterhub_config.py        # or: make hub

Run it from the course checkout on the hub machine (e.g. /opt/genai-course, set
up with `make setup data` or `unbundle`), as root, so that each learner's
server runs as that learner (LocalProcessSpawner). Learners are system accounts
in the group `learners` (PAM log-in); docs/instructor.md shows how to create
forty of them. A log-in pulls the course into the learner's home with
nbgitpuller (from this checkout: no network needed) and opens notebook 00 with
the course's JupyterLab settings (`jupyter/`, via JUPYTER_CONFIG_PATH).

Settings, all optional, as environment variables:

    COURSE_HUB_IP, COURSE_HUB_PORT    where the hub listens (0.0.0.0, 8000)
    COURSE_HUB_PROFILE                the notebooks' COURSE_PROFILE (cpu; ci for the shortest runs)
    COURSE_HUB_THREADS                torch threads per learner (2): forty learners share the cores
    COURSE_HUB_REPO, COURSE_HUB_BRANCH    what a log-in pulls (this checkout; its pyproject branch)
    COURSE_HUB_DATA_DIR               the shared, read-only data cache (this checkout's data/)
    COURSE_HUB_STATE_DIR              the hub's database, cookie secret and pid file (the current folder)
    COURSE_HUB_GROUP                  the system group allowed to log in (learners)
    COURSE_HUB_ADMINS                 comma-separated admin accounts (none)
    COURSE_HUB_TRIAL=1                a dry run on one machine: any name and password, every server
                                      as the hub's own user, homes under STATE_DIR/homes. Never in a room:
                                      there is no isolation between learners.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

COURSE_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(COURSE_ROOT))  # course_utils, whether or not the hub's Python has it installed

from course_utils.workshop import default_repo, pull_path  # noqa: E402

c = get_config()  # noqa: F821  (defined by JupyterHub when it loads this file)


def setting(name: str, default: str) -> str:
    return os.environ.get(f"COURSE_HUB_{name}", "").strip() or default


state = Path(setting("STATE_DIR", os.getcwd())).resolve()
_, public_branch = default_repo()
trial = setting("TRIAL", "0") == "1"

# --- the hub ------------------------------------------------------------------------------------------
c.JupyterHub.ip = setting("IP", "0.0.0.0")
c.JupyterHub.port = int(setting("PORT", "8000"))
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
local_proxy = COURSE_ROOT / "build" / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
if local_proxy.exists():  # installed by `make hub` / `make hub-test`; else the one on PATH
    c.ConfigurableHTTPProxy.command = [str(local_proxy)]
c.JupyterHub.concurrent_spawn_limit = 50  # a whole room logging in at the start of the day

# --- who may log in -------------------------------------------------------------------------------------
if trial:
    c.JupyterHub.authenticator_class = "dummy"
else:
    c.JupyterHub.authenticator_class = "pam"
    c.LocalAuthenticator.allowed_groups = {setting("GROUP", "learners")}
c.Authenticator.admin_users = {a.strip() for a in setting("ADMINS", "").split(",") if a.strip()}

# --- each learner's JupyterLab ----------------------------------------------------------------------------
if trial:
    c.JupyterHub.spawner_class = "simple"
    c.SimpleLocalProcessSpawner.home_dir_template = str(state / "homes" / "{username}")
    if os.getuid() == 0:  # a container's root: every server runs as root
        c.Spawner.args = ["--allow-root"]
else:
    c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = [str(Path(sys.executable).with_name("jupyterhub-singleuser"))]  # this Python's environment
c.Spawner.notebook_dir = "~"
c.Spawner.start_timeout = 180  # forty servers starting at once on a busy machine
c.Spawner.http_timeout = 120
threads = setting("THREADS", "2")
c.Spawner.environment = {
    "JUPYTER_CONFIG_PATH": str(COURSE_ROOT / "jupyter"),  # the course's first screen: no news prompt
    "COURSE_PROFILE": setting("PROFILE", "cpu"),
    "COURSE_DATA_DIR": setting("DATA_DIR", str(COURSE_ROOT / "data")),
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "OMP_NUM_THREADS": threads,
    "MKL_NUM_THREADS": threads,
}
# A log-in pulls the course (or the instructor's updates, merged with the learner's changes) and opens 00.
c.Spawner.default_url = pull_path(setting("REPO", COURSE_ROOT.as_uri()), setting("BRANCH", public_branch))
