#!/usr/bin/env bash
# Set everything up (first time only, Chromium included) and run the whole test suite.
# Extra arguments go to pytest, e.g. ./test.sh tests/unit -x
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh
scripts/ensure_chromium.sh
scripts/ensure_haproxy.sh
exec .venv/bin/python -m pytest "$@"
