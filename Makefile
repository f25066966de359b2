# LiveClass: `make run` installs and serves on embedded defaults; `make test` runs the whole test suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test install lint format coverage clean screenshots

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

# The suite in two parts, side by side: the `timing` tests, which measure media over time (they mostly wait on
# real time: about 60 s of CPU in 3-4 min), at the normal priority; the others on TEST_WORKERS pytest-xdist
# workers under `nice -n 19`, so that they only take what the timing tests leave of the 2 cores and the
# timing tests measure as on a quiet machine. The timing part's report is printed when both are done.
# pytest exits 5 when a part collected no test: only both parts empty is a failure, said plainly.
TEST_WORKERS ?= 4
test: $(STAMP) lint
	@timing_log=$$(mktemp); \
	$(BIN)/pytest -q -m timing $(PYTEST_ARGS) >$$timing_log 2>&1 & timing_pid=$$!; \
	nice -n 19 $(BIN)/pytest -q -n $(TEST_WORKERS) -m "not timing" $(PYTEST_ARGS); parallel=$$?; \
	wait $$timing_pid; alone=$$?; \
	echo; echo "== the timing tests (run beside the others, at the normal priority) =="; \
	cat $$timing_log; rm -f $$timing_log; \
	if [ $$parallel -eq 5 ] && [ $$alone -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; \
	for status in $$alone $$parallel; do \
	  if [ $$status -ne 0 ] && [ $$status -ne 5 ]; then exit $$status; fi; \
	done

screenshots: $(STAMP)
	LIVECLASS_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(BIN)/pytest -q tests/test_web_client.py tests/test_web_archive.py tests/test_web_weak_link.py tests/test_web_polls.py tests/test_web_quiz.py tests/test_assessment_records.py tests/test_web_school_setup.py tests/test_web_pages.py tests/test_web_room_40.py

# The same two parts under coverage.py ([tool.coverage]: server processes the tests start are measured too).
coverage: $(STAMP)
	-$(BIN)/pytest -q -n $(TEST_WORKERS) -m "not timing" --cov --cov-report= $(PYTEST_ARGS)
	-$(BIN)/pytest -q -m timing --cov --cov-append --cov-report= $(PYTEST_ARGS)
	$(BIN)/coverage report --skip-covered --sort=cover

format: $(STAMP)
	$(BIN)/ruff format $(PY_DIRS)

clean:
	rm -rf $(VENV) node_modules .pytest_cache
