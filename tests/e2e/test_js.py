"""The JavaScript suite in tests/js, one pytest case per node test file, so one runner reports everything.

Real npm clients (``eventsource``, ``openai``) against the live test server, and the browser helper's
SSE parser against ``eventsource-parser``. The packages are pinned in tests/js/package-lock.json and
installed with ``npm ci`` from the npm registry when node_modules is missing or older than the lockfile.
Skipped, with the reason, where node is not installed (``.ci/install-debian.sh node nodejs npm`` installs it).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.support.paths import ROOT

JS_DIR = ROOT / "tests" / "js"
NODE_TEST_FILES = sorted(path.name for path in JS_DIR.glob("*.test.js"))
# Older than node 20 the pinned packages are untested (their engines ask for 22; node 20 passes them all).
NODE_MAJOR = 20

# npm ci may download the packages first.
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def node() -> str:
    path = shutil.which("node")
    if path is None:
        pytest.skip(
            "node is not on PATH: install it (.ci/install-debian.sh node nodejs npm, or apt-get install nodejs npm)"
        )
    version = subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout.strip()
    if int(version.lstrip("v").split(".")[0]) < NODE_MAJOR:
        pytest.skip(f"tests/js needs node {NODE_MAJOR} or newer; {path} is {version}")
    return path


@pytest.fixture(scope="module")
def js_packages(node: str) -> None:
    """tests/js/node_modules as the lockfile pins it: ``npm ci`` unless it is already newer than the lockfile."""
    installed = JS_DIR / "node_modules" / ".package-lock.json"  # written by npm at the end of each install
    wanted = max((JS_DIR / name).stat().st_mtime for name in ("package.json", "package-lock.json"))
    if installed.exists() and installed.stat().st_mtime >= wanted:
        return
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("node is on PATH but npm is not: install npm to fetch tests/js's packages")
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"npm ci failed in {JS_DIR}:\n{result.stdout}\n{result.stderr}")


@pytest.mark.parametrize("test_file", NODE_TEST_FILES)
def test_node(test_file: str, node: str, js_packages: None, live_url: str, fast_demo_model: None) -> None:
    env = {**os.environ, "DUALSTREAM_BASE_URL": live_url}
    result = subprocess.run(
        [node, "--test", "--test-reporter=spec", test_file],
        cwd=JS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, f"node --test {test_file} failed:\n{result.stdout}\n{result.stderr}"
