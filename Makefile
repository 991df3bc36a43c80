# Set-up is part of every target: a fresh clone needs only `make run` or `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CONSTRAINTS ?= packaging/constraints.txt
export QT_QPA_PLATFORM ?= $(if $(DISPLAY)$(WAYLAND_DISPLAY),,offscreen)

.PHONY: run test lint venv bench clean kill-test

$(STAMP): pyproject.toml $(CONSTRAINTS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c $(CONSTRAINTS) -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/clipdesk gui

test: $(STAMP)
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check clipdesk tests benchmarks
	$(VENV)/bin/mypy clipdesk

# The full kill -9 loop of issue 6 (CI runs 4 rounds); CLIPDESK_KILL_SEED replays a run.
kill-test: $(STAMP)
	CLIPDESK_KILL_ROUNDS=$${CLIPDESK_KILL_ROUNDS:-20} QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -s tests/reliability/test_kill.py

# The three benchmarks with their default sizes (see benchmarks/README.md); several minutes.
bench: $(STAMP)
	$(PY) benchmarks/bench_index.py
	$(PY) benchmarks/bench_search.py
	$(PY) benchmarks/bench_startup.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
