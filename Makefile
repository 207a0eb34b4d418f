# One entry point for people and CI. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint format migrations-check services run worker

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $(STAMP)

# Set up and run a real search end to end: SQLite, the bundled synthetic sample, no credentials.
demo: $(STAMP)
	$(PY) manage.py migrate --noinput -v 0
	owner=$$($(PY) manage.py demo_owner) && $(PY) manage.py run_search climate --owner "$$owner"
	@echo
	@echo "The last line above is the search's output folder; summary.json there is the summary."
	@echo "To browse it: make run, open http://127.0.0.1:8000/ and log in as the user named above."
	@echo "Searches started on the web need a worker too: make worker (in another terminal)."

services:
	scripts/ensure-redis.sh
	scripts/ensure-chromium.sh
	@case "$${DATABASE_URL:-}" in postgres*) scripts/ensure-postgres.sh;; esac

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

migrations-check: $(STAMP)
	$(PY) manage.py makemigrations --check --dry-run

# Set up and run the whole test suite against real Redis, a real database and a real browser.
test: $(STAMP) services lint migrations-check
	$(PY) -m pytest

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

run: $(STAMP)
	$(PY) manage.py migrate --noinput -v 0
	$(PY) manage.py runserver

worker: $(STAMP)
	$(PY) manage.py rqworker default
