# fashion-serve: every target sets up what it needs in .venv, so each works on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DOCKER_BASE_IMAGE ?= local/python:3.11-slim

.PHONY: serve train test lint test-docker test-swarm test-docker-gpu bench clean

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

# One stamp per dependency set: re-install only when its requirements file changes.
$(VENV)/.serve: requirements/serve.txt | $(UV)
	$(UV) pip install --quiet --python $(BIN)/python -r requirements/serve.txt
	touch $@

$(VENV)/.train: requirements/train.txt requirements/serve.txt | $(UV)
	$(UV) pip install --quiet --python $(BIN)/python -r requirements/train.txt
	touch $@

$(VENV)/.test: requirements/test.txt requirements/train.txt requirements/serve.txt | $(UV)
	$(UV) pip install --quiet --python $(BIN)/python -r requirements/test.txt
	touch $@

serve: $(VENV)/.serve  ## serve the shipped registry on $(HOST):$(PORT)
	FASHION_BIND=$${FASHION_BIND:-$(HOST):$(PORT)} $(BIN)/gunicorn -c service/gunicorn.conf.py service.wsgi:app

train: $(VENV)/.train  ## train, export and register a new version (ARGS="--epochs 10 --promote production")
	$(BIN)/python -m training $(ARGS)

lint: $(VENV)/.test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint  ## lint, then the whole test suite (real data, real models, real gunicorn)
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
	rm -rf $(VENV) .pytest_cache .ruff_cache
