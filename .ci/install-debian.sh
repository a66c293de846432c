#!/usr/bin/env bash
# Install Debian packages for the tests, only when the command they provide is missing:
#   bash .ci/install-debian.sh COMMAND PACKAGE...
# Idempotent and quiet: exits 0 at once when COMMAND is on PATH. What the suite needs this way:
# chromium for tests/e2e/browser (Playwright drives /usr/bin/chromium; it never downloads a browser) and
# node with npm for tests/js (whose own packages come from the npm registry, pinned by package-lock.json).
set -euo pipefail

command="$1"
shift
if command -v "$command" >/dev/null 2>&1; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-debian: $command is missing and this is not root (no sudo): install $*" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq "$@" >/dev/null

if ! command -v "$command" >/dev/null 2>&1; then
    echo "install-debian: apt-get installed $* but $command is still not on PATH" >&2
    exit 1
fi
echo "install-debian: $("$command" --version 2>/dev/null | head -n 1)"
