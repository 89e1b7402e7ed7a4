"""The workshop kit without servers: the nbgitpuller links, the hub configuration, the generated schedules,
and the cell slicing of the browser test (the end-to-end tests are test_workshop_hub.py and test_browser.py)."""

from __future__ import annotations

import os
import re
import runpy
import urllib.parse
from pathlib import Path

import pytest
from traitlets.config import Config

from course_utils import REPO_ROOT, authoring, lesson_plan, workshop
from course_utils.colab import repository
from tests.workshop_support import needed_cells

NAMES = ["00_setup.ipynb", "01_generative_basics.ipynb", "03_vae.ipynb"]


def _query(link: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(link).query))


def test_link_goes_through_the_hub_to_nbgitpuller_with_the_course_and_the_notebook():
    link = workshop.hub_link("https://hub.example.org/", "https://github.com/o/course.git", "main", "03_vae.ipynb")
    parts = urllib.parse.urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "hub.example.org", "/hub/user-redirect/git-pull")
    folder = repository()[0].split("/")[1]
    assert _query(link) == {"repo": "https://github.com/o/course.git", "branch": "main", "targetpath": folder,
                            "urlpath": f"lab/tree/{folder}/notebooks/03_vae.ipynb"}


def test_hub_under_a_path_keeps_its_prefix():
    link = workshop.hub_link("http://10.0.0.5:8000/jhub/", "https://x.org/o/r", "dev", "00_setup.ipynb", "course")
    assert link.startswith("http://10.0.0.5:8000/jhub/hub/user-redirect/git-pull?")
    assert _query(link)["urlpath"] == "lab/tree/course/notebooks/00_setup.ipynb"


def test_a_local_folder_becomes_a_file_url(tmp_path):
    assert workshop.normalise_repo(str(tmp_path)) == tmp_path.resolve().as_uri()
    assert workshop.normalise_repo("file:///opt/course/") == "file:///opt/course"
    with pytest.raises(workshop.LinkError, match="no such folder"):
        workshop.normalise_repo(str(tmp_path / "missing"))
    with pytest.raises(workshop.LinkError, match="give a URL"):
        workshop.normalise_repo("course")


@pytest.mark.parametrize("hub", ["hub.example.org", "ftp://hub.example.org", "https://"])
def test_a_hub_address_without_scheme_or_host_is_refused(hub):
    with pytest.raises(workshop.LinkError, match="--hub"):
        workshop.hub_link(hub, "https://x.org/o/r", "main")


@pytest.mark.parametrize(("choice", "expected"), [("03", "03_vae.ipynb"), ("03_vae", "03_vae.ipynb"),
                                                  ("03_vae.ipynb", "03_vae.ipynb"), ("0", None), ("09", None)])
def test_notebook_names_by_number_stem_or_file(choice, expected):
    if expected is None:
        with pytest.raises(workshop.LinkError, match="choose one of 00_setup, 01_generative_basics, 03_vae"):
            workshop.notebook_name(choice, NAMES)
    else:
        assert workshop.notebook_name(choice, NAMES) == expected


def test_branch_and_target_are_checked():
    with pytest.raises(workshop.LinkError, match="--branch"):
        workshop.pull_query("https://x.org/o/r", "my branch", "00_setup.ipynb")
    with pytest.raises(workshop.LinkError, match="--target"):
        workshop.pull_query("https://x.org/o/r", "main", "00_setup.ipynb", "../elsewhere")


def test_command_line_prints_one_link_per_notebook_and_explains_errors(capsys):
    assert workshop.main(["link", "--hub", "https://hub.example.org", "00", "01"]) == 0
    lines = capsys.readouterr().out.splitlines()
    repo, branch = repository()
    assert len(lines) == 2 and all(_query(line)["repo"] == f"https://github.com/{repo}" for line in lines)
    assert [_query(line)["urlpath"].rsplit("/", 1)[1] for line in lines] == ["00_setup.ipynb",
                                                                             "01_generative_basics.ipynb"]
    assert _query(lines[0])["branch"] == branch
    assert workshop.main(["link", "--hub", "hub.example.org"]) == 2
    assert "give the hub's address" in capsys.readouterr().err


