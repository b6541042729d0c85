# fashion-serve: every target sets up what it needs in .venv, so each works on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
DOCKER_BASE_IMAGE ?= local/python:3.11-slim

.PHONY: serve train test lint test-docker test-docker-gpu bench clean

# One stamp per dependency set: re-install only when its requirements file changes.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.serve: requirements/serve.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/serve.txt
	touch $@

$(VENV)/.train: requirements/train.txt requirements/serve.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/train.txt
	touch $@

$(VENV)/.test: requirements/test.txt requirements/train.txt requirements/serve.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements/test.txt
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

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
