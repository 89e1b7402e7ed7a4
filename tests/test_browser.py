"""The widgets in a real browser: JupyterLab on 127.0.0.1 (the course's settings, a token), headless Chromium
driven by Playwright, a live kernel.

For each widget the test writes a short notebook: the set-up and parameters
cells (``ci`` profile, ``TRAIN = False``: the shipped models), the cells the
widget's cell needs (found by ``needed_cells``, a static slice of the notebook)
and the widget's cell itself. It opens that notebook in JupyterLab, runs it
from the Run menu, moves a control with the mouse and checks what the kernel
redraws: 03's latent explorer (the image changes), 05's text playground (the
continuation changes with the temperature), 07's rating widget (a click adds
a row to the ratings file, in a ratings folder of the test's own). The cells are
found by markers, not by position: ``LatentExplorer`` with
``.widget(`` (03, the last such cell), ``TextPlayground(`` with ``.widget(``
(05), the cell tag ``rating-widget`` in the cell's metadata (07; until 07 has
it, the test drives the same widget from a notebook of its own and warns).

Skipped at once without Playwright or Chromium (Debian's ``chromium``;
``COURSE_CHROMIUM`` names another); ``make browser-test`` runs it alone and
``.ci/run`` requires it. Playwright's own browser download is never used.
"""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import json
import os
import re
import secrets
import shutil
import signal
import sys
import time
import urllib.request
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest

from course_utils import REPO_ROOT
from tests.workshop_support import (
    course_env,
    free_port,
    http_ok,
    needed_cells,
    processes_matching,
    require,
    start,
    stop,
    tail,
    wait_for,
)

