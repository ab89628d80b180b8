# medcoder: `make help` lists the targets. Everything runs from a fresh clone with Python 3.11 or 3.12.
SHELL := /bin/bash
# The interpreter that creates .venv: python3.11, else python3.12, else python3 (override: PYTHON=/path/to/python3.12).
PYTHON ?= $(shell command -v python3.11 || command -v python3.12 || command -v python3)
VENV ?= .venv
# pyproject.toml accepts a torch range; the exact build is chosen HERE, in the same pip call as medcoder, so pip
# never picks one itself (on Linux, PyPI's default torch is a multi-GB CUDA build: docs/STACK.md, torch-build).
# GPU users: make install TORCH_SPEC="torch==2.11.0". CPU-only machines without a local CPU wheel:
# make install TORCH_INDEX=https://download.pytorch.org/whl/cpu (PyTorch's CPU wheels, ~200 MB instead of GBs).
TORCH_SPEC ?= torch==2.13.0
TORCH_INDEX ?=
BIN := $(VENV)/bin
# Offline by design: nothing is fetched from a model hub at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_PROGRESS_BARS := 1
export TOKENIZERS_PARALLELISM := false
export MLFLOW_DISABLE_TELEMETRY := true
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR := false

# The main job's corpus: the embedded synthetic corpus, generated (deterministically) if missing or stale. NOTES and SEED
# mirror medcoder.defaults (EMBEDDED_NOTES, EMBEDDED_SEED), which the configs and `medcoder synth` read;
# tests/test_defaults.py fails when they drift.
NOTES ?= 2000
SEED ?= 1
CORPUS ?= outputs/data/embedded-n$(NOTES)-s$(SEED)

.DEFAULT_GOAL := help
.PHONY: FORCE help install install-dev train codiesp denial-loop review baseline bench test lint format test-no-data test-slow cards wheelhouse clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

# Two layers: what the jobs run on (make train, codiesp, review...), and the dev tools the tests add on top
# (pytest, ruff, the browser driver, Spark, ONNX Runtime). The main job does not wait for the test tools.
$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e . "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install -q -e '.[dev]' "$(TORCH_SPEC)" $(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX))
	@touch $@

install: $(VENV)/.installed ## create .venv (if missing) and install medcoder with the pinned stack
install-dev: $(VENV)/.installed-dev ## install, plus the test and lint tools (make test does this itself)

# always asked, cheap when current: a corpus written by an older generator is rewritten (synth.GENERATOR_VERSION)
$(CORPUS)/train.jsonl: FORCE | $(VENV)/.installed
	$(BIN)/medcoder synth --out $(CORPUS) --notes $(NOTES) --seed $(SEED) --if-stale

FORCE:

train: install $(CORPUS)/train.jsonl ## the main job: corpus, baseline, train + evaluate, register, promote, card
	$(BIN)/medcoder baseline --dataset embedded --data-dir $(CORPUS)
	$(BIN)/medcoder-train corpus.notes=$(NOTES) corpus.seed=$(SEED)
	@# FAST_PATH=onnx-int8 (or onnx-fp32) packages the ONNX encoder with the version (docs/SCALE.md)
	$(BIN)/medcoder register --run-id latest $(if $(FAST_PATH),--fast-path $(FAST_PATH))
	@# a refused promotion (gates not met) keeps the current champion; it is not a failed job
	-$(BIN)/medcoder promote --eval-set $(CORPUS)/test.jsonl
	$(BIN)/medcoder card --model models:/medcoder@champion --out outputs/model_card

# CodiEsp (CLEF eHealth 2020, English): not in the repository; MEDCODER_DATA_DIR=<folder holding codiesp/>
codiesp: install ## CodiEsp top-50: balanced TF-IDF baseline, the CodiEsp recipe, and the experiment record
	$(BIN)/medcoder baseline --dataset codiesp --class-weight balanced
	$(BIN)/medcoder-train experiment=codiesp
	$(BIN)/medcoder compare --dataset codiesp

# The denial-feedback loop (docs/DENIALS.md) on the champion `make train` registers: a year of new notes coded,
# billed and adjudicated by simulated payers (835s through x12sdk), corrected and appealed; the champion fine-tuned
# on that feedback; champion and challenger compared on the held-out months; the gate decides; a record in experiments/
# DENIAL_NOTES: the practice's notes over the year (2000 fit the 30 minutes and bill about 700 claims in the held-out
# months; 3000 give more claims, so the paired interval can tell a smaller change from noise, and take longer)
DENIAL_DIR ?= outputs/denial
DENIAL_NOTES ?= 2000
denial-loop: install ## denial feedback: simulate claims on the champion, retrain on denials and corrections, gate
	$(BIN)/medcoder denial-loop simulate --out $(DENIAL_DIR) --notes $(DENIAL_NOTES)
	$(BIN)/medcoder-train experiment=denial_feedback data.data_dir=$(abspath $(DENIAL_DIR))/feedback
	$(BIN)/medcoder denial-loop compare --out $(DENIAL_DIR)

