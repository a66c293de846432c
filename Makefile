# make run   - install into .venv, migrate, seed, serve the demo at http://127.0.0.1:8000
# make test  - install into .venv and run the whole suite
# make test-fast - the inner loop: every test not marked e2e (tests/unit, less Redis and PostgreSQL)
# make bench - the side-by-side benchmarks (benchmarks/README.md)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
SEED_ROWS ?= 200000

.PHONY: install run test test-fast check bench clean

$(BIN)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

install: $(BIN)/.installed

# The demo refuses to start without a SECRET_KEY; a local run gets a fresh one unless you set yours.
run: export SECRET_KEY ?= $(shell $(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')
run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py seed_demo --rows $(SEED_ROWS)
	$(BIN)/uvicorn project.asgi:application --host $(HOST) --port $(PORT) --lifespan off --timeout-graceful-shutdown 10

test: install check
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -m "not e2e" $(PYTEST_ARGS)

# Lint, format and types: the same in CI as on a laptop.
check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	DJANGO_SETTINGS_MODULE=tests.support.settings $(BIN)/mypy

bench: install
	$(BIN)/python -m pip install --quiet -r benchmarks/requirements.txt
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .venv-* .pytest_cache
