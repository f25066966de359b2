# LiveClass: `make run` installs and serves on embedded defaults; `make test` runs the whole test suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install lint format clean screenshots

$(STAMP): pyproject.toml package.json
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "LiveClass needs Python 3.11 (set PYTHON=python3.11)")'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	npm install --no-audit --no-fund --loglevel=error
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/liveclass db upgrade
	$(BIN)/liveclass serve

PY_DIRS := liveclass signaling media recordings bench tests

# The import contracts, ruff's lint and format check on the Python code (pyproject.toml [tool.ruff]), mypy
# ([tool.mypy]: every package, strict on media/ and signaling/), ESLint on the web client.
# `make format` rewrites the Python code in ruff's format.
lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check $(PY_DIRS)
	$(BIN)/ruff format --check $(PY_DIRS)
	$(BIN)/mypy
	node_modules/.bin/eslint web_client/js

# pytest exits 5 when it collected no test: for us that is a failure, said plainly.
test: $(STAMP) lint
	@$(BIN)/pytest -q $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$status

screenshots: $(STAMP)
	LIVECLASS_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(BIN)/pytest -q tests/test_web_client.py tests/test_web_archive.py tests/test_web_weak_link.py tests/test_web_polls.py tests/test_web_quiz.py tests/test_assessment_records.py tests/test_web_school_setup.py tests/test_web_pages.py tests/test_web_room_40.py

format: $(STAMP)
	$(BIN)/ruff format $(PY_DIRS)

clean:
	rm -rf $(VENV) node_modules .pytest_cache