# The review app (docs/REVIEW.md) on the embedded test split coded by the champion `make train` registers, each
# suggestion in the audit trail; add an account first: .venv/bin/medcoder review add-user NAME --role coder
REVIEW_DIR ?= outputs/review
review: install $(CORPUS)/train.jsonl ## the review app on the embedded test split (http://127.0.0.1:8000)
	@mkdir -p $(REVIEW_DIR)
	$(BIN)/medcoder predict --input $(CORPUS)/test.jsonl --output $(REVIEW_DIR)/predictions.jsonl --audit audit.db
	$(BIN)/medcoder review serve --notes $(CORPUS)/test.jsonl --predictions $(REVIEW_DIR)/predictions.jsonl \
		--corrections $(REVIEW_DIR)/corrections.jsonl

baseline: install $(CORPUS)/train.jsonl ## TF-IDF + logistic regression baseline on the embedded corpus
	$(BIN)/medcoder baseline --dataset embedded --data-dir $(CORPUS)

# Speed and memory, every ratio side by side in one run (scripts/bench.py): prints NAME VALUE lines and writes
# experiments/<date>-bench.md. install-dev: the ONNX Runtime fast path is in the dev (and `fast`) extra
bench: install-dev ## training and serving speed, memory and the ONNX fast path against their targets (~10 min)
	$(BIN)/python scripts/bench.py

test: install-dev ## the fast test suite
	$(BIN)/pytest -q

lint: install-dev ## ruff: lint and check formatting (configured in pyproject.toml)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install-dev ## ruff: apply the formatter and the safe lint fixes
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The tests that read reference data, run as on a fresh clone (MEDCODER_DATA_DIR at an empty folder):
# data tests must skip with the command that provides the data, error paths must still pass.
DATA_TESTS ?= tests/test_loaders_sources.py tests/test_loaders_codiesp.py tests/test_loaders_mdace.py \
	tests/test_loaders_mimic.py tests/test_codes.py tests/test_baseline_cards.py tests/test_data_reference.py
test-no-data: install-dev ## the data-reading tests with no reference data (as on a user's fresh clone)
	@empty=$$(mktemp -d) && MEDCODER_DATA_DIR=$$empty $(BIN)/pytest -q -rs $(DATA_TESTS); status=$$?; rmdir $$empty; exit $$status

test-slow: install-dev ## the slow tests only (resume, registry round trips)
	$(BIN)/pytest -q -m slow

cards: install ## regenerate the statistics blocks of data_cards/*.md
	$(BIN)/medcoder cards

# An offline install for an air-gapped machine (README "Air-gapped install"): medcoder's own wheel, every wheel it
# depends on and the torch build TORCH_SPEC names, for the Python version PY and wheel platform PLATFORM (default: this
# machine's), e.g. make wheelhouse PY=3.12 PLATFORM=manylinux_2_28_x86_64 TORCH_SPEC="torch==2.11.0"
WHEELHOUSE ?= wheelhouse
PY ?=
PLATFORM ?=
# pip takes a --platform tag literally, but a manylinux_2_28 machine also installs the older manylinux_2_17..2_27
# (manylinux2014) wheels many packages ship (tokenizers): a manylinux_2_N tag is expanded down to manylinux2014.
# Two dependencies are published as source only (seqeval, and hydra-core's antlr4 runtime): pure Python, so their
# wheels are built here (py3-none-any, any platform) and found by the download.
SOURCE_ONLY ?= seqeval==1.2.2 antlr4-python3-runtime==4.9.3
wheelhouse: install ## wheels for an offline install (PY=3.12 PLATFORM=manylinux_2_28_x86_64)
	$(BIN)/pip wheel -q --no-deps -w $(WHEELHOUSE) . $(SOURCE_ONLY)
	platforms=(); for tag in $(PLATFORM); do \
	  if [[ $$tag =~ ^manylinux_2_([0-9]+)_(.+)$$ ]]; then \
	    for ((m = $${BASH_REMATCH[1]}; m >= 17; m--)); do platforms+=(--platform "manylinux_2_$${m}_$${BASH_REMATCH[2]}"); done; \
	    platforms+=(--platform "manylinux2014_$${BASH_REMATCH[2]}"); \
	  else platforms+=(--platform "$$tag"); fi; \
	done; \
	$(BIN)/pip download -q --only-binary=:all: --find-links $(WHEELHOUSE) -d $(WHEELHOUSE) \
		$(if $(PY),--python-version $(PY)) "$${platforms[@]}" \
		$(if $(TORCH_INDEX),--extra-index-url $(TORCH_INDEX)) $(WHEELHOUSE)/medcoder-*.whl "$(TORCH_SPEC)"

clean: ## remove generated outputs (keeps .venv, mlflow.db and the audit trail audit.db)
	rm -rf outputs multirun .pytest_cache
