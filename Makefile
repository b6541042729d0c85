# fashion-serve: every target sets up what it needs in .venv, so each works on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DOCKER_BASE_IMAGE ?= local/python:3.11-slim

.PHONY: help serve train test lint typecheck lock test-docker test-swarm test-docker-gpu bench clean
.DEFAULT_GOAL := help

# uv installs the pinned sets: pip needed over an hour for the test set on a busy two-core CI
# machine (its resolver and bytecode compiler are pure Python); uv takes minutes.
UV_VERSION := 0.13.9
UV := $(BIN)/uv
export UV_LINK_MODE := copy
# Bytecode is compiled lazily, on first import, and kept: TensorFlow's start-up is slow enough.
unexport PYTHONDONTWRITEBYTECODE

$(UV):
	$(PYTHON) -m venv --without-pip $(VENV)
	PIP_ROOT_USER_ACTION=ignore $(PYTHON) -m pip install --quiet --prefix $(VENV) uv==$(UV_VERSION)

help:  ## list the targets
	@awk -F ':.*## ' '/^[a-z][a-z-]*:.*## / {printf "  %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Every set is installed from its lock (requirements/*.lock: every package pinned, compiled by
# `make lock` from the readable top-level pins in requirements/*.txt). One stamp per set:
# re-install only when its lock changes.
$(VENV)/.serve: requirements/serve.lock | $(UV)
	$(UV) pip install --quiet --python $(BIN)/python -r requirements/serve.lock
	touch $@

$(VENV)/.train: requirements/train.lock | $(UV)
	$(UV) pip install --quiet --python $(BIN)/python -r requirements/train.lock
	touch $@

$(VENV)/.test: requirements/test.lock | $(UV)
	$(UV) pip install --quiet --python $(BIN)/python -r requirements/test.lock
	touch $@

# Linting needs ruff alone: its own small venv, so `make lint` never waits for TensorFlow.
LINT_VENV := .venv-lint
$(LINT_VENV)/.lint: requirements/lint.lock | $(UV)
	$(PYTHON) -m venv --without-pip $(LINT_VENV)
	$(UV) pip install --quiet --python $(LINT_VENV)/bin/python -r requirements/lint.lock
	touch $@

# The test set is resolved first, for all of it at once; the smaller sets are then held to its
# versions, so what ships (serve, train) is exactly what the tests ran with.
LOCK := $(UV) pip compile --quiet --python-version 3.11 --python-platform x86_64-unknown-linux-gnu
REQ := requirements

lock: | $(UV)  ## re-pin every dependency after a change to requirements/*.txt (needs PyPI)
	$(LOCK) $(REQ)/serve.txt $(REQ)/train.txt $(REQ)/test.txt $(REQ)/lint.txt -o $(REQ)/test.lock
	$(LOCK) $(REQ)/serve.txt $(REQ)/train.txt -c $(REQ)/test.lock -o $(REQ)/train.lock
	$(LOCK) $(REQ)/serve.txt -c $(REQ)/test.lock -o $(REQ)/serve.lock
	$(LOCK) $(REQ)/lint.txt -c $(REQ)/test.lock -o $(REQ)/lint.lock

serve: $(VENV)/.serve  ## serve the shipped registry on $(HOST):$(PORT)
	FASHION_BIND=$${FASHION_BIND:-$(HOST):$(PORT)} $(BIN)/python -m service

train: $(VENV)/.train  ## train, export and register a new version (ARGS="--epochs 10 --promote production")
	$(BIN)/python -m training $(ARGS)

lint: $(LINT_VENV)/.lint  ## ruff check and ruff format --check (what .pre-commit-config.yaml runs)
	$(LINT_VENV)/bin/ruff check .
	$(LINT_VENV)/bin/ruff format --check .

typecheck: $(VENV)/.test  ## mypy, strict on service/
	$(BIN)/mypy

test: lint typecheck  ## lint, type-check, then the whole test suite (real data, models, gunicorn)
	$(BIN)/python -m pytest

test-docker: $(VENV)/.test  ## build the images, run the compose deployment end to end
	$(BIN)/python -m pytest -m docker tests/docker -p no:cacheprovider

test-swarm: $(VENV)/.test  ## deploy/swarm/stack.yml on a one-node swarm: promote, update, lost replica
	$(BIN)/python -m pytest -m swarm tests/docker/test_swarm.py -p no:cacheprovider

bench: $(VENV)/.test  ## benchmark against FastAPI+uvicorn and naive Flask (bench/README.md)
	$(BIN)/python -m bench.bench $(ARGS)

# BuildKit builds only the stages a target needs (classic docker build would build TensorFlow
# too); a docker CLI of 23 or newer has it only with buildx, Debian's 20.10 CLI has it built in.
DOCKER_BUILDKIT_CLI ?= $(shell docker buildx version >/dev/null 2>&1 && echo docker || echo /usr/bin/docker)
GPU_IMAGE := fashion-serve-gpu:check
CUDA_PROVIDER_LIB := /opt/venv/lib/python3.11/site-packages/onnxruntime/capi/libonnxruntime_providers_cuda.so

test-docker-gpu:  ## build serve-gpu; onnxruntime in it must offer CUDA with its libraries found
	bash ../shared/docker/ensure-engine.sh
	bash ../shared/docker/build-local-base.sh $(DOCKER_BASE_IMAGE)
	DOCKER_BUILDKIT=1 $(DOCKER_BUILDKIT_CLI) build --build-arg BASE_IMAGE=$(DOCKER_BASE_IMAGE) \
		--target serve-gpu --tag $(GPU_IMAGE) .
	docker run --rm --entrypoint python $(GPU_IMAGE) -c "import onnxruntime as o; \
		p = o.get_available_providers(); print(p); assert 'CUDAExecutionProvider' in p, p"
	@# Every library the CUDA provider links must resolve, but the driver's libcuda, which the
	@# NVIDIA container runtime mounts in when a GPU is reserved.
	docker run --rm --entrypoint sh $(GPU_IMAGE) -c \
		"! ldd $(CUDA_PROVIDER_LIB) | grep 'not found' | grep -v 'libcuda\.so'"

clean:
	rm -rf $(VENV) $(LINT_VENV) .pytest_cache .ruff_cache .mypy_cache build
