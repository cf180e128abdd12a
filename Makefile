# The two commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
GRAPHIQL := crmgraph/static/vendor/graphiql/graphiql.js
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo serve test test-slow lint schema install graphiql docs

$(INSTALLED): pyproject.toml plugins/crmgraph-loyalty/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet -e '.[test]'
	$(BIN)/pip install --quiet -e plugins/crmgraph-loyalty
	touch $(INSTALLED)

$(GRAPHIQL): scripts/install-graphiql scripts/graphiql/package-lock.json scripts/graphiql/build.mjs $(wildcard scripts/graphiql/src/*)
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
	$(BIN)/lint-imports
	$(BIN)/python scripts/check-private-imports

# Two workers (this machine's cores). A module's tests of one engine stay together
# on one worker (tests/conftest.py groups them), so module-scoped data is built once.
# The `slow` tests (the schemathesis fuzz) run in test-slow; .ci/run runs both.
# One file, one engine, one test: docs/development.md
PYTEST_WORKERS ?= 2
PYTEST_PARALLEL := -n $(PYTEST_WORKERS) --dist loadgroup
# --durations: the slowest tests, printed where CI's log keeps them (a fast suite gets run)
test: install lint
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) -m "not slow" --durations=15

test-slow: install
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) -m slow

schema: $(INSTALLED)
	@$(BIN)/crmgraph schema

# The documentation site (mkdocs.yml) into site/; --strict fails on a broken link
# or anchor and on a page left out of the nav. .ci/run runs it. (The variable
# quiets the theme's banner about MkDocs 2.)
docs: $(INSTALLED)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site
