"""docs/testing.md, run as written: its ``<!-- testing: write FILE -->`` blocks, with pytest-django, in a new project.

The blocks are written into an empty directory beside a minimal ``settings.py``, and pytest runs
there in a subprocess, as a user's project would run them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT

DOC = ROOT / "docs" / "testing.md"

SETTINGS = """
SECRET_KEY = "docs-testing"
DEBUG = False
ALLOWED_HOSTS = ["*"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions", "dualstream"]
MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware"]
ROOT_URLCONF = "urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db.sqlite3"}}
USE_TZ = True
STATIC_URL = "static/"
"""


def written_blocks() -> dict[str, str]:
    """``{file name: text}`` of each block the doc marks ``<!-- testing: write FILE -->``."""
    pattern = r"<!-- testing: write (\S+) -->\n```\w*\n(.*?)```"
    return dict(re.findall(pattern, DOC.read_text(encoding="utf-8"), re.S))


def test_the_doc_marks_its_views_urls_and_tests() -> None:
    assert sorted(written_blocks()) == ["test_streams.py", "urls.py", "views.py"]


def test_the_docs_pytest_examples_pass_as_written(tmp_path: Path) -> None:
    for name, text in written_blocks().items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    (tmp_path / "settings.py").write_text(SETTINGS, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\nDJANGO_SETTINGS_MODULE = settings\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = f"{tmp_path}{os.pathsep}{ROOT}"  # the project, and dualstream from this checkout
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error::RuntimeWarning"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    tests = len(re.findall(r"^(?:async )?def test_", written_blocks()["test_streams.py"], re.M))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(rf"\b{tests} passed\b", done.stdout), done.stdout[-1000:]
    if "skipped" in done.stdout or "warning" in done.stdout:
        pytest.fail(f"the examples skip or warn: {done.stdout[-1000:]}")
