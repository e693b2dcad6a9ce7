#!/usr/bin/env bash
# The front-end tests put two Streamlit servers behind HAProxy, from Debian's package.
set -euo pipefail
if command -v haproxy >/dev/null 2>&1; then exit 0; fi
echo "[setup] installing HAProxy for the front-end tests"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq haproxy >/dev/null