CHROMIUM = os.environ.get("COURSE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
require(([] if importlib.util.find_spec("playwright") else ["playwright"])
        + ([] if Path(CHROMIUM).exists() else ["chromium (apt-get install chromium)"]), "the browser test")

from playwright.sync_api import Locator, Page, expect, sync_playwright  # noqa: E402

pytestmark = pytest.mark.slow  # they start Chromium and a JupyterLab (make browser-test runs them too)

# Chromium in a closed network: no background connections, no first-run tasks, no GPU.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RUN_TIMEOUT_S = 600  # the notebook's cells, up to the widget, in the ci profile on a slow CI machine
# What the kernel does after a click or a drag (decode a batch, write 200 characters): seconds on a quiet
# machine, far more on a shared one (a 60 s limit failed once on 2 busy cores); passing tests do not wait longer.
REDRAW_TIMEOUT_S = 240
NOTEBOOKS = REPO_ROOT / "notebooks"
OVERRIDE = "\nTRAIN = False  # the browser test: the shipped models, no training\n"


# --- JupyterLab and the browser --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """JupyterLab with the course's settings, its own empty home, and a data cache whose ratings are its own."""
    from course_utils.data import data_dir  # imports torch: not needed when the test is skipped

    tmp = tmp_path_factory.mktemp("lab")
    root, home, cache, ratings = tmp / "notebooks", tmp / "home", tmp / "data", tmp / "ratings"
    for folder in (root, home, cache, ratings):
        folder.mkdir()
    for entry in data_dir().iterdir():  # the real data files, read in place; the ratings go to tmp/ratings
        if entry.name != "ratings":
            (cache / entry.name).symlink_to(entry)
    port, token = free_port(), secrets.token_hex(16)
    env = course_env({"JUPYTER_CONFIG_PATH": str(REPO_ROOT / "jupyter"), "HOME": str(home),
                      "JUPYTER_CONFIG_DIR": str(home / ".jupyter"), "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
                      "COURSE_DATA_DIR": str(cache), "COURSE_RATINGS_DIR": str(ratings)})
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--notebook-dir={root}", "--allow-root"]
    log = tmp / "lab.log"
    proc = start(cmd, tmp, env, log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: http_ok(f"{base}/api/status?token={token}"), 120, "JupyterLab", proc, log)
        yield {"base": base, "token": token, "root": root, "cache": cache, "ratings": ratings, "log": log}
    finally:
        stop(proc, tmp)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Headless Chromium (Debian's) with an empty profile; every Chromium process of it ended afterwards."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 1000})
        try:
            yield context
        finally:
            context.close()
    for pid in processes_matching(str(profile)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def page(browser: Any, lab: dict[str, Any]) -> Iterator[Page]:
    """A new tab; afterwards its kernels are shut down (closing a tab leaves them running)."""
    page = browser.new_page()
    page.set_default_timeout(60_000)
    try:
        yield page
    finally:
        page.close()
        _shut_down_kernels(lab)


def _shut_down_kernels(lab: dict[str, Any]) -> None:
    auth = {"Authorization": f"token {lab['token']}"}
    with urllib.request.urlopen(urllib.request.Request(f"{lab['base']}/api/kernels", headers=auth)) as response:
        kernels = json.load(response)
    for kernel in kernels:
        request = urllib.request.Request(f"{lab['base']}/api/kernels/{kernel['id']}", headers=auth, method="DELETE")
        urllib.request.urlopen(request).close()


# --- a notebook, cut down to one widget, run from JupyterLab's Run menu --------------------------------------


def widget_notebook(source: Path, is_widget_cell: Callable[[str], bool], dest: Path) -> Path:
    """Write ``dest``: set-up, parameters (with ``TRAIN = False``), the cells the widget needs, the widget's cell."""
    nb = nbformat.read(source, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    targets = [i for i, c in enumerate(code) if is_widget_cell(c.source)]
    assert targets, f"{source.name}: no cell builds the widget (has the notebook changed?)"
    tagged = [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
    sized = [i for i, c in enumerate(code) if "by_profile(" in c.source]  # a notebook still being written
    assert tagged or sized, f"{source.name}: no parameters cell (tagged `parameters`, or calling by_profile)"
    setup = (tagged or sized)[0]
    chosen = needed_cells([c.source for c in code], targets[-1], setup)
    cells = [nbformat.v4.new_code_cell(code[i].source + (OVERRIDE if i == setup else "")) for i in chosen]
    out = nbformat.v4.new_notebook(cells=cells, metadata=nb.metadata)
    nbformat.write(out, dest)
    return dest


def open_and_run(page: Page, lab: dict[str, Any], notebook: Path, ready: str) -> Locator:
    """Open ``notebook`` in JupyterLab, choose Run > Run All Cells, wait for ``ready`` in an output; fail on errors."""
    # a workspace of its own, reset: JupyterLab would otherwise reopen the notebooks of the test before
    page.goto(f"{lab['base']}/lab/workspaces/{notebook.stem}/tree/{notebook.name}?reset&token={lab['token']}")
    cells = len(nbformat.read(notebook, as_version=4).cells)
    expect(page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell")).to_have_count(cells, timeout=120_000)
    kernel_idle = page.locator(".jp-StatusBar-Item", has_text=re.compile(r"\| Idle$"))  # "Python 3 (ipykernel) | Idle"
    kernel_idle.first.wait_for(timeout=180_000)  # before that, Run All Cells would run nothing
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    target = page.locator(f".jp-OutputArea-output {ready}").first
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        if target.count():
            target.scroll_into_view_if_needed()
            return target
        for text in errors.all_text_contents():  # cells off screen too
            if "Traceback (most recent call last)" in text:  # how IPython shows an exception
                pytest.fail(f"{notebook.name}: a cell raised in the browser:\n{text[-3000:]}")
        time.sleep(1)
    pytest.fail(f"{notebook.name}: no {ready} after {RUN_TIMEOUT_S} s.\n{tail(lab['log'])}")


def drag(page: Page, handle: Locator, dx: float) -> None:
    """Drag a slider's handle ``dx`` pixels with the mouse, as a learner does."""
    handle.scroll_into_view_if_needed()
    box = handle.bounding_box()
    assert box is not None, "the slider's handle is not drawn"
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y, steps=8)
    page.mouse.up()


def pixels(element: Locator) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(element.screenshot())).convert("L"), dtype=np.int16)


def eventually(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    pytest.fail(f"{what} within {timeout:.0f} s")


# --- the tests ----------------------------------------------------------------------------------------------


def test_latent_explorer_redraws_the_image_when_a_slider_moves(lab, page):
    nb = widget_notebook(NOTEBOOKS / "03_vae.ipynb", lambda s: "LatentExplorer" in s and ".widget(" in s,
                         lab["root"] / "explorer.ipynb")
    widget = open_and_run(page, lab, nb, ".widget-image")
    output = widget.locator("xpath=ancestor::div[contains(@class, 'jp-OutputArea-output')]")
    image, readout = output.locator("img.widget-image").first, output.locator(".widget-readout").first
    image.wait_for()
    before, value = pixels(image), readout.inner_text()
    drag(page, output.locator(".noUi-handle").first, 60)
    eventually(lambda: readout.inner_text() != value, 30, "the slider's value did not change")
    eventually(lambda: np.mean(pixels(image) != before) > 0.02, REDRAW_TIMEOUT_S, "the image was not redrawn")


def test_text_playground_continuation_changes_with_the_temperature(lab, page):
    nb = widget_notebook(NOTEBOOKS / "05_transformers_from_scratch.ipynb",
                         lambda s: "TextPlayground(" in s and ".widget(" in s, lab["root"] / "playground.ipynb")
    widget = open_and_run(page, lab, nb, ".widget-textarea textarea[disabled]")
    output = widget.locator("xpath=ancestor::div[contains(@class, 'jp-OutputArea-output')]")
    eventually(lambda: len(widget.input_value()) > 20, REDRAW_TIMEOUT_S, "the playground wrote no continuation")
    before = widget.input_value()
    slider = output.locator(".widget-hslider", has=page.locator("label", has_text="temperature")).first
    readout = slider.locator(".widget-readout")
    value = readout.inner_text()
    drag(page, slider.locator(".noUi-handle"), 80)
    eventually(lambda: readout.inner_text() != value, 30, "the temperature did not change")
    eventually(lambda: widget.input_value() not in ("", before), REDRAW_TIMEOUT_S, "the continuation did not change")


# Notebook 07's rating widget: the one code cell tagged with this (cell metadata "tags") builds the pairwise
# comparison and writes to course_utils.human_eval.ratings_dir() (COURSE_RATINGS_DIR, set by the lab fixture to a
# folder of its own). Until 07 has that cell, the test drives the same widget from a notebook it writes itself, and
# says so.
RATING_TAG = "rating-widget"
FALLBACK_RATING_CELLS = [
    "from IPython.display import display\n"
    "from course_utils.human_eval import ratings_dir\n"
    "from course_utils.widgets import EvalItem, PairwiseComparison",
    "pairs = [(EvalItem(f'a{i}', 'model-a', f'text {i} from a'), EvalItem(f'b{i}', 'model-b', f'text {i} from b'))\n"
    "         for i in range(3)]\n"
    "comparison = PairwiseComparison(pairs, rater='browser-test', log=ratings_dir() / 'browser-test.csv')\n"
    "display(comparison.widget())",
]


def rating_notebook(dest: Path) -> tuple[Path, str]:
    """07's rating-widget cell cut out as for the other widgets, else the fallback; returns (notebook, origin)."""
    for source in sorted(NOTEBOOKS.glob("07_*.ipynb")):
        cells = nbformat.read(source, as_version=4).cells
        tagged = [c.source for c in cells if c.cell_type == "code" and RATING_TAG in c.metadata.get("tags", [])]
        if tagged:
            return widget_notebook(source, lambda s, widget=tagged[-1]: s == widget, dest), source.name
    kernel = {"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}}
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in FALLBACK_RATING_CELLS],
                                  metadata=kernel)  # without a kernelspec JupyterLab asks which kernel to start
    nbformat.write(nb, dest)
    return dest, "fallback"


def _rows(folder: Path) -> list[dict[str, str]]:
    return [row for p in sorted(folder.rglob("*.csv")) for row in csv.DictReader(p.open(encoding="utf-8"))]


def test_rating_widget_click_appends_a_row_to_the_ratings_file(lab, page):
    from course_utils.widgets import PAIR_BUTTONS

    nb, origin = rating_notebook(lab["root"] / "rating.ipynb")
    if origin == "fallback":
        warnings.warn(f"no notebooks/06_*.ipynb cell is tagged {RATING_TAG!r}: the rating widget was driven from "
                      "the test's own notebook, not from 07", stacklevel=1)
    ratings = lab["ratings"]
    before = _rows(ratings)
    label, choice = next(iter(PAIR_BUTTONS.items()))  # "left is better" -> "left"
    button = open_and_run(page, lab, nb, f"button.jupyter-button:has-text('{label}')")
    button.click()
    eventually(lambda: len(_rows(ratings)) == len(before) + 1, REDRAW_TIMEOUT_S,
               f"a click ({origin}) did not append exactly one row to {ratings}/*.csv")
    row = _rows(ratings)[-1]
    assert (row["task"], row["choice"]) == ("pairwise", choice), f"the row written: {row}"
