# fashion-serve: every target sets up what it needs in .venv, so each works on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: help serve train quantize test lint typecheck lock test-docker test-swarm test-docker-gpu bench gallery clean
.DEFAULT_GOAL := help

# uv installs the locked sets (pip needed over an hour for the test set on a busy two-core CI
# machine; uv takes minutes). It is bootstrapped once from PyPI into .uv/, outside the venvs it
# syncs: `uv sync` removes from a venv whatever the lock does not list for it.
UV_VERSION := 0.13.9
UV_HOME := .uv
UV := $(UV_HOME)/bin/uv
export UV_LINK_MODE := copy
# Bytecode is compiled lazily, on first import, and kept: TensorFlow's start-up is slow enough.
unexport PYTHONDONTWRITEBYTECODE
# The tests find the same uv (the lock check, the packaging test).
export PATH := $(CURDIR)/$(UV_HOME)/bin:$(PATH)

$(UV):
	PIP_ROOT_USER_ACTION=ignore $(PYTHON) -m pip install --quiet --target $(UV_HOME) uv==$(UV_VERSION)

help:  ## list the targets
	@awk -F ':.*## ' '/^[a-z][a-z-]*:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Every environment comes from uv.lock, the one lock: --locked refuses a lock that no longer
# matches pyproject.toml. `uv sync` is a no-op when the venv already matches, so it runs each time.
SYNC := $(UV) sync --locked --python $(PYTHON)
.PHONY: venv-serve venv-train venv-test venv-lint
venv-serve: | $(UV)  # the service's set; --inexact keeps a test venv's extra packages
	$(SYNC) --no-default-groups --inexact --quiet
venv-train: | $(UV)  # the service's set, the train extra and the development sets' data (evaluation)
	$(SYNC) --no-default-groups --extra train --group evaluation --inexact --quiet
venv-test: | $(UV)  # everything the tests import: the service, training, the test tools
	$(SYNC) --extra train --group test --quiet

# Linting needs ruff alone: its own small venv, so `make lint` never waits for TensorFlow.
LINT_VENV := .venv-lint
venv-lint: | $(UV)
	UV_PROJECT_ENVIRONMENT=$(LINT_VENV) $(SYNC) --only-group lint --no-install-project --quiet

lock: | $(UV)  ## re-resolve uv.lock after a change to pyproject.toml's dependencies (needs PyPI)
	$(UV) lock

serve: venv-serve  ## serve the shipped registry on $(HOST):$(PORT)
	FASHION_BIND=$${FASHION_BIND:-$(HOST):$(PORT)} $(BIN)/python -m service

train: venv-train  ## train, export, register (ARGS="--epochs 10 --with-feedback --promote production --gate")
	$(BIN)/python -m training $(ARGS)

quantize: venv-train  ## register a version with int8 convolutions (ARGS="13 --promote production --gate")
	$(BIN)/python -m training.quantize $(ARGS)

lint: venv-lint  ## ruff check and ruff format --check (what .pre-commit-config.yaml runs)
	$(LINT_VENV)/bin/ruff check .
	$(LINT_VENV)/bin/ruff format --check .

typecheck: venv-test  ## mypy --strict on service/, training/ and evaluation/
	$(BIN)/mypy

test: lint typecheck  ## lint, type-check, then the whole test suite (real data, models, gunicorn)
	$(BIN)/python -m pytest

test-docker: venv-test  ## build the images, run the compose deployment end to end
	$(BIN)/python -m pytest -m docker tests/docker -p no:cacheprovider

test-swarm: venv-test  ## deploy/swarm/stack.yml on a one-node swarm: promote, update, lost replica, canary, shadow
	$(BIN)/python -m pytest -m swarm tests/docker/test_swarm.py -p no:cacheprovider

gallery: venv-test  ## rewrite the page's gallery PNGs from the real test set (committed)
	$(BIN)/python -m scripts.gallery $(ARGS)

bench: venv-test  ## benchmark against FastAPI+uvicorn and naive Flask (bench/README.md)
	$(BIN)/python -m bench.bench $(ARGS)

# BuildKit builds only the stages a target needs (classic docker build would build TensorFlow
# too); a docker CLI of 23 or newer has it only with buildx, Debian's 20.10 CLI has it built in.
DOCKER_BUILDKIT_CLI ?= $(shell docker buildx version >/dev/null 2>&1 && echo docker || echo /usr/bin/docker)
GPU_IMAGE := fashion-serve-gpu:check
CUDA_PROVIDER_LIB := /opt/venv/lib/python3.11/site-packages/onnxruntime/capi/libonnxruntime_providers_cuda.so

# deploy/docker/: an engine (installed and started where possible; exit 3 where none can run)
# and the base image (python:3.11-slim, or a local stand-in where no registry answers).
test-docker-gpu:  ## build serve-gpu; onnxruntime in it must offer CUDA with its libraries found
	@bash deploy/docker/engine.sh || { [ $$? = 3 ] && echo "test-docker-gpu skipped" && exit 0; }
	base=$$(bash deploy/docker/base-image.sh | tail -n 1) && \
	DOCKER_BUILDKIT=1 $(DOCKER_BUILDKIT_CLI) build --build-arg BASE_IMAGE=$$base \
		--target serve-gpu --tag $(GPU_IMAGE) .
	docker run --rm --entrypoint python $(GPU_IMAGE) -c "import onnxruntime as o; \
		p = o.get_available_providers(); print(p); assert 'CUDAExecutionProvider' in p, p"
	@# Every library the CUDA provider links must resolve, but the driver's libcuda, which the
	@# NVIDIA container runtime mounts in when a GPU is reserved.
	docker run --rm --entrypoint sh $(GPU_IMAGE) -c \
		"! ldd $(CUDA_PROVIDER_LIB) | grep 'not found' | grep -v 'libcuda\.so'"

clean:
	rm -rf $(VENV) $(LINT_VENV) $(UV_HOME) .pytest_cache .ruff_cache .mypy_cache build
