# The two commands: `make run` (set up and serve the app) and `make test` (set up and run every check).
HOST ?= 127.0.0.1
PORT ?= 8000
VENV := .venv

.PHONY: run test check setup clean

run: setup
	$(VENV)/bin/python manage.py migrate --noinput
	$(VENV)/bin/python manage.py load_demo_catalog
	$(VENV)/bin/daphne -b $(HOST) -p $(PORT) supportbot.asgi:application

test:
	scripts/bootstrap.sh --dev
	scripts/system-deps.sh
	scripts/test.sh

# Lint and type check only (fast).
check:
	scripts/bootstrap.sh --dev
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy .

setup:
	scripts/bootstrap.sh
	scripts/system-deps.sh --run

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
