# Set-up is part of every target: a fresh clone needs only `make run` or `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Two stamps: `make run` installs what the app needs, `make test` adds the test and lint tools.
APP_STAMP := $(VENV)/.installed-app
DEV_STAMP := $(VENV)/.installed-dev
CONSTRAINTS ?= packaging/constraints.txt
# Only the tests run offscreen: `make run` with no display gets the app's own one-line
# explanation rather than an invisible window.

.PHONY: run test lint venv bench clean kill-test man

# pip's own progress bars (no --quiet): the first install downloads PyTorch, several minutes.
$(APP_STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -c $(CONSTRAINTS) -e .
	touch $@

$(DEV_STAMP): $(APP_STAMP)
	$(PY) -m pip install --disable-pip-version-check -c $(CONSTRAINTS) -e '.[dev]'
	touch $@

venv: $(DEV_STAMP)

run: $(APP_STAMP)
	$(VENV)/bin/clipdesk gui

test: $(DEV_STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(DEV_STAMP)
	$(VENV)/bin/ruff check clipdesk tests benchmarks
	$(VENV)/bin/mypy clipdesk

# The full kill -9 loop of issue 6 (CI runs 4 rounds); CLIPDESK_KILL_SEED replays a run.
kill-test: $(DEV_STAMP)
	CLIPDESK_KILL_ROUNDS=$${CLIPDESK_KILL_ROUNDS:-20} QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -s tests/reliability/test_kill.py

# The three benchmarks with their default sizes (see benchmarks/README.md); several minutes.
bench: $(APP_STAMP)
	$(PY) benchmarks/bench_index.py
	$(PY) benchmarks/bench_search.py
	$(PY) benchmarks/bench_startup.py

# The clipdesk(1) man page, written from the command-line parser.
man: $(APP_STAMP)
	$(PY) -m clipdesk._manpage build/man/clipdesk.1

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
