"""The README and docs/, run as written, so that they cannot drift from the code.

* The README's Quickstart blocks, marked ``<!-- quickstart: ... -->``, build a new project with
  ``django-admin startproject`` in a temporary directory, which uvicorn then serves in a subprocess;
  its curls run against it, and so does the production way of serving the browser helper.
* Every other ``curl`` aimed at the demo (``http://127.0.0.1:8000``) in README.md and docs/*.md runs
  against the demo's URLs (served by ``live_url``): it answers the status its comment names (``# 400 ...``;
  200 otherwise), and the output a ``console`` block shows after it appears in what it answers, up to
  each ``…``. docs/llm.md and docs/broadcast.md are left to their own tests.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from django.core.management import call_command

from tests.support.paths import ROOT
from tests.support.serverprocess import served_from

README = ROOT / "README.md"
DOCS = [README, *(p for p in sorted((ROOT / "docs").glob("*.md")) if p.name not in {"llm.md", "broadcast.md"})]
DEMO = "http://127.0.0.1:8000"
HELPER = ROOT / "dualstream" / "static" / "dualstream" / "dualstream.js"
COUNTDOWN = [{"n": n} for n in range(10, -1, -1)]


@dataclass
class Block:
    """A fenced code block: where it is, what ``<!-- quickstart: ... -->`` on the line before it says, its text."""

    where: str
    marker: str | None
    text: str


def blocks(path: Path) -> list[Block]:
    found: list[Block] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("```"):
            start = i
            i += 1
            while not lines[i].startswith("```"):
                i += 1
            marker = re.fullmatch(r"<!-- quickstart: (.+) -->", lines[start - 1]) if start else None
            text = "\n".join(lines[start + 1 : i]) + "\n"
            found.append(Block(f"{path.name}:{start + 1}", marker and marker.group(1), text))
        i += 1
    return found


@dataclass
class Curl:
    """One curl command line, as httpx will send it."""

    where: str
    url: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    data: str | None = None
    head: int | None = None  # `| head -N`: only the first N lines are read
    status: int = 200
    output: str | None = None  # what a console block shows after the command


def parse_curl(command: str, where: str) -> Curl:
    """A curl command in the subset the docs use; anything else fails, so that a new flag gets support here."""
    claimed = re.match(r"\s*([1-5]\d\d)\b", command.split(" # ", 1)[1] if " # " in command else "")
    words = shlex.split(command, comments=True)
    assert words[0] == "curl", where
    curl = Curl(where, url="", status=int(claimed.group(1)) if claimed else 200)
    rest = iter(words[1:])
    for word in rest:
        if word == "|":
            assert next(rest) == "head", f"{where}: only `| head -N` is supported"
            curl.head = int(next(rest).removeprefix("-"))
        elif word == ">>":
            next(rest)  # the file it appends to: the body is read and dropped
        elif word == "-H":
            name, _, value = next(rest).partition(":")
            curl.headers[name.strip()] = value.strip()
        elif word == "-d":
            curl.data = next(rest)
            curl.method = "POST"
        elif word == "-X":
            curl.method = next(rest)
        elif re.fullmatch(r"-[sNS]+", word):
            pass  # quiet, unbuffered: how httpx reads anyway
        elif word.startswith("http"):
            curl.url = word
        else:
            raise AssertionError(f"{where}: curl option {word!r} is not supported by tests/e2e/test_docs.py")
    return curl


def curls(block: Block) -> list[Curl]:
    """The curl commands of a block, with the output a ``$``-prompted console block shows after each."""
    found: list[Curl] = []
    lines = block.text.replace("\\\n", " ").splitlines()
    console = any(line.startswith("$ ") for line in lines)
    for line in lines:
        command = line.removeprefix("$ ") if console else line
        if (line.startswith("$ ") or not console) and command.startswith("curl "):
            found.append(parse_curl(command, block.where))
        elif console and not line.startswith("$ ") and found:
            found[-1].output = (found[-1].output or "") + line + "\n"
    return found


def demo_curls() -> list[Curl]:
    return [
        curl
        for doc in DOCS
        for block in blocks(doc)
        if block.marker is None
        for curl in curls(block)
        if curl.url.startswith(DEMO)
    ]


def fetch(client: httpx.Client, base: str, curl: Curl) -> tuple[httpx.Response, str]:
    """The response's head and its body (its first ``head`` lines, if the command pipes it into ``head``)."""
    url = base + curl.url.removeprefix(DEMO)
    with client.stream(curl.method, url, headers=curl.headers, content=curl.data) as response:
        body = ""
        for text in response.iter_text():
            body += text
            if curl.head is not None and body.count("\n") >= curl.head:
                body = "".join(body.splitlines(keepends=True)[: curl.head])
                break
    return response, body


