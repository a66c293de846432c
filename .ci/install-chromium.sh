#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (tests/browser), only when it is missing.
# Idempotent and quiet: exits 0 at once when /usr/bin/chromium is already there.
# Never downloads a browser build of its own: `playwright install` is not used (and cannot work here);
# Playwright drives this Chromium through executable_path="/usr/bin/chromium".
set -euo pipefail

CHROMIUM="${DUALSTREAM_CHROMIUM:-/usr/bin/chromium}"

if [ -x "$CHROMIUM" ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-chromium: $CHROMIUM is missing and this is not root (no sudo): install the 'chromium' package" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq chromium >/dev/null

if [ ! -x "$CHROMIUM" ]; then
    echo "install-chromium: apt-get installed 'chromium' but $CHROMIUM is still missing" >&2
    exit 1
fi
echo "install-chromium: $("$CHROMIUM" --version 2>/dev/null | head -n 1)"
