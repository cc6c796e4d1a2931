# The two commands of the README (`make run`, `make test`). Each installs what it needs first
# (idempotent, quick when done).
.PHONY: run test lint test-quick setup-run setup-test bench

PY := .venv/bin/python
PRODUCT := common gateway monitor supervisor supervisor_main.py

run: setup-run
	$(PY) supervisor_main.py

# The static checks run first: a finding fails the build like a failing test.
test: setup-test lint
	$(PY) -m pytest

lint: setup-test
	$(PY) -m ruff check .
	$(PY) -m mypy $(PRODUCT)

# The quick loop while editing: everything but the tests marked slow (real browser, hub, image).
test-quick: setup-test lint
	$(PY) -m pytest -m "not slow"

bench: setup-test
	$(PY) bench/run.py

setup-run:
	bash scripts/setup.sh run

setup-test:
	bash scripts/setup.sh test
