#!/usr/bin/env bash
# The browser tests drive Debian's Chromium (Playwright's own browser download does not work offline).
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/zbarimg ] && fc-list 2>/dev/null | grep -qi "Noto Color Emoji"; then exit 0; fi
echo "[setup] installing Chromium for the browser tests"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium fonts-noto-cjk fonts-noto-color-emoji zbar-tools >/dev/null