def assert_shows(curl: Curl, body: str) -> None:
    """What the doc shows after the command is in the answer, each part between ``…`` in turn."""
    if curl.output is None:
        return
    position = 0
    for part in curl.output.split("…"):
        part = part.strip("\n")
        found = body.find(part, position)
        assert found >= 0, f"{curl.where}: {curl.url} does not answer {part!r}; it answered {body[:500]!r}"
        position = found + len(part)


# --- every curl aimed at the demo ---------------------------------------------------------------------


def test_the_docs_have_curls_aimed_at_the_demo() -> None:
    assert len(demo_curls()) >= 5  # the parser still finds them


@pytest.mark.django_db(transaction=True, reset_sequences=True)  # the readings' ids start at 1, as after `make run`
@pytest.mark.parametrize("curl", demo_curls(), ids=lambda curl: f"{curl.where} {curl.url.removeprefix(DEMO)}")
def test_each_curl_aimed_at_the_demo_answers_what_the_doc_shows(curl: Curl, live_url: str) -> None:
    if "/api/readings/" in curl.url:
        call_command("seed_demo", rows=1500, stdout=open(os.devnull, "w"))  # noqa: SIM115
    with httpx.Client(timeout=30) as client:
        response, body = fetch(client, live_url, curl)
    assert response.status_code == curl.status, f"{curl.where}: {curl.url}: {body[:300]!r}"
    assert_shows(curl, body)


# --- the claims of "How it answers" -------------------------------------------------------------------


def test_an_accept_that_names_none_of_the_three_is_answered_with_json(live_url: str) -> None:
    response = httpx.get(f"{live_url}/api/ticker/?from=1&interval=0", headers={"Accept": "image/png"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    refused = httpx.get(f"{live_url}/api/ticker/", headers={"Accept": "application/json;q=0, */*;q=0"})
    assert refused.status_code == 406 and refused.json()["error"]["status"] == 406


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_other_methods_are_a_json_405_once_past_django_csrf_check(method: str, live_url: str) -> None:
    csrf_refused = httpx.request(method, f"{live_url}/api/ticker/")
    assert csrf_refused.status_code == 403 and csrf_refused.headers["content-type"].startswith("text/html")
    exempt = httpx.request(method, f"{live_url}/count-csrf-exempt/")
    assert exempt.status_code == 405 and exempt.json()["error"]["status"] == 405
    assert set(exempt.headers["Allow"].replace(" ", "").split(",")) >= {"GET", "POST", "HEAD"}


# --- the Quickstart, in a new project -----------------------------------------------------------------


@dataclass
class Quickstart:
    """The project the README's Quickstart builds, and the uvicorn command it ends with."""

    directory: Path
    env: dict[str, str]
    serve: list[str]
    curls: list[Curl]

    def served(self) -> contextlib.AbstractContextManager[str]:
        """uvicorn serving the project, as the Quickstart starts it; its base URL."""
        return served_from(self.directory, self.env, self.serve)


def run(command: list[str], cwd: Path, env: dict[str, str]) -> None:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"{' '.join(command)}: {done.stderr[-2000:]}"


def check_installable(packages: list[str]) -> None:
    """``pip install`` installs nothing here: what it names must be importable already (dualstream from this checkout).

    A path is one from the checkout's root: it must be the project itself (``pip install ./dualstream``
    from there named the package's directory, which pip cannot install).
    """
    for package in packages:
        if package == "." or package.startswith(("./", "/")):
            where = (ROOT / package.partition("[")[0]).resolve()
            assert where == ROOT and (where / "pyproject.toml").is_file(), (
                f"the README installs {package}: not the checkout"
            )
        else:
            name = re.split(r"[\[<>=~!;]", package, maxsplit=1)[0]
            assert importlib.util.find_spec(name), f"the README installs {package}: not in requirements.txt?"


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Quickstart:
    """The README's Quickstart blocks, carried out in order in an empty directory."""
    cwd = tmp_path_factory.mktemp("quickstart")
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "DEBUG", "SECRET_KEY"}}
    env["PYTHONPATH"] = str(ROOT)  # dualstream, as `pip install ./dualstream` would make it importable
    serve: list[str] = []
    quickstart_curls: list[Curl] = []
    for block in blocks(README):
        if block.marker is None:
            continue
        action, _, target = block.marker.partition(" ")
        if action == "append":
            with (cwd / target).open("a", encoding="utf-8") as file:
                file.write("\n" + block.text)
        elif action == "write":
            (cwd / target).write_text(block.text, encoding="utf-8")
        elif action == "curl":
            quickstart_curls += curls(block)
        elif action == "shell":
            for line in block.text.splitlines():
                for command in (shlex.split(part, comments=True) for part in line.split("&&")):
                    if not command:
                        continue
                    assert not serve, f"{block.where}: the server must be the last command"
                    match command:
                        case ["pip", "install", *packages]:
                            check_installable(packages)
                        case ["django-admin", *args]:
                            run([sys.executable, "-m", "django", *args], cwd, env)
                        case ["cd", directory]:
                            cwd = cwd / directory
                        case ["python", *args]:
                            run([sys.executable, *args], cwd, env)
                        case ["uvicorn", *args]:
                            serve = command
                        case _:
                            raise AssertionError(f"{block.where}: tests/e2e/test_docs.py cannot run {command}")
        else:
            raise AssertionError(f"{block.where}: unknown marker {block.marker!r}")
    assert serve and quickstart_curls, "the Quickstart no longer ends by serving the project and curling it"
    return Quickstart(cwd, env, serve, quickstart_curls)


