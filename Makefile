# The two commands of the README. Each installs what it needs first (idempotent, quick when done).
.PHONY: run test setup-run setup-test bench

run: setup-run
	.venv/bin/python supervisor_main.py

test: setup-test
	.venv/bin/python -m pytest

bench: setup-test
	.venv/bin/python bench/run.py

setup-run:
	bash scripts/setup.sh run

setup-test:
	bash scripts/setup.sh test
