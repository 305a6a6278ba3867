#!/usr/bin/env bash
# Debian's Chromium for the browser tests (tests/system/test_ui.py drives it with Playwright for Python,
# which never downloads a browser of its own). Idempotent and quiet: does nothing when it is installed.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure_chromium: $CHROMIUM is missing and apt-get is not available; install Chromium with your" \
       "package manager (the browser tests skip without it, or fail with MLOPS_REQUIRE_SERVICES=1)." >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "ensure_chromium: $CHROMIUM is missing; run 'apt-get install chromium' as root" \
         "(the browser tests skip without it, or fail with MLOPS_REQUIRE_SERVICES=1)." >&2
    exit 0
  fi
fi
echo "ensure_chromium: installing Debian's chromium package..."
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
"$CHROMIUM" --version
