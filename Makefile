# Two commands on a fresh machine (Python 3.11, 3.12 or 3.13; no GPU needed):
#   make train   creates .venv, installs, trains the main experiment on FSDD, prints the report
#   make test    creates .venv, installs, runs the whole test suite
#   make model   rebuilds the bundled pretrained model (src/spokenword/pretrained/fsdd-digits) from those runs
# Data: $(SPOKENWORD_DATA)/fsdd/recordings; downloaded by `make train` when missing.

# The first supported interpreter found, 3.11 first: the pinned CPU torch (TORCH) is used on 3.11 here;
# on 3.12/3.13 pip fetches the same torch version's wheel for that interpreter.
PYTHONS := python3.11 python3.12 python3.13
PYTHON ?= $(firstword $(foreach p,$(PYTHONS),$(shell $(p) -c "" >/dev/null 2>&1 && echo $(p))))
VENV ?= .venv
BIN := $(VENV)/bin
# The CPU build of torch. GPU users: install the CUDA build of torch into .venv first
# (e.g. `$(BIN)/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128`),
# then `make install TORCH=` installs the rest without touching it.
TORCH ?= torch==2.13.0
# The default experiment (docs/training.md; figures in docs/results.md): an ensemble of two models
# that average their probabilities: the reference CNN with the new-voices recipe (CONFIG, 85,034 parameters) and the
# pretrained speech embedding (WITH); the last step scores the ensemble on the official test split.
# `make train WITH=` trains CONFIG alone; `make train CONFIG=configs/fsdd_cnn.yaml WITH=` the plain reference.
CONFIG ?= configs/fsdd_cnn_newvoices.yaml
WITH ?= configs/fsdd_embedding_newvoices.yaml
SHARED_DATA := $(wildcard ../shared/data/fsdd/recordings)
SPOKENWORD_DATA ?= $(if $(SHARED_DATA),$(abspath ../shared/data),$(abspath data))
export SPOKENWORD_DATA

BUNDLE ?= src/spokenword/pretrained/fsdd-digits
# the bundled model's word threshold (a digit is answered when it scores at least this, else "not a digit"):
# chosen by leave-one-speaker-out cross-validation of the default, `python -m benchmarks.accuracy ensemble
# fsdd_cnn_newvoices fsdd_embedding_newvoices` ("threshold over all folds"; docs/results.md, "Not a digit")
REJECT_BELOW ?= 0.29

.PHONY: install train test model benchmark clean

$(BIN)/python:
	@test -n "$(PYTHON)" && command -v $(PYTHON) >/dev/null || { echo "Python 3.11, 3.12 or 3.13 is required (none of $(PYTHONS) found; set PYTHON=...)"; exit 2; }
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml constraints.txt
	$(if $(TORCH),$(BIN)/pip install --quiet $(TORCH))
	$(BIN)/pip install --quiet -c constraints.txt -e ".[dev]"
	@touch $@

install: $(VENV)/.installed

# a config's runs go to runs/<its file name> (each config's logger name; tests/integration/test_configs.py)
# With WITH, the two members train at once (WITH's output goes to WITH_LOG, its report is printed after):
# each fit alone leaves part of the cores idle. SPOKENWORD_FITS_AT_ONCE gives each half of the cores: on 2 cores
# the CNN makes exactly the model it makes alone (1 thread beside its worker either way); the embedding, which has
# no worker, trains on 1 thread here and on 2 alone, so its float rounding differs (docs/training.md). A failed fit
# fails make train (a failed CONFIG fit stops WITH's at once); Ctrl-C stops both (a shell ignores it in a
# background job: hence the trap).
WITH_LOG = runs/$(basename $(notdir $(WITH))).log
train: install
	$(BIN)/spokenword download
ifeq ($(strip $(WITH)),)
	$(BIN)/spokenword fit --config $(CONFIG)
else
	@mkdir -p runs
	@echo "training $(WITH) beside $(CONFIG); its output: $(WITH_LOG)"
	SPOKENWORD_FITS_AT_ONCE=2 $(BIN)/spokenword fit --config $(WITH) > $(WITH_LOG) 2>&1 & member=$$!; \
	trap 'kill $$member 2>/dev/null; exit 130' INT TERM HUP; \
	SPOKENWORD_FITS_AT_ONCE=2 $(BIN)/spokenword fit --config $(CONFIG); cnn=$$?; \
	if [ $$cnn -ne 0 ]; then kill $$member 2>/dev/null; fi; \
	wait $$member; with=$$?; \
	sed -n '/^spokenword report:/,$$p' $(WITH_LOG); \
	if [ $$cnn -eq 0 ] && [ $$with -ne 0 ]; then tail -n 15 $(WITH_LOG); echo "training $(WITH) failed: its output is in $(WITH_LOG)"; fi; \
	[ $$cnn -eq 0 ] && [ $$with -eq 0 ]
	@echo "ensemble of runs/$(basename $(notdir $(CONFIG))) and runs/$(basename $(notdir $(WITH))) (their newest runs):"
	$(BIN)/spokenword evaluate runs/$(basename $(notdir $(CONFIG))) --with runs/$(basename $(notdir $(WITH))) --split official
endif

# the bundled model: the ensemble of the runs `make train` made (their newest runs), exported to ONNX
# (int8 where that costs no official-split accuracy), with manifest and model card; written atomically
model: install
	$(BIN)/spokenword bundle runs/$(basename $(notdir $(CONFIG))) $(if $(strip $(WITH)),--with runs/$(basename $(notdir $(WITH)))) --out $(BUNDLE) \
		$(if $(strip $(REJECT_BELOW)),--reject-below $(REJECT_BELOW))

test: install
	$(BIN)/python -m tests.setup_browser
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .cache runs
