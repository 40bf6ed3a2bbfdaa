# The two commands of the README:  `make demo`  and  `make test`.
# Both create .venv and install everything on a fresh clone (Linux, Python 3.11).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build of torch; on a CUDA machine use e.g. `make TORCH_SPEC=torch==2.14.1 test`.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev,gpu,ray,interop,docs,vpr
# No wheel cache: the two environments need ~12 GB of disk already; a cache would double the
# downloaded part.
export PIP_NO_CACHE_DIR := 1

.PHONY: install demo test lint format typecheck pytest clean device-wheels docs nerfstudio-env lens-env

# The nerfstudio plugin test runs `ns-train` in a second environment: nerfstudio needs
# torchvision, which imports only beside the torch 2.14.1 (CUDA) build, not the CPU wheel above.
# The heavy part (torch 2.14.1 + torchvision + nerfstudio and its dependencies, ~8 GB) is
# installed once; a change of pyproject.toml only re-installs neurosim into it (seconds).
NS_VENV ?= .venv-ns
NS_SPEC ?= torch==2.14.1 torchvision==0.29.1 nerfstudio==1.1.5

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[$(EXTRAS)]"
	# the VPRTempo peer of place_recognition, without its torchvision pin (see pyproject `vpr`)
	$(PY) -m pip install --quiet --no-deps "vprtempo==1.1.10"
	touch $@

install: $(VENV)/.installed

$(NS_VENV)/.base:
	$(PYTHON) -m venv $(NS_VENV)
	$(NS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(NS_VENV)/bin/python -m pip install --quiet $(NS_SPEC)
	touch $@

$(NS_VENV)/.installed: $(NS_VENV)/.base pyproject.toml
	$(NS_VENV)/bin/python -m pip install --quiet --no-deps -e .
	# numba: the CPU kernels (hash grid, LIF scan) that `auto` picks, for benchmarks beside nerfstudio
	$(NS_VENV)/bin/python -m pip install --quiet "numba>=0.60"
	touch $@

nerfstudio-env: $(NS_VENV)/.installed

# The LENS peer of place_recognition (benchmarks/lens_corridor.py; not used by the tests): lens-vpr
# needs torchvision (so the torch 2.14.1 build) and its `main.py` would overwrite vprtempo's, so it
# gets an environment of its own. scikit-image is imported by lens.run_model but not declared by lens-vpr.
LENS_VENV ?= .venv-lens
LENS_SPEC ?= torch==2.14.1 torchvision==0.29.1 lens-vpr==0.1.5 scikit-image==0.26.0

$(LENS_VENV)/.installed:
	$(PYTHON) -m venv $(LENS_VENV)
	$(LENS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LENS_VENV)/bin/python -m pip install --quiet $(LENS_SPEC)
	touch $@

lens-env: $(LENS_VENV)/.installed

demo: install
	$(VENV)/bin/neurosim demo

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

typecheck: install
	$(VENV)/bin/mypy

pytest: install nerfstudio-env
	$(PY) -m pytest

test: lint typecheck pytest

clean:
	rm -rf $(VENV) $(NS_VENV) $(LENS_VENV) .mypy_cache .ruff_cache .pytest_cache

# Pure-Python peers for a device run (benchmarks/gpu_check.sh); carry device_data to the GPU machine.
device-wheels: install
	mkdir -p device_data/wheels
	$(PY) -m pip download --quiet --no-deps -d device_data/wheels \
		snntorch==1.0.0 nir==1.0.8 spikingjelly==2.0.0 loguru tqdm

# The documentation site (mkdocs, strict: a broken link fails); the test suite builds it too.
docs: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict -d site
