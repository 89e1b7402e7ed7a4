# Two commands run the course:  make lab   (start it)   and   make test   (check it).
# Both set themselves up: a .venv with the pinned requirements, course_utils, the data. A learner's make lab
# installs the course and JupyterLab only (requirements-lab.txt); make test adds the test, lint and workshop
# tools (requirements.txt). make check sets up and prints the environment report without starting the lab.
# In an environment that already has torch (Colab, a GPU box):  make test-gpu VENV=none
# installs only what is missing, from the ranges in pyproject.toml.

VENV ?= .venv
PYTHON ?= python3
NBVAL_TIMEOUT ?= 900
LAB_ARGS ?=
# Jupyter refuses to run as root (containers, Binder-like boxes) without this flag.
LAB_ROOT := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root)

# VENV=none installs from pyproject.toml's ranges only the extras a target needs.
EXTRAS ?= text,test,lint
ifeq ($(VENV),none)
PY := $(PYTHON)
STAMP := install-current-env
LAB_STAMP := install-current-env
else
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LAB_STAMP := $(VENV)/.installed-lab
endif
# The Pythons that pyproject.toml's requires-python and every pinned package admit (tests/test_packaging.py
# keeps them so): 3.10 is in the range, for the oldest set of make versions, but numpy 2.4 and others need 3.11.
PYTHONS := 3.11 3.12

export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH))
# The notebooks' test environment (COURSE_QUIET, COURSE_EXPECT_STUBS, offline Hub...) is defined once, in
# course_utils/runtime.py; read when a recipe runs (after set-up), with the profile: $(call NOTEBOOK_ENV,ci).
NOTEBOOK_ENV = $(or $(shell "$(PY)" -m course_utils.runtime notebook-env --profile $(1)),\
  $(error could not read the notebook environment: "$(PY)" -m course_utils.runtime notebook-env failed))
NBVAL := $(PY) -m pytest --nbval-lax --current-env --nbval-cell-timeout=$(NBVAL_TIMEOUT) -p no:cacheprovider notebooks

PROFILE ?= ci
NOTEBOOKS ?=

.PHONY: setup setup-lab check data lab test test-gpu require-cuda lint unit nbval clean-venv help install-current-env timings tables site

help:
	@echo "make lab       set up (.venv, requirements, data) and start JupyterLab on notebooks/"
	@echo "make check     the same set-up, then the environment report (no lab): the pre-workshop check"
	@echo "make test      set up, then ruff, unit tests and every notebook under nbval (ci profile)"
	@echo "make test-gpu  the same nbval run in the gpu profile (needs a CUDA device)"
	@echo "make site      execute the notebooks (PROFILE=...) and render them as HTML in build/site/"
	@echo "make timings   run the notebooks (PROFILE=ci|cpu|gpu, NOTEBOOKS=02_gan ...), record times, rewrite the tables"
	@echo "VENV=none      use the current Python environment, installing only what is missing"

setup: $(STAMP)
setup-lab: $(LAB_STAMP)

install-current-env:
	$(PY) -m pip install -q -e ".[$(EXTRAS)]"

# Checked before anything is downloaded: a Python outside the supported range stops here, in a second.
PYTHON_CHECK = found=$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || { \
	  echo "error: '$(PYTHON)' was not found. Install Python $(firstword $(PYTHONS))-$(lastword $(PYTHONS)), then e.g. make $(or $(MAKECMDGOALS),lab) PYTHON=python3.12" >&2; exit 1; }; \
	case " $(PYTHONS) " in *" $$found "*) ;; *) \
	  echo "error: the course needs Python $(firstword $(PYTHONS))-$(lastword $(PYTHONS)), but '$(PYTHON)' is Python $$found ($$(command -v $(PYTHON))). Choose another: make $(or $(MAKECMDGOALS),lab) PYTHON=python3.12" >&2; exit 1;; esac

$(VENV)/.installed-lab: requirements-lab.txt pyproject.toml
	@if [ ! -x "$(PY)" ]; then $(PYTHON_CHECK); fi
	test -x "$(PY)" || $(PYTHON) -m venv "$(VENV)"
	"$(PY)" -m pip install -q --upgrade pip
	@echo "Installing the course's packages into $(VENV): about 6 GB, most of it torch; a few minutes on a fast line."
	@echo "(On Linux without a GPU, the README shows how to take PyTorch's smaller CPU-only build instead.)"
	"$(PY)" -m pip install --progress-bar on -r requirements-lab.txt
	"$(PY)" -m pip install -q --no-deps -e .
	@touch "$@"

$(VENV)/.installed: requirements.txt $(VENV)/.installed-lab
	"$(PY)" -m pip install -q -r requirements.txt
	@touch "$@"

setup-lab lab check: EXTRAS = text,lab
test-gpu: EXTRAS = text,test

data: setup
	$(PY) -m course_utils.data fetch

lab: setup-lab
	-"$(PY)" -m course_utils.data fetch || echo "Some data files are missing (see above); the notebooks that need them will say so."
	JUPYTER_CONFIG_PATH="$(CURDIR)/jupyter$(if $(JUPYTER_CONFIG_PATH),:$(JUPYTER_CONFIG_PATH))" \
	  "$(PY)" -m jupyter lab --notebook-dir=notebooks $(LAB_ROOT) $(LAB_ARGS)

