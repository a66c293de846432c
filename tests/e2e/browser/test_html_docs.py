"""docs/html.md's recipe, as pasted: its files written into a new project, served by uvicorn, driven in Chromium.

Each block marked ``<!-- recipe: write PATH -->`` is written to PATH in an empty directory; the test
adds only what the doc says the reader already has (settings as after the README's Quickstart, the
URLconf line the doc names, the libraries in ``static/``, copied from ``static/vendor/``).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator

import pytest

from tests.support.paths import ROOT
from tests.support.serverprocess import served_from

DOC = ROOT / "docs" / "html.md"
VENDOR = ROOT / "static" / "vendor"
RECIPE = re.compile(r"<!-- recipe: write (\S+) -->\n```\w*\n(.*?)\n```", re.DOTALL)

SETTINGS = """
SECRET_KEY = "recipe-test"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = ["django.contrib.staticfiles", "dualstream", "live"]
MIDDLEWARE = ["django.middleware.csrf.CsrfViewMiddleware"]
ROOT_URLCONF = "urls"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": ["templates"], "APP_DIRS": True,
              "OPTIONS": {"context_processors": ["django.template.context_processors.request"]}}]
DATABASES = {}
STATIC_URL = "static/"
STATICFILES_DIRS = ["static"]
"""
URLS = 'from django.urls import include, path\nurlpatterns = [path("live/", include("live.urls"))]\n'
ASGI = (
    "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'settings')\n"
    "from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler\n"
    "from django.core.asgi import get_asgi_application\n"
    "application = ASGIStaticFilesHandler(get_asgi_application())\n"
)
LIBRARIES = {
    "htmx.min.js": "htmx-2.0.11/htmx.min.js",
    "sse.js": "htmx-ext-sse-2.2.4/sse.js",
    "htmx4/htmx.min.js": "htmx-4.0.1/htmx.min.js",
    "htmx4/hx-sse.js": "htmx-4.0.1/hx-sse.js",
    "datastar.js": "datastar-1.0.1/datastar.js",
}


def test_the_doc_has_its_recipe():
    assert {path for path, _ in RECIPE.findall(DOC.read_text(encoding="utf-8"))} == {
        "live/views.py",
        "live/urls.py",
        "templates/rows/row.html",
        "templates/rows/htmx2.html",
        "templates/rows/htmx4.html",
        "templates/rows/datastar.html",
    }


@pytest.fixture(scope="module")
def recipe_url(tmp_path_factory) -> Iterator[str]:
    """The recipe's project under uvicorn, on a socket that listens before the server starts."""
    directory = tmp_path_factory.mktemp("html-recipe")
    for path, text in RECIPE.findall(DOC.read_text(encoding="utf-8")):
        (directory / path).parent.mkdir(parents=True, exist_ok=True)
        (directory / path).write_text(text + "\n", encoding="utf-8")
    (directory / "live" / "__init__.py").touch()
    (directory / "settings.py").write_text(SETTINGS, encoding="utf-8")
    (directory / "urls.py").write_text(URLS, encoding="utf-8")
    (directory / "asgi.py").write_text(ASGI, encoding="utf-8")
    for name, source in LIBRARIES.items():
        (directory / "static" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(VENDOR / source, directory / "static" / name)
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env["PYTHONPATH"] = str(ROOT)
    with served_from(directory, env, ["uvicorn", "asgi:application", "--lifespan", "off"]) as url:
        yield url


@pytest.fixture
def page(open_page, recipe_url):
    from playwright.sync_api import expect

    expect.set_options(timeout=15_000)
    return open_page(recipe_url)


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


ROWS = [f"Row {n} of 5" for n in range(1, 6)]


def test_htmx2_recipe_streams_closes_and_serves_html_to_hx_get(page):
    page.goto("/live/htmx2/")
    expect(page.locator("#rows li")).to_have_text(ROWS)
    page.wait_for_function("document.getElementById('rows')['htmx-internal-data'].sseEventSource.readyState === 2")
    page.locator("button").click()
    expect(page.locator("#snapshot li")).to_have_text(ROWS)
    expect(page.locator("#rows li")).to_have_count(5)  # not replayed


def test_htmx4_recipe_streams_and_closes(page):
    page.goto("/live/htmx4/")
    expect(page.locator("#rows li")).to_have_text(ROWS)
    page.wait_for_function("!document.getElementById('rows')._htmx?.sse")  # hx-sse:close ended the connection


def test_datastar_recipe_sends_its_signals_and_patches_rows_and_signals(page):
    page.goto("/live/datastar/")
    page.locator("input").fill("3")
    with page.expect_response(lambda r: "/live/rows/" in r.url and r.status == 204):  # the end, then the stop
        page.locator("button").click()
    expect(page.locator("#rows li")).to_have_text([f"Row {n} of 3" for n in range(1, 4)])
    expect(page.locator("output")).to_have_text("3")