# --- the hub configuration -----------------------------------------------------------------------------------


def _load_config(monkeypatch: pytest.MonkeyPatch, **env: str) -> Config:
    if os.environ.get("COURSE_REQUIRE_WORKSHOP_TESTS") != "1":  # make versions installs no workshop extra
        pytest.importorskip("jupyterhub", reason="the workshop tools are not installed (make test installs them)")
    for name in [k for k in os.environ if k.startswith("COURSE_HUB_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(f"COURSE_HUB_{name}", value)
    config = Config()
    runpy.run_path(str(REPO_ROOT / "workshop" / "jupyterhub_config.py"), {"get_config": lambda: config})
    return config


def test_hub_config_gives_every_learner_the_course_settings_and_a_pull_of_00(monkeypatch, tmp_path):
    c = _load_config(monkeypatch, STATE_DIR=str(tmp_path))
    env = c.Spawner.environment
    assert env["JUPYTER_CONFIG_PATH"] == str(REPO_ROOT / "jupyter") and env["COURSE_PROFILE"] == "ci"  # a room's
    assert env["COURSE_DATA_DIR"] == str(REPO_ROOT / "data") and env["OMP_NUM_THREADS"] == "1"  # one per learner
    default = c.Spawner.default_url
    assert default.startswith("/git-pull?") and _query(default)["repo"] == REPO_ROOT.as_uri()
    assert _query(default)["urlpath"].endswith("/notebooks/00_setup.ipynb")
    assert c.JupyterHub.db_url == f"sqlite:///{tmp_path / 'jupyterhub.sqlite'}"
    # a room: real accounts of the learners group, each server as its learner
    assert c.JupyterHub.authenticator_class == "pam" and c.JupyterHub.spawner_class.__name__ == "CourseSpawner"
    assert "LocalProcessSpawner" in [k.__name__ for k in c.JupyterHub.spawner_class.__mro__]
    assert c.LocalAuthenticator.allowed_groups == {"learners"}


def test_hub_config_trial_mode_needs_no_accounts(monkeypatch, tmp_path):
    c = _load_config(monkeypatch, STATE_DIR=str(tmp_path), TRIAL="1", REPO="https://x.org/o/r", BRANCH="dev")
    assert c.JupyterHub.authenticator_class == "dummy"
    assert c.JupyterHub.spawner_class.__name__ == "CourseTrialSpawner"
    assert c.SimpleLocalProcessSpawner.home_dir_template == str(tmp_path / "homes" / "{username}")
    assert _query(c.Spawner.default_url)["repo"] == "https://x.org/o/r" and _query(c.Spawner.default_url)[
        "branch"] == "dev"


# --- the instructor's schedules --------------------------------------------------------------------------------


def _run(notebook: str, profile: str, seconds: float, peak_mb: int = 1024) -> dict:
    return {"notebook": notebook, "profile": profile, "seconds": seconds, "peak_mb": peak_mb, "machine": "m",
            "date": "2026-01-01"}


def _plans(monkeypatch, core_minutes: dict[str, int]) -> None:
    """Each notebook planned at ``core_minutes`` of reading (exact: words = minutes x the reading rate), plus a
    2-minute optional section."""
    def plan(path):
        name = Path(path).stem
        words = core_minutes.get(name[:2], 0) * lesson_plan.READING_WPM
        return lesson_plan.Plan(name, (lesson_plan.Section("1. Core", False, words, 0, 0),
                                       lesson_plan.Section("2. More (optional)", True, 2 * lesson_plan.READING_WPM,
                                                           0, 0)))
    monkeypatch.setattr(lesson_plan, "plan", plan)


def test_schedule_adds_measured_run_time_to_the_plan_and_rounds_up_to_five_minutes(monkeypatch):
    _plans(monkeypatch, {"00": 15, "01": 50})
    runs = [_run("00_setup", "ci", 11), _run("01_generative_basics", "ci", 301)]
    table = authoring.schedule_table("Half", "ci", 9 * 60, 10 * 60 + 30, ["00", ("break", 15), "01", "02"], runs,
                                     ["00_setup", "01_generative_basics"])
    # 15 min + 11 s -> 20 min; the optional section is listed, not scheduled
    assert "| 09:00–09:20 | `00_setup` | 15 min (1,950 words, 0 cells, 0 exercises) | 11 s | §2 2 min |" in table
    assert "| 09:20–09:35 | break | | | |" in table
    assert "| 09:35–10:35 | `01_generative_basics` | 50 min" in table  # 50 min + 301 s -> 60 min
    assert "| 5.0 min |" in table
    assert "`02" not in table, "a notebook not in the course is left out"
    assert "Ends at 10:35, **over time by 5 min**" in table and "Provisional" not in table


def test_a_break_is_written_only_before_a_notebook(monkeypatch):
    _plans(monkeypatch, {"00": 15})
    table = authoring.schedule_table("Day", "ci", 9 * 60, 17 * 60, ["00", ("break", 15), "07"],
                                     [_run("00_setup", "ci", 11)], ["00_setup"])
    assert "break" not in table and "Ends at 09:20" in table


def test_schedule_says_which_times_are_not_measured_yet(monkeypatch):
    _plans(monkeypatch, {"00": 15})
    table = authoring.schedule_table("Day", "cpu", 9 * 60, 17 * 60, ["00"], [_run("00_setup", "ci", 11)],
                                     ["00_setup"])
    assert "| `00_setup` | 15 min (1,950 words, 0 cells, 0 exercises) | not measured yet |" in table
    assert "Provisional: no `cpu` run of `00_setup` yet (`make timings PROFILE=cpu`)" in table


def test_the_real_plans_fit_the_generated_schedules():
    """Every schedule in docs/instructor.md ends on time with the notebooks as they are (core sections only)."""
    text = (REPO_ROOT / "docs" / "instructor.md").read_text(encoding="utf-8")
    assert text.count("min to spare") == len(authoring.SCHEDULES) and "over time" not in text


def test_room_memory_is_forty_times_the_peak():
    block = authoring.schedule_block([_run("00_setup", "ci", 11, 1536), _run("00_setup", "cpu", 20, 2048)],
                                     ["00_setup"])
    assert "| `00_setup` | 11 s | 20 s | – | 2.0 GB | 80 GB |" in block


def test_instructor_guide_has_the_generated_schedule():
    text = (REPO_ROOT / "docs" / "instructor.md").read_text(encoding="utf-8")
    assert authoring.SCHEDULE_START in text and authoring.SCHEDULE_END in text
    stale = authoring.write_tables(check=True)
    assert "docs/instructor.md" not in stale, "run: python -m course_utils.authoring tables"


# --- the browser test's slice of a notebook ---------------------------------------------------------------------


def test_needed_cells_follow_the_names_back_and_skip_the_rest():
    cells = ["import torch", "N = 3",                 # 0, 1: set-up (kept)
             "x = torch.zeros(N)", "slow = train()",  # 2 needed, 3 not
             "def f(v):\n    return v + x", "y = 1",  # 4 needed (f reads x), 5 not
             "x = x + 1", "widget = f(x)"]            # 6 needed (reads and rebinds x), 7 the widget
    assert needed_cells(cells, 7, 1) == [0, 1, 2, 4, 6, 7]


def test_needed_cells_keep_a_conditional_binding_and_look_further_back():
    cells = ["TRAIN = False", "model = 'built'", "if TRAIN:\n    model = 'trained'", "show(model)"]
    assert needed_cells(cells, 3, 0) == [0, 1, 2, 3]


def test_needed_cells_take_a_cells_loop_variables_as_its_own():
    cells = ["import torch", "for i in range(3):\n    name = str(i)",  # 1 binds i and name: not needed
             "samples = ['a']", "for i, s in enumerate(samples):\n    for name in s:\n        print(i, name)"]
    assert needed_cells(cells, 3, 0) == [0, 2, 3]


def test_needed_cells_on_the_real_notebooks_find_the_widget_inputs():
    path = REPO_ROOT / "notebooks" / "05_transformers_from_scratch.ipynb"
    if not path.exists():
        pytest.skip("notebook 05 is not in this checkout")
    import nbformat

    code = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    target = max(i for i, c in enumerate(code) if "TextPlayground(" in c.source)
    setup = next(i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", []))
    chosen = needed_cells([c.source for c in code], target, setup)
    bound = "\n".join(code[i].source for i in chosen)
    assert "shipped, card = load_checkpoint" in bound and "vocab = " in bound
    assert len(chosen) < len(code) / 3, "the slice should be much shorter than the notebook"


def test_workshop_files_exist():
    for path in ("workshop/jupyterhub_config.py", "docs/instructor.md"):
        assert Path(REPO_ROOT / path).exists(), path


# --- the instructor guide: its commands exist, its times are generated ------------------------------------------

GUIDE = REPO_ROOT / "docs" / "instructor.md"
HAND_TIME = re.compile(r"(?:about|takes|took|measured:?)\s+~?\d+(?:\.\d+)?\s*(?:s|min|minutes|seconds)\b")  # as 00-06


def _guide_code() -> str:
    """Every fenced block and inline code span of the guide, outside its generated schedule."""
    text = GUIDE.read_text(encoding="utf-8")
    text = text[:text.index(authoring.SCHEDULE_START)] + text[text.index(authoring.SCHEDULE_END):]
    fenced = re.findall(r"```[a-z]*\n(.*?)```", text, flags=re.S)
    inline = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
    return "\n".join(fenced + inline)


def _make_targets() -> set[str]:
    found = set()
    for line in (REPO_ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        head, colon, _ = line.partition(":")
        if colon and not line.startswith(("\t", "#", " ")) and "=" not in head:
            found |= set(head.split())
    return found


def test_every_make_target_the_guide_names_exists():
    named = set()
    for words in re.findall(r"(?<![\w-])make((?: +[A-Za-z_=./\"-][^\s#;&|]*)+)", _guide_code()):
        named |= {w for w in words.split() if re.fullmatch(r"[a-z][a-z-]*", w)}
    assert {"hub", "hub-test", "browser-test", "versions", "lab", "timings"} <= named, named
    assert not named - _make_targets(), f"docs/instructor.md names make targets the Makefile lacks: {named}"


def test_every_course_command_the_guide_names_answers_its_help(capsys):
    import importlib

    commands = set(re.findall(r"python -m course_utils\.(\w+) ([a-z][a-z-]*)", _guide_code()))
    assert {("workshop", "link"), ("bundle", "write"), ("bundle", "install"), ("runtime", "report")} <= commands
    for module, sub in sorted(commands):
        with pytest.raises(SystemExit) as done:
            importlib.import_module(f"course_utils.{module}").main([sub, "--help"])
        assert done.value.code == 0, f"python -m course_utils.{module} {sub} --help failed"
        assert "usage:" in capsys.readouterr().out


def test_the_guide_types_no_time_by_hand_and_links_07s_room_protocol():
    text = GUIDE.read_text(encoding="utf-8")
    prose = text[:text.index(authoring.SCHEDULE_START)] + text[text.index(authoring.SCHEDULE_END):]
    assert not HAND_TIME.findall(prose), f"docs/instructor.md states a time by hand: {HAND_TIME.findall(prose)}"
    assert "](../notebooks/07_evaluation.ipynb)" in text and "A protocol for a room" in text
    evaluation = REPO_ROOT / "notebooks" / "07_evaluation.ipynb"
    if evaluation.exists():  # the section the guide sends instructors to
        assert "### 4.5 A protocol for a room" in evaluation.read_text(encoding="utf-8")
