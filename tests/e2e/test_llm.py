"""The demo model in child processes: its reply does not depend on the process's hash seed."""

from __future__ import annotations

import os
import subprocess
import sys

from project.demo.llm import reply


def test_the_demo_reply_is_the_same_in_every_process() -> None:
    # Python randomises str hashes per process: the reply must not depend on them.
    messages = [{"role": "user", "content": "Tell me about tides"}]
    code = f"import django; django.setup(); from project.demo.llm import reply; print(reply({messages!r}))"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed, "DJANGO_SETTINGS_MODULE": "tests.support.settings"},
        ).stdout
        for seed in ("1", "2")
    }
    assert outputs == {reply(messages) + "\n"}
