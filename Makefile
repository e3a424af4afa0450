# The two commands of the README: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.run-installed
DEV_STAMP := $(VENV)/.dev-installed
ADDR ?= 127.0.0.1:8000

.PHONY: run test install install-dev lint format messages vendor clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(RUN_STAMP)

install: $(RUN_STAMP)

install-dev: $(DEV_STAMP)

## make run: install, migrate, load the demo company, serve with background work.
run: $(RUN_STAMP)
	DEBUG=1 $(BIN)/python manage.py migrate --noinput
	DEBUG=1 $(BIN)/python manage.py seed_demo
	DEBUG=1 $(BIN)/python manage.py devserver $(ADDR)

## make test: the whole suite (SQLite unless DATABASE_URL / REDIS_URL are set), spread
## over the CPUs by pytest-xdist (TEST_PROCESSES=0: in one process).
TEST_PROCESSES ?= auto
test: $(DEV_STAMP)
	$(BIN)/pytest -n $(TEST_PROCESSES) $(PYTEST_ARGS)

## make lint: ruff, and the app graph (ARCHITECTURE.md): the layers contract of
## [tool.importlinter] in pyproject.toml and no cross-app import of a private name.
lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache --no-logo
	$(BIN)/python tools/check_private_imports.py

format: $(DEV_STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## make messages: refresh and compile the zh-Hans catalogue (needs GNU gettext).
messages: $(RUN_STAMP)
	DEBUG=1 $(BIN)/python manage.py makemessages --locale zh_Hans --no-obsolete --ignore '.venv/*' --ignore 'tests/*'
	DEBUG=1 $(BIN)/python manage.py compilemessages --locale zh_Hans --ignore '.venv/*'

## make vendor: refresh the vendored front-end files from npm (see static/vendor/README.md).
vendor:
	rm -rf var/vendor && mkdir -p var/vendor
	cd var/vendor && npm init -y >/dev/null && npm install --no-audit --no-fund @tabler/core@1.6.1 @tabler/icons@3.48.0 sortablejs@1.15.7 chart.js@4.6.1 axe-core@4.14.1 swagger-ui-dist@5.36.0
	cp var/vendor/node_modules/@tabler/core/dist/css/tabler.min.css static/vendor/tabler/css/
	cp var/vendor/node_modules/@tabler/core/dist/js/tabler.min.js static/vendor/tabler/js/
	cp var/vendor/node_modules/sortablejs/Sortable.min.js var/vendor/node_modules/sortablejs/LICENSE static/vendor/sortablejs/
	cp var/vendor/node_modules/chart.js/dist/chart.umd.min.js var/vendor/node_modules/chart.js/LICENSE.md static/vendor/chartjs/
	cp var/vendor/node_modules/axe-core/axe.min.js var/vendor/node_modules/axe-core/LICENSE var/vendor/node_modules/axe-core/LICENSE-3RD-PARTY.txt static/vendor/axe-core/
	cp var/vendor/node_modules/swagger-ui-dist/swagger-ui-bundle.js var/vendor/node_modules/swagger-ui-dist/swagger-ui.css var/vendor/node_modules/swagger-ui-dist/LICENSE var/vendor/node_modules/swagger-ui-dist/NOTICE static/vendor/swagger-ui/
	# No source maps are vendored; their references would break the hashed static files.
	sed -i 's#/\*\# sourceMappingURL=[^*]*\*/##' static/vendor/tabler/css/tabler.min.css static/vendor/swagger-ui/swagger-ui.css
	sed -i 's#^//\# sourceMappingURL=.*$$##' static/vendor/tabler/js/tabler.min.js static/vendor/chartjs/chart.umd.min.js
	for f in static/vendor/tabler-icons/*.svg; do cp var/vendor/node_modules/@tabler/icons/icons/outline/$$(basename $$f) $$f; done

clean:
	rm -rf $(VENV) var staticfiles
