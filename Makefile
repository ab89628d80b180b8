# medcoder: `make help` lists the targets. Everything runs from a fresh clone with only Python 3.11.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
# torch is pinned to the CPU wheel these machines carry (an open range pulls a multi-GB CUDA build).
# GPU users: make install TORCH_SPEC="torch==2.11.0" (any version the rest of the stack accepts).
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
# Offline by design: nothing is fetched from a model hub at run time.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_PROGRESS_BARS := 1
export TOKENIZERS_PARALLELISM := false
export MLFLOW_DISABLE_TELEMETRY := true

# The main job's corpus: the embedded synthetic corpus, generated (deterministically) if missing.
NOTES ?= 2000
SEED ?= 1
CORPUS ?= outputs/data/embedded-n$(NOTES)-s$(SEED)

.DEFAULT_GOAL := help
.PHONY: help install train codiesp baseline test test-slow cards clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/activate
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]' "$(TORCH_SPEC)"
	@touch $@

install: $(VENV)/.installed ## create .venv (if missing) and install medcoder with the pinned stack

$(CORPUS)/train.jsonl: | $(VENV)/.installed
	$(BIN)/medcoder synth --out $(CORPUS) --notes $(NOTES) --seed $(SEED)

train: install $(CORPUS)/train.jsonl ## the main job: corpus, baseline, train + evaluate, register, promote, card
	$(BIN)/medcoder baseline --dataset embedded --data-dir $(CORPUS)
	$(BIN)/medcoder-train experiment=embedded_lora corpus.notes=$(NOTES) corpus.seed=$(SEED)
	$(BIN)/medcoder register --run-id latest
	@# a refused promotion (gates not met) keeps the current champion; it is not a failed job
	-$(BIN)/medcoder promote --eval-set $(CORPUS)/test.jsonl
	$(BIN)/medcoder card --model models:/medcoder@champion --out outputs/model_card

# CodiEsp (CLEF eHealth 2020, English): not in the repository; MEDCODER_DATA_DIR=<folder holding codiesp/>
codiesp: install ## CodiEsp top-50: balanced TF-IDF baseline, the CodiEsp recipe, and the experiment record
	$(BIN)/medcoder baseline --dataset codiesp --class-weight balanced
	$(BIN)/medcoder-train experiment=codiesp
	$(BIN)/python scripts/record_comparison.py --dataset codiesp

baseline: install $(CORPUS)/train.jsonl ## TF-IDF + logistic regression baseline on the embedded corpus
	$(BIN)/medcoder baseline --dataset embedded --data-dir $(CORPUS)

test: install ## the fast test suite
	$(BIN)/pytest -q

test-slow: install ## the slow tests only (resume, registry round trips)
	$(BIN)/pytest -q -m slow

cards: install ## regenerate the statistics blocks of data_cards/*.md
	$(BIN)/python scripts/make_data_cards.py

clean: ## remove generated outputs (keeps .venv and mlflow.db)
	rm -rf outputs multirun .pytest_cache
