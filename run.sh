#!/usr/bin/env bash
# Set everything up (first time only) and start LLM Explainer on the embedded default model.
# Extra arguments go to `streamlit run`, e.g. ./run.sh --server.port 8600
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
exec .venv/bin/python -m explainer.ui.tools.serve "$@"
