# One virtual environment per clone; every target creates it when missing.
VENV   ?= .venv
PYTHON := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
ARGS   ?=

.PHONY: env run test test-slow test-slurm bench lint format clean

env: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)  ## the main job: DEN on permuted MNIST (10 tasks)
	$(PYTHON) -m den.train +experiment=pmnist $(ARGS)

test: $(STAMP)  ## lint + every test but the slow tier (< 10 minutes on 2 cores)
	$(VENV)/bin/ruff check den tests hydra_plugins
	WANDB_MODE=disabled $(PYTHON) -m pytest -q -m "not slow" $(ARGS)

test-slow: $(STAMP)  ## the slow tier: real processes killed, signalled, swept, searched (~7 min)
	WANDB_MODE=disabled $(PYTHON) -m pytest -q -m slow $(ARGS)

test-slurm: $(STAMP)  ## hydra/launcher=slurm against a real cluster (starts ../shared/tools/slurm-local)
	PYTHON=$(PYTHON) bash .ci/test-slurm

bench: $(STAMP)  ## framework vs bare PyTorch steps -> outputs/bench/<timestamp>/bench.json
	$(PYTHON) -m den.bench $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check den tests hydra_plugins
	$(VENV)/bin/ruff format --check den tests hydra_plugins

format: $(STAMP)
	$(VENV)/bin/ruff format den tests hydra_plugins
	$(VENV)/bin/ruff check --fix den tests hydra_plugins

clean:
	rm -rf outputs/* .pytest_cache .ruff_cache
	touch outputs/.gitkeep
