# runcrawler: the two commands a new user needs are `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
comma := ,
PYPROJECT_SUM := $(shell cat pyproject.toml | cksum | cut -d' ' -f1)
STAMP := $(VENV)/.installed-$(PYPROJECT_SUM)
# The packages that pin dagster's exact release (pyproject's `lockstep` extra) get a
# venv of their own, so that .venv keeps the newest dagster.
LOCKSTEP_VENV := .venv-lockstep
LOCKSTEP_STAMP := $(LOCKSTEP_VENV)/.installed-$(PYPROJECT_SUM)

# Only `make run` uses these; tests make their own folders.
RUNCRAWLER_DATA ?= $(CURDIR)/data
DAGSTER_HOME ?= $(RUNCRAWLER_DATA)/dagster_home
DEMO_ARCHIVE := $(CURDIR)/demo_archive
DEMO_ACCOUNTING := $(CURDIR)/demo_accounting
DEMO_RUNS ?= 2000
DEMO_OPENFOAM ?= 200
HOST ?= 127.0.0.1
PORT ?= 3000
# `dagster dev` advises `dg dev` at every start; `dg` pins dagster's exact release (the
# lockstep venv's reason), so `make run` keeps `dagster dev` and leaves that one notice out.
DEV_NOTICE := 'ignore:Function `dev_command` is superseded'

.PHONY: setup run crawl test lint format clean

# $(call install,VENV,EXTRAS): runcrawler with EXTRAS into VENV (made if missing), then
# the stamp of this pyproject.toml (the target) in place of any older one.
define install
@test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
$(1)/bin/python -m pip install --quiet --upgrade pip
$(1)/bin/python -m pip install --quiet -e '.[$(2)]'
@rm -f $(1)/.installed-*
@touch $@
endef

$(STAMP): pyproject.toml
	$(call install,$(VENV),dev)

$(LOCKSTEP_STAMP): pyproject.toml
	$(call install,$(LOCKSTEP_VENV),dev$(comma)lockstep)

setup: $(STAMP)  ## create .venv and install runcrawler with its test tools

$(DAGSTER_HOME)/dagster.yaml: runcrawler_assets/defs/dagster_local.yaml
	@mkdir -p $(DAGSTER_HOME)
	cp runcrawler_assets/defs/dagster_local.yaml $@

run: $(STAMP) $(DAGSTER_HOME)/dagster.yaml  ## demo archive and its Slurm accounting (unless RUNCRAWLER_ARCHIVE is set), crawl, then the UI
	@if [ -z "$$RUNCRAWLER_ARCHIVE" ] && [ ! -d "$(DEMO_ARCHIVE)" ]; then \
		rm -rf "$(DEMO_ACCOUNTING)"; \
		$(BIN)/runcrawler demo-archive "$(DEMO_ARCHIVE)" --runs $(DEMO_RUNS) --openfoam $(DEMO_OPENFOAM) --seed 1 \
			--accounting "$(DEMO_ACCOUNTING)"; fi
	@if [ -z "$$RUNCRAWLER_ARCHIVE" ] && [ -d "$(DEMO_ACCOUNTING)" ]; then \
		export RUNCRAWLER_ACCOUNTING="$${RUNCRAWLER_ACCOUNTING:-$(DEMO_ACCOUNTING)}"; fi; \
	export RUNCRAWLER_ARCHIVE="$${RUNCRAWLER_ARCHIVE:-$(DEMO_ARCHIVE)}" \
		RUNCRAWLER_DATA="$(RUNCRAWLER_DATA)" DAGSTER_HOME="$(DAGSTER_HOME)"; \
	$(BIN)/runcrawler crawl && PYTHONWARNINGS="$${PYTHONWARNINGS:+$$PYTHONWARNINGS,}"$(DEV_NOTICE) \
		exec $(BIN)/dagster dev -w workspace.yaml -h $(HOST) -p $(PORT)

test: $(STAMP) $(LOCKSTEP_STAMP)  ## the whole test suite: on the newest dagster, then the lockstep tests
	$(BIN)/python -m pytest -m "not lockstep"
	$(LOCKSTEP_VENV)/bin/python -m pytest -m lockstep

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:  ## remove generated data (never the archive you pointed at)
	rm -rf data demo_archive demo_accounting .pytest_cache
