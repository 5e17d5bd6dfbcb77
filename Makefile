# Two commands on a fresh machine (Python 3.11, no GPU needed):
#   make train   creates .venv, installs, trains the main experiment on FSDD, prints the report
#   make test    creates .venv, installs, runs the whole test suite
# Data: $(SPOKENWORD_DATA)/fsdd/recordings; downloaded by `make train` when missing.

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch. GPU users: install the CUDA build of torch into .venv first
# (e.g. `$(BIN)/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128`),
# then `make install TORCH=` installs the rest without touching it.
TORCH ?= torch==2.13.0
# The default experiment (README "Accuracy"): an ensemble of two models that average their
# probabilities: the reference CNN with the new-voices recipe (CONFIG, 85,034 parameters) and the
# pretrained speech embedding (WITH); the last step scores the ensemble on the official test split.
# `make train WITH=` trains CONFIG alone; `make train CONFIG=configs/fsdd_cnn.yaml WITH=` the plain reference.
CONFIG ?= configs/fsdd_cnn_newvoices.yaml
WITH ?= configs/fsdd_embedding_newvoices.yaml
SHARED_DATA := $(wildcard ../shared/data/fsdd/recordings)
SPOKENWORD_DATA ?= $(if $(SHARED_DATA),$(abspath ../shared/data),$(abspath data))
export SPOKENWORD_DATA

.PHONY: install train test benchmark clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found; set PYTHON=...)"; exit 2; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(if $(TORCH),$(BIN)/pip install --quiet $(TORCH))
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $@

install: $(VENV)/.installed

# a config's runs go to runs/<its file name> (each config's logger name; tests/integration/test_configs.py)
train: install
	$(BIN)/spokenword download
	$(BIN)/spokenword fit --config $(CONFIG)
ifneq ($(strip $(WITH)),)
	$(BIN)/spokenword fit --config $(WITH)
	@echo "ensemble of runs/$(basename $(notdir $(CONFIG))) and runs/$(basename $(notdir $(WITH))) (their newest runs):"
	$(BIN)/spokenword evaluate runs/$(basename $(notdir $(CONFIG))) --with runs/$(basename $(notdir $(WITH))) --split official
endif

test: install
	$(BIN)/python -m tests.setup_browser
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .cache runs
