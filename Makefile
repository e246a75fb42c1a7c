# Set-up and everyday commands. Everything installs into ./.venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test lint check-defs dev sandbox bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: install  ## seed the SQLite demo warehouse, start the sandbox, sync, print a summary
	$(BIN)/python -m dagster_project.demo

test: install  ## the whole suite: unit, sandbox, SQLite and PostgreSQL end-to-end
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

check-defs: install  ## the code location loads as `dg` sees it (assets, checks, schedule, sensors)
	VIRTUAL_ENV=$(CURDIR)/$(VENV) PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dg check defs

dev: install  ## the Dagster UI on http://127.0.0.1:3000 (runs kept in .demo/dagster_home)
	mkdir -p .demo/dagster_home
	DAGSTER_HOME=$(CURDIR)/.demo/dagster_home VIRTUAL_ENV=$(CURDIR)/$(VENV) PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/dg dev

sandbox: install  ## the eSputnik sandbox in the foreground on port 8765, with the demo key and app
	$(BIN)/python -m dagster_project.sandbox --port 8765 \
		--api-key demo-api-key --app-uuid 5b0a3a6e-1c2d-4e5f-8a9b-0c1d2e3f4a5b

bench: install  ## benchmark: 1M subscribers on SQLite and PostgreSQL, beside the floor run and a naive loop
	$(BIN)/python -m bench --sizes 1000000 --backends sqlite,postgres --noop-repeats 3

clean:
	rm -rf .demo .pytest_cache
