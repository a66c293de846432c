#!/usr/bin/env bash
# Install Debian's node and npm for the JavaScript tests (tests/js, run by tests/test_js.py), only when
# node is missing. Idempotent and quiet: exits 0 at once when `node` is on PATH.
# The tests' own packages come from the npm registry, pinned by tests/js/package-lock.json (npm ci).
set -euo pipefail

if command -v node >/dev/null 2>&1; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-node: node is missing and this is not root (no sudo): install the 'nodejs' and 'npm' packages" >&2
        exit 1
    fi
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >/dev/null
$SUDO apt-get install -y -qq nodejs npm >/dev/null

if ! command -v node >/dev/null 2>&1; then
    echo "install-node: apt-get installed 'nodejs' but node is still not on PATH" >&2
    exit 1
fi
echo "install-node: node $(node --version), npm $(npm --version 2>/dev/null || echo missing)"
major=$(node --version | sed 's/^v\([0-9]*\).*/\1/')
if [ "$major" -lt 20 ]; then
    echo "install-node: this Debian's node is older than 20: tests/test_js.py will skip the JavaScript tests" >&2
fi
