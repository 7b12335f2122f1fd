# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: run test lint typecheck pytest test-fast test-compiled test-kafka test-reliability bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/cartbands run

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

# Everything but the reliability suite, which has its own target (minutes of injected faults).
# Three test processes, each with its own session broker, a test file each at a time (module
# fixtures start servers once per file): the broker-backed tests mostly wait on the processes
# they start, so they overlap on two cores.
PYTEST_PROCESSES ?= 3
pytest: $(VENV)/.installed-dev
	$(BIN)/pytest -q --durations=20 --ignore=tests/reliability -n $(PYTEST_PROCESSES) --dist loadfile

# The tests that need no broker (unit tests of the core, the agents' and services' own logic,
# the CLI's offline commands): a quick loop while working; `make test` runs everything.
test-fast: $(VENV)/.installed-dev
	$(BIN)/pytest -q -m "not broker" --ignore=tests/reliability

# The core compiled with mypyc as the production image builds it (setup.py), in a throwaway
# wheel, against tests/recovery. Skipped, loudly, where there is no C compiler or Python.h, unless
# CARTBANDS_COMPILED_TESTS=required (.ci/run sets it).
test-compiled: $(VENV)/.installed-dev
	.ci/test-compiled $(abspath $(BIN))/python

# The broker-backed tests again, on a real Apache Kafka (KRaft) that `cartbands broker --kafka`
# also runs: its classpath is resolved with Maven once into ~/.cache/cartbands. Skipped, loudly,
# where java 17+ or mvn is missing, unless CARTBANDS_KAFKA_TESTS=required (.ci/run sets it).
test-kafka: $(VENV)/.installed-dev
	.ci/test-kafka $(abspath $(BIN))/python

# The reliability suite (RELIABILITY.md): faults injected into the real processes, its figures
# printed as a table at the end. .ci/run runs it after `make test`; `make test-kafka` runs it on
# Apache Kafka with the other broker-backed tests.
test-reliability: $(VENV)/.installed-dev
	$(BIN)/pytest -q -rfE tests/reliability

test: lint typecheck pytest test-compiled

bench: $(VENV)/.installed-dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
