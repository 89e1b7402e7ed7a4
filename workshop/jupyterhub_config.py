"""JupyterHub for a workshop of the course: one server, one JupyterLab per learner.

    jupyterhub -f workshop/jupyterhub_config.py        # or: make hub

Run it from the course checkout on the hub machine (e.g. /opt/genai-course, set
up with `make setup data` or `unbundle`), as root, so that each learner's
server runs as that learner (LocalProcessSpawner). Learners are system accounts
in the group `learners` (PAM log-in); docs/instructor.md shows how to create
forty of them. A log-in pulls the course into the learner's home with
nbgitpuller (from this checkout: no network needed; git must trust the
root-owned clone: `git config --system --add safe.directory /opt/genai-course/.git`)
and opens notebook 00 with the course's JupyterLab settings (`jupyter/`, via
JUPYTER_CONFIG_PATH). Learners must be able to run this Python and read the
checkout and its data: the hub warns at start about any path they cannot reach
(a virtual environment made from a Python under /root, say).

Sized for a room: the `ci` profile, one torch thread per learner, idle kernels
ended, and each learner's memory capped. The cap is real: LocalProcessSpawner
only advertises `mem_limit`, so here each server starts with RLIMIT_DATA set to
it (a hard limit its kernels inherit and a learner cannot raise). An allocation
beyond it raises MemoryError in the learner's kernel (torch: RuntimeError
"can't allocate memory") instead of pushing the machine into swap or the OOM
killer. RLIMIT_DATA counts the memory a process writes to (heap, arrays,
tensors), not the address space torch's libraries reserve (RLIMIT_AS would stop
`import torch`: about 3.2 GB of address space for 0.8 GB used). It is per
process: a learner with two kernels open may use the cap in each.

Settings, all optional, as environment variables:

    COURSE_HUB_IP, COURSE_HUB_PORT    where the hub listens (0.0.0.0, 8000)
    COURSE_HUB_PROFILE                the notebooks' COURSE_PROFILE (ci: the profile a room's sizing assumes)
    COURSE_HUB_THREADS                torch threads per learner (1): forty learners share the cores
    COURSE_HUB_MEM_LIMIT              each learner's memory cap, e.g. 3G or 2560M; 0 for none. Default: 1.5 x
                                      the largest peak memory docs/timings.json records for the profile's
                                      notebooks, rounded up to 256 MB (ci: 1,781 MB in 03 -> 2816M)
    COURSE_HUB_KERNEL_IDLE            seconds after which a kernel with nothing running and no browser tab
                                      connected is ended (5400: 90 minutes, so a lunch with laptops asleep
                                      keeps the morning's models); 0 never
    COURSE_HUB_CULL_INTERVAL          seconds between checks for idle kernels (300)
    COURSE_HUB_SERVER_IDLE            seconds after which a learner's server with no kernel, no terminal and
                                      no activity stops (7200); 0 never. Logging in again restarts it.
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

import math
import os
import resource
import stat
import sys
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner, SimpleLocalProcessSpawner

COURSE_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(COURSE_ROOT))  # course_utils, whether or not the hub's Python has it installed

from course_utils.authoring import TIMINGS, load_timings  # noqa: E402
from course_utils.workshop import default_repo, pull_path  # noqa: E402

c = get_config()  # noqa: F821  (defined by JupyterHub when it loads this file)

MEM_MARGIN = 1.5  # measured: RLIMIT_DATA's count peaked at 1.17 x the recorded peak (03, ci); the rest is headroom
MEM_STEP_MB = 256


def setting(name: str, default: str) -> str:
    return os.environ.get(f"COURSE_HUB_{name}", "").strip() or default


def measured_mem_limit(profile: str, timings: Path = TIMINGS) -> str | None:
    """MEM_MARGIN x the largest ``peak_mb`` recorded for ``profile``, rounded up to MEM_STEP_MB ("2560M")."""
    peaks = [r["peak_mb"] for r in load_timings(timings) if r.get("profile") == profile and r.get("peak_mb")]
    return f"{math.ceil(max(peaks) * MEM_MARGIN / MEM_STEP_MB) * MEM_STEP_MB}M" if peaks else None


def out_of_reach(paths: list[Path]) -> list[str]:
    """The paths another account cannot use: a folder on the way it cannot enter, a file it cannot read."""
    found = []
    for path in paths:
        for folder in reversed(path.parents):
            if folder.exists() and not folder.stat().st_mode & stat.S_IXOTH:
                found.append(f"{folder}/ (on the way to {path})")
                break
        else:
            if path.is_file() and not path.stat().st_mode & stat.S_IROTH:
                found.append(str(path))
    return found


class _MemoryCap:
    """Starts each server with RLIMIT_DATA = ``mem_limit`` (hard: inherited by its kernels, never raised)."""

    def make_preexec_fn(self, name):
        then = super().make_preexec_fn(name)  # the user switch, or (trial) the home folder
        limit = self.mem_limit or None
        hard = resource.getrlimit(resource.RLIMIT_DATA)[1]
        if limit and os.geteuid() != 0 and hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)  # not root: a limit can only be lowered

        def preexec():
            if limit:
                resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
            then()

        return preexec


class CourseSpawner(_MemoryCap, LocalProcessSpawner):
    """Each learner's server as that learner, with the memory cap."""