def sse_events(body: str) -> list[tuple[str, str, str]]:
    """(event, id, data) of each event of a Server-Sent Events body (comments dropped)."""
    events = []
    for block in body.strip("\n").split("\n\n"):
        fields = dict(line.split(": ", 1) if ": " in line else (line.rstrip(":"), "") for line in block.splitlines())
        if set(fields) - {""}:
            events.append((fields.get("event", "message"), fields.get("id", ""), fields.get("data", "")))
    return events


def test_the_quickstart_project_answers_its_curls_under_uvicorn(quickstart: Quickstart) -> None:
    expected = {
        "/countdown/": lambda r, body: json.loads(body) == {"items": COUNTDOWN},
        "/countdown/?stream=1": lambda r, body: (
            r.headers["content-type"].startswith("text/event-stream")
            and [(e, i, json.loads(d)) for e, i, d in sse_events(body)[:-1]]
            == [("message", str(i["n"]), i) for i in COUNTDOWN]
            and sse_events(body)[-1][0] == "done"
        ),
        "/countdown/?format=ndjson": lambda r, body: [json.loads(line) for line in body.splitlines()] == COUNTDOWN,
        "/static/dualstream/dualstream.js": lambda r, body: (
            "javascript" in r.headers["content-type"] and body == HELPER.read_text(encoding="utf-8")
        ),
    }
    assert sorted(curl.url.removeprefix(DEMO) for curl in quickstart.curls) == sorted(expected)
    # A bad resume point restarts the countdown rather than failing (int_id), a good one resumes after it.
    resumes = [
        Curl("resume", f"{DEMO}/countdown/?lastEventId=%C2%B2"),  # "²": a digit to str.isdigit(), not to int()
        *(Curl("resume", f"{DEMO}/countdown/", headers={"Last-Event-ID": i}) for i in ("2", "0")),
    ]
    with quickstart.served() as base, httpx.Client(timeout=60) as client, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda curl: fetch(client, base, curl), quickstart.curls + resumes))
    for curl, (response, body) in zip(quickstart.curls, answers, strict=False):
        assert response.status_code == curl.status, f"{curl.url}: {body[:300]!r}"
        assert expected[curl.url.removeprefix(DEMO)](response, body), f"{curl.url}: {body[:300]!r}"
    assert [json.loads(body)["items"] for _, body in answers[-3:]] == [COUNTDOWN, COUNTDOWN[-2:], []]


def test_the_quickstart_project_serves_the_helper_from_static_root_with_debug_off(quickstart: Quickstart) -> None:
    """In production ServeStatic serves what collectstatic gathered, not the apps' folders."""
    settings = quickstart.directory / "mysite" / "settings.py"
    collected = quickstart.directory / "staticfiles" / "dualstream" / "dualstream.js"
    assert collected.read_bytes() == HELPER.read_bytes()
    original = settings.read_text()
    settings.write_text(original + '\nDEBUG = False\nALLOWED_HOSTS = ["127.0.0.1"]\n')
    try:
        collected.write_text("// the collected copy\n")
        with quickstart.served() as base:
            response = httpx.get(f"{base}/static/dualstream/dualstream.js", timeout=30)
        assert response.status_code == 200 and response.text == "// the collected copy\n"
    finally:
        settings.write_text(original)
        collected.write_bytes(HELPER.read_bytes())
