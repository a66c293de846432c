"""The demo run as a user runs it: manage.py and make in child processes, with and without a secret key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import ROOT


def manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``manage.py`` of the demo, in a child with exactly the given demo variables (and no .env on top)."""
    clean = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE"}}
    clean["DJANGO_SETTINGS_MODULE"] = "project.settings"
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        check=False,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.skipif((ROOT / ".env").exists(), reason="a .env file would supply the demo's settings")
def test_the_demo_refuses_to_start_without_a_secret_key_unless_debug() -> None:
    refused = manage("check", DEBUG="False")
    assert refused.returncode != 0
    assert refused.stderr.strip().splitlines()[-1] == (
        "django.core.exceptions.ImproperlyConfigured: SECRET_KEY is not set: set it in the environment or .env "
        "(DEBUG=True uses a random one)."
    )
    assert manage("check", DEBUG="False", SECRET_KEY="a-key-of-its-own").returncode == 0
    assert manage("check", DEBUG="True").returncode == 0  # a throwaway key for local development


def test_make_run_gives_every_command_a_secret_key_unless_the_environment_has_one(tmp_path: Path) -> None:
    """``make run`` with stand-ins for the venv's python and uvicorn that report the key's length."""
    for name in ("python", "uvicorn"):
        (tmp_path / name).write_text('#!/bin/sh\necho "$(basename "$0") $1 ${#SECRET_KEY}"\n')
        (tmp_path / name).chmod(0o755)
    (tmp_path / ".installed").touch()  # newer than requirements.txt: nothing to install
    env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "MAKEFLAGS", "MAKELEVEL"}}

    def run(**extra: str) -> list[str]:
        done = subprocess.run(
            ["make", "--no-print-directory", "-s", "run", f"BIN={tmp_path}"],
            cwd=ROOT,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout.splitlines()

    generated = run()
    assert [line.rsplit(" ", 1)[0] for line in generated] == [
        "python manage.py",
        "python manage.py",
        "uvicorn project.asgi:application",
    ]
    assert all(int(line.rsplit(" ", 1)[1]) >= 50 for line in generated)
    assert run(SECRET_KEY="mine") == ["python manage.py 4", "python manage.py 4", "uvicorn project.asgi:application 4"]