class CourseTrialSpawner(_MemoryCap, SimpleLocalProcessSpawner):
    """The trial mode's servers (all as the hub's user), with the memory cap."""


state = Path(setting("STATE_DIR", os.getcwd())).resolve()
_, public_branch = default_repo()
trial = setting("TRIAL", "0") == "1"
profile = setting("PROFILE", "ci")
data_dir = setting("DATA_DIR", str(COURSE_ROOT / "data"))

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
single_user = Path(sys.executable).with_name("jupyterhub-singleuser")  # this Python's environment
c.Spawner.cmd = [str(single_user)]
if trial:
    c.JupyterHub.spawner_class = CourseTrialSpawner
    c.SimpleLocalProcessSpawner.home_dir_template = str(state / "homes" / "{username}")
else:
    c.JupyterHub.spawner_class = CourseSpawner
    data_files = sorted(p for p in Path(data_dir).rglob("*") if p.is_file() and "runs" not in p.parts)  # not outputs
    settings = COURSE_ROOT / "jupyter" / "labconfig" / "default_setting_overrides.json"
    unreachable = out_of_reach([Path(sys.executable).resolve(), single_user, settings, *data_files])
    if unreachable:
        print("workshop hub: learners cannot reach these paths, so their servers or notebooks will fail "
              "(chmod o+x a folder, o+r a file):\n  " + "\n  ".join(unreachable[:10]), file=sys.stderr)
c.Spawner.notebook_dir = "~"
c.Spawner.start_timeout = 180  # forty servers starting at once on a busy machine
c.Spawner.http_timeout = 120
mem_limit = setting("MEM_LIMIT", measured_mem_limit(profile) or "0")
c.Spawner.mem_limit = None if mem_limit.lower() in ("0", "none") else mem_limit
# jupyter_server's own culling: kernels idle (not running, no tab connected) and, after them, idle servers.
c.Spawner.args = [
    f"--MappingKernelManager.cull_idle_timeout={int(setting('KERNEL_IDLE', '5400'))}",
    f"--MappingKernelManager.cull_interval={int(setting('CULL_INTERVAL', '300'))}",
    "--MappingKernelManager.cull_connected=False",
    "--MappingKernelManager.cull_busy=False",
    f"--ServerApp.shutdown_no_activity_timeout={int(setting('SERVER_IDLE', '7200'))}",
] + (["--allow-root"] if trial and os.getuid() == 0 else [])  # a container's root: every server runs as root
threads = setting("THREADS", "1")
c.Spawner.environment = {
    "JUPYTER_CONFIG_PATH": str(COURSE_ROOT / "jupyter"),  # the course's first screen: no news prompt
    "COURSE_PROFILE": profile,
    "COURSE_DATA_DIR": data_dir,
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "OMP_NUM_THREADS": threads,  # torch's intra-op threads
    "MKL_NUM_THREADS": threads,
    "OPENBLAS_NUM_THREADS": threads,  # numpy's
}
# A log-in pulls the course (or the instructor's updates, merged with the learner's changes) and opens 00.
c.Spawner.default_url = pull_path(setting("REPO", COURSE_ROOT.as_uri()), setting("BRANCH", public_branch))
