# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
GRAPHIQL := crmgraph/static/vendor/graphiql/graphiql.min.js
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo serve test lint schema install graphiql

$(INSTALLED): pyproject.toml plugins/crmgraph-loyalty/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet -e plugins/crmgraph-loyalty
	touch $(INSTALLED)

$(GRAPHIQL): scripts/install-graphiql
	scripts/install-graphiql
	touch $(GRAPHIQL)

install: $(INSTALLED) $(GRAPHIQL)

graphiql: $(GRAPHIQL)

demo: install
	$(BIN)/crmgraph serve --demo --host $(HOST) --port $(PORT)

serve: install
	$(BIN)/crmgraph serve --host $(HOST) --port $(PORT)

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# two workers (this machine's cores); a file's tests stay on one worker, so a
# module's seeded data is built once. One file, one engine, one test: docs/development.md
PYTEST_WORKERS ?= 2
test: install lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile

schema: $(INSTALLED)
	@$(BIN)/crmgraph schema