# The pre-workshop check: everything make lab sets up, the data fetched, then the environment report.
check: setup-lab
	"$(PY)" -m course_utils.data fetch
	"$(PY)" -m course_utils.runtime report

lint: setup
	$(PY) -m ruff check course_utils tests notebooks
	$(PY) -m course_utils.colab check
	$(PY) -m course_utils.authoring tables --check

# The workshop kit's end-to-end checks (a real hub, a real browser) are skipped here: make hub-test and make
# browser-test run them on their own, as .ci/run does after make test.
unit: setup data
	COURSE_REQUIRE_WORKSHOP_TESTS=0 $(PY) -m pytest -q tests

# Two notebooks at a time (pytest-xdist, a notebook per worker, the longest first: conftest.py), each kernel on
# one thread, so two kernels share two cores without oversubscribing them. NBVAL_WORKERS=1 runs them one by one.
NBVAL_WORKERS ?= 2
NBVAL_PARALLEL = $(if $(filter-out 1,$(NBVAL_WORKERS)),OMP_NUM_THREADS=1 $(NBVAL) -n $(NBVAL_WORKERS) \
  --dist loadfile --no-loadscope-reorder,$(NBVAL))
nbval: setup data
	$(call NOTEBOOK_ENV,ci) $(NBVAL_PARALLEL)

test: lint unit nbval

NO_CUDA := make test-gpu needs a CUDA GPU and finds none here; run make test on a CPU machine.

# Checked before any set-up (so it fails at once), and again with the installed torch.
require-cuda:
	@if $(PY) -c "import torch" 2>/dev/null; then \
	  $(PY) -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" || \
	    { echo "$(NO_CUDA) (torch.cuda.is_available() is False)" >&2; exit 1; }; \
	else \
	  nvidia-smi -L >/dev/null 2>&1 || { echo "$(NO_CUDA) (nvidia-smi finds no device)" >&2; exit 1; }; \
	fi

test-gpu: require-cuda setup data
	@$(MAKE) --no-print-directory require-cuda VENV=$(VENV)
	$(PY) -m pytest -q tests
	$(call NOTEBOOK_ENV,gpu) $(NBVAL)

timings: setup data
	$(PY) -m course_utils.authoring timings --profile $(PROFILE) $(NOTEBOOKS)

tables: setup
	$(PY) -m course_utils.authoring tables

# The notebooks executed in PROFILE and rendered with their outputs, linked, in build/site/ (not committed).
site: setup data
	$(PY) -m course_utils.authoring site build/site $(NOTEBOOKS) --profile $(PROFILE)

clean-venv:
	rm -rf $(VENV)

# --- the workshop kit (docs/instructor.md) ---------------------------------------------------------------
# The hub's proxy (configurable-http-proxy, from npm) goes into build/node/, never globally. The Python
# packages (jupyterhub, nbgitpuller, playwright...) are in requirements.txt (the workshop extra).
.PHONY: hub hub-test browser-test versions cloud-test
CHP_VERSION ?= 5.3.0
CHP := build/node/node_modules/.bin/configurable-http-proxy
CHROMIUM ?= $(or $(COURSE_CHROMIUM),$(shell command -v chromium 2>/dev/null),/usr/bin/chromium)
hub hub-test browser-test: EXTRAS = text,test,lab,workshop

$(CHP):
	@command -v npm >/dev/null || { echo "the hub needs Node.js and npm (e.g. apt-get install nodejs npm)" >&2; exit 1; }
	npm install --prefix build/node --no-audit --no-fund --loglevel=error configurable-http-proxy@$(CHP_VERSION)

# A workshop hub on this machine (as root: each learner's server runs as that learner); see workshop/.
hub: setup data $(CHP)
	$(PY) -m jupyterhub -f workshop/jupyterhub_config.py

# End-to-end checks of the kit, run alone; .ci/run runs both. They fail, never skip, if something is missing.
# hub-test runs as root: it creates two learner accounts for real PAM log-ins and removes them after.
hub-test: setup data $(CHP)
	COURSE_REQUIRE_WORKSHOP_TESTS=1 $(PY) -m pytest -q -p no:cacheprovider tests/test_workshop_hub.py

browser-test: setup data
	@test -x "$(CHROMIUM)" || { echo "make browser-test needs Chromium: apt-get install chromium (or COURSE_CHROMIUM=...)" >&2; exit 1; }
	COURSE_REQUIRE_WORKSHOP_TESTS=1 COURSE_CHROMIUM=$(CHROMIUM) $(PY) -m pytest -q -p no:cacheprovider tests/test_browser.py

# The set-up cell as Colab and Kaggle run it (tests/test_cloud.py): a fresh runtime per platform with the
# platform's own packages, a clone of this repository's committed state, 00 and 01 run top to bottom.
cloud-test: setup data
	COURSE_CLOUD_TESTS=1 $(PY) -m pytest -q -p no:cacheprovider tests/test_cloud.py

# The unit tests and every notebook (ci) with the oldest versions pyproject.toml claims and with the newest
# releases (a transformers 4.x line too), each set in its own venv under build/versions/. Not part of make
# test (it installs other torch builds). VERSION_SETS="oldest" NOTEBOOKS="00_setup 01_generative_basics" for less.
VERSION_SETS ?= oldest newest-4x newest
versions:
	.ci/versions $(VERSION_SETS)
